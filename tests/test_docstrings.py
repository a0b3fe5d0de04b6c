"""Every public class in vidsift/ says why it exists: a newcomer meets the classes first (the
local stack, the dispatcher, the settings...), and a class without a docstring leaves them
to read its body to learn what it is for. Classes only: functions are too many to enforce,
and a short helper's name often says enough.

Public means a name without a leading underscore, at module level or inside a public class.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def undocumented_classes(folder: Path, root: Path = ROOT) -> list[str]:
    """``path:line class Name`` of each public class under ``folder`` without a docstring."""
    found: list[str] = []

    def visit(path: Path, body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                if ast.get_docstring(node) is None:
                    found.append(f"{path.relative_to(root)}:{node.lineno} class {prefix}{node.name}")
                visit(path, node.body, f"{prefix}{node.name}.")

    for path in sorted(folder.rglob("*.py")):
        if "node_modules" not in path.parts:
            visit(path, ast.parse(path.read_text(), str(path)).body, "")
    return found


def test_every_public_class_in_vidsift_has_a_docstring() -> None:
    missing = undocumented_classes(ROOT / "vidsift")
    assert missing == [], "public classes without a docstring (say why the class exists):\n" + "\n".join(missing)


def test_the_check_sees_a_class_without_a_docstring(tmp_path: Path) -> None:
    """The walk itself: nested public classes count, private ones and documented ones do not."""
    (tmp_path / "m.py").write_text('class A:\n    class B:\n        pass\n\nclass _C:\n    pass\n\n'
                                   'class D:\n    """Why."""\n')
    assert undocumented_classes(tmp_path, tmp_path) == ["m.py:1 class A", "m.py:2 class A.B"]
