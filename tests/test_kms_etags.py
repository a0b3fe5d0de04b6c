"""SSE-KMS ETags (issue 17, item 4): with kms=true an object's ETag is no MD5 of its bytes,
and every write of the same bytes gets a new one. A split_frames retry rewrites identical
frames (same keys, same bytes), and so sends new events with new ETags; detect_people and
analyze_faces key their work on the frame (its key names video and index) and the SHA-256
of its bytes that split_frames carries in its metadata, so the retry must be work done
already: no endpoint call, no DetectFaces, no row twice.

moto always answers MD5 ETags, so here its S3 gives each written object a random ETag of
its own (moto's server runs in this process here): what HeadObject, PutObject, CopyObject and the
S3 events report, as with SSE-KMS."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.s3.models import FakeKey

from vidsift import aws
from vidsift.core import ids, keys
from vidsift.core.events import parse_s3_message
from vidsift.core.records import CONTENT_SHA256_KEY, FrameMeta
from vidsift.local.dispatcher import Dispatcher
from vidsift.local.stack import LocalStack
from vidsift.testing.faults import jpeg
from vidsift.testing.localcheck import count_sampled, drain_dlq, duplicates, error_records, rows


def _kms_etag(key: FakeKey) -> str:
    """One random ETag per written object (each PutObject or CopyObject makes a new FakeKey),
    the same for as long as that object exists."""
    if "_kms_etag" not in key.__dict__:
        key.__dict__["_kms_etag"] = f'"{uuid.uuid4().hex}"'
    return key.__dict__["_kms_etag"]


@pytest.fixture(scope="module")
def local_stack() -> Iterator[LocalStack]:
    """moto's server in this process (not its own, as usual), so that its S3 can be changed."""
    with LocalStack(moto_in_process=True) as stack:
        yield stack


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(FakeKey, "etag", property(_kms_etag))
        assert Dispatcher(local_stack).run_until_idle(timeout_s=60)  # S3's test events
        yield local_stack


def _etags(bucket: str, prefix: str) -> dict[str, str]:
    s3 = aws.client("s3")
    return {o["Key"]: o["ETag"].strip('"') for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
            if o["Key"].endswith(".jpg")}


def _counters(stack: LocalStack) -> tuple[int, int]:
    return stack.sagemaker.endpoint.invocations, stack.rekognition.detect_faces_calls


def _take_event(stack: LocalStack, stage: str) -> str:
    """The one message waiting in ``stage``'s queue (its body), taken off the queue."""
    sqs, url = aws.client("sqs"), stack.queue_urls[stage]
    (msg,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=5)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
    return str(msg["Body"])


def _forget_split_frames(stack: LocalStack) -> None:
    """split_frames' idempotency records gone, as when the invocation died mid-video and its
    in-progress record expired: the redelivered event samples and writes the frames again."""
    ddb, table = aws.client("dynamodb"), stack.names.idempotency_table
    for item in ddb.scan(TableName=table)["Items"]:
        if "split_frames.process_video" in item["id"]["S"]:
            ddb.delete_item(TableName=table, Key={"id": item["id"]})


def _nothing_failed(stack: LocalStack) -> None:
    for stage in ("split_frames", "detect_people", "analyze_faces"):
        assert error_records(stack, stage) == {}, stage
        assert drain_dlq(stack, stage) == [], stage


def test_identical_bytes_written_again_get_a_new_etag(stack: LocalStack) -> None:
    """The stand-in for SSE-KMS works: no MD5, a new ETag per write, one per object."""
    s3, bucket, body = aws.client("s3"), stack.names.bucket("analytics"), b"the same bytes"
    first = s3.put_object(Bucket=bucket, Key="kms-check/a.bin", Body=body)["ETag"]
    assert s3.head_object(Bucket=bucket, Key="kms-check/a.bin")["ETag"] == first
    assert s3.get_object(Bucket=bucket, Key="kms-check/a.bin")["ETag"] == first
    second = s3.put_object(Bucket=bucket, Key="kms-check/a.bin", Body=body)["ETag"]
    source = {"Bucket": bucket, "Key": "kms-check/a.bin"}
    copied = s3.copy_object(Bucket=bucket, Key="kms-check/a.bin", CopySource=source,
                            MetadataDirective="REPLACE")["CopyObjectResult"]["ETag"]
    assert len({first, second, copied}) == 3
    assert hashlib.md5(body).hexdigest() not in {e.strip('"') for e in (first, second, copied)}
    assert s3.head_object(Bucket=bucket, Key="kms-check/a.bin")["ETag"] == copied


