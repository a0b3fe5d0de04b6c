"""Known faces and alerts end to end on the local stack: frames go in through S3, the
dispatcher runs detect_people and analyze_faces unchanged, the faces rows name the known
person, and alerts arrive on the SQS queue subscribed to the alert topic."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

from vidsift import aws
from vidsift.core import keys, matching
from vidsift.core.records import FrameMeta
from vidsift.local.dispatcher import Dispatcher
from vidsift.local.results import analytics_rows
from vidsift.local.stack import LocalStack
from vidsift.testing.localcheck import count_sampled, known_face
from vidsift.testing.samples import jpeg, photo


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    assert Dispatcher(local_stack).run_until_idle(timeout_s=60)  # S3's test events
    with known_face(local_stack, "Eileen Collins"):
        yield local_stack


def put_frame(stack: LocalStack, bucket_role: str, video: str, index: int, body: bytes, camera: str,
              captured_at: str | None = None) -> str:
    meta = FrameMeta(video_id=video, source_bucket="raw", source_key=f"uploads/{video}.mp4", camera_id=camera,
                     frame_index=index, frame_time_s=float(index), captured_at=captured_at)
    key = keys.frame_key(video, index)
    aws.client("s3").put_object(Bucket=stack.names.bucket(bucket_role), Key=key, Body=body, Metadata=meta.to_s3())
    if bucket_role == "frames":
        count_sampled(stack, video, index)  # as split_frames counts what it wrote: the video gets tracked
    return key


def alerts_received(stack: LocalStack) -> list[dict[str, Any]]:
    out = []
    while got := aws.client("sqs").receive_message(QueueUrl=stack.alert_queue_url,
                                                   MaxNumberOfMessages=10).get("Messages", []):
        out += [json.loads(m["Body"]) for m in got]
        aws.client("sqs").delete_message_batch(QueueUrl=stack.alert_queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    return out


def test_stack_creates_the_collection_topic_and_table(stack: LocalStack) -> None:
    import os

    assert os.environ["FACE_COLLECTION"] == matching.collection_name(stack.names)
    assert aws.collection_face_count(os.environ["FACE_COLLECTION"]) == 1
    assert os.environ["ALERT_TOPIC_ARN"] == stack.alert_topic_arn
    attrs = aws.client("sns").get_topic_attributes(TopicArn=stack.alert_topic_arn)["Attributes"]
    assert attrs["KmsMasterKeyId"] == "alias/aws/sns"
    assert aws.client("dynamodb").describe_table(TableName=os.environ["ALERT_TABLE"])["Table"]["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"}]


def test_analyze_faces_names_the_known_face(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two people in one frame, through detection and tracking: two visits that share their
    best frame, so it is analysed once for both; the astronaut (known) is named on her face
    row and her visit's row, Grace Hopper (unknown) is not; a face_match alert and a
    face_unknown alert go out for the camera."""
    monkeypatch.setenv("ALERT_RULES", json.dumps([{"name": "family", "when": "face_match"},
                                                  {"name": "stranger", "when": "face_unknown"}]))
    monkeypatch.setenv("ALERT_TIMEZONE", "Asia/Tokyo")
    alerts_received(stack)
    grace = np.asarray(Image.fromarray(photo("grace_hopper")).resize((437, 512)))
    pair = np.concatenate([photo("astronaut")[:, ::-1], grace], axis=1)  # mirrored: not the indexed photo
    put_frame(stack, "frames", "known-faces", 3, jpeg(pair), "porch", "2026-01-01T00:00:03.000Z")
    d = Dispatcher(stack)
    calls = stack.rekognition.detect_faces_calls
    assert d.run_until_idle(timeout_s=120)
    assert stack.rekognition.detect_faces_calls - calls == 1
    tracks = sorted((r for r in analytics_rows(stack, "tracks") if r["video_id"] == "known-faces"),
                    key=lambda r: json.loads(r["best_box"])["left"])
    assert [(t["matched_name"], t["faces"], t["face_frames"]) for t in tracks] == [("Eileen Collins", 1, 1),
                                                                                   (None, 1, 1)]
    rows = sorted((r for r in analytics_rows(stack, "faces") if r["video_id"] == "known-faces"),
                  key=lambda r: r["bbox_left"])
    assert [(r["matched_name"], r["match_similarity"] is not None) for r in rows] == [
        ("Eileen Collins", True), (None, False)]
    assert [r["track_id"] for r in rows] == [t["track_id"] for t in tracks]
    assert rows[0]["match_similarity"] >= 90
    by_rule = {e["MessageAttributes"]["rule"]["Value"]: json.loads(e["Message"]) for e in alerts_received(stack)}
    assert set(by_rule) == {"family", "stranger"}
    assert by_rule["family"]["matched_name"] == "Eileen Collins" and by_rule["family"]["camera_id"] == "porch"
    assert by_rule["family"]["seen_at_local"] == "2026-01-01T09:00:03+09:00"
    assert by_rule["stranger"]["count"] == 1
    with urllib.request.urlopen(by_rule["family"]["frame"]["url"], timeout=10) as resp:
        assert resp.read() == jpeg(pair)


