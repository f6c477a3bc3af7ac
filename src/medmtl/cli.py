"""`medmtl <stage>`: the one entry point both DAGs (Snakemake, DVC) call.

Each stage lives in `medmtl.commands.<name>` with `register(subparsers)`, which adds its
parser and sets `func`; heavy imports happen inside the stage's function, so `--help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from medmtl.credentials import redact
from medmtl.errors import UserError

COMMANDS = (
    "fetch",
    "download",
    "synthesize",
    "preprocess",
    "splits",
    "init_tracking",
    "train",
    "evaluate",
    "external",
    "stats",
    "table",
    "external_table",
    "ablation_table",
    "figures",
    "run_curves",
    "pdf",
    "audit",
    "models",
    "gpu_check",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medmtl",
        description="Reproducible multi-task (segmentation + classification) pipeline stages.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="STAGE")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"medmtl.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"medmtl.commands.{name}":
                raise
            continue  # stage not built yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except UserError as err:
        print(f"medmtl {args.command}: error: {redact(str(err))}", file=sys.stderr)
        return 2
    except Exception:  # a library's message may hold a store URI with its password
        print(redact(traceback.format_exc()), file=sys.stderr, end="")
        return 1


if __name__ == "__main__":
    sys.exit(main())
