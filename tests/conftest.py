"""Shared fixtures. Names say what they hold, so fixtures added later do not collide."""

from __future__ import annotations

from pathlib import Path

import pytest

ISIC2017_MIRROR = Path(__file__).resolve().parents[2] / "shared/data/mirror/isic2017"


@pytest.fixture(scope="session")
def isic2017_mirror_dir() -> Path:
    """The downscaled offline ISIC 2017 mirror (Training + Validation), read only."""
    assert ISIC2017_MIRROR.is_dir(), f"offline mirror missing: {ISIC2017_MIRROR}"
    return ISIC2017_MIRROR


@pytest.fixture(scope="session")
def synthetic_isic2017_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset in the ISIC 2017 layout (30/12/12 cases, 48 px); read only."""
    from medmtl.data.synthetic import write_synthetic

    out = tmp_path_factory.mktemp("synthetic_isic2017_raw")
    write_synthetic(out, seed=7, n_train=30, n_val=12, n_test=12, size=48)
    return out


@pytest.fixture(scope="session")
def processed_synthetic(
    synthetic_isic2017_raw: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """(processed dir at 32 px, split file) of `synthetic_isic2017_raw`; read only."""
    from medmtl.cli import main

    out = tmp_path_factory.mktemp("processed_synthetic")
    data_dir, split_file = out / "processed", out / "splits.json"
    assert (
        main(
            [
                "preprocess",
                "--dataset",
                "synthetic",
                "--raw",
                str(synthetic_isic2017_raw),
                "--out",
                str(data_dir),
                "--size",
                "32",
            ]
        )
        == 0
    )
    assert main(["splits", "--processed", str(data_dir), "--out", str(split_file)]) == 0
    return data_dir, split_file


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    """A fresh MLflow SQLite store with the `medmtl` experiment created."""
    from medmtl import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.init_store(uri, "medmtl")
    return uri


@pytest.fixture
def one_torch_thread():
    """Small tensors gain nothing from a second thread, and one thread degrades gracefully
    when other jobs share the two cores (spinning OpenMP threads do not)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def pdflatex_compile(tmp_path: Path):
    """A function compiling LaTeX tables (booktabs, xcolor) into a PDF with pdflatex
    (`medmtl pdf`'s code); it returns pdflatex's log on failure, "" on success. Skips when
    pdflatex is not installed (`.ci/run` installs it, so CI always compiles)."""
    import shutil

    from medmtl.errors import UserError
    from medmtl.reporting.table_pdf import compile_tables

    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed")

    def compile_body(body: str) -> str:
        try:
            compile_tables([body], tmp_path / "doc.pdf")
        except UserError as err:
            return str(err)
        return ""

    return compile_body


@pytest.fixture(scope="session")
def processed_dynamic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(processed dir at 32 px, split file) of synthetic dynamic studies: 4 phases, 24/8/8
    subjects (medmtl.data.synthetic_dynamic); read only."""
    from medmtl.cli import main
    from medmtl.data.synthetic_dynamic import write_dynamic

    out = tmp_path_factory.mktemp("processed_dynamic")
    write_dynamic(out / "raw", seed=3, n_train=24, n_val=8, n_test=8, phases=4, size=32)
    data_dir, split_file = out / "processed", out / "splits.json"
    preprocess = ["preprocess", "--dataset", "dynamic", "--raw", str(out / "raw")]
    assert main([*preprocess, "--out", str(data_dir), "--size", "32"]) == 0
    assert main(["splits", "--processed", str(data_dir), "--out", str(split_file)]) == 0
    return data_dir, split_file
