"""Faults across the chain, injected into the real local services: the SageMaker endpoint
hangs past the read timeout or answers 5xx / ModelError, Rekognition answers 5xx, Firehose
is unavailable or refuses records, S3 says SlowDown, and split_frames dies in the middle of
a video. Every record ends delivered exactly once after retries (botocore's, ours, or SQS
redelivery), never silently dropped. (Throttled Rekognition, a failing endpoint with redrive
and one bad frame in a batch are in tests/test_stage_faults.py.)"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from vidsift import aws, contract
from vidsift.core import completion, ids, keys
from vidsift.local.dispatcher import Dispatcher, LocalContext
from vidsift.local.stack import LocalStack
from vidsift.stages.runtime import once
from vidsift.storage.progress import DynamoProgressStore
from vidsift.testing.faults import (
    DYNAMODB_THROTTLED,
    FIREHOSE_UNAVAILABLE,
    S3_SLOW_DOWN,
    FirehoseRefusesRecords,
    LambdaKilled,
    Refuse,
    dies_after,
    jpeg,
)
from vidsift.testing.localcheck import drain_dlq, duplicates, error_records, put_frame, rows, track


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    assert Dispatcher(local_stack).run_until_idle(timeout_s=60)  # S3's test events
    yield local_stack


def frame_once(stack: LocalStack, video: str) -> None:
    """The frame's people row (a person: astronaut) and its face row, each exactly once; no
    error record, nothing in a DLQ."""
    assert [r["frame_index"] for r in rows(stack, "people", video_id=video)] == [0]
    assert rows(stack, "people", video_id=video)[0]["person_count"] >= 1
    assert len(rows(stack, "faces", video_id=video)) == 1
    assert len(rows(stack, "tracks", video_id=video)) == 1
    for stage in ("detect_people", "track_people", "analyze_faces"):
        assert not [s for s in error_records(stack, stage) if f"/{video}/" in s or s == f"video:{video}"]
        assert drain_dlq(stack, stage) == []


# --- SageMaker endpoint -------------------------------------------------------------------

#: The endpoint's read timeout while a hang is injected, and the hang: a hung attempt is given
#: up after READ_TIMEOUT_S, a healthy one answers well within it even on a busy machine.
READ_TIMEOUT_S = 5
HANG_S = 12


def test_the_endpoint_read_timeout_shortens_no_other_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hang injected for the endpoint must not make Rekognition, S3 or Firehose time out."""
    monkeypatch.setenv(aws.ENDPOINT_READ_TIMEOUT_ENV, "0.5")
    assert aws.client(aws.ENDPOINT_SERVICE).meta.config.read_timeout == 0.5
    for service in ("rekognition", "s3", "firehose", "sqs", "dynamodb", "sns"):
        assert aws.client(service).meta.config.read_timeout == aws.READ_TIMEOUT_S


