"""Reading what a local stack holds after a run: rows, error records, dead letters.

Resilience tests ask the same questions after every fault (did each row arrive once? is
the reason on record? what is in the DLQ?), so the answers are read the same way here.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from vidsift import aws, contract
from vidsift.core import completion, keys, matching
from vidsift.core.events import parse_s3_message
from vidsift.core.records import FrameMeta
from vidsift.local.results import analytics_rows
from vidsift.local.stack import LocalStack
from vidsift.storage.progress import DynamoProgressStore


def put_frame(stack: LocalStack, video: str, index: int, body: bytes, bucket: str = "frames") -> str:
    """A frame as split_frames writes it (key and metadata), so its S3 event starts detect_people
    (frames bucket); in the people bucket, under the prefix that notifies alert_faces (where
    detect_people copies the edge's snapshots), so alert_faces analyses it as a frame alone.

    A frame of the frames bucket is also counted in its video's tracking progress as split_frames
    counts what it sampled (one segment, every frame put so far), so once detected the video is
    tracked and its people rows written, as a sampled video's would be."""
    meta = FrameMeta(video_id=video, source_bucket="raw", source_key=f"uploads/{video}.mp4", camera_id="c",
                     frame_index=index, frame_time_s=float(index), captured_at=None)
    key = keys.frame_key(video, index)
    if bucket == "people":
        key = f"{contract.stage('alert_faces')['source_prefix']}{key}"
    aws.client("s3").put_object(Bucket=stack.names.bucket(bucket), Key=key, Body=body, Metadata=meta.to_s3())
    if bucket == "frames":
        count_sampled(stack, video, index)
    return key


def track(dispatcher: Any) -> int:
    """Run track_people (a vidsift.local.dispatcher.Dispatcher's) until its queue is empty:
    the detected videos are tracked and their face work goes out to analyze_faces."""
    handled = 0
    while n := dispatcher.poll("track_people"):
        handled += n
    return handled


def count_sampled(stack: LocalStack, video: str, index: int) -> None:
    """What split_frames records of a video it sampled whole, for a video whose frames a test
    puts: the video (one segment) and the segment's frames so far."""
    table = stack.names.tracking_table
    DynamoProgressStore(table).mark(video, set_={"segments": 1, "per": 0, "source": f"s3://raw/uploads/{video}.mp4",
                                                 "version": "", "updated_at": int(time.time())},
                                    default={"open": completion.OPEN}, add={"tracked": {completion.SENTINEL}})
    part = completion.segment_part(video, 0)
    DynamoProgressStore(table).mark(part, add={"sampled": {index}})
    sampled = DynamoProgressStore(table).item(part)["sampled"]
    DynamoProgressStore(table).mark(part, set_=completion.sampled_fields(len(sampled), min(sampled), max(sampled), 0.0))


def put_snapshot(stack: LocalStack, body: bytes, *, camera_id: str | None, recorded_at: datetime,
                 clip_key: str | None = None, name: str | None = None) -> tuple[str, str]:
    """An alert snapshot exactly as the edge recorder uploads it (vidsift.core.uploads, the edge's writer: under
    the contract's snapshot_prefix of the raw bucket); ``camera_id`` None leaves it out.
    Returns the key and the ETag (together with the bucket, the snapshot's id)."""
    from vidsift.core.uploads import CAMERA_ID, CLIP_KEY, EdgeStats, VideoInfo, build_metadata

    md = build_metadata(camera_id=camera_id or "x", device_id="pi-test", recorded_at=recorded_at,
                        info=VideoInfo(None, 512, 512, None), stats=EdgeStats(1, 0.9, "ssdlite", 0.5),
                        extra={CLIP_KEY: clip_key} if clip_key else None)
    if camera_id is None:
        del md[CAMERA_ID]
    doc = contract.load()
    key = f"{doc['snapshot_prefix']}{name or uuid.uuid4().hex}{doc['frame_suffix']}"
    resp = aws.client("s3").put_object(Bucket=stack.names.bucket("raw"), Key=key, Body=body, Metadata=md,
                                       ContentType="image/jpeg", ServerSideEncryption="AES256")
    return key, str(resp["ETag"]).strip('"')


def rows(stack: LocalStack, table: str, **match: object) -> list[dict[str, Any]]:
    """Delivered rows of ``table`` whose columns equal ``match``."""
    return [r for r in analytics_rows(stack, table) if all(r.get(k) == v for k, v in match.items())]


def error_records(stack: LocalStack, stage: str) -> dict[str, dict[str, Any]]:
    """The errors/<stage>/ records, by subject (an object's URI, or sqs:<message id>)."""
    prefix = keys.error_prefix(stage)
    return {d["subject"]: d for d in aws.list_json(stack.names.bucket("analytics"), prefix)}


def drain_dlq(stack: LocalStack, stage: str) -> list[str]:
    """Subjects (object URIs, a tracking message's subject, or sqs:<id> for a body that is
    neither) in the stage's DLQ, which is emptied."""
    sqs, url, subjects = aws.client("sqs"), stack.dlq_urls[stage], []
    while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in msgs:
            try:
                found = completion.parse_message(json.loads(m["Body"]))
            except ValueError:  # not JSON, or a tracking message without its fields (BadInputError)
                found = None
            if found:
                subjects.append(completion.subject(found, people_bucket=stack.names.bucket("people")))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                continue
            try:
                subjects.extend(r.uri for r in parse_s3_message(m["Body"]))
            except ValueError:
                subjects.append(f"sqs:{m['MessageId']}")
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return subjects


def alerts_received(stack: LocalStack) -> list[dict[str, Any]]:
    """The "sqs" messages (JSON documents) on the alert topic's subscriber queue, which is emptied."""
    sqs, out = aws.client("sqs"), []
    while got := sqs.receive_message(QueueUrl=stack.alert_queue_url, MaxNumberOfMessages=10).get("Messages", []):
        out += [json.loads(json.loads(m["Body"])["Message"]) for m in got]
        sqs.delete_message_batch(QueueUrl=stack.alert_queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    return out


def duplicates(stack: LocalStack, table: str) -> list[str]:
    """record_ids delivered more than once."""
    seen: dict[str, int] = {}
    for r in analytics_rows(stack, table):
        seen[r["record_id"]] = seen.get(r["record_id"], 0) + 1
    return sorted(k for k, n in seen.items() if n > 1)


@contextmanager
def known_face(stack: LocalStack, name: str = "Eileen Collins", image: str = "astronaut") -> Iterator[None]:
    """The stack's known-faces collection holds ``image``'s face under ``name`` (what a user's
    `vidsift faces add` does) while the block runs; emptied again after it."""
    from vidsift.testing.samples import jpeg, photo

    collection = matching.collection_name(stack.names)
    aws.index_faces(collection, jpeg(photo(image), 95), matching.encode_name(name))
    try:
        yield
    finally:
        aws.delete_faces(collection, [f["FaceId"] for f in aws.list_faces(collection)])

