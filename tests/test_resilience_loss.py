"""Nothing lost when AWS misbehaves (issue 26), through the real handlers on the local stack:
every video version reaches an end state and says which, whatever fails in between.

Each test here reproduces a way main lost a whole video's rows with no error, no DLQ
message and no alarm, and fails on main."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from vidsift import aws, contract
from vidsift.core import completion, ids, keys
from vidsift.core.events import parse_s3_message
from vidsift.local.dispatcher import Dispatcher
from vidsift.local.stack import LocalStack
from vidsift.settings import Settings
from vidsift.stages import sweeping
from vidsift.storage.progress import PROGRESS_N, DynamoProgressStore
from vidsift.testing.faults import SQS_UNAVAILABLE, Refuse
from vidsift.testing.localcheck import drain_dlq, duplicates, error_records, rows


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> LocalStack:
    assert Dispatcher(local_stack).run_until_idle(timeout_s=60)  # S3's test events
    return local_stack


def upload(stack: LocalStack, path: Path, key: str) -> tuple[str, str]:
    """(video id, version id) of the version just written under ``key``."""
    raw = stack.names.bucket("raw")
    with path.open("rb") as f:
        resp = aws.client("s3").put_object(Bucket=raw, Key=key, Body=f.read())
    return ids.video_id(raw, key, resp["ETag"].strip('"')), resp["VersionId"]


def video_item(stack: LocalStack, video: str) -> dict[str, Any]:
    return DynamoProgressStore(stack.names.tracking_table).item(video)


def frames_of(stack: LocalStack, video: str) -> list[int]:
    return sorted(r["frame_index"] for r in rows(stack, "people", video_id=video))


# --- item 1: the message to track_people after the completing update --------------------


def test_a_complete_video_whose_message_to_track_people_was_never_sent_is_sent_on_redelivery(
        stack: LocalStack, short_video: Path) -> None:
    """detect_people's update completes the video, then its SendMessage to track_people fails
    (SQS unavailable through botocore's attempts; an invocation timing out in between is the
    same). Main: the redelivery found the frames done and never sent again: progress complete,
    0 people rows, 0 tracks rows, nothing in any DLQ or errors/. Now the redelivery sends the
    complete segment on (track_people is idempotent) and the video is tracked."""
    video, _ = upload(stack, short_video, "uploads/loss/send failed.mp4")
    d = Dispatcher(stack)
    while d.poll("split_frames"):
        pass
    with Refuse(aws.client("sqs"), SQS_UNAVAILABLE, limit=aws.MAX_ATTEMPTS, operations=("SendMessageBatch",)) as f:
        d.poll("detect_people")  # every frame of the video in one batch: the update completes it
    assert f.refused == aws.MAX_ATTEMPTS and d.stats["detect_people"].failed == 3
    seg = DynamoProgressStore(stack.names.tracking_table).item(completion.segment_part(video, 0))
    assert completion.real(seg["done"]) == {0, 1, 2} and completion.segment_detected(seg)  # complete, unsent
    assert d.run_until_idle(timeout_s=120)
    assert frames_of(stack, video) == [0, 1, 2]
    assert len(rows(stack, "tracks", video_id=video)) == 1
    assert video_item(stack, video)["state"] == completion.TRACKED
    assert drain_dlq(stack, "detect_people") == [] and duplicates(stack, "people") == []


# --- item 2: versions ------------------------------------------------------------------------


def test_overwriting_a_key_before_it_is_processed_loses_neither_version(
        stack: LocalStack, people_video: Path, short_video: Path) -> None:
    """Two versions of one key in the versioned raw bucket, both written before split_frames
    ran. Main read the key's current object for both events: the first version had 0 rows,
    the second its rows twice over, no error. Each version is now read by the versionId its
    event names and processed once, under its own video id."""
    key = "uploads/loss/overwritten.mp4"
    first, v1 = upload(stack, people_video, key)
    second, v2 = upload(stack, short_video, key)
    assert first != second and v1 != v2
    assert Dispatcher(stack).run_until_idle(timeout_s=300)
    assert frames_of(stack, first) == list(range(6)) and frames_of(stack, second) == [0, 1, 2]
    assert [(video_item(stack, v)["state"], video_item(stack, v)["version"]) for v in (first, second)] == [
        (completion.TRACKED, v1), (completion.TRACKED, v2)]
    assert duplicates(stack, "people") == []


def test_a_long_video_overwritten_while_its_segments_wait_loses_neither_version(
        stack: LocalStack, people_video: Path, short_video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A video cut into segments, overwritten after its segments were queued. Main's segment
    check compared the key's new ETag with the planned one and sent the old version's
    segments to the DLQ: the video stalled. Each segment now reads the planned version."""
    monkeypatch.setenv("SEGMENT_SECONDS", "3")
    key = "uploads/loss/long overwritten.mp4"
    first, _ = upload(stack, people_video, key)
    d = Dispatcher(stack)
    d.poll("split_frames")  # the first version's event: 2 segments queued
    assert video_item(stack, first)["segments"] == 2
    second, _ = upload(stack, short_video, key)
    assert d.run_until_idle(timeout_s=300)
    assert drain_dlq(stack, "split_frames") == []
    assert frames_of(stack, first) == list(range(6)) and frames_of(stack, second) == [0, 1, 2]
    assert video_item(stack, first)["state"] == video_item(stack, second)["state"] == completion.TRACKED


