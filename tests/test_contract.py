"""One name for one thing: the Python side of the contract agrees with itself.
(tests/test_stack.py checks the compiled CloudFormation template against the same file.)"""

from vidsift import contract
from vidsift.config import Settings
from vidsift.local.stack import LocalStack


def test_function_env_keys_are_declared() -> None:
    declared = set(contract.load()["env"])
    env = LocalStack().function_env()
    names = contract.local_names().function_env()
    assert set(names) <= declared
    assert {k for k in env if k.isupper() and not k.startswith(("AWS_", "POWERTOOLS_"))} <= declared


def test_settings_read_every_declared_variable(monkeypatch) -> None:
    for key in contract.load()["env"]:
        monkeypatch.setenv(key, "1" if key not in ("SAMPLE_MODE",) else "keyframes")
    s = Settings.from_env()
    assert s.sample_mode == "keyframes" and s.sample_fps == 1.0
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    source = "".join(p.read_text() for d in ("vidsift", "functions") for p in (root / d).rglob("*.py"))
    for key in contract.load()["env"]:
        assert f'"{key}"' in source, f"{key} is declared in contract.json but no code reads it"


def test_handlers_named_by_the_contract_exist() -> None:
    from vidsift.local.dispatcher import load_handler

    for stage in contract.STAGES:
        assert callable(load_handler(stage))


def test_names_are_valid_aws_names() -> None:
    import re

    names = contract.ResourceNames(stage="prod", account="123456789012")
    for role in contract.load()["buckets"]:
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", names.bucket(role))
    for stage in contract.STAGES:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", names.dlq(stage))
    assert len(names.endpoint) <= 63
