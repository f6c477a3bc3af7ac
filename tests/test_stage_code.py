"""`medmtl.pipeline.stage_code`: which files a stage computes with, and their fingerprint."""

from __future__ import annotations

from pathlib import Path

import pytest

from medmtl.pipeline.stage_code import stage_files, stage_fingerprint, stage_paths

ROOT = Path(__file__).resolve().parents[1]


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "src/medmtl" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    stage_files.cache_clear()
    return root


FILES = {
    "__init__.py": '"""docstring only"""\n',
    "commands/__init__.py": '"""docstring only"""\n',
    "commands/go.py": "def main():\n    from medmtl.work import run\n",  # function-level import
    "commands/other.py": "import medmtl.unused\n",
    "work/__init__.py": "",
    "work/run.py": "import importlib\nMODULES = ('medmtl.work.plugin',)\n",  # named by string
    "work/plugin.py": "from medmtl import helpers\n",
    "helpers.py": "X = 1\n",
    "unused.py": "Y = 2\n",
    "pipeline/config.py": "",
    "conf/a.yaml": "a: 1\n",
}


def test_the_closure_follows_imports_anywhere_strings_for_importlib_and_folders(tmp_path):
    root = _package(tmp_path, FILES)
    assert stage_paths("go", root) == [
        "src/medmtl/commands/go.py",
        "src/medmtl/helpers.py",
        "src/medmtl/work",  # every file of it belongs (the empty __init__.py aside)
    ]
    assert stage_paths("other", root) == ["src/medmtl/commands/other.py", "src/medmtl/unused.py"]


def test_a_module_that_loads_data_by_name_brings_its_data(tmp_path):
    root = _package(tmp_path, {**FILES, "commands/go.py": "from medmtl.pipeline import config\n"})
    assert stage_paths("go", root) == [
        "src/medmtl/commands/go.py",
        "src/medmtl/conf",
        "src/medmtl/pipeline",  # config.py is all it holds
    ]


def test_an_unimported_file_in_a_folder_lists_the_folder_file_by_file(tmp_path):
    root = _package(tmp_path, {**FILES, "work/draft.py": "Z = 3\n"})
    assert "src/medmtl/work/run.py" in stage_paths("go", root)
    assert "src/medmtl/work" not in stage_paths("go", root)


def test_the_fingerprint_changes_with_the_stage_code_only(tmp_path):
    root = _package(tmp_path, FILES)
    before = stage_fingerprint("go", root)
    (root / "src/medmtl/unused.py").write_text("Y = 3\n")  # another stage's code
    assert stage_fingerprint("go", root) == before
    (root / "src/medmtl/work/__init__.py").write_text("# comment\n")  # inside a listed folder
    assert stage_fingerprint("go", root) != before
    (root / "src/medmtl/work/__init__.py").write_text("")
    assert stage_fingerprint("go", root) == before
    (root / "src/medmtl/helpers.py").write_text("X = 2\n")
    assert stage_fingerprint("go", root) != before


def test_an_unknown_command_is_an_error(tmp_path):
    root = _package(tmp_path, FILES)
    with pytest.raises(ValueError, match="no stage command 'nope'"):
        stage_paths("nope", root)


def test_the_real_stages_compute_with_their_own_folders_only():
    train, table = stage_paths("train", ROOT), stage_paths("table", ROOT)
    loop = {f"src/medmtl/training/{m}.py" for m in ("loop", "losses", "birads")}
    assert {"src/medmtl/models", "src/medmtl/conf", *loop} <= set(train)
    assert "src/medmtl/training/device_check.py" not in train  # `medmtl gpu-check` only
    assert not any(p.startswith(("src/medmtl/reporting", "src/medmtl/analysis")) for p in train)
    assert "src/medmtl/reporting/table_tex.py" in table
    assert not any(p.startswith(("src/medmtl/models", "src/medmtl/training")) for p in table)
    assert not any(p.startswith("src/medmtl/data/isic2017") for p in train + table)  # readers