# --- item 3: end states, a redrive that re-tracks, the sweeper --------------------------------


def test_frames_redriven_after_their_video_was_tracked_without_them_reopen_the_video(
        stack: LocalStack, people_video: Path) -> None:
    """The endpoint down through every delivery (a 2 h fault: throttling, an endpoint in the
    wrong region, a missing kms:Decrypt): the frames are given up on their last receive and
    the video tracked without them. Main: redriving the DLQ once the endpoint was fixed
    recorded the frames but never tracked the video again (the README's "redrive once fixed"
    was untrue): 0 rows. Now the recovered frames reopen the video under a new generation:
    tracked again with every frame, the gap closed, each row once (by record_id)."""
    video, _ = upload(stack, people_video, "uploads/loss/redriven.mp4")
    d = Dispatcher(stack)
    while d.poll("split_frames"):
        pass
    stack.sagemaker.faults.inject("service_unavailable", times=10_000)
    try:
        assert d.run_until_idle(timeout_s=180)
    finally:
        stack.sagemaker.faults.clear()
    assert frames_of(stack, video) == [] and rows(stack, "tracks", video_id=video) == []
    item = video_item(stack, video)
    assert (item["state"], item["gap_frames"]) == (completion.TRACKED, 6)  # an end state that says so
    assert len(error_records(stack, "detect_people")) >= 1  # the reason, before the DLQ

    sqs, dlq, url = aws.client("sqs"), stack.dlq_urls["detect_people"], stack.queue_urls["detect_people"]
    redriven = 0  # the redrive: the DLQ's messages back to their queue, as SQS's redrive does
    while got := sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages"):
        for m in got:
            sqs.send_message(QueueUrl=url, MessageBody=m["Body"])
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])
            redriven += 1
    assert redriven >= 1
    assert d.run_until_idle(timeout_s=180)
    assert frames_of(stack, video) == list(range(6))
    item = video_item(stack, video)
    assert (item["state"], item["gap_frames"], item["generation"], "open" in item) == (completion.TRACKED, 0, 6, False)
    (track,) = rows(stack, "tracks", video_id=video)
    assert (track["frames"], track["gap_frames"]) == (2, 0)
    assert duplicates(stack, "people") == [] and duplicates(stack, "tracks") == []


def test_a_frame_lost_without_its_last_receive_is_given_up_by_the_sweeper(stack: LocalStack,
                                                                          short_video: Path) -> None:
    """A frame's message gone without its last receive running the function (a throttled
    receive, a crashed invocation; here deleted from the queue): main left its video waiting
    with no alarm until the tracking table's TTL deleted it. The sweeper finds it stalled
    (past STALL_AFTER_S, given as the clock it is asked at: no test waits on the clock),
    gives the frame up and the video is tracked with the gap; it counts the stalled video."""
    video, _ = upload(stack, short_video, "uploads/loss/stalled.mp4")
    d = Dispatcher(stack)
    while d.poll("split_frames"):
        pass
    sqs, url = aws.client("sqs"), stack.queue_urls["detect_people"]
    lost = keys.frame_key(video, 2)
    held = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600).get("Messages"):
        held += got
    def names_lost(m: dict[str, Any]) -> bool:
        return any(r.key == lost for r in parse_s3_message(m["Body"]))

    assert sum(map(names_lost, held)) == 1
    for m in held:
        if names_lost(m):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        else:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    assert d.run_until_idle(timeout_s=120)
    assert frames_of(stack, video) == [] and "open" in video_item(stack, video)  # stalled: no end state

    config = sweeping.SweepConfig.from_settings(Settings.from_env())
    assert config.stall_after_s == contract.load()["sweeper"]["stall_after_s"]
    assert video not in sweeping.sweep(config).stalled  # not stalled yet: it moved a moment ago
    result = sweeping.sweep(config, now=time.time() + config.stall_after_s + 1)
    assert video in result.stalled and video in result.finished
    assert d.run_until_idle(timeout_s=120)
    assert frames_of(stack, video) == [0, 1]
    item = video_item(stack, video)
    assert (item["state"], item["gap_frames"], "open" in item) == (completion.TRACKED, 1, False)
    later = sweeping.sweep(config, now=time.time() + config.stall_after_s + 1)
    assert video not in later.stalled  # an end state: the index forgot it


