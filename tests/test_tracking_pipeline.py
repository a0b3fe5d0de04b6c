"""People followed through videos on the embedded local AWS: track ids on every row, faces
once per visit, replays that change nothing, and a lost frame that does not stall its video."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from vidsift import aws, contract
from vidsift.core import completion, ids, keys
from vidsift.local.dispatcher import Dispatcher
from vidsift.local.results import analytics_rows
from vidsift.stages.splitting import SplitConfig, _report_sampled
from vidsift.storage.progress import TRACKING_TTL_S, DynamoProgressStore


def _upload(stack: Any, path: Path, key: str) -> str:
    s3, raw = aws.client("s3"), stack.names.bucket("raw")
    s3.upload_file(str(path), raw, key)
    etag = s3.head_object(Bucket=raw, Key=key)["ETag"].strip('"')
    return ids.video_id(raw, key, etag)


def _rows(stack: Any, table: str, video: str) -> list[dict[str, Any]]:
    return [r for r in analytics_rows(stack, table) if r["video_id"] == video]


@pytest.fixture(scope="module")
def tracked(local_stack: Any, people_video: Path) -> dict[str, Any]:
    video = _upload(local_stack, people_video, "uploads/tracking/people clip.mp4")
    assert Dispatcher(local_stack).run_until_idle(timeout_s=300)
    return {"video": video, **{t: _rows(local_stack, t, video) for t in contract.TABLES}}


def test_one_visit_is_one_track_and_every_row_names_it(tracked: dict[str, Any]) -> None:
    tracks = tracked["tracks"]
    assert [t["track_id"] for t in tracks] == ["p001"]  # the astronaut, 2 s of the clip's 6
    t = tracks[0]
    assert (t["first_seen_s"], t["last_seen_s"], t["duration_s"], t["frames"]) == (2.0, 3.0, 1.0, 2)
    with_people = [r for r in tracked["people"] if r["person_count"]]
    assert {r["frame_index"] for r in with_people} == {2, 3}
    assert all(b["track_id"] == "p001" for r in with_people for b in json.loads(r["boxes"]))
    assert t["best_frame_key"] in {keys.frame_key(tracked["video"], i) for i in (2, 3)}
    assert [p[0] for p in json.loads(t["path"])] == [2.0, 3.0]
    assert tracked["faces"] and {f["track_id"] for f in tracked["faces"]} == {"p001"}
    assert t["faces"] == len(tracked["faces"]) and t["age_low"] is not None and t["gender"] is not None
    # DetectFaces on the visit's chosen frames only: its best frame (the person did not come closer)
    assert t["face_frames"] == 1 and {f["frame_index"] for f in tracked["faces"]} <= {2, 3}
    assert t["captured_at_first"] is None and t["gap_frames"] == 0


def test_replayed_tracking_messages_add_no_rows(local_stack: Any, tracked: dict[str, Any]) -> None:
    video = tracked["video"]
    before = {t: sorted(r["record_id"] for r in _rows(local_stack, t, video)) for t in contract.TABLES}
    analytics = local_stack.names.bucket("analytics")
    objects = len(aws.client("s3").list_objects_v2(Bucket=analytics)["Contents"])
    aws.send_messages(local_stack.queue_urls["track_people"],
                      [completion.SegmentMessage(video, 0).to_json(), completion.VideoMessage(video).to_json()])
    assert Dispatcher(local_stack).run_until_idle(timeout_s=120)
    after = {t: sorted(r["record_id"] for r in _rows(local_stack, t, video)) for t in contract.TABLES}
    assert after == before
    assert len(aws.client("s3").list_objects_v2(Bucket=analytics)["Contents"]) == objects


def test_a_frame_lost_to_the_dlq_does_not_stall_its_video(local_stack: Any, short_video: Path) -> None:
    """A frame deleted before detection fails on every delivery; on its last one it is given
    up, and the video is tracked from the frames that arrived, the gap in its track's row."""
    started = int(time.time())
    video = _upload(local_stack, short_video, "uploads/tracking/lost frame.mp4")
    dispatcher = Dispatcher(local_stack)
    while dispatcher.poll("split_frames"):
        pass
    lost = keys.frame_key(video, 1)
    aws.client("s3").delete_object(Bucket=local_stack.names.bucket("frames"), Key=lost)
    assert dispatcher.run_until_idle(timeout_s=300)
    tracks = _rows(local_stack, "tracks", video)
    assert [(t["track_id"], t["frames"], t["gap_frames"]) for t in tracks] == [("p001", 2, 1)]
    people = _rows(local_stack, "people", video)
    assert sorted(r["frame_index"] for r in people) == [0, 2]  # no row for the lost frame
    item = DynamoProgressStore(local_stack.names.tracking_table).item(completion.segment_part(video, 0))
    assert completion.real(item["failed"]) == {1} and completion.real(item["done"]) == {0, 2}
    ended_state = DynamoProgressStore(local_stack.names.tracking_table).item(video)
    assert (ended_state["state"], ended_state["gap_frames"], "open" in ended_state) == ("tracked", 1, False)
    # every tracking item expires (the table's TTL), two weeks after its last write
    items = [i for part in (video, completion.segment_part(video, 0))
             for i in aws.client("dynamodb").query(TableName=local_stack.names.tracking_table,
                                                   KeyConditionExpression="part = :p",
                                                   ExpressionAttributeValues={":p": {"S": part}})["Items"]]
    ended = int(time.time())
    assert len(items) == 4  # the video, its segment, its two frames
    assert all(started + TRACKING_TTL_S <= int(i["expires_at"]["N"]) <= ended + TRACKING_TTL_S for i in items)


