"""`sls deploy` runs vidsift/deploy/checks.py with the deploy machine's python3
(plugins/deploy-checks.js), which may be 3.9 (macOS's bundled one, CloudShell and Amazon
Linux 2023) or 3.10 (Ubuntu 22.04). No older interpreter installs here, so the check is
static: vermin (PyPI) reads every module deploy_checks imports, at the top or inside a
function, and names anything that needs a newer Python (``datetime.UTC``: 3.11,
``zip(strict=)``: 3.10, ...)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vidsift.testing import imports

ROOT = Path(__file__).resolve().parents[1]
OLDEST = "3.9"


def import_closure(module: str) -> list[Path]:
    """Every vidsift module ``module`` can import, its packages' __init__ files included;
    imports inside functions count (the deploy checks import the alert rules lazily)."""
    return sorted(imports.import_closure(ROOT, [module]))


def vermin() -> str:
    found = shutil.which("vermin", path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail("vermin is not installed: it is pinned in requirements-dev.txt (make venv)")
    return found


def test_the_closure_holds_what_deploy_checks_uses() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in import_closure("vidsift.deploy.checks")}
    # The rules' parser (a lazy import) and what it imports are in it: the test sees them.
    assert {"vidsift/deploy/checks.py", "vidsift/core/alerts.py", "vidsift/core/records.py",
            "vidsift/core/errors.py", "vidsift/contract.py"} <= names


def test_deploy_checks_runs_on_python_3_9() -> None:
    files = [str(p) for p in import_closure("vidsift.deploy.checks")]
    proc = subprocess.run([vermin(), f"-t={OLDEST}-", "--violations", "--no-tips", *files],
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, f"needs a Python newer than {OLDEST}:\n{proc.stdout}{proc.stderr}"


def test_vermin_finds_a_3_11_only_name() -> None:
    """The check can fail: the very import main had (datetime.UTC) is reported."""
    probe = ROOT / ".venv" / "home" / "vermin-probe.py"
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text("from datetime import UTC\nprint(UTC)\n")
    proc = subprocess.run([vermin(), f"-t={OLDEST}-", "--violations", "--no-tips", str(probe)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode != 0 and "datetime.UTC" in proc.stdout


def older_pythons() -> list[str]:
    """Interpreters older than 3.11 on this machine (pyenv's, or on PATH), if any."""
    import glob
    import os
    import pwd

    # The tests point HOME elsewhere: pyenv lives under the user's real home (or PYENV_ROOT).
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path(pwd.getpwuid(os.getuid()).pw_dir) / ".pyenv")
    found = [*sorted(glob.glob(str(pyenv / "versions" / "3.9*" / "bin" / "python3.9"))),
             *sorted(glob.glob(str(pyenv / "versions" / "3.10*" / "bin" / "python3.10")))]
    found += [p for p in (shutil.which("python3.9"), shutil.which("python3.10")) if p and "shims" not in p]
    return list(dict.fromkeys(found))


@pytest.mark.parametrize("python", older_pythons() or [pytest.param(None, marks=pytest.mark.skip(
    reason="no Python 3.9/3.10 on this machine: the vermin check above still covers it"))])
def test_deploy_checks_run_under_an_older_python(python: str, tmp_path: Path) -> None:
    """Where an older interpreter exists, run the checks with it for real, as the plugin does:
    every default parameter, valid alert rules (the import main failed on), a bad time zone."""
    import json

    doc = {"stage": "dev", "region": "eu-west-1", "environments": {"f": {"SAMPLE_FPS": "1"}},
           "params": {"alertRules": '[{"name": "door", "when": "person", "camera": "door"}]',
                      "alertTimezone": "Europe/Paris", "sampleFps": "0.5", "opsEmail": "", "kms": "true"}}
    ok = subprocess.run([python, "-m", "vidsift.deploy.checks"], input=json.dumps(doc), cwd=ROOT, text=True,
                        capture_output=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert ok.returncode == 0, ok.stderr
    doc["params"]["alertTimezone"] = "Europe/Pariss"
    bad = subprocess.run([python, "-m", "vidsift.deploy.checks"], input=json.dumps(doc), cwd=ROOT, text=True,
                         capture_output=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert bad.returncode == 1 and "alertTimezone='Europe/Pariss'" in bad.stderr and "Traceback" not in bad.stderr