def test_a_split_frames_retry_rewriting_identical_frames_is_no_new_work(stack: LocalStack,
                                                                         people_video: Path) -> None:
    s3, raw, frames, people = (aws.client("s3"), stack.names.bucket("raw"), stack.names.bucket("frames"),
                               stack.names.bucket("people"))
    key = "uploads/kms/people clip.mp4"
    s3.upload_file(str(people_video), raw, key)
    etag = s3.head_object(Bucket=raw, Key=key)["ETag"].strip('"')
    assert etag != hashlib.md5(people_video.read_bytes()).hexdigest()
    event = _take_event(stack, "split_frames")
    assert [r.etag for r in parse_s3_message(event)] == [etag]  # the event carries the object's (KMS) ETag
    video = ids.video_id(raw, key, etag)

    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=stack.queue_urls["split_frames"], MessageBody=event)
    assert Dispatcher(stack).run_until_idle(timeout_s=300)
    people_rows = sorted(r["record_id"] for r in rows(stack, "people", video_id=video))
    face_rows = sorted(r["record_id"] for r in rows(stack, "faces", video_id=video))
    assert people_rows and face_rows
    frame_etags, copies = _etags(frames, f"{video}/"), _etags(people, f"{video}/")
    assert len(frame_etags) == len(people_rows) and copies
    hashes = {k: s3.head_object(Bucket=frames, Key=k)["Metadata"][CONTENT_SHA256_KEY] for k in frame_etags}
    assert all(h == hashlib.sha256(s3.get_object(Bucket=frames, Key=k)["Body"].read()).hexdigest()
               for k, h in hashes.items())
    # detect_people's copy keeps the hash, so analyze_faces keys on it too.
    assert all(FrameMeta.from_s3(s3.head_object(Bucket=people, Key=k)["Metadata"]).content_sha256 == hashes[k]
               for k in copies)
    _nothing_failed(stack)
    before = _counters(stack)

    # The retry: the same event again, split_frames' record gone.
    _forget_split_frames(stack)
    sqs.send_message(QueueUrl=stack.queue_urls["split_frames"], MessageBody=event)
    d = Dispatcher(stack)
    assert d.run_until_idle(timeout_s=300)
    assert d.stats["split_frames"].succeeded == 1
    rewritten = _etags(frames, f"{video}/")
    assert rewritten.keys() == frame_etags.keys()
    assert all(rewritten[k] != frame_etags[k] for k in rewritten)  # new ETags: new events, new object versions
    assert {k: s3.head_object(Bucket=frames, Key=k)["Metadata"][CONTENT_SHA256_KEY] for k in rewritten} == hashes
    assert d.stats["detect_people"].succeeded == len(rewritten) and d.stats["detect_people"].failed == 0

    assert _counters(stack) == before  # neither the endpoint nor DetectFaces asked again
    assert _etags(people, f"{video}/") == copies  # not copied again, so analyze_faces was not even woken
    assert d.stats["analyze_faces"].received == 0
    assert sorted(r["record_id"] for r in rows(stack, "people", video_id=video)) == people_rows
    assert sorted(r["record_id"] for r in rows(stack, "faces", video_id=video)) == face_rows
    assert duplicates(stack, "people") == [] and duplicates(stack, "faces") == []
    _nothing_failed(stack)


def _put_frame(stack: LocalStack, video: str, body: bytes) -> str:
    """A frame exactly as split_frames writes it, content hash included."""
    meta = FrameMeta(video_id=video, source_bucket=stack.names.bucket("raw"), source_key=f"uploads/{video}.mp4",
                     camera_id="c", frame_index=0, frame_time_s=0.0, captured_at=None,
                     content_sha256=hashlib.sha256(body).hexdigest())
    key = keys.frame_key(video, 0)
    aws.client("s3").put_object(Bucket=stack.names.bucket("frames"), Key=key, Body=body, Metadata=meta.to_s3(),
                                ContentType="image/jpeg")
    count_sampled(stack, video, 0)  # as split_frames counts what it wrote: the video gets tracked
    return key


def test_a_frame_copied_to_the_people_bucket_again_is_not_analysed_again(stack: LocalStack) -> None:
    """A detect_people retry after its copy (the alert failed, say) copies the frame again: a
    new ETag, but no event for analyze_faces at all (the people bucket notifies it of the edge's
    snapshots only; frames of videos reach it per visit, from track_people), so nothing is
    analysed again."""
    s3, people, video = aws.client("s3"), stack.names.bucket("people"), "kmscopy"
    key = _put_frame(stack, video, jpeg("astronaut"))
    assert Dispatcher(stack).run_until_idle(timeout_s=120)
    assert len(rows(stack, "people", video_id=video)) == 1 and len(rows(stack, "faces", video_id=video)) == 1
    before, etag = _counters(stack), s3.head_object(Bucket=people, Key=key)["ETag"]

    meta = s3.head_object(Bucket=people, Key=key)["Metadata"]
    s3.copy_object(Bucket=people, Key=key, CopySource={"Bucket": people, "Key": key}, Metadata=meta,
                   MetadataDirective="REPLACE", ContentType="image/jpeg")
    assert s3.head_object(Bucket=people, Key=key)["ETag"] != etag
    d = Dispatcher(stack)
    assert d.run_until_idle(timeout_s=120)
    assert d.stats["analyze_faces"].received == 0
    assert _counters(stack) == before
    assert len(rows(stack, "people", video_id=video)) == 1 and len(rows(stack, "faces", video_id=video)) == 1
    _nothing_failed(stack)


def test_different_bytes_under_the_same_frame_key_are_new_work(stack: LocalStack) -> None:
    """Not expected (frame keys and bytes are deterministic), but a frame whose bytes did
    change is not mistaken for one already done: it is detected again. Its video was tracked
    already (the visit's face analysed once), and that stays done."""
    video = "kmschanged"
    _put_frame(stack, video, jpeg("astronaut"))
    assert Dispatcher(stack).run_until_idle(timeout_s=120)
    invocations, faces = _counters(stack)
    _put_frame(stack, video, jpeg("astronaut", quality=70))
    assert Dispatcher(stack).run_until_idle(timeout_s=120)
    assert _counters(stack) == (invocations + 1, faces)
    _nothing_failed(stack)
