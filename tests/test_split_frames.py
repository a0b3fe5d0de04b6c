"""split_frames against a real local S3/SQS: events come from S3's own notifications."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

from vidsift import aws
from vidsift.core import ids
from vidsift.local.dispatcher import Dispatcher, LocalContext
from vidsift.local.stack import LocalStack

STAGE = "split_frames"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(with_models=False) as s:
        yield s


def _event(stack: LocalStack, want: int) -> dict:
    """Receive what S3 sent to the stage queue and shape it as Lambda would."""
    d = Dispatcher(stack, handlers={s: (lambda e, c: {}) for s in ("split_frames", "detect_people",
                                                                   "analyze_faces")})
    msgs = []
    for _ in range(20):
        msgs += aws.client("sqs").receive_message(QueueUrl=stack.queue_urls[STAGE], MaxNumberOfMessages=10,
                                                   WaitTimeSeconds=0).get("Messages", [])
        if len(msgs) >= want:
            break
    assert len(msgs) == want
    return d._event(STAGE, msgs)


def _frames(stack: LocalStack, video: str) -> list[str]:
    resp = aws.client("s3").list_objects_v2(Bucket=stack.names.bucket("frames"), Prefix=f"{video}/")
    return sorted(o["Key"] for o in resp.get("Contents", []) if o["Key"].endswith(".jpg"))


def _purge(stack: LocalStack) -> None:
    """Empty every queue (PurgeQueue is limited to once a minute, so receive and delete)."""
    sqs = aws.client("sqs")
    for url in list(stack.queue_urls.values()) + list(stack.dlq_urls.values()):
        while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                          WaitTimeSeconds=0).get("Messages", []):
            for m in msgs:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


@pytest.mark.parametrize("name", ["with space.mp4", "plus+sign.mp4", "caf\u00e9 \u6620\u50cf.mp4",
                                  "deep/er/and/deeper/clip.mp4"])
def test_keys_with_spaces_unicode_and_prefixes(stack: LocalStack, short_video: Path, name: str) -> None:
    from functions import split_frames

    _purge(stack)
    key = f"uploads/{name}"
    s3 = aws.client("s3")
    s3.upload_file(str(short_video), stack.names.bucket("raw"), key, ExtraArgs={
        "Metadata": {"camera-id": "cam%201", "recorded-at": "2026-03-01T10:00:00Z"}})
    etag = s3.head_object(Bucket=stack.names.bucket("raw"), Key=key)["ETag"].strip('"')
    result = split_frames.handler(_event(stack, 1), LocalContext("split", 900))
    assert result == {"batchItemFailures": []}
    video = ids.video_id(stack.names.bucket("raw"), key, etag)
    frames = _frames(stack, video)
    assert frames == [ids.frame_key(video, i) for i in range(3)]
    head = s3.head_object(Bucket=stack.names.bucket("frames"), Key=frames[2])
    from vidsift.core.records import FrameMeta

    meta = FrameMeta.from_s3(head["Metadata"])
    assert meta.source_key == key and meta.camera_id == "cam 1" and meta.frame_index == 2
    assert meta.captured_at == "2026-03-01T10:00:02.000Z"
    summary = json.loads(s3.get_object(Bucket=stack.names.bucket("frames"),
                                       Key=ids.summary_key(video))["Body"].read())
    assert summary["frames_sampled"] == 3 and summary["bytes_read"] == short_video.stat().st_size


def test_one_bad_message_fails_alone(stack: LocalStack, short_video: Path, tmp_path: Path) -> None:
    from functions import split_frames

    _purge(stack)
    s3 = aws.client("s3")
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video at all\n" * 10)
    s3.upload_file(str(short_video), stack.names.bucket("raw"), "uploads/good-1.mp4")
    s3.upload_file(str(bad), stack.names.bucket("raw"), "uploads/bad.mp4")
    s3.upload_file(str(short_video), stack.names.bucket("raw"), "uploads/good-2.mp4")
    event = _event(stack, 3)
    # the batch also carries a malformed message
    event["Records"].append({**event["Records"][0], "messageId": "garbage", "body": "{not json"})
    result = split_frames.handler(event, LocalContext("split", 900))
    by_key = {unquote_plus(json.loads(r["body"])["Records"][0]["s3"]["object"]["key"]): r["messageId"]
              for r in event["Records"] if r["messageId"] != "garbage"}
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(
        [by_key["uploads/bad.mp4"], "garbage"])
    errors = aws.client("s3").list_objects_v2(Bucket=stack.names.bucket("analytics"), Prefix="errors/split_frames/")
    reasons = [json.loads(s3.get_object(Bucket=stack.names.bucket("analytics"), Key=o["Key"])["Body"].read())
               for o in errors["Contents"]]
    assert any(r["subject"].endswith("uploads/bad.mp4") and "not a readable video" in r["reason"] for r in reasons)
    assert any(r["subject"] == "sqs:garbage" for r in reasons)


def test_replayed_event_changes_nothing(stack: LocalStack, short_video: Path) -> None:
    from functions import split_frames

    _purge(stack)
    s3 = aws.client("s3")
    s3.upload_file(str(short_video), stack.names.bucket("raw"), "uploads/replay.mp4")
    event = _event(stack, 1)
    split_frames.handler(event, LocalContext("split", 900))
    etag = s3.head_object(Bucket=stack.names.bucket("raw"), Key="uploads/replay.mp4")["ETag"].strip('"')
    video = ids.video_id(stack.names.bucket("raw"), "uploads/replay.mp4", etag)
    before = {k: s3.head_object(Bucket=stack.names.bucket("frames"), Key=k)["LastModified"]
              for k in _frames(stack, video)}
    _purge(stack)
    assert split_frames.handler(event, LocalContext("split", 900)) == {"batchItemFailures": []}
    after = {k: s3.head_object(Bucket=stack.names.bucket("frames"), Key=k)["LastModified"]
             for k in _frames(stack, video)}
    assert after == before  # idempotency: the replay did not even rewrite the frames
    sqs = aws.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=stack.queue_urls["detect_people"],
                                     AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"  # and so sent nothing downstream


def test_deleted_object_is_a_clear_error(stack: LocalStack, short_video: Path) -> None:
    from functions import split_frames

    _purge(stack)
    s3 = aws.client("s3")
    s3.upload_file(str(short_video), stack.names.bucket("raw"), "uploads/gone.mp4")
    s3.delete_object(Bucket=stack.names.bucket("raw"), Key="uploads/gone.mp4")
    event = _event(stack, 1)
    result = split_frames.handler(event, LocalContext("split", 900))
    assert len(result["batchItemFailures"]) == 1