def test_endpoint_hanging_past_the_read_timeout_is_retried(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The endpoint's short read timeout is set only while the hung requests are made (a fresh
    client: the timeout is part of the cache key), so nothing else races it. The retry must
    answer within that timeout, so it is far above one frame's detection (about 0.1 s, a few
    seconds on a machine busy with other work: 1 s was once too short there), and the hang far
    above it."""
    stack.sagemaker.faults.inject("delay", times=aws.ENDPOINT_MAX_ATTEMPTS - 1, delay_s=HANG_S)
    put_frame(stack, "endpoint-hangs", 0, jpeg("astronaut"))
    d = Dispatcher(stack)
    with monkeypatch.context() as m:
        m.setenv(aws.ENDPOINT_READ_TIMEOUT_ENV, str(READ_TIMEOUT_S))
        d.poll("detect_people")
    assert len(stack.sagemaker.faults) == 0  # the hung request was given up on and retried
    assert d.stats["detect_people"].succeeded == 1
    assert d.run_until_idle(timeout_s=120)
    frame_once(stack, "endpoint-hangs")


def test_endpoint_hanging_on_every_attempt_fails_the_message_then_redrive_delivers_once(
        stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    stack.sagemaker.faults.inject("delay", times=aws.ENDPOINT_MAX_ATTEMPTS, delay_s=HANG_S)
    put_frame(stack, "endpoint-hangs-long", 0, jpeg("astronaut"))
    d = Dispatcher(stack)
    with monkeypatch.context() as m:
        m.setenv(aws.ENDPOINT_READ_TIMEOUT_ENV, str(READ_TIMEOUT_S))
        d.poll("detect_people")
    assert d.stats["detect_people"].failed == 1 and rows(stack, "people", video_id="endpoint-hangs-long") == []
    assert len(stack.sagemaker.faults) == 0
    assert d.run_until_idle(timeout_s=120)  # redelivered after the visibility timeout, default timeouts
    frame_once(stack, "endpoint-hangs-long")


@pytest.mark.parametrize(("fault", "times", "redriven"), [
    ("internal_failure", 2, False),  # HTTP 500 from the runtime: botocore retries it
    ("service_unavailable", 2, False),  # 503
    ("model_error", 4, True),  # the container's 5xx on all of vidsift's attempts: SQS retries later
])
def test_endpoint_errors_end_in_one_row(stack: LocalStack, fault: str, times: int, redriven: bool) -> None:
    video = f"endpoint-{fault}"
    stack.sagemaker.faults.inject(fault, times=times)
    put_frame(stack, video, 0, jpeg("astronaut"))
    d = Dispatcher(stack)
    d.poll("detect_people")
    assert len(stack.sagemaker.faults) == 0
    assert (d.stats["detect_people"].failed, d.stats["detect_people"].succeeded) == ((1, 0) if redriven else (0, 1))
    assert d.run_until_idle(timeout_s=120)
    frame_once(stack, video)


def test_endpoint_throttling_past_botocores_attempts_is_waited_out_in_the_invocation(stack: LocalStack) -> None:
    """A burst beyond the endpoint's concurrency is throttled: botocore's 5 attempts are not
    enough, so vidsift waits longer (jittered) within the same invocation instead of failing
    the whole batch back to SQS for the queue's visibility timeout."""
    stack.sagemaker.faults.inject("throttling", times=aws.MAX_ATTEMPTS + 2)
    put_frame(stack, "endpoint-throttled", 0, jpeg("astronaut"))
    d = Dispatcher(stack)
    d.poll("detect_people")
    assert len(stack.sagemaker.faults) == 0
    assert (d.stats["detect_people"].failed, d.stats["detect_people"].succeeded) == (0, 1)
    assert d.run_until_idle(timeout_s=120)
    frame_once(stack, "endpoint-throttled")


# --- Rekognition ----------------------------------------------------------------------------


@pytest.mark.parametrize(("times", "redriven"), [(2, False), (aws.MAX_ATTEMPTS, True)])
def test_rekognition_5xx_ends_in_one_face_row(stack: LocalStack, times: int, redriven: bool) -> None:
    video = f"rekognition-500-{times}"
    put_frame(stack, video, 0, jpeg("astronaut"))
    d = Dispatcher(stack)
    d.poll("detect_people")
    track(d)
    stack.rekognition.fail_next(times, "InternalServerError")
    d.poll("analyze_faces")
    assert stack.rekognition.pending_faults == 0
    assert (d.stats["analyze_faces"].failed, d.stats["analyze_faces"].succeeded) == ((1, 0) if redriven else (0, 1))
    assert d.run_until_idle(timeout_s=120)
    frame_once(stack, video)


# --- Firehose -------------------------------------------------------------------------------


@pytest.mark.parametrize(("refusals", "redriven"), [(2, False), (aws.MAX_ATTEMPTS, True)])
def test_firehose_unavailable_ends_in_one_row(stack: LocalStack, refusals: int, redriven: bool) -> None:
    video = f"firehose-503-{refusals}"
    put_frame(stack, video, 0, jpeg("astronaut"))
    d = Dispatcher(stack)
    d.poll("detect_people")
    with Refuse(aws.client("firehose"), FIREHOSE_UNAVAILABLE, limit=refusals) as fault:
        track(d)  # the segment, then the video: its people rows go through Firehose
    assert fault.refused == refusals
    assert (d.stats["track_people"].failed, d.stats["track_people"].succeeded) == ((1, 1) if redriven else (0, 2))
    assert d.run_until_idle(timeout_s=120)
    frame_once(stack, video)  # the video tracked twice: one row each still