def test_no_collection_no_match_columns(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACE_COLLECTION", "")
    monkeypatch.setenv("ALERT_RULES", json.dumps([{"name": "stranger", "when": "face_unknown"}]))
    alerts_received(stack)
    put_frame(stack, "frames", "no-collection", 0, jpeg(photo("astronaut")), "porch")
    assert Dispatcher(stack).run_until_idle(timeout_s=120)
    (row,) = [r for r in analytics_rows(stack, "faces") if r["video_id"] == "no-collection"]
    assert row["matched_name"] is None and row["match_similarity"] is None
    assert alerts_received(stack) == []  # without a collection nobody is "unknown"


def test_person_alert_from_a_frame_arriving_in_the_frames_bucket(stack: LocalStack,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """detect_people alerts once for the camera (cool-down), for the frames with people only.
    The time from the frame's arrival to the alert is printed (bench/bench_alerts.py measures
    it properly), never asserted."""
    monkeypatch.setenv("ALERT_RULES", json.dumps([{"name": "gate", "when": "person", "camera": "gate",
                                                   "min_confidence": 50, "detections": 2, "window_s": 10}]))
    alerts_received(stack)
    d = Dispatcher(stack)
    started = time.perf_counter()
    put_frame(stack, "frames", "gate-clip", 0, jpeg(photo("astronaut")), "gate", "2026-01-01T00:00:00.000Z")
    put_frame(stack, "frames", "gate-clip", 1, jpeg(photo("coffee")), "gate", "2026-01-01T00:00:01.000Z")
    put_frame(stack, "frames", "gate-clip", 2, jpeg(photo("grace_hopper")), "gate", "2026-01-01T00:00:02.000Z")
    put_frame(stack, "frames", "gate-clip", 3, jpeg(photo("astronaut")), "gate", "2026-01-01T00:00:03.000Z")
    put_frame(stack, "frames", "other-camera", 0, jpeg(photo("astronaut")), "yard", "2026-01-01T00:00:00.000Z")
    got: list[dict[str, Any]] = []
    while not got and d.poll("detect_people"):
        got = alerts_received(stack)
    print(f"\nframe in the frames bucket -> alert on the subscriber queue: {time.perf_counter() - started:.2f} s "
          "(5 frames in one batch, local stack)")
    assert d.run_until_idle(timeout_s=120)
    got += alerts_received(stack)
    assert len(got) == 1
    doc = json.loads(got[0]["Message"])
    # The second frame with people to be processed fires (SQS does not keep order); never the coffee.
    assert (doc["camera_id"], doc["kind"]) == ("gate", "person") and doc["frame_index"] in (0, 2, 3)
    assert doc["frame"]["bucket"] == stack.names.bucket("people")


def test_a_frame_announced_twice_in_one_batch_is_copied_and_alerted_on_once(
        stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 delivers an event at least once: the same frame in two messages of one batch is one
    frame's work (one alert with no cool-down to hide a second), and both messages succeed."""
    monkeypatch.setenv("ALERT_RULES", json.dumps([{"name": "door", "when": "person", "camera": "door",
                                                   "cooldown_s": 0}]))
    alerts_received(stack)
    sqs, url = aws.client("sqs"), stack.queue_urls["detect_people"]
    put_frame(stack, "frames", "twice-clip", 0, jpeg(photo("astronaut")), "door", "2026-01-01T00:00:00.000Z")
    (msg,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=5)["Messages"]
    sqs.send_message(QueueUrl=url, MessageBody=msg["Body"])  # the duplicate delivery
    d = Dispatcher(stack)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"], VisibilityTimeout=0)
    assert d.poll("detect_people") == 2
    assert d.stats["detect_people"].succeeded == 2 and d.stats["detect_people"].failed == 0
    assert d.run_until_idle(timeout_s=120)
    assert len(alerts_received(stack)) == 1
    assert len(analytics_rows(stack, "people")) == len({r["record_id"] for r in analytics_rows(stack, "people")})
