"""The deployed code's boundary is an allow-list (serverless.yml, split_frames' package.patterns,
shared by every function through a YAML anchor), and it is exactly what the handlers import.

Walked statically from every ``functions/*.py``: each ``import``/``from ... import`` of
``vidsift`` or ``functions``, inside functions too (lazy imports are imports Lambda runs), and
each package's ``__init__``. The list must hold every module reached (else a handler fails on
Lambda with ImportError, found only after a deploy) and nothing none reaches (else the zip
ships code nobody runs, and the boundary stops saying where the deployed code ends). Data files
a reached module names next to itself (contract.json) must be in the list too.

``vidsift/storage/**`` and ``vidsift/settings.py`` are listed before they exist (changes made
alongside this one create them); an entry that matches nothing is allowed for them alone,
while what they name is absent.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path
from typing import Any

import yaml

from vidsift.testing import imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("vidsift", "functions")


class _TagLoader(yaml.SafeLoader):
    """serverless.yml's CloudFormation tags (!Ref, !GetAtt...) read as plain values."""


_TagLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


@functools.cache
def _function_patterns() -> tuple[str, ...]:
    doc: dict[str, Any] = yaml.load((ROOT / "serverless.yml").read_text(), Loader=_TagLoader)
    patterns = {name: tuple(fn["package"]["patterns"]) for name, fn in doc["functions"].items()}
    assert len(set(patterns.values())) == 1, f"functions package different files: {patterns}"
    return next(iter(patterns.values()))


def function_patterns() -> list[str]:
    """split_frames' package.patterns, after checking every function has the same."""
    return list(_function_patterns())


def _regex(glob: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            out, i = out + ".*", i + 2
        elif glob[i] == "*":
            out, i = out + "[^/]*", i + 1
        else:
            out, i = out + re.escape(glob[i]), i + 1
    return re.compile(out + r"\Z")


def packaged(path: str, patterns: list[str]) -> bool:
    """Serverless' rule: patterns in order, the last one that matches decides ('!' excludes)."""
    keep = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        if _regex(pattern.lstrip("!")).match(path):
            keep = not negate
    return keep


def handler_closure() -> set[Path]:
    """Every module of vidsift or functions a handler can import, its packages' __init__ included."""
    return imports.import_closure(ROOT, [f"functions.{p.stem}" for p in (ROOT / "functions").glob("*.py")], PACKAGES)


def data_files_named(module: Path) -> set[Path]:
    """Files beside ``module`` (or at the package root) whose names appear as string literals in it:
    what it opens with ``Path(__file__).with_name(...)`` and the like."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"[\w.-]+\.\w+", node.value):
            for folder in (module.parent, ROOT / "vidsift"):
                if (folder / node.value).is_file() and not node.value.endswith(".py"):
                    found.add(folder / node.value)
    return found


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def repo_files() -> list[str]:
    return [rel(p) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")]


def test_the_boundary_is_an_allow_list() -> None:
    patterns = function_patterns()
    assert patterns[0] == "!**", "the list starts from nothing"
    assert not [p for p in patterns[1:] if p.startswith("!") and p != "!**/__pycache__/**"], \
        "exclusions would make the boundary a deny-list again"


def test_every_module_a_handler_reaches_is_deployed() -> None:
    patterns = function_patterns()
    reached = sorted(rel(p) for p in handler_closure())
    assert "functions/detect_people.py" in reached and "vidsift/stages/runtime.py" in reached
    missing = [p for p in reached if not packaged(p, patterns)]
    assert missing == [], f"handlers import modules serverless.yml does not package: {missing}"


def test_the_data_files_reached_modules_read_are_deployed() -> None:
    patterns = function_patterns()
    data = {rel(f) for m in handler_closure() for f in data_files_named(m)}
    assert "vidsift/contract.json" in data
    missing = sorted(f for f in data if not packaged(f, patterns))
    assert missing == [], f"reached modules read files serverless.yml does not package: {missing}"


def test_the_allow_list_holds_nothing_the_handlers_do_not_reach() -> None:
    patterns = function_patterns()
    reached = {rel(p) for p in handler_closure()}
    data = {rel(f) for m in handler_closure() for f in data_files_named(m)}
    shipped = [f for f in repo_files() if packaged(f, patterns)]
    unused = sorted(f for f in shipped if f not in reached and f not in data)
    assert unused == [], f"serverless.yml packages files no handler imports or reads: {unused}"
    for entry in patterns[1:]:
        if entry.startswith("!"):
            continue
        assert any(_regex(entry).match(f) for f in shipped), f"{entry} matches nothing the handlers use"


def test_local_only_code_is_outside_the_boundary() -> None:
    """What must never reach Lambda, by name (the deny-list this replaced, checked the other way)."""
    patterns = function_patterns()
    for path in ("vidsift/local/stack.py", "vidsift/cli/commands.py", "vidsift/report/data.py",
                 "vidsift/testing/samples.py", "vidsift/deploy/checks.py", "vidsift/deploy/regions.json",
                 "vidsift/local/warehouse.py", "vidsift/sql/age_gender_distribution.sql", "edge/recorder.py",
                 "sagemaker/code/inference.py", "tests/conftest.py"):
        assert not packaged(path, patterns), path
    assert packaged("vidsift/storage/anything.py", patterns), "the storage package is deployed once it lands"


def _imported_packages(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_vidsift_never_imports_the_device_or_the_endpoint_code() -> None:
    """The arrows point one way: edge/ depends on vidsift (the contract, core.uploads), never the
    reverse, and vidsift imports nothing from sagemaker/ (the local SageMaker runtime loads the
    endpoint's flat code/ folder by path, as the serving container does; it is not a package)."""
    wrong = sorted(rel(p) for p in (ROOT / "vidsift").rglob("*.py")
                   if "node_modules" not in p.parts and _imported_packages(p) & {"edge", "sagemaker"})
    assert wrong == [], f"vidsift modules importing edge/ or sagemaker/: {wrong}"
