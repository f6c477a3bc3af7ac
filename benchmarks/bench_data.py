"""How long do the data stages take on the mirrors? Prints wall times (no test asserts them).

- ISIC 2017 mirror: list all 2,150 cases and decode every 100th image and mask;
- BUSI mirror: read all 780 cases, then find and resolve duplicates (`medmtl.data.dedup`);
- synthetic: write 300 images at 64 px (the embedded default's generator).

    python benchmarks/bench_data.py [--mirror ../shared/data/mirror]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from medmtl.data.busi import read_busi
from medmtl.data.dedup import apply_policy, find_duplicates
from medmtl.data.isic2017 import read_isic2017
from medmtl.data.synthetic import write_synthetic


def timed(label: str, work) -> None:
    started = time.perf_counter()
    work()
    print(f"{label}: {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=Path("../shared/data/mirror"))
    args = parser.parse_args()

    def isic() -> None:
        cases = list(read_isic2017(args.mirror / "isic2017"))
        for case in cases[::100]:
            case.load_image(), case.load_mask()

    def busi() -> None:
        cases = list(read_busi(args.mirror / "busi"))
        apply_policy(cases, find_duplicates(cases))

    timed("ISIC 2017 mirror: read 2,150 cases, decode every 100th", isic)
    timed("BUSI mirror: read 780 cases and deduplicate", busi)
    with tempfile.TemporaryDirectory() as tmp:
        timed(
            "synthetic: write 300 images at 64 px",
            lambda: write_synthetic(Path(tmp), seed=0, n_train=200, n_val=50, n_test=50, size=64),
        )


if __name__ == "__main__":
    main()
