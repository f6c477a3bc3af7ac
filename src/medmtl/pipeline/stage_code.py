"""The code each stage computes with, so that both DAGs rerun a stage when, and only when, it
changes.

A stage's code is its command module (`medmtl.commands.<command>`) and every medmtl module that
module imports, transitively: `import` and `from ... import` statements anywhere in a module
(function-level ones too), modules named by string for `importlib` (the model registry's
`MODEL_MODULES`), and the `__init__.py` of each package on the way when it holds more than a
docstring. Data files a module loads by name come with it (`DATA_FILES`: the Hydra config
groups, the recorded checksums). The closure is static, so it may hold a module a stage does
not reach at run time: a rerun too many, never one missed.

`stage_paths` writes that set the short way (a folder when every file in it belongs to the
set), as paths relative to the project root: `dvc.yaml` lists exactly these as the stage's
`deps` (tests/test_dags.py checks it), and the Snakefile passes `stage_fingerprint`, a sha256
over the same files, as a rule param, so Snakemake's params trigger reruns the rule when DVC's
dependency check reruns the stage.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

SOURCE = Path("src/medmtl")  # the package source, relative to the project root
# Module -> the package data it reads by name (relative to the package root).
DATA_FILES = {
    "pipeline.config": ("conf",),
    "data.download": ("data/checksums",),
}
_IGNORED = ("__pycache__",)


def _module_file(source: Path, dotted: str) -> Path | None:
    """The file of module `medmtl.<dotted>` under `source`, if it is a module or package."""
    base = source.joinpath(*dotted.split(".")) if dotted else source
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _imports(path: Path, source: Path) -> frozenset[str]:
    """Modules (dotted, below `medmtl`) that the module at `path` names for import."""
    found = set()

    def add(name: str) -> None:
        if name == "medmtl" or name.startswith("medmtl."):
            found.add(name.removeprefix("medmtl").removeprefix("."))

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            add(node.module)
            for alias in node.names:  # `from medmtl.x import y`: y may be a module
                add(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            add(node.value)  # a module named for importlib
    return frozenset(name for name in found if _module_file(source, name) is not None)


@functools.cache
def _has_code(init: Path) -> bool:
    body = ast.parse(init.read_text()).body
    return any(not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)) for s in body)


@functools.cache
def stage_files(command: str, root: Path = Path(".")) -> frozenset[Path]:
    """Every file the stage of `medmtl <command>` computes with, relative to `root` (each file is
    read once per process: the Snakefile asks once per rule).

    Raises:
        ValueError: `command` has no module in `medmtl.commands`.
    """
    source = root / SOURCE
    start = f"commands.{command.replace('-', '_')}"
    if _module_file(source, start) is None:
        raise ValueError(f"no stage command {command!r} in {source / 'commands'}")
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".") if name else []
        todo += [".".join(parts[:i]) for i in range(len(parts))]  # the packages on the way
        if (path := _module_file(source, name)) is not None:  # None: a namespace package
            todo += _imports(path, source)
    files = set()
    for name in seen:
        path = _module_file(source, name)
        if path is not None and (path.name != "__init__.py" or _has_code(path)):
            files.add(path)
        for data in DATA_FILES.get(name, ()):
            files |= _tree(source / data)
    return frozenset(path.relative_to(root) for path in files)


def _tree(folder: Path) -> set[Path]:
    """The files below `folder` that a DVC folder dependency hashes (not `_IGNORED`)."""
    return {p for p in folder.rglob("*") if p.is_file() and not set(p.parts) & set(_IGNORED)}


def stage_paths(command: str, root: Path = Path(".")) -> list[str]:
    """`stage_files` the short way: a folder stands for its files when all of them belong
    (a package's docstring-only `__init__.py` aside)."""
    files = {root / path for path in stage_files(command, root)}

    def cover(folder: Path) -> list[Path]:
        inside = {p for p in _tree(folder) if p.name != "__init__.py" or _has_code(p)}
        if inside and inside <= files:
            return [folder]
        parts = [p for p in files if p.parent == folder]
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and p.name not in _IGNORED):
            parts += cover(sub)
        return parts

    return sorted(str(path.relative_to(root)) for path in cover(root / SOURCE))


def stage_fingerprint(command: str, root: Path = Path(".")) -> str:
    """sha256 over the paths and bytes of every file under `stage_paths` (as DVC hashes them)."""
    digest = hashlib.sha256()
    for path in sorted({p for d in stage_paths(command, root) for p in _expand(root / d)}):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _expand(path: Path) -> set[Path]:
    return _tree(path) if path.is_dir() else {path}
