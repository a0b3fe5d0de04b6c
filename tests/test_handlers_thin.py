"""The handler layer stays thin and the arrows point one way (issue 25, "The house").

A handler in functions/ parses its event, calls its stage service in vidsift/stages/ and
reports failures; the work is in the service. These tests fail when a handler grows past
100 lines (work creeping back into it) or when a stage module imports from ``functions``
(a service calling back up into a handler). They also pin the idempotency record names of
the work that moved from the handlers into the services: a live stack's records must keep
recognising replays across the move (docs/reliability.md)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemNotFoundError
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from vidsift.stages import runtime

ROOT = Path(__file__).resolve().parent.parent
MAX_HANDLER_LINES = 100


def _handlers() -> list[Path]:
    return sorted(p for p in (ROOT / "functions").glob("*.py") if p.name != "__init__.py")


def _imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, wherever the import statement is (also inside functions)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module)
    return out


def test_there_are_handlers_to_check() -> None:
    names = {p.stem for p in _handlers()}
    assert {"split_frames", "detect_people", "track_people", "analyze_faces", "alert_faces"} <= names


@pytest.mark.parametrize("path", _handlers(), ids=lambda p: p.name)
def test_every_handler_is_thin(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_HANDLER_LINES, (
        f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_HANDLER_LINES}): a handler parses its event, "
        "calls its stage service in vidsift/stages/ and reports failures; move the work into the service")


def test_no_stage_module_imports_a_handler() -> None:
    offenders = {}
    for path in sorted((ROOT / "vidsift" / "stages").rglob("*.py")):
        bad = [m for m in _imported_modules(path) if m == "functions" or m.startswith("functions.")]
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}, f"stage services call back up into handlers: {offenders}"


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    """The import scan above is not blind to a late import (the kind a callback hides in)."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from functions.split_frames import record_handler\n    import functions.x\n")
    assert _imported_modules(sample) == ["functions.split_frames", "functions.x"]


class _MemoryStore(BasePersistenceLayer):
    """Powertools' idempotency persistence in a dict: the record ids ``once`` really writes."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, DataRecord] = {}

    def _get_record(self, idempotency_key: str) -> DataRecord:
        if idempotency_key not in self.records:
            raise IdempotencyItemNotFoundError
        return self.records[idempotency_key]

    def _put_record(self, data_record: DataRecord) -> None:
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.pop(data_record.idempotency_key, None)


@pytest.fixture
def memory_store(monkeypatch: pytest.MonkeyPatch) -> _MemoryStore:
    store = _MemoryStore()
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "in-memory")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "vidsift-dev-split_frames")
    monkeypatch.setattr(runtime, "_store", lambda *args: store)
    return store


@runtime.work_name("functions.some_handler.old_work")
def _named_work(obj: dict[str, Any]) -> dict[str, Any]:
    return {"done": obj["key"]}


def _unnamed_work(obj: dict[str, Any]) -> dict[str, Any]:
    return {"done": obj["key"]}


@pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left")
def test_named_work_keeps_its_record_id_and_is_done_once(memory_store: _MemoryStore) -> None:
    obj = {"bucket": "b", "key": "k", "etag": "e"}
    assert runtime.once(_named_work, obj) == {"done": "k"}
    (record_id,) = memory_store.records
    assert record_id.startswith("vidsift-dev-split_frames.functions.some_handler.old_work#")
    assert runtime.done(_named_work, obj)  # done() looks under the same id
    assert runtime.once(_named_work, obj) == {"done": "k"}
    assert len(memory_store.records) == 1


@pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left")
def test_unnamed_work_gets_powertools_own_record_id(memory_store: _MemoryStore) -> None:
    runtime.once(_unnamed_work, {"bucket": "b", "key": "k", "etag": "e"})
    (record_id,) = memory_store.records
    assert record_id.startswith(f"vidsift-dev-split_frames.{__name__}._unnamed_work#")


def test_the_moved_work_keeps_the_names_it_had_in_the_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a live stack's idempotency records are named after (docs/reliability.md)."""
    from vidsift.stages import detecting, faces, splitting

    moved = {splitting.process_video: "functions.split_frames.process_video",
             splitting.process_segment: "functions.split_frames.process_segment",
             detecting.finish_snapshot_work: "functions.detect_people.finish_snapshot_work",
             faces.analyze_frame: "functions.analyze_faces.analyze_frame",
             faces.analyze_tracks: "functions.analyze_faces.analyze_tracks"}
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "vidsift-dev-stage")
    for fn, name in moved.items():
        assert runtime._key_prefix(fn) == f"vidsift-dev-stage.{name}"
