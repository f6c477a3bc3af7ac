"""The package layout of docs/architecture.md: which folder may import which, and where the heavy
libraries (torch, mlflow, Hydra) may be imported. Checked on the source (ast), imports inside
functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src/medmtl"
ATOMS = {
    "errors",
    "hashing",
    "annotated_parquet",
    "markdown",
    "model_names",
    "tracking",
    "credentials",
}
# Folder (or top-level module) -> what it may import besides itself; atoms import atoms only.
ALLOWED = {
    "data": ATOMS,
    "pipeline": ATOMS | {"data"},
    "models": ATOMS,
    "training": ATOMS | {"models"},
    "evaluation": ATOMS | {"models", "pipeline", "data"},
    "analysis": ATOMS | {"evaluation", "pipeline", "data"},
    "reporting": ATOMS | {"analysis", "evaluation", "pipeline", "data"},
    **{atom: ATOMS for atom in ATOMS},
}
# Where a heavy library may be imported (any other module importing it fails the test).
HEAVY = {
    "torch": {"models", "training", "evaluation/predict.py", "commands"},
    "mlflow": {"tracking.py"},
    "hydra": {"pipeline/config.py"},
}


def _modules() -> dict[Path, set[str]]:
    """Source file -> every module name it imports (absolute), anywhere in the file."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        found[path.relative_to(PACKAGE)] = names
    return found


def _group(name: str) -> str | None:
    """`medmtl.models.he2020` -> 'models', `medmtl.errors` -> 'errors'; None outside medmtl."""
    parts = name.split(".")
    return parts[1] if parts[0] == "medmtl" and len(parts) > 1 else None


def _owner(path: Path) -> str:
    return path.parts[0] if len(path.parts) > 1 else path.stem


def test_folders_import_only_downwards():
    wrong = []
    for path, names in _modules().items():
        owner = _owner(path)
        if owner not in ALLOWED:  # commands, cli, __init__: the top of the stack
            continue
        for group in {_group(n) for n in names} - {None, owner}:
            if group not in ALLOWED[owner]:
                wrong.append(f"{path} imports medmtl.{group}")
    assert not wrong, "\n".join(sorted(wrong))


@pytest.mark.parametrize("library", sorted(HEAVY))
def test_heavy_libraries_stay_where_they_belong(library: str):
    places = HEAVY[library]
    wrong = [
        str(path)
        for path, names in _modules().items()
        if any(n == library or n.startswith(library + ".") for n in names)
        and not any(str(path) == p or path.parts[0] == p for p in places)
    ]
    assert not wrong, f"{library} imported outside {sorted(places)}: {wrong}"


def test_every_folder_is_on_the_map():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders - {"commands"} == set(ALLOWED) - ATOMS
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "cli"}
    assert modules == ATOMS
