"""The core stays plain Python, and the settings are one object (issue 25).

vidsift/core/ is what the stages, the CLI and the local stack all build on: if a core module
imported boto3, the stages, the CLI, the local stack or the settings, or read the
environment, it could no longer be tested, reused or reasoned about on its own. The rule
is read from the source (ast, so a comment or a string naming ``os.environ`` does not
count, and ``from os import environ`` does). The settings object (vidsift/settings.py)
reads contract.json's variables, each of them and nothing else.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from vidsift import contract
from vidsift.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CORE = sorted((ROOT / "vidsift" / "core").rglob("*.py"))

#: Modules the core must not import (a name or any module under it).
FORBIDDEN = ("boto3", "botocore", "vidsift.aws", "vidsift.stages", "vidsift.cli", "vidsift.local",
             "vidsift.config", "vidsift.settings")


def _forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def problems(source: str, name: str) -> list[str]:
    """What in ``source`` breaks the core's rules: forbidden imports, environment reads."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            found += [f"{name}:{node.lineno}: imports {a.name}" for a in node.names if _forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            found += [f"{name}:{node.lineno}: imports {m}" for m in modules if _forbidden(m)]
            if node.module == "os" and any(a.name in ("environ", "getenv", "environb", "putenv") for a in node.names):
                found.append(f"{name}:{node.lineno}: imports os's environment")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("environ", "getenv", "environb", "putenv", "unsetenv"):
            found.append(f"{name}:{node.lineno}: reads os.{node.attr}")
    return found


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_a_core_module_imports_no_aws_stage_cli_local_stack_or_settings_and_reads_no_environment(path: Path) -> None:
    assert problems(path.read_text(), path.relative_to(ROOT).as_posix()) == []


@pytest.mark.parametrize("source", [
    "import boto3", "import botocore.config", "from vidsift import aws", "from vidsift.aws import client",
    "from vidsift.stages import rate", "import vidsift.cli.query", "from vidsift.local.stack import LocalStack",
    "from vidsift.config import ConfigError", "from vidsift.settings import Settings",
    "import os\nx = os.environ.get('A')", "import os\nx = os.getenv('A')", "from os import environ",
])
def test_the_rule_catches_each_kind_of_breach(source: str) -> None:
    assert problems(source, "bad.py"), source


def test_the_rule_lets_paths_and_the_core_through() -> None:
    ok = "import os\nimport av\nfrom vidsift import contract\nfrom vidsift.core.errors import ConfigError\n" \
         "n = os.cpu_count()\np = os.path.join('a', 'b')\n# os.environ in a comment\ns = 'os.environ'"
    assert problems(ok, "ok.py") == []


def env_reads(source: str, name: str) -> list[str]:
    return [p for p in problems(source, name) if "environ" in p or "getenv" in p or "putenv" in p]


@pytest.mark.parametrize("folder", ["functions", "vidsift/stages"])
def test_handlers_and_stages_take_their_settings_from_the_one_object(folder: str) -> None:
    """The handlers and stages read no variable themselves: vidsift/settings.py does. (The
    AWS SDK's own variables, AWS_REGION and the endpoints, are read where the clients are
    made, vidsift/aws.py, as boto3 would read them.)"""
    paths = sorted((ROOT / folder).rglob("*.py"))
    assert paths
    found = [p for path in paths for p in env_reads(path.read_text(), path.relative_to(ROOT).as_posix())]
    assert found == []


class Recording(Mapping[str, str]):
    """A mapping that notes every name asked of it (present or not)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values, self.asked = values, set[str]()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self.values[key]

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return self.values.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def valid_environment() -> dict[str, str]:
    """A value every parser accepts, for each variable contract.json declares."""
    env = {name: "1" for name in contract.load()["env"]}
    env.update(SAMPLE_MODE="fps", VISITORS="true", ALERT_RULES='[{"when": "person"}]', ALERT_TIMEZONE="UTC",
               ALERT_TOPIC_ARN="arn:aws:sns:us-east-1:123456789012:t", DEDUP="on")
    return env


def test_the_settings_read_every_declared_variable_and_nothing_else() -> None:
    """One name for one thing: every variable contract.json's ``env`` declares is read by some
    part of the settings, and no part reads a variable the contract does not declare."""
    env = valid_environment()
    recording = Recording(env)
    settings = Settings(recording)
    settings.check(*Settings.PARTS)
    declared = set(contract.load()["env"])
    assert recording.asked - declared == set(), "read but not declared in contract.json"
    assert declared - recording.asked == set(), "declared in contract.json but never read"


def test_the_settings_keep_only_declared_variables() -> None:
    settings = Settings.parse({**valid_environment(), "HOME": "/root", "UNDECLARED": "x"})
    assert set(settings.values) == set(contract.load()["env"])


def test_a_bad_value_is_a_config_error_naming_its_variable() -> None:
    from vidsift.core.errors import ConfigError

    for name, bad in (("SAMPLE_FPS", "one"), ("SAMPLE_MODE", "sometimes"), ("TRACK_MAX_GAP_S", "-1"),
                      ("FACE_REVISIT_S", "soon"), ("ALERT_TIMEZONE", "Mars/Olympus"),
                      ("FACE_MATCH_THRESHOLD", "120"), ("VISITOR_FACES_MAX", "0"), ("STALL_AFTER_S", "later"),
                      ("REKOGNITION_TPS", "0"), ("SEGMENT_SECONDS", "long"), ("DEDUP", "maybe")):
        with pytest.raises(ConfigError, match=name):
            Settings.parse({**valid_environment(), name: bad}).check(*Settings.PARTS)