def test_split_frames_tells_tracking_when_detection_finished_first(local_stack: Any) -> None:
    """The other order: every frame detected before split_frames recorded the count (a retried
    split). Then split_frames' own update completes the video and sends the segments."""
    table, queue = local_stack.names.tracking_table, local_stack.queue_urls["track_people"]
    DynamoProgressStore(table).mark(completion.segment_part("detected-first", 0), add={"done": {0, 1, 2}})
    config = SplitConfig(frames_bucket=local_stack.names.bucket("frames"), options=None, segment_seconds=300,  # type: ignore[arg-type]
                         queue_url=None, tracking_table=table, track_queue_url=queue)
    _report_sampled(config, "detected-first", {"segment": 0, "segments": 1, "frames_kept": 3, "first_index": 0,
                                               "last_index": 2, "start_s": 0.0})
    got = aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"]) for m in got] == [completion.SegmentMessage("detected-first", 0).to_json()]


def test_a_visit_across_a_segment_boundary_is_one_track(local_stack: Any, people_video: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """3 s segments cut the clip's visit (the astronaut, 2-3 s) in two: each segment is
    sampled and tracked alone, then the halves are stitched into one visit."""
    monkeypatch.setenv("SEGMENT_SECONDS", "3")
    video = _upload(local_stack, people_video, "uploads/tracking/two segments.mp4")
    assert Dispatcher(local_stack).run_until_idle(timeout_s=300)
    table = local_stack.names.tracking_table
    item = DynamoProgressStore(table).item(video)
    assert item["segments"] == 2 and completion.real(item["tracked"]) == {0, 1} and item["per"] == 3
    spans = [completion.span(DynamoProgressStore(table).item(completion.segment_part(video, k))) for k in (0, 1)]
    assert (spans[0][2], spans[1][1]) == (2, 3)  # the visit straddles the cut
    tracks = _rows(local_stack, "tracks", video)
    assert [(t["track_id"], t["frames"], t["first_seen_s"], t["last_seen_s"]) for t in tracks] == [
        ("p001", 2, 2.0, 3.0)]
    boxes = [b for r in _rows(local_stack, "people", video) for b in json.loads(r["boxes"])]
    assert [b["track_id"] for b in boxes] == ["p001", "p001"]
