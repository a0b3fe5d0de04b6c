"""Alerts through real wire protocols: moto's SNS with an SQS subscriber shows the published
message, moto's DynamoDB keeps the debounce state, and the presigned link opens the frame."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from vidsift import aws
from vidsift.core import alerts
from vidsift.core.detection import Box, Detection
from vidsift.core.records import FrameMeta
from vidsift.stages import alerting
from vidsift.storage.alert_state import DynamoAlertStateStore

BUCKET = "people-bucket"
TABLE = "alert-state"
FRAME = b"\xff\xd8\xff not really a jpeg, but bytes to get back"


@pytest.fixture
def env(fresh_moto: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A topic with an SQS subscriber, the state table and a frame, in a fresh moto."""
    fresh_moto(ALERT_TABLE=TABLE, ALERT_TIMEZONE="America/New_York", ALERT_LINK_EXPIRY_S="900")
    aws._presign_client.cache_clear()
    sns, sqs, ddb, s3 = (aws.client(s) for s in ("sns", "sqs", "dynamodb", "s3"))
    topic = sns.create_topic(Name="alerts", Attributes={"KmsMasterKeyId": "alias/aws/sns"})["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts-subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="vid/000012.jpg", Body=FRAME)
    monkeypatch.setenv("ALERT_TOPIC_ARN", topic)
    yield {"topic": topic, "queue": queue}
    aws.reset_clients()
    aws._presign_client.cache_clear()


def received(queue: str) -> list[dict[str, Any]]:
    out = []
    while True:
        got = aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        out += [json.loads(m["Body"]) for m in got]


META = FrameMeta(video_id="vid", source_bucket="raw", source_key="uploads/front door.mp4", camera_id="front door",
                 frame_index=12, frame_time_s=12.0, captured_at="2026-07-04T16:00:12.000Z")
PEOPLE = Detection(model="m", boxes=(Box(0.1, 0.1, 0.2, 0.5, 0.93), Box(0.5, 0.1, 0.2, 0.5, 0.71)))


def test_person_alert_reaches_an_sqs_subscriber(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_RULES", json.dumps([{"name": "door", "when": "person", "camera": "front*"}]))
    assert alerting.on_person_frame(META, PEOPLE, BUCKET, "vid/000012.jpg") == 1
    (envelope,) = received(env["queue"])
    assert envelope["Type"] == "Notification" and envelope["TopicArn"] == env["topic"]
    assert envelope["Subject"] == "vidsift: person at camera front door"
    assert {k: v["Value"] for k, v in envelope["MessageAttributes"].items()} == {
        "camera_id": "front door", "kind": "person", "rule": "door"}
    doc = json.loads(envelope["Message"])  # the "sqs" message: JSON for programs
    assert doc["camera_id"] == "front door" and doc["kind"] == "person" and doc["count"] == 2
    assert doc["seen"] == "2 people (detector confidence 93%)"
    assert doc["seen_at"] == "2026-07-04T16:00:12.000Z"
    assert doc["seen_at_local"] == "2026-07-04T12:00:12-04:00" and doc["timezone"] == "America/New_York"
    assert doc["source_key"] == "uploads/front door.mp4" and doc["frame_index"] == 12
    assert doc["frame"]["bucket"] == BUCKET and doc["frame"]["key"] == "vid/000012.jpg"
    link = doc["frame"]["url"]
    assert "X-Amz-Expires=900" in link and "X-Amz-Signature=" in link
    with urllib.request.urlopen(link, timeout=10) as resp:  # the link itself opens the frame
        assert resp.read() == FRAME


def test_no_flooding_across_invocations(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each call is a new Alerter (as each Lambda invocation): the state is DynamoDB's."""
    monkeypatch.setenv("ALERT_RULES", json.dumps([{"name": "door", "when": "person", "detections": 3,
                                                   "window_s": 10, "cooldown_s": 120}]))
    sent = []
    for second in (0, 2, 4, 6, 30, 100, 125, 126, 128):
        m = FrameMeta(**{**META.__dict__, "frame_index": second,
                         "captured_at": f"2026-07-04T16:{second // 60:02d}:{second % 60:02d}.000Z"})
        sent.append(alerting.on_person_frame(m, PEOPLE, BUCKET, "vid/000012.jpg"))
    # 3rd frame within 10 s fires; quiet for 120 s (6, 30, 100); 125 is past the cool-down but
    # alone in its window; 128 completes three within 10 s again.
    assert sent == [0, 0, 1, 0, 0, 0, 0, 0, 1]
    assert len(received(env["queue"])) == 2
    item = aws.client("dynamodb").scan(TableName=TABLE)["Items"]
    assert len(item) == 1 and item[0]["pk"]["S"] == "alert#door#front door#person"
    assert int(item[0]["expires_at"]["N"]) > datetime.now(UTC).timestamp()


def test_face_alerts_known_and_unknown(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_RULES", json.dumps([
        {"name": "family", "when": "face_match", "people": ["Ada Lovelace"], "min_confidence": 95},
        {"name": "stranger", "when": "face_unknown", "min_confidence": 90}]))
    records = [{"matched_name": "Ada Lovelace", "match_similarity": 98.5, "confidence": 99.0},
               {"matched_name": "Bob", "match_similarity": 99.0, "confidence": 99.0},
               {"matched_name": None, "match_similarity": None, "confidence": 99.9}]
    assert alerting.on_faces(META, BUCKET, "vid/000012.jpg", records, searched=True) == 2
    by_rule = {e["MessageAttributes"]["rule"]["Value"]: e for e in received(env["queue"])}
    assert set(by_rule) == {"family", "stranger"}
    assert by_rule["family"]["Subject"] == "vidsift: Ada Lovelace at camera front door"
    assert by_rule["family"]["MessageAttributes"]["person"]["Value"] == "Ada Lovelace"
    assert json.loads(by_rule["family"]["Message"])["seen"] == "Ada Lovelace (face match, similarity 98.5%)"
    assert json.loads(by_rule["stranger"]["Message"])["seen"] == (
        "a face matching no known person (face confidence 99.9%)")


def test_people_alert_text_for_email_and_sms(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """An SQS subscriber gets the "sqs" message; the people-facing variants (default, email,
    sms) travel in the same Publish and are checked as they were sent."""
    monkeypatch.setenv("ALERT_RULES", json.dumps([{"name": "door", "when": "person"}]))
    published: list[dict[str, Any]] = []
    settings = alerts.AlertSettings.from_mapping(os.environ)
    alerter = alerting.alerter(settings)
    real = alerter.publish
    alerter.publish = lambda a: (published.append(a.messages()), real(a))[1]
    alerter.process(alerts.person_sightings(META, 1, 0.9, BUCKET, "vid/000012.jpg"))
    (messages,) = published
    assert messages["default"].startswith("Camera: front door\nWhen: 2026-07-04 12:00:12 EDT (UTC-04:00, ")
    assert messages["email"] == messages["default"]
    assert messages["sms"].startswith("person at front door, 12:00:12 EDT: http")
    assert json.loads(received(env["queue"])[0]["Message"]) == json.loads(messages["sqs"])


def test_dynamo_store_refuses_a_stale_write(env: dict[str, Any]) -> None:
    store = DynamoAlertStateStore(TABLE)
    assert store.get("k") == (None, 0)
    assert store.put("k", {"hits": {}}, expected_version=0, expires_at=1)
    assert not store.put("k", {"hits": {"x": 1}}, expected_version=0, expires_at=1)  # lost the race
    assert store.get("k") == ({"hits": {}}, 1)
    assert store.put("k", {"hits": {"x": 1.0}}, expected_version=1, expires_at=1)
    assert store.get("k") == ({"hits": {"x": 1.0}}, 2)


def test_no_rules_no_calls(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALERT_RULES", raising=False)
    monkeypatch.setenv("ALERT_TABLE", "no-such-table")  # any DynamoDB call would fail
    assert alerting.on_person_frame(META, PEOPLE, BUCKET, "vid/000012.jpg") == 0
    assert alerting.on_faces(META, BUCKET, "vid/000012.jpg", [{"matched_name": None, "confidence": 99}],
                           searched=True) == 0
