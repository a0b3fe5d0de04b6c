"""Static import closures, for the tests that hold the layers' rules: what the deploy checks
import (they must run on the deploy machine's Python 3.9) and what the handlers import (it
must be exactly what serverless.yml packages). Walked from the source with ``ast``, imports
inside functions included: a lazy import is still an import the code runs."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path


def module_file(root: Path, name: str) -> Path | None:
    """The file of module ``name`` under ``root`` (a package's __init__.py), or None outside it."""
    base = root / Path(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def import_closure(root: Path, modules: Iterable[str], packages: tuple[str, ...] = ("vidsift",)) -> set[Path]:
    """Every module of ``packages`` that ``modules`` can import, their packages' __init__
    files included; ``from a import b`` counts ``a.b`` too, in case ``b`` is a module."""
    seen: set[Path] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        path = module_file(root, name)
        if path is None or path in seen:
            continue
        seen.add(path)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.split(".")[0] in packages]
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in packages:
                todo += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return seen