def test_a_video_whose_segment_was_never_sampled_ends_failed_with_its_reason(stack: LocalStack,
                                                                            people_video: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A segment message lost for good: the video cannot be finished, so the sweeper ends it
    failed, the reason under errors/sweep_stalled/ naming the segment."""
    monkeypatch.setenv("SEGMENT_SECONDS", "3")
    video, version = upload(stack, people_video, "uploads/loss/segment lost.mp4")
    d = Dispatcher(stack)
    d.poll("split_frames")  # queues its 2 segments
    sqs, url = aws.client("sqs"), stack.queue_urls["split_frames"]
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600)["Messages"]
    for m in got:
        if json.loads(m["Body"])["vidsift_segment"]["segment"] == 1:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        else:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    assert d.run_until_idle(timeout_s=180)
    config = sweeping.SweepConfig.from_settings(Settings.from_env())
    result = sweeping.sweep(config, now=time.time() + config.stall_after_s + 1)
    assert video in result.failed
    item = video_item(stack, video)
    assert item["state"] == completion.FAILED and "segment(s) [1]" in item["reason"] and "open" not in item
    (record,) = [r for s, r in error_records(stack, sweeping.STAGE).items() if s == f"video:{video}"]
    assert record["version_id"] == version and "never reported segment(s) [1]" in record["reason"]


# --- item 5: progress that scales ------------------------------------------------------------


def test_a_24_hour_video_at_5_fps_settles_in_small_items(stack: LocalStack) -> None:
    """432,000 frames (24 h at 5 fps) without decoding 24 h of video. Main kept one set of
    every frame index on one item: about 2.6 MB by then, beyond DynamoDB's 400 KB item limit
    (UpdateItem fails at about 6 h at 5 fps; moto refuses it too, in minutes, so not here),
    every ADD answered with the whole item. Now: split_frames' real plan (288 segments of
    1,500 frames), every frame's segment found from its index alone as detect_people finds
    it, the completeness of all 288 segments decided by the core, and the barrier's real
    writes on the local DynamoDB for the first, a middle and the last segment (the first in
    detect_people's batches of 16): no item or answer grows with the video's length."""
    from vidsift.core import segments
    from vidsift.core.frames import SamplingOptions
    from vidsift.stages import barrier
    from vidsift.stages.splitting import SplitConfig, _per, _span_s

    options = SamplingOptions(fps=5.0)
    config = SplitConfig(frames_bucket="", options=options, segment_seconds=300.0, queue_url=None)
    spans = segments.plan(24 * 3600.0, options, _span_s(config, options))
    per = _per(spans, options)
    assert (len(spans), per) == (288, 1500)
    video_doc = {"per": per, "segments": len(spans)}
    by_segment: dict[int, set[int]] = {}
    for i in range(24 * 3600 * 5):
        by_segment.setdefault(barrier.segment_of(video_doc, i), set()).add(i)
    assert sorted(by_segment) == list(range(288)) and {len(v) for v in by_segment.values()} == {1500}
    items = {k: completion.sampled_fields(1500, min(v), max(v), spans[k][0]) | {"done": v}
             for k, v in by_segment.items()}
    items[100]["done"] = items[100]["done"] - {150_000} | {7}  # one missing; an extra frame cannot hide it
    assert [k for k, item in items.items() if not completion.segment_detected(item)] == [100]

    table = stack.names.tracking_table
    queue = aws.client("sqs").create_queue(QueueName="vidsift-local-24h-segments")["QueueUrl"]
    video = "day-long-5fps"
    barrier.begin_video(table, video, segments=len(spans), per=per, source="s3://raw/uploads/day.mp4", version="v1")
    answered: list[int] = []  # bytes of each UpdateItem's answer

    def measure(parsed: dict[str, Any], **_: Any) -> None:
        answered.append(len(json.dumps(parsed.get("Attributes", {}))))

    ddb = aws.client("dynamodb")
    ddb.meta.events.register("after-call.dynamodb.UpdateItem", measure)
    try:
        for k in (0, 143, 287):
            frames = sorted(by_segment[k])
            barrier.report_sampled(table, queue, video, k, completion.sampled_fields(per, frames[0], frames[-1],
                                                                                   spans[k][0]))
            batches = [frames[n:n + 16] for n in range(0, per, 16)] if k == 0 else [frames[:750], frames[750:]]
            for batch in batches:
                barrier.settle(table, queue, video, k, done=set(batch))
    finally:
        ddb.meta.events.unregister("after-call.dynamodb.UpdateItem", measure)
    sent = []
    while got := aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        sent += [json.loads(m["Body"])[completion.SEGMENT_MESSAGE]["segment"] for m in got]
        aws.client("sqs").delete_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    assert sent == [0, 143, 287]  # each segment sent on once, by the update that completed it
    for k in (0, 143, 287):
        item = ddb.get_item(TableName=table, Key={"part": {"S": completion.segment_part(video, k)},
                                                  "n": {"N": str(PROGRESS_N)}})["Item"]
        assert len(json.dumps(item)) < 20_000  # about 11 KB a segment, whatever the video's length
    assert len(answered) == 3 + 94 + 4 and max(answered) < 20_000  # UPDATED_NEW: one segment's sets at most
    assert len(json.dumps(sorted(range(24 * 3600 * 5)))) > 400_000 * 6  # main's one set, as text
