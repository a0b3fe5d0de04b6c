"""detect_people and analyze_faces under faults, on the local stack with real models:
transient errors are retried, persistent ones fail only their own messages, and every
frame ends up recorded exactly once."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image

from vidsift import aws, contract
from vidsift.core import keys
from vidsift.core.events import parse_s3_message
from vidsift.core.records import FrameMeta
from vidsift.local.dispatcher import Dispatcher
from vidsift.local.results import analytics_rows
from vidsift.local.stack import LocalStack
from vidsift.testing.localcheck import count_sampled, drain_dlq, error_records, track
from vidsift.testing.samples import photo

#: Receives before a message goes to its DLQ (the same for both stages tested here).
DELIVERIES = contract.stage("detect_people")["max_receive_count"]
assert contract.stage("analyze_faces")["max_receive_count"] == DELIVERIES


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    # S3 sends each queue a test event when notifications are set up: consume those first.
    assert Dispatcher(local_stack).run_until_idle(timeout_s=60)
    yield local_stack


def jpeg(name: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(photo(name)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def put_frame(stack: LocalStack, video: str, index: int, body: bytes) -> str:
    meta = FrameMeta(video_id=video, source_bucket="raw", source_key=f"uploads/{video}.mp4", camera_id="c",
                     frame_index=index, frame_time_s=float(index), captured_at=None)
    key = keys.frame_key(video, index)
    aws.client("s3").put_object(Bucket=stack.names.bucket("frames"), Key=key, Body=body, Metadata=meta.to_s3())
    count_sampled(stack, video, index)  # as split_frames counts what it wrote: the video gets tracked
    return key


def rows(stack: LocalStack, table: str, video: str) -> list[dict]:
    return [r for r in analytics_rows(stack, table) if r["video_id"] == video]


def test_one_bad_frame_fails_alone(stack: LocalStack) -> None:
    d = Dispatcher(stack)
    put_frame(stack, "badbatch", 0, jpeg("astronaut"))
    put_frame(stack, "badbatch", 1, b"this is no jpeg")
    put_frame(stack, "badbatch", 2, jpeg("coffee"))
    d.poll("detect_people")
    # refused by the detector: a permanent bad input, given up at once and acknowledged
    assert d.stats["detect_people"].failed == 0 and d.stats["detect_people"].succeeded == 3
    assert d.run_until_idle(timeout_s=120)  # the video is tracked without the bad frame
    people = {r["frame_index"]: r["person_count"] for r in rows(stack, "people", "badbatch")}
    assert people[0] >= 1 and people[2] == 0 and 1 not in people
    dlq = aws.client("sqs").receive_message(QueueUrl=stack.dlq_urls["detect_people"], MaxNumberOfMessages=10)
    in_dlq = [r.key for m in dlq.get("Messages", []) for r in parse_s3_message(m["Body"])]
    assert "badbatch/000001.jpg" not in in_dlq
    assert "refused the frame" in error_records(stack, "detect_people")[
        f"s3://{stack.names.bucket('frames')}/badbatch/000001.jpg"]["reason"]


def test_transient_endpoint_errors_are_retried(stack: LocalStack) -> None:
    d = Dispatcher(stack)
    stack.sagemaker.faults.inject("model_error", times=2)
    put_frame(stack, "flaky-endpoint", 0, jpeg("grace_hopper"))
    d.poll("detect_people")
    assert d.stats["detect_people"].succeeded == 1
    assert d.run_until_idle(timeout_s=120)
    assert [r["person_count"] >= 1 for r in rows(stack, "people", "flaky-endpoint")] == [True]


def test_endpoint_down_fails_the_batch_then_redrive_delivers_once(stack: LocalStack) -> None:
    d = Dispatcher(stack)
    stack.sagemaker.faults.inject("service_unavailable", times=50)
    put_frame(stack, "down", 0, jpeg("astronaut"))
    put_frame(stack, "down", 1, jpeg("camera"))
    d.poll("detect_people")
    assert d.stats["detect_people"].failed == 2 and not rows(stack, "people", "down")
    stack.sagemaker.faults.clear()
    assert d.run_until_idle(timeout_s=120)
    assert sorted(r["frame_index"] for r in rows(stack, "people", "down")) == [0, 1]
    assert rows(stack, "faces", "down") and rows(stack, "tracks", "down")  # faces once per visit


def test_rekognition_throttling_is_retried_with_backoff(stack: LocalStack) -> None:
    d = Dispatcher(stack)
    put_frame(stack, "throttled", 0, jpeg("astronaut"))
    d.poll("detect_people")
    track(d)
    calls = stack.rekognition.detect_faces_calls
    stack.rekognition.fail_next(3, "ProvisionedThroughputExceededException")
    d.poll("analyze_faces")
    assert stack.rekognition.detect_faces_calls - calls == 4  # three refusals, then the answer
    assert d.stats["analyze_faces"].succeeded == 1
    assert len(rows(stack, "faces", "throttled")) == 1


def test_rekognition_unable_to_read_the_frame_is_an_access_problem_retried(stack: LocalStack) -> None:
    """InvalidS3ObjectException is Rekognition's answer to any S3 read failure (a missing
    grant, a KMS denial, another region), not a bad image: the message is retried, no error
    record blames the frame, and the reason names the object and the likely causes."""
    from vidsift.core.errors import S3AccessError
    from vidsift.stages.faces import analyze_frame  # moved from functions/analyze_faces.py

    d = Dispatcher(stack)
    key = put_frame(stack, "unreadable", 0, jpeg("grace_hopper"))
    d.poll("detect_people")
    track(d)
    people = stack.names.bucket("people")
    head = aws.client("s3").head_object(Bucket=people, Key=key)
    stack.rekognition.fail_next(1, "InvalidS3ObjectException", message="Unable to get object metadata from S3.")
    with pytest.raises(S3AccessError) as caught:
        analyze_frame({"bucket": people, "key": key, "etag": head["ETag"].strip('"'), "size": head["ContentLength"]})
    assert f"s3://{people}/{key}" in str(caught.value)
    assert all(cause in str(caught.value) for cause in ("s3:GetObject", "kms:Decrypt", "region"))
    stack.rekognition.fail_next(1, "InvalidS3ObjectException")
    d.poll("analyze_faces")
    assert d.stats["analyze_faces"].failed == 1 and not rows(stack, "faces", "unreadable")
    assert f"s3://{people}/{key}" not in error_records(stack, "analyze_faces")  # not blamed on the input
    assert d.run_until_idle(timeout_s=120)  # redelivered: read this time
    assert len(rows(stack, "faces", "unreadable")) == 1


def test_persistent_throttling_fails_the_message_and_loses_nothing(stack: LocalStack) -> None:
    d = Dispatcher(stack)
    put_frame(stack, "starved", 0, jpeg("grace_hopper"))
    d.poll("detect_people")
    track(d)
    stack.rekognition.fail_next(aws.MAX_ATTEMPTS, "ThrottlingException")
    d.poll("analyze_faces")
    assert d.stats["analyze_faces"].failed == 1 and not rows(stack, "faces", "starved")
    assert d.run_until_idle(timeout_s=120)  # redelivered after the visibility timeout
    assert len(rows(stack, "faces", "starved")) == 1


def test_a_fault_that_outlasts_every_delivery_is_explained_before_the_dlq(stack: LocalStack) -> None:
    """The endpoint down and Rekognition throttled through all deliveries: the message goes to the
    DLQ, and the last delivery writes why under errors/ (as a bad input would), not only the logs.
    Earlier deliveries write nothing (a later one may still succeed)."""
    d = Dispatcher(stack)
    frames, people = stack.names.bucket("frames"), stack.names.bucket("people")
    stack.sagemaker.faults.inject("service_unavailable", times=10_000)
    down = put_frame(stack, "down-for-good", 0, jpeg("astronaut"))
    d.poll("detect_people")
    assert d.stats["detect_people"].failed == 1
    assert f"s3://{frames}/{down}" not in error_records(stack, "detect_people")  # not yet: it may recover
    assert d.run_until_idle(timeout_s=180)
    stack.sagemaker.faults.clear()
    reason = error_records(stack, "detect_people")[f"s3://{frames}/{down}"]["reason"]
    assert f"all {DELIVERIES} deliveries" in reason and "dead-letter queue" in reason
    assert "ServiceUnavailable" in reason
    # (the DLQ may also hold an earlier test's bad frame, once its receive has timed out)
    assert f"s3://{frames}/{down}" in drain_dlq(stack, "detect_people")

    put_frame(stack, "throttled-for-good", 0, jpeg("grace_hopper"))
    d.poll("detect_people")
    track(d)
    starved = keys.faces_work_key("throttled-for-good", "p001")  # the visit's face work
    stack.rekognition.fail_next(10_000, "ThrottlingException")
    try:
        assert d.run_until_idle(timeout_s=180)
    finally:
        stack.rekognition.clear_faults()
    reason = error_records(stack, "analyze_faces")[f"s3://{people}/{starved}"]["reason"]
    assert f"all {DELIVERIES} deliveries" in reason and "ThrottlingException" in reason
    assert f"s3://{people}/{starved}" in drain_dlq(stack, "analyze_faces")
    assert not rows(stack, "faces", "throttled-for-good")


def test_frame_without_metadata_is_a_clear_error(stack: LocalStack) -> None:
    d = Dispatcher(stack)
    aws.client("s3").put_object(Bucket=stack.names.bucket("frames"), Key="orphan/000000.jpg",
                                Body=jpeg("astronaut"))
    d.poll("detect_people")
    assert d.stats["detect_people"].failed == 0  # a permanent bad input: recorded, acknowledged
    errors = aws.client("s3").list_objects_v2(Bucket=stack.names.bucket("analytics"),
                                              Prefix="errors/detect_people/")
    assert errors.get("KeyCount", 0) >= 1


def test_rows_are_not_duplicated(stack: LocalStack) -> None:
    for table in ("people", "faces"):
        ids_ = [r["record_id"] for r in analytics_rows(stack, table)]
        assert len(ids_) == len(set(ids_)), table


def test_person_min_area_reaches_the_endpoint(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """PERSON_MIN_AREA (the stack's personMinArea) travels with each request: a person filling
    less of the frame than that is not counted, so the frame is not sent on to face analysis."""
    d = Dispatcher(stack)
    monkeypatch.setenv("PERSON_MIN_AREA", "0.95")
    put_frame(stack, "far-away", 0, jpeg("astronaut"))
    d.poll("detect_people")
    monkeypatch.setenv("PERSON_MIN_AREA", "0")
    put_frame(stack, "close-up", 0, jpeg("astronaut"))
    d.poll("detect_people")
    assert d.run_until_idle(timeout_s=120)
    assert [r["person_count"] for r in rows(stack, "people", "far-away")] == [0]
    assert [r["person_count"] >= 1 for r in rows(stack, "people", "close-up")] == [True]


def test_alert_faces_fails_only_the_bad_record_of_its_batch(stack: LocalStack) -> None:
    """The handler itself, given one SQS batch (as Lambda gives it) of a good frame, a frame
    deleted before its turn and a malformed message: the last two are bad inputs, each recorded
    with its reason and acknowledged (retrying cannot help: issue 26, item 11), so none of the
    batch is reported failed, and the good frame's face row is written."""
    from functions import alert_faces
    from vidsift.local.dispatcher import LocalContext

    sqs, s3 = aws.client("sqs"), aws.client("s3")
    url, people = stack.queue_urls["alert_faces"], stack.names.bucket("people")
    sqs.purge_queue(QueueUrl=url)
    prefix = contract.stage("alert_faces")["source_prefix"]  # the prefix that notifies alert_faces
    good, gone = (f"{prefix}{put_frame(stack, 'mixed-batch', i, jpeg(p))}" for i, p in
                  enumerate(("astronaut", "grace_hopper")))
    for key in (good, gone):
        s3.copy_object(Bucket=people, Key=key, CopySource={"Bucket": stack.names.bucket("frames"),
                                                           "Key": key.removeprefix(prefix)},
                       MetadataDirective="COPY")
    msgs: list[dict] = []
    for _ in range(20):
        msgs += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                    VisibilityTimeout=120).get("Messages", [])  # hidden while the handler runs
        if len(msgs) >= 2:
            break
    event = Dispatcher(stack)._event("alert_faces", msgs)
    event["Records"].append({**event["Records"][0], "messageId": "garbage", "body": "{not json"})
    by_key = {r.key: m["messageId"] for m in event["Records"][:2] for r in parse_s3_message(m["body"])}
    s3.delete_object(Bucket=people, Key=gone)
    result = alert_faces.handler(event, LocalContext("alert_faces", 60))
    assert result["batchItemFailures"] == [], result
    assert by_key[gone] and len(by_key) == 2
    errors = error_records(stack, "alert_faces")
    assert "no longer exists" in errors[f"s3://{people}/{gone}"]["reason"] and "sqs:garbage" in errors
    assert [r["frame_index"] for r in rows(stack, "faces", "mixed-batch")] == [0]
    for m in msgs:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
