"""The alert fast lane end to end on the local stack: an edge snapshot PUT into the raw bucket
(under the contract's snapshot_prefix, with the edge's metadata) reaches detect_people through
the raw bucket's own notification, and the person alert and the face alert arrive on the SQS
queue subscribed to the alert topic, with no `people` or `faces` row (the clip is the record).
Latency is measured by bench/bench_alerts.py, never asserted here."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from vidsift import aws
from vidsift.core import ids, keys
from vidsift.core.records import ALERT_ONLY_KEY
from vidsift.local.dispatcher import Dispatcher
from vidsift.local.results import analytics_rows
from vidsift.local.stack import LocalStack
from vidsift.testing.localcheck import alerts_received, drain_dlq, error_records, known_face, put_snapshot
from vidsift.testing.samples import jpeg, photo

KNOWN = "Eileen Collins"


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    assert Dispatcher(local_stack).run_until_idle(timeout_s=60)  # S3's test events
    with known_face(local_stack, KNOWN):
        yield local_stack


def row_counts(stack: LocalStack) -> dict[str, int]:
    return {t: len(analytics_rows(stack, t)) for t in ("people", "faces")}


def people_objects(stack: LocalStack) -> list[str]:
    return [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=stack.names.bucket("people")).get(
        "Contents", [])]


def rules(camera: str) -> str:
    return json.dumps([{"name": f"{camera}-person", "when": "person", "camera": camera},
                       {"name": f"{camera}-family", "when": "face_match", "camera": camera}])


def test_snapshot_alerts_person_and_face_and_writes_no_rows(stack: LocalStack,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_RULES", rules("porch"))
    alerts_received(stack)
    before = row_counts(stack)
    body = jpeg(photo("astronaut"))
    key, etag = put_snapshot(stack, body, camera_id="porch", recorded_at=datetime(2026, 1, 1, 8, 0, 5, tzinfo=UTC),
                             clip_key="uploads/porch-clip.mp4")
    snapshot = ids.snapshot_id(stack.names.bucket("raw"), key, etag)
    d = Dispatcher(stack)
    assert d.run_until_idle(timeout_s=120)

    by_kind = {doc["kind"]: doc for doc in alerts_received(stack)}
    assert set(by_kind) == {"person", "face_match"}
    assert by_kind["face_match"]["matched_name"] == KNOWN
    for doc in by_kind.values():
        assert doc["camera_id"] == "porch" and doc["seen_at"] == "2026-01-01T08:00:05.000Z"
        assert doc["snapshot"] is True and doc["clip_key"] == "uploads/porch-clip.mp4"
        assert doc["source_key"] == key and doc["video_id"] == snapshot
        assert doc["frame"]["bucket"] == stack.names.bucket("people")
        assert doc["frame"]["key"] == keys.snapshot_copy_key(snapshot)
        with urllib.request.urlopen(doc["frame"]["url"], timeout=10) as resp:  # the link opens the snapshot
            assert resp.read() == body
    copy = aws.head_object(stack.names.bucket("people"), keys.snapshot_copy_key(snapshot))
    assert copy["Metadata"][ALERT_ONLY_KEY] == "true" and copy["Metadata"]["camera-id"] == "porch"

    # The clip is the record: the snapshot adds no row to either table.
    assert row_counts(stack) == before
    assert not [r for t in ("people", "faces") for r in analytics_rows(stack, t) if r["video_id"] == snapshot]
    assert error_records(stack, "detect_people") == {} and error_records(stack, "analyze_faces") == {}
    assert all(drain_dlq(stack, s) == [] for s in ("detect_people", "analyze_faces"))

    # A replayed event (the snapshot copied onto itself: same version) is done already, and a
    # second snapshot of the same camera within the rules' cool-down alerts nobody.
    s3, raw = aws.client("s3"), stack.names.bucket("raw")
    s3.copy_object(Bucket=raw, Key=key, CopySource={"Bucket": raw, "Key": key}, MetadataDirective="REPLACE",
                   Metadata=s3.head_object(Bucket=raw, Key=key)["Metadata"], ContentType="image/jpeg")
    assert d.run_until_idle(timeout_s=120)
    assert alerts_received(stack) == []
    put_snapshot(stack, body, camera_id="porch", recorded_at=datetime(2026, 1, 1, 8, 0, 40, tzinfo=UTC),
                 clip_key="uploads/porch-clip-2.mp4")
    assert d.run_until_idle(timeout_s=120)
    assert alerts_received(stack) == []
    assert row_counts(stack) == before


def test_without_rules_a_snapshot_is_acknowledged_without_the_endpoint(stack: LocalStack,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALERT_RULES", raising=False)
    alerts_received(stack)
    before, copies = row_counts(stack), people_objects(stack)
    calls = stack.sagemaker.endpoint.invocations
    put_snapshot(stack, jpeg(photo("astronaut")), camera_id="yard", recorded_at=datetime(2026, 1, 1, tzinfo=UTC))
    put_snapshot(stack, jpeg(photo("grace_hopper")), camera_id="yard", recorded_at=datetime(2026, 1, 1, tzinfo=UTC))
    d = Dispatcher(stack)
    assert d.run_until_idle(timeout_s=60)
    assert stack.sagemaker.endpoint.invocations == calls  # no detection for nobody
    assert d.stats["detect_people"].succeeded == 2 and d.stats["detect_people"].failed == 0
    assert d.stats["analyze_faces"].received == 0
    assert people_objects(stack) == copies and row_counts(stack) == before and alerts_received(stack) == []
    assert drain_dlq(stack, "detect_people") == []


def test_a_malformed_snapshot_ends_as_an_error_record(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a JPEG (the detector refuses it) and no camera id (an alert must name its camera):
    each is one error record naming the snapshot, acknowledged (not retried), like any bad frame."""
    monkeypatch.setenv("ALERT_RULES", rules("gate"))
    alerts_received(stack)
    raw = stack.names.bucket("raw")
    at = datetime(2026, 1, 1, 9, tzinfo=UTC)
    not_jpeg, _ = put_snapshot(stack, b"plain text, not an image", camera_id="gate", recorded_at=at)
    no_camera, _ = put_snapshot(stack, jpeg(photo("astronaut")), camera_id=None, recorded_at=at)
    assert Dispatcher(stack).run_until_idle(timeout_s=120)
    errors = error_records(stack, "detect_people")
    assert "refused" in errors[f"s3://{raw}/{not_jpeg}"]["reason"]
    assert "camera-id" in errors[f"s3://{raw}/{no_camera}"]["reason"]
    assert drain_dlq(stack, "detect_people") == []
    assert alerts_received(stack) == []


def test_a_snapshot_aws_answers_403_for_ends_as_an_error_record(stack: LocalStack,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """detect_people may read the snapshot prefix but not list the raw bucket, so in AWS a
    snapshot deleted before its event answers HeadObject with 403, not 404 (moto enforces no
    IAM: the 403 is injected). It must end as a bad input naming it, not be retried blindly."""
    from vidsift.testing.faults import Refuse

    monkeypatch.setenv("ALERT_RULES", rules("porch"))
    alerts_received(stack)
    raw = stack.names.bucket("raw")
    key, _ = put_snapshot(stack, jpeg(photo("astronaut")), camera_id="porch",
                          recorded_at=datetime(2026, 1, 1, 10, tzinfo=UTC))
    with Refuse(aws.client("s3"), (403, {}, b""), limit=100, operations=("HeadObject",)):
        assert Dispatcher(stack).run_until_idle(timeout_s=120)
    assert "cannot be read" in error_records(stack, "detect_people")[f"s3://{raw}/{key}"]["reason"]
    assert drain_dlq(stack, "detect_people") == []  # a bad input: recorded once, acknowledged
    assert alerts_received(stack) == []
