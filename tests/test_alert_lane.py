"""A snapshot's face alert does not wait behind groups of tracks (issue 26, item 6).

analyze_faces works through groups two at a time, each several DetectFaces calls at its
share of rekognitionTps; the edge's snapshots used to arrive on the same queue. Now the people
bucket notifies alert_faces, a queue and function of their own: here ten groups wait on
analyze_faces' queue, untouched, while a snapshot goes from its PUT to its face alert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

from vidsift import aws, contract
from vidsift.core import completion
from vidsift.local.dispatcher import Dispatcher
from vidsift.local.stack import LocalStack
from vidsift.testing.localcheck import alerts_received, known_face, put_snapshot
from vidsift.testing.samples import jpeg as samples_jpeg
from vidsift.testing.samples import photo

KNOWN = "Eileen Collins"


def jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """The test equipment's JPEG at this module's quality (90)."""
    return samples_jpeg(rgb, quality)


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    assert Dispatcher(local_stack).run_until_idle(timeout_s=60)  # S3's test events
    with known_face(local_stack, KNOWN):
        yield local_stack


def queued(stack: LocalStack, stage: str) -> int:
    attrs = aws.client("sqs").get_queue_attributes(QueueUrl=stack.queue_urls[stage], AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_the_snapshots_copies_notify_alert_faces_only() -> None:
    people = [n for n in contract.notifications() if n.bucket == "people"]
    assert [(n.stage, n.prefix) for n in people] == [("alert_faces", "snapshots/")]
    assert contract.stage("analyze_faces")["source_bucket"] is None
    assert contract.stage("alert_faces")["batching_window_s"] == 0


def test_a_snapshots_face_alert_overtakes_ten_waiting_groups(stack: LocalStack,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_RULES", json.dumps([{"name": "lane-family", "when": "face_match", "camera": "lane"}]))
    alerts_received(stack)
    aws.send_messages(stack.queue_urls["analyze_faces"],
                      [completion.FacesMessage(f"busy-{i}", f"tracks/busy-{i}/g000.json").to_json() for i in range(10)])
    put_snapshot(stack, jpeg(photo("astronaut")), camera_id="lane", recorded_at=datetime(2026, 1, 2, tzinfo=UTC))
    d = Dispatcher(stack)
    while d.poll("detect_people") or d.poll("alert_faces"):  # never analyze_faces
        pass
    got = alerts_received(stack)
    assert [(a["kind"], a["matched_name"], a["snapshot"]) for a in got] == [("face_match", KNOWN, True)]
    assert queued(stack, "analyze_faces") == 10  # the groups still wait, untouched
    assert d.stats["analyze_faces"].succeeded == d.stats["analyze_faces"].failed == 0
    assert d.run_until_idle(timeout_s=120)  # then they are worked on (here: no such work, bad input)
    assert queued(stack, "analyze_faces") == 0
