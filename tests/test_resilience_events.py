"""What arrives can be wrong in ways no file is: keys S3 URL-encodes, objects deleted before
their event is handled, messages that are not S3 events, frames that are decompression
bombs, more frames than the endpoint takes at once. Each ends in one clear error that names
the object (an errors/ record, the message in the stage's DLQ) or is simply handled, and
nothing next to it is affected."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

import vidsift.stages.detecting as detect_people  # the work moved from functions/detect_people.py
from vidsift import aws
from vidsift.local.dispatcher import Dispatcher
from vidsift.local.stack import LocalStack
from vidsift.testing.faults import bomb_jpeg, bomb_png, jpeg
from vidsift.testing.localcheck import drain_dlq, duplicates, error_records, put_frame, rows


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    assert Dispatcher(local_stack).run_until_idle(timeout_s=60)  # S3's test events
    yield local_stack


KEYS = [
    "uploads/a/b/c/d/e/f/g/h/i/j/deep prefix/clip.mp4",
    "uploads/spaces and+plus/clip +1 (copy).mp4",
    "uploads/ünïcødé/日本語/動画 😀.mp4",
    "uploads/100% sure/a%20b&c=d;e.mp4",
]


def test_awkward_keys_are_processed_under_their_own_names(stack: LocalStack, short_video: Path) -> None:
    raw = stack.names.bucket("raw")
    for key in KEYS:
        aws.client("s3").upload_file(str(short_video), raw, key)
    assert Dispatcher(stack).run_until_idle(timeout_s=300)
    for key in KEYS:
        people = rows(stack, "people", source_key=key)
        assert sorted(r["frame_index"] for r in people) == [0, 1, 2], key
        faces, tracks = rows(stack, "faces", source_key=key), rows(stack, "tracks", source_key=key)
        assert len(tracks) == 1 and len(faces) == 1, key  # one person, one visit: the face analysed once
    assert not any(s.startswith(f"s3://{raw}/") for s in error_records(stack, "split_frames"))


def test_video_deleted_before_processing(stack: LocalStack, short_video: Path) -> None:
    raw, key = stack.names.bucket("raw"), "uploads/gone/before it was read.mp4"
    aws.client("s3").upload_file(str(short_video), raw, key)
    aws.client("s3").delete_object(Bucket=raw, Key=key)
    assert Dispatcher(stack).run_until_idle(timeout_s=120)
    uri = f"s3://{raw}/{key}"
    assert "no longer exists" in error_records(stack, "split_frames")[uri]["reason"]
    assert drain_dlq(stack, "split_frames") == []  # permanent: recorded once, acknowledged
    assert rows(stack, "people", source_key=key) == []


def test_frames_deleted_before_detection_and_before_face_analysis(stack: LocalStack) -> None:
    frames, people = stack.names.bucket("frames"), stack.names.bucket("people")
    d = Dispatcher(stack)
    gone = put_frame(stack, "deleted-frames", 0, jpeg("astronaut"))
    kept = put_frame(stack, "deleted-frames", 1, jpeg("grace_hopper"))
    aws.client("s3").delete_object(Bucket=frames, Key=gone)
    d.poll("detect_people")  # both in one batch: the deleted frame must not fail its neighbour
    # the deleted frame is a permanent bad input: recorded, given up at once and acknowledged
    assert d.stats["detect_people"].failed == 0 and d.stats["detect_people"].succeeded == 2
    aws.client("s3").delete_object(Bucket=people, Key=kept)  # copied there; gone before analyze_faces
    assert d.run_until_idle(timeout_s=120)  # the video tracked without the gone frame
    assert [r["frame_index"] for r in rows(stack, "people", video_id="deleted-frames")] == [1]
    assert rows(stack, "faces", video_id="deleted-frames") == []
    (track,) = rows(stack, "tracks", video_id="deleted-frames")  # the visit is still recorded, without a face
    assert (track["frames"], track["face_frames"], track["faces"]) == (1, 1, 0)
    detect_errors, face_errors = error_records(stack, "detect_people"), error_records(stack, "analyze_faces")
    assert "does not exist" in detect_errors[f"s3://{frames}/{gone}"]["reason"]
    assert "no longer exists" in face_errors[f"s3://{people}/{kept}"]["reason"]
    assert drain_dlq(stack, "detect_people") == []
    assert drain_dlq(stack, "analyze_faces") == []  # the visit's message is done: nothing else was wrong


def test_a_visits_frame_rekognition_refuses_is_left_out_and_the_visit_still_recorded(stack: LocalStack) -> None:
    """ImageTooLargeException on a visit's chosen frame is permanent: before, the whole group of
    tracks failed on every delivery into the DLQ and its tracks rows were never written."""
    people = stack.names.bucket("people")
    d = Dispatcher(stack)
    refused = put_frame(stack, "refused-frame", 0, jpeg("grace_hopper"))
    d.poll("detect_people")
    stack.rekognition.fail_next(1, "ImageTooLargeException", key_filter=lambda k: k.endswith(refused))
    try:
        assert d.run_until_idle(timeout_s=120)
    finally:
        stack.rekognition.clear_faults()
    (track,) = rows(stack, "tracks", video_id="refused-frame")  # the visit is recorded, without a face
    assert (track["frames"], track["faces"]) == (1, 0)
    assert rows(stack, "faces", video_id="refused-frame") == []
    assert "ImageTooLargeException" in error_records(stack, "analyze_faces")[f"s3://{people}/{refused}"]["reason"]
    assert drain_dlq(stack, "analyze_faces") == []


MALFORMED = ["this is not json", "[1, 2, 3]", json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}),
             json.dumps({"hello": "world"})]


@pytest.mark.parametrize("stage", ["split_frames", "detect_people", "analyze_faces"])
def test_malformed_messages_fail_alone_with_a_reason(stack: LocalStack, stage: str) -> None:
    sqs = aws.client("sqs")
    sent = [sqs.send_message(QueueUrl=stack.queue_urls[stage], MessageBody=b)["MessageId"] for b in MALFORMED]
    put_frame(stack, f"beside-malformed-{stage}", 0, jpeg("grace_hopper"),
              bucket="people" if stage == "analyze_faces" else "frames")
    assert Dispatcher(stack).run_until_idle(timeout_s=120)
    records = error_records(stack, stage)
    for message_id in sent:
        assert f"sqs:{message_id}" in records, message_id
        assert records[f"sqs:{message_id}"]["what"] == "SQS message"
    # every stage acknowledges a bad input (recorded once, not retried: issue 26, item 11)
    assert drain_dlq(stack, stage) == []
    table = "faces" if stage == "analyze_faces" else "people"
    assert len(rows(stack, table, video_id=f"beside-malformed-{stage}")) == 1  # its neighbour was processed


@pytest.fixture
def decode_spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of every buffer handed to cv2.imdecode (the endpoint and the local Rekognition
    both decode with it, in this process)."""
    seen: list[int] = []
    real = cv2.imdecode

    def spy(buf, flags):  # type: ignore[no-untyped-def]
        seen.append(len(buf))
        return real(buf, flags)

    monkeypatch.setattr(cv2, "imdecode", spy)
    return seen


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_decompression_bomb_frame_is_refused_before_decoding(stack: LocalStack, decode_spy: list[int],
                                                             kind: str) -> None:
    bomb = (bomb_jpeg if kind == "jpeg" else bomb_png)(20000, 20000)  # 1.2 GB of pixels in < 1 KB
    video = f"bomb-{kind}"
    frames = stack.names.bucket("frames")
    bomb_key = put_frame(stack, video, 0, bomb)
    put_frame(stack, video, 1, jpeg("astronaut"))
    assert Dispatcher(stack).run_until_idle(timeout_s=120)
    assert len(bomb) not in decode_spy and decode_spy  # the neighbour was decoded, the bomb never
    reason = error_records(stack, "detect_people")[f"s3://{frames}/{bomb_key}"]["reason"]
    assert "20000x20000" in reason and "refused before decoding" in reason
    assert drain_dlq(stack, "detect_people") == []  # refused for good: acknowledged, its frame given up
    assert [r["frame_index"] for r in rows(stack, "people", video_id=video)] == [1]
    assert len(rows(stack, "faces", video_id=video)) == 1


