"""`medmtl fetch`: the raw stage of both DAGs: `synthesize` or `download`, as params.yaml says."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = """Produce data/raw/<dataset> from the dataset's section of a params file: for
`synthetic`, generate it (medmtl synthesize with seed, n_train, n_val, n_test, size); for
`dynamic`, generate multi-phase studies (the same keys and phases) when its source is
`synthetic`, else copy the release folder its source names (the layout of medmtl.data.dynamic);
for a real dataset, download its archives (medmtl download with source, parts), verified by
sha256."""


FETCH_KEYS = {  # what each dataset's params section must give; others need only `source`
    "synthetic": ("seed", "n_train", "n_val", "n_test", "size"),
    "dynamic": ("source", "seed", "n_train", "n_val", "n_test", "phases", "size"),
    "isic2017": ("source", "parts"),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fetch", help="generate or download a dataset's raw files", description=HELP)
    p.add_argument("--dataset", required=True, help="synthetic, isic2017 or busi")
    p.add_argument(
        "--params",
        required=True,
        type=Path,
        nargs="+",
        help="params.yaml (then experiment files, merged) with the dataset's section",
    )
    p.add_argument("--out", required=True, type=Path, help="destination folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medmtl.commands import download, synthesize
    from medmtl.errors import UserError
    from medmtl.pipeline.params import load_params

    params = load_params(args.params)
    where = " + ".join(map(str, args.params))
    section = params.get(args.dataset)
    if not isinstance(section, dict):
        raise UserError(f"{where}: no section {args.dataset!r} (how to fetch it)")
    keys = FETCH_KEYS.get(args.dataset, ("source",))
    missing = [k for k in keys if k not in section]
    if missing:
        raise UserError(f"{where}: {args.dataset}: missing key(s) {', '.join(missing)}")
    values = {k: section[k] for k in keys}
    if args.dataset == "synthetic":
        return synthesize.run(argparse.Namespace(out=args.out, dataset="synthetic", **values))
    if args.dataset == "dynamic":
        return _dynamic(values, args.out)
    values.setdefault("parts", None)
    return download.run(
        argparse.Namespace(dataset=args.dataset, out=args.out, checksums=None, **values)
    )


def _dynamic(values: dict, out: Path) -> int:
    """Generate the synthetic studies, or copy a release in the dynamic layout to `out`."""
    import shutil

    from medmtl.commands import synthesize
    from medmtl.data.dynamic import SUBJECTS
    from medmtl.errors import UserError

    source = values.pop("source")
    if source == "synthetic":
        return synthesize.run(argparse.Namespace(out=out, dataset="dynamic", **values))
    if not (Path(source) / SUBJECTS).is_file():
        raise UserError(f"dynamic.source: {source}/{SUBJECTS} missing (medmtl.data.dynamic)")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    print(f"copied the dynamic release {source} to {out}")
    return 0
