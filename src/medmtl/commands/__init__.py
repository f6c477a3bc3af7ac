"""One module per `medmtl` subcommand: argument parsing and file I/O only, logic lives elsewhere."""


def add_test_options(parser) -> None:
    """--alpha, --n-boot, --seed: the options of every command that runs the paired tests."""
    add = parser.add_argument
    add("--alpha", type=float, default=0.001, help="threshold on Holm-adjusted p")
    add(
        "--n-boot",
        type=int,
        default=2000,
        help="bootstrap resamples per CI; also the most permutations one per-run test enumerates",
    )
    add("--seed", type=int, default=0, help="bootstrap seed")
