"""The Lambda layers carry no packages' test suites (issue 26, item 10): numpy's and SciPy's
`tests` folders were about 41 MiB of the tracking layer's 211 (unzipped), headroom that
track_people's 250 MB limit needs. layers/build.sh removes them (layertool prune-tests)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
import layertool  # noqa: E402


def test_prune_removes_package_test_suites_only(tmp_path: Path) -> None:
    site = tmp_path / "python"
    for rel, size in {"scipy/__init__.py": 1, "scipy/stats/__init__.py": 1, "scipy/stats/tests/test_x.py": 1000,
                      "scipy/stats/tests/data/big.npz": 5000, "numpy/__init__.py": 1, "numpy/testing/__init__.py": 10,
                      "numpy/_core/__init__.py": 1, "numpy/_core/tests/test_y.py": 300,
                      "tests/conftest.py": 7, "data/tests/readme.txt": 3}.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
    assert layertool.prune_tests(site) == (2, 6300)
    left = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    # numpy.testing is imported by code: kept; a top-level tests/ or one outside a package is not ours to judge.
    assert left == ["data/tests/readme.txt", "numpy/__init__.py", "numpy/_core/__init__.py",
                    "numpy/testing/__init__.py",
                    "scipy/__init__.py", "scipy/stats/__init__.py", "tests/conftest.py"]


def test_built_layers_hold_no_tests_folders() -> None:
    """The zips serverless.yml deploys (built when stale, as `sls package` does)."""
    subprocess.run(["bash", str(ROOT / "layers" / "build.sh"), "--if-stale"], cwd=ROOT, check=True,
                   capture_output=True, timeout=900)
    for name in ("tracking", "media"):
        with zipfile.ZipFile(ROOT / "layers" / "build" / f"{name}.zip") as z:
            inside = [n for n in z.namelist() if "/tests/" in n]
        assert inside == [], f"{name}.zip still has {len(inside)} files under tests/: {inside[:3]}"