@pytest.mark.parametrize("side", [9000, 30000])  # under and over Pillow's own bomb limit
def test_decompression_bomb_in_the_people_bucket_is_refused_by_rekognition(stack: LocalStack,
                                                                           decode_spy: list[int], side: int) -> None:
    people = stack.names.bucket("people")
    bomb = bomb_jpeg(side, side)
    key = put_frame(stack, f"bomb-people-{side}", 0, bomb, bucket="people")
    assert Dispatcher(stack).run_until_idle(timeout_s=120)
    assert len(bomb) not in decode_spy
    # the people bucket's snapshots/ prefix notifies alert_faces (the alert fast lane's face step)
    reason = error_records(stack, "alert_faces")[f"s3://{people}/{key}"]["reason"]
    assert "ImageTooLargeException" in reason and "too large" in reason
    assert drain_dlq(stack, "alert_faces") == []  # refused for good: recorded, acknowledged, not retried


def test_batch_over_the_endpoint_limit_is_split_not_failed(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The endpoint takes at most MAX_BATCH frames per request (here 4); a 16-frame batch
    must be sent in chunks it accepts, not fail nor fall back to one request per frame."""
    monkeypatch.setenv("MAX_BATCH", "4")  # read per request by the in-process endpoint
    monkeypatch.setenv("FACE_MIN_PERSON_HEIGHT", "2")  # the people rows are what is checked: no face analysis
    monkeypatch.setattr(detect_people, "_request_limit", None)
    endpoint = stack.sagemaker.endpoint
    photos = ["astronaut", "coffee", "grace_hopper", "chelsea"] * 4
    for i, name in enumerate(photos):
        put_frame(stack, "big-batch", i, jpeg(name))
    d = Dispatcher(stack)
    before = endpoint.invocations
    d.poll("detect_people")
    assert d.stats["detect_people"].received == 16 and d.stats["detect_people"].succeeded == 16
    # 16 refused, 8 refused, then chunks of 4: 1 + 1 + 4 requests, not 1 + 16.
    assert endpoint.invocations - before == 6
    for i, name in enumerate(photos):
        put_frame(stack, "big-batch-2", i, jpeg(name))
    before = endpoint.invocations
    d.poll("detect_people")
    assert d.stats["detect_people"].succeeded == 32
    assert endpoint.invocations - before == 4  # the limit is remembered
    assert d.run_until_idle(timeout_s=120)  # tracked: the people rows are written
    for video in ("big-batch", "big-batch-2"):
        found = {r["frame_index"]: r["person_count"] > 0 for r in rows(stack, "people", video_id=video)}
        assert found == {i: name in ("astronaut", "grace_hopper") for i, name in enumerate(photos)}
    assert d.run_until_idle(timeout_s=120)


def test_nothing_was_recorded_twice(stack: LocalStack) -> None:
    assert duplicates(stack, "people") == [] and duplicates(stack, "faces") == []