@pytest.mark.parametrize(("refusals", "redriven"), [(2, False), (aws.MAX_ATTEMPTS, True)])
def test_the_tracking_table_throttled_ends_in_one_row(stack: LocalStack, refusals: int, redriven: bool) -> None:
    """detect_people writes a batch's boxes in one BatchWriteItem: throttled a few times it is
    retried within the invocation; throttled past botocore's attempts the message fails, nothing
    of the frame is counted done, and the redelivery records it once."""
    video = f"tracking-throttled-{refusals}"
    put_frame(stack, video, 0, jpeg("astronaut"))
    d = Dispatcher(stack)
    with Refuse(aws.client("dynamodb"), DYNAMODB_THROTTLED, limit=refusals, operations=("BatchWriteItem",)) as fault:
        d.poll("detect_people")
    assert fault.refused == refusals
    assert (d.stats["detect_people"].failed, d.stats["detect_people"].succeeded) == ((1, 0) if redriven else (0, 1))
    done = DynamoProgressStore(stack.names.tracking_table).item(completion.segment_part(video, 0)).get("done", set())
    assert completion.real(done) == (set() if redriven else {0})
    assert d.run_until_idle(timeout_s=120)
    frame_once(stack, video)


def test_firehose_refusing_records_past_the_resends_ends_in_one_row(stack: LocalStack) -> None:
    """Per-record refusals are resent (aws.put_records, 6 attempts); past that the message
    fails and SQS redelivers it. (Partial refusals: tests/test_firehose_delivery.py.)"""
    put_frame(stack, "firehose-refuses", 0, jpeg("astronaut"))
    d = Dispatcher(stack)
    d.poll("detect_people")
    track(d)
    with FirehoseRefusesRecords(aws.client("firehose"), calls=6) as fault:
        d.poll("analyze_faces")
    assert fault.refused_records == 6 and fault.calls == 0
    assert d.stats["analyze_faces"].failed == 1 and rows(stack, "faces", video_id="firehose-refuses") == []
    assert d.run_until_idle(timeout_s=120)
    frame_once(stack, "firehose-refuses")


def test_detection_reads_no_frame_twice(stack: LocalStack) -> None:
    """A new frame is read once, by the endpoint, which returns its metadata with its boxes:
    detect_people makes no HeadObject for it (one per frame before)."""
    put_frame(stack, "no-second-read", 0, jpeg("astronaut"))
    with Refuse(aws.client("s3"), S3_SLOW_DOWN, limit=100, operations=("HeadObject",)) as heads:
        assert Dispatcher(stack).run_until_idle(timeout_s=120)
    assert heads.seen == 0
    frame_once(stack, "no-second-read")


