"""Settings are parsed once per cold start, before any record (issue 26, item 4).

A `vidsift run` once ended FAILED because reading the time-zone database failed for a
moment: the alert settings were parsed again for every frame with people, so the hiccup
became a frame failure (retried into the DLQ). Now a container parses them once, and a bad
setting is one error at the handler's start, naming it, with no record touched."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from vidsift import aws, settings
from vidsift.core import alerts
from vidsift.core.errors import ConfigError
from vidsift.local.dispatcher import Dispatcher, LocalContext, load_handler
from vidsift.local.stack import LocalStack
from vidsift.testing.localcheck import alerts_received, drain_dlq, error_records, put_snapshot
from vidsift.testing.samples import jpeg, photo


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    assert Dispatcher(local_stack).run_until_idle(timeout_s=60)  # S3's test events
    yield local_stack


@pytest.fixture(autouse=True)
def _fresh_parse() -> Iterator[None]:
    """Each test starts as a cold start would: nothing parsed yet."""
    settings.reset()
    yield
    settings.reset()


def flaky_zoneinfo(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The time-zone database readable once, then failing (the hiccup seen in a real run)."""
    real, calls, lock = alerts.ZoneInfo, [], threading.Lock()

    def zone(name: str) -> Any:
        with lock:
            calls.append(name)
            if len(calls) > 1:
                raise alerts.ZoneInfoNotFoundError(f"No time zone found with key {name}")
        return real(name)

    monkeypatch.setattr(alerts, "ZoneInfo", zone)
    return calls


def test_a_transient_time_zone_failure_after_start_up_fails_no_frame(stack: LocalStack,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_RULES", json.dumps([{"name": f"{c}-person", "when": "person", "camera": c}
                                                  for c in ("tz-a", "tz-b", "tz-c")]))
    monkeypatch.setenv("ALERT_TIMEZONE", "Europe/Paris")
    alerts_received(stack)
    calls = flaky_zoneinfo(monkeypatch)
    body = jpeg(photo("astronaut"))
    for i, camera in enumerate(("tz-a", "tz-b", "tz-c")):
        put_snapshot(stack, body, camera_id=camera, recorded_at=datetime(2026, 1, 1, 9, 0, i, tzinfo=UTC))
    assert Dispatcher(stack).run_until_idle(timeout_s=120)
    got = alerts_received(stack)
    assert sorted(doc["camera_id"] for doc in got) == ["tz-a", "tz-b", "tz-c"]
    assert {doc["timezone"] for doc in got} == {"Europe/Paris"}
    assert calls == ["Europe/Paris"]  # parsed once, for every frame and both stages
    assert error_records(stack, "detect_people") == {} and error_records(stack, "analyze_faces") == {}
    assert all(drain_dlq(stack, s) == [] for s in ("detect_people", "analyze_faces"))


def snapshot_event(stack: LocalStack, key: str) -> dict[str, Any]:
    raw = stack.names.bucket("raw")
    head = aws.head_object(raw, key)
    s3 = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {
        "bucket": {"name": raw}, "object": {"key": key, "size": head["ContentLength"],
                                            "eTag": head["ETag"].strip('"')}}}]}
    return {"Records": [{"messageId": "m-1", "receiptHandle": "r-1", "body": json.dumps(s3), "attributes": {},
                         "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}]}


@pytest.mark.parametrize(("variable", "value"), [("ALERT_TIMEZONE", "Europe/Pariss"),
                                                 ("ALERT_LINK_EXPIRY_S", "1h"), ("SAMPLE_FPS", "one")])
def test_a_bad_setting_is_one_error_at_start_up_not_a_failed_frame(stack: LocalStack, monkeypatch: pytest.MonkeyPatch,
                                                                   variable: str, value: str) -> None:
    camera = f"bad-{variable.lower()}"  # each case its own camera: no cool-down from another
    monkeypatch.setenv("ALERT_RULES", json.dumps([{"name": "bad-person", "when": "person", "camera": camera}]))
    key, _ = put_snapshot(stack, jpeg(photo("astronaut")), camera_id=camera,
                          recorded_at=datetime(2026, 1, 1, 9, 0, 0, tzinfo=UTC))
    stack_dispatcher = Dispatcher(stack)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"detect_people: .*no record was processed.*{variable}"):
        load_handler("detect_people")(snapshot_event(stack, key), LocalContext(function_name="f", timeout_s=60))
    assert error_records(stack, "detect_people") == {}  # nothing about the frame: it is not its fault
    monkeypatch.delenv(variable)
    settings.reset()
    assert stack_dispatcher.run_until_idle(timeout_s=120)  # fixed: the snapshot goes through
    assert [doc["camera_id"] for doc in alerts_received(stack)] == [camera]