def test_an_endpoint_that_sends_no_metadata_still_works(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """An endpoint deployed before it returned metadata (or that leaves it out): detect_people
    reads each frame's metadata from S3 itself, and the rows are the same."""
    import vidsift.stages.detecting as detect_people  # the work moved from functions/detect_people.py
    from vidsift.core import detection

    def old_request(*args: object, **kwargs: object) -> dict[str, object]:
        return {k: v for k, v in detection.build_request(*args, **kwargs).items() if k != "metadata"}  # type: ignore[arg-type]

    monkeypatch.setattr(detect_people, "build_request", old_request)
    put_frame(stack, "old-endpoint", 0, jpeg("astronaut"))
    with Refuse(aws.client("s3"), S3_SLOW_DOWN, limit=0, operations=("HeadObject",)) as heads:
        assert Dispatcher(stack).run_until_idle(timeout_s=120)
    assert heads.seen == 1
    frame_once(stack, "old-endpoint")


def test_a_frame_the_endpoint_may_not_read_is_retried_not_given_up(stack: LocalStack) -> None:
    """The endpoint answers 403 for a frame (its SageMaker role lacks the grant): configuration,
    not input, so the message is retried with the reason, and delivered once the grant is fixed."""
    put_frame(stack, "endpoint-403", 0, jpeg("astronaut"))
    endpoint_s3 = stack.sagemaker.endpoint.model.s3.client()
    d = Dispatcher(stack)
    with Refuse(endpoint_s3, (403, {"Content-Type": "application/xml"},
                              b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"),
                limit=100, operations=("GetObject",)):
        d.poll("detect_people")
    assert d.stats["detect_people"].failed == 1
    assert not [k for k in error_records(stack, "detect_people") if "/endpoint-403/" in k]  # retried, not bad input
    assert d.run_until_idle(timeout_s=120)
    frame_once(stack, "endpoint-403")


# --- S3 -------------------------------------------------------------------------------------


def test_s3_slow_down_is_absorbed_through_a_whole_video(stack: LocalStack, people_video: Path) -> None:
    key = "uploads/slowdown/people clip.mp4"
    aws.client("s3").upload_file(str(people_video), stack.names.bucket("raw"), key)
    with Refuse(aws.client("s3"), S3_SLOW_DOWN, limit=30, every=2) as fault:
        assert Dispatcher(stack).run_until_idle(timeout_s=300)
    # Every other S3 request of the handlers was refused once (about 30 for this 6 s clip: the
    # frames' reads for detection are the endpoint's own, with its own client).
    assert fault.refused == fault.seen // 2 >= 12
    assert {"GetObject", "PutObject", "CopyObject"} <= set(fault.refused_ops)
    people = rows(stack, "people", source_key=key)
    assert sorted(r["frame_index"] for r in people) == [0, 1, 2, 3, 4, 5]
    assert sorted(r["frame_index"] for r in people if r["person_count"]) == [2, 3]
    assert len(rows(stack, "faces", source_key=key)) == 1  # one visit, its face analysed once
    for stage in contract.STAGES:
        assert drain_dlq(stack, stage) == []


# --- A Lambda that dies mid-video -----------------------------------------------------------


def in_progress_records(table: str) -> list[dict]:
    items = aws.client("dynamodb").scan(TableName=table)["Items"]
    return [i for i in items if i["status"]["S"] == "INPROGRESS"]


def test_split_frames_killed_mid_video_is_retried_without_doubling_anything(
        stack: LocalStack, people_video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The invocation dies (timeout, OOM) after writing 3 of 6 frames: no handler code runs
    after that, so the idempotency record stays INPROGRESS. Its expiry is the invocation's
    deadline (1 s here), so the redelivered message, seen after the visibility timeout,
    proceeds: same frame keys, one row per frame, nothing twice."""
    s3, raw, frames = aws.client("s3"), stack.names.bucket("raw"), stack.names.bucket("frames")
    key = "uploads/killed/people clip.mp4"
    s3.upload_file(str(people_video), raw, key)
    video = ids.video_id(raw, key, s3.head_object(Bucket=raw, Key=key)["ETag"])
    started_ms = time.time() * 1000
    with monkeypatch.context() as m:
        frame_puts = dies_after(aws.put_object, 3, when=lambda *a, **k: k["content_type"] == "image/jpeg")
        m.setattr(aws, "put_object", frame_puts)
        with pytest.raises(LambdaKilled):
            Dispatcher(stack, timeouts={"split_frames": 1}).poll("split_frames")
    written = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=frames, Prefix=f"{video}/").get("Contents", []))
    assert written == [keys.frame_key(video, i) for i in range(3)]  # died mid-video, no summary
    (record,) = [r for r in in_progress_records(stack.names.idempotency_table) if "process_video" in r["id"]["S"]]
    expiry = int(record["in_progress_expiration"]["N"])
    assert started_ms < expiry < started_ms + 1000 + 2000  # the dead invocation's deadline, not a week
    assert Dispatcher(stack).run_until_idle(timeout_s=300)
    written = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=frames, Prefix=f"{video}/").get("Contents", []))
    assert written == [*[keys.frame_key(video, i) for i in range(6)], keys.summary_key(video)]
    people = rows(stack, "people", video_id=video)
    assert sorted(r["frame_index"] for r in people) == [0, 1, 2, 3, 4, 5]
    assert [r["frame_index"] for r in rows(stack, "faces", video_id=video)] in ([2], [3])  # once per visit
    assert not [s for s in error_records(stack, "split_frames") if s.endswith(key)]
    assert drain_dlq(stack, "split_frames") == []


def test_each_call_carries_its_own_deadline(stack: LocalStack) -> None:
    """The in-progress expiry is the calling invocation's deadline, and a call without a
    context has none: a context registered by an earlier (or concurrent) invocation must not
    leak into another's record."""
    expiries: list[int | None] = []

    def work(obj: dict) -> dict:
        (record,) = [r for r in in_progress_records(stack.names.idempotency_table) if "work" in r["id"]["S"]]
        expiries.append(int(record["in_progress_expiration"]["N"]) if "in_progress_expiration" in record else None)
        return {}

    tag = uuid.uuid4().hex
    before_ms = time.time() * 1000
    once(work, {"bucket": "b", "key": f"{tag}-1", "etag": "e"}, LocalContext("f", timeout_s=60))
    with pytest.warns(UserWarning, match="remaining time"):  # Powertools says it has no deadline
        once(work, {"bucket": "b", "key": f"{tag}-2", "etag": "e"}, None)
    assert expiries[0] is not None and before_ms + 55_000 < expiries[0] < before_ms + 65_000
    assert expiries[1] is None


def test_nothing_was_recorded_twice(stack: LocalStack) -> None:
    assert duplicates(stack, "people") == [] and duplicates(stack, "faces") == []
