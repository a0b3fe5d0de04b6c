"""The tracker's second pass, live in the pipeline (issue 24): detect_people asks the endpoint
for boxes down to PERSON_TRACK_CONFIDENCE in the same call, keeps those under
PERSON_MIN_CONFIDENCE apart (low boxes), and track_people lets them only continue someone
already tracked. A low box that continued a track is part of that person's visit (first and
last seen, dwell); a low box alone is nobody: no visit, no people row box, no face work, no
copy, no alert. The boxes here are the endpoint's answers, fixed (a fake endpoint), so every
figure is exact."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from vidsift import aws
from vidsift.core import completion, keys
from vidsift.core.detection import Box, Detection, build_request, parse_response
from vidsift.core.errors import ConfigError
from vidsift.core.messages import DetectedFrame, FaceWork
from vidsift.core.records import FrameMeta
from vidsift.core.tracking import FramePeople, TrackParams, track_segment
from vidsift.deploy import checks as deploy_checks
from vidsift.local.dispatcher import Dispatcher
from vidsift.local.results import analytics_rows
from vidsift.local.stack import LocalStack
from vidsift.settings import Settings
from vidsift.storage.progress import DynamoProgressStore
from vidsift.testing.localcheck import count_sampled

SURE, UNSURE, NOISE = 0.9, 0.4, 0.35


def walker(i: int, confidence: float) -> dict[str, float]:
    """Someone walking right, 0.05 of the frame (a sixth of their height) a second; their low
    boxes (frames 3-4) are a little taller, so were they eligible they would be the best face."""
    return {"left": 0.1 + 0.05 * i, "top": 0.3, "width": 0.1, "height": 0.33 if confidence < 0.5 else 0.3,
            "confidence": confidence}


#: A figure the detector is never sure of, standing at the right: low boxes in every frame.
STRANGER = {"left": 0.75, "top": 0.2, "width": 0.12, "height": 0.4, "confidence": NOISE}


def walker_scene() -> dict[int, list[dict[str, float]]]:
    """Frames 0-4: the walker confident in 0-2, unsure (low) in 3-4; the stranger always low."""
    return {i: [walker(i, SURE if i < 3 else UNSURE), STRANGER] for i in range(5)}


def lone_scene() -> dict[int, list[dict[str, float]]]:
    """Frames 0-4: only low boxes (someone the detector is never sure of)."""
    return {i: [walker(i, UNSURE), STRANGER] for i in range(5)}


# --- the pieces, without a stack ---------------------------------------------------------


def test_the_answer_keeps_low_boxes_apart_and_counts_only_the_confident() -> None:
    doc = {"model": "m", "predictions": [{"boxes": [walker(0, UNSURE), walker(1, SURE)]}, {"boxes": [STRANGER]}]}
    first, second = parse_response(doc, 2, 0.5)
    assert [b.confidence for b in first.boxes] == [SURE] and [b.confidence for b in first.low_boxes] == [UNSURE]
    assert (first.person_count, first.max_confidence) == (1, SURE)
    assert (second.boxes, second.person_count, second.max_confidence) == ((), 0, None)
    assert [b.confidence for b in second.low_boxes] == [NOISE]
    # Without a threshold every box is confident, as the bench's parser and older callers read it.
    assert [len(d.boxes) for d in parse_response(doc, 2)] == [2, 1]


def test_a_detected_frame_carries_its_low_boxes_and_reads_as_before_without_them() -> None:
    meta = FrameMeta("v", "raw", "uploads/v.mp4", "c", 3, 3.0, None)
    sure, low = Box(0.1, 0.1, 0.1, 0.3, SURE, (0.5, 0.5)), Box(0.5, 0.1, 0.1, 0.3, UNSURE, (0.25, 0.75))
    frame = DetectedFrame.of(meta, Detection("m", (sure,), low_boxes=(low,)))
    doc = json.loads(json.dumps(frame.to_json()))
    assert DetectedFrame.from_json(doc) == frame and frame.tracked_boxes == (sure, low)
    assert frame.detection.person_count == 1
    plain = DetectedFrame.of(meta, Detection("m", (sure,)))
    assert set(plain.to_json()) == {"meta", "model", "boxes"}  # the document stored before low boxes
    assert DetectedFrame.from_json(plain.to_json()).low_boxes == ()


def _frames(scene: dict[int, list[dict[str, float]]]) -> list[FramePeople]:
    return [FramePeople(i, float(i), tuple(Box.from_doc(b) for b in boxes)) for i, boxes in scene.items()]


def test_a_low_box_continues_a_track_and_never_starts_one() -> None:
    params = TrackParams(track_confidence=0.5)
    tracks = track_segment(_frames(walker_scene()), params)
    assert [[(p.frame_index, p.box.confidence) for p in t.points] for t in tracks] == [
        [(0, SURE), (1, SURE), (2, SURE), (3, UNSURE), (4, UNSURE)]]
    assert track_segment(_frames(lone_scene()), params) == []


def test_person_track_confidence_defaults_and_limits() -> None:
    assert Settings.parse({}).person_track_confidence == 0.3
    assert Settings.parse({"PERSON_TRACK_CONFIDENCE": "0.4"}).person_track_confidence == 0.4
    # unset, it never exceeds a lowered PERSON_MIN_CONFIDENCE; equal to it, the second pass is off
    assert Settings.parse({"PERSON_MIN_CONFIDENCE": "0.2"}).person_track_confidence == 0.2
    assert Settings.parse({"PERSON_TRACK_CONFIDENCE": "0.5"}).person_track_confidence == 0.5
    # the tracker's track_confidence is PERSON_MIN_CONFIDENCE: the low boxes only continue tracks
    assert Settings.parse({}).track.track_confidence == 0.5
    assert Settings.parse({"PERSON_MIN_CONFIDENCE": "0.6", "TRACK_MAX_GAP_S": "3"}).track == TrackParams(
        max_gap_s=3.0, track_confidence=0.6)
    for bad in ("0.6", "x", "-0.1"):
        with pytest.raises(ConfigError, match="PERSON_TRACK_CONFIDENCE"):
            _ = Settings.parse({"PERSON_TRACK_CONFIDENCE": bad}).person_track_confidence
    with pytest.raises(ConfigError, match=r"PERSON_TRACK_CONFIDENCE='0\.45' must be at most PERSON_MIN_CONFIDENCE"):
        _ = Settings.parse({"PERSON_MIN_CONFIDENCE": "0.4", "PERSON_TRACK_CONFIDENCE": "0.45"}).person_track_confidence


def test_the_deploy_check_refuses_a_track_confidence_above_the_min_confidence() -> None:
    ok = {"personMinConfidence": "0.5", "personTrackConfidence": "0.3"}
    assert deploy_checks.param_problems(ok) == []
    assert deploy_checks.param_problems(ok | {"personTrackConfidence": "0.5"}) == []
    assert deploy_checks.param_problems(ok | {"personTrackConfidence": "0.6"}) == [
        "personTrackConfidence=0.6: must be at most personMinConfidence (0.5)"]
    assert deploy_checks.param_problems(ok | {"personTrackConfidence": "2"})  # outside 0-1


def test_the_request_asks_down_to_the_given_threshold() -> None:
    assert build_request(["s3://b/k"], 0.3)["min_confidence"] == 0.3


# --- the pipeline, on the local stack with a fake endpoint ----------------------------------


class FakeEndpoint:
    """The endpoint's answers fixed per frame key; every request kept, to see what was asked."""

    def __init__(self, scenes: dict[str, dict[int, list[dict[str, float]]]]) -> None:
        self.scenes = scenes
        self.requests: list[dict[str, Any]] = []

    def __call__(self, endpoint: str, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        self.requests.append(payload)
        preds = []
        for instance in payload["instances"]:
            bucket, key = instance["s3_uri"].removeprefix("s3://").split("/", 1)
            video, index = keys.parse_frame_key(key) or ("", -1)
            boxes = [b for b in self.scenes[video][index] if b["confidence"] >= payload["min_confidence"]]
            metadata = aws.client("s3").head_object(Bucket=bucket, Key=key)["Metadata"]
            preds.append({"boxes": boxes, "metadata": metadata})
        return {"model": "fake-detector", "predictions": preds}, {}


def _blank_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 90, 90)).save(buf, "JPEG")
    return buf.getvalue()


def _rows(stack: LocalStack, table: str, video: str) -> list[dict[str, Any]]:
    return sorted((r for r in analytics_rows(stack, table) if r["video_id"] == video), key=lambda r: r["record_id"])


@pytest.fixture(scope="module")
def run(local_stack: LocalStack) -> Iterator[tuple[LocalStack, FakeEndpoint, Dispatcher]]:
    fake = FakeEndpoint({"lowbox-walker": walker_scene(), "lowbox-alone": lone_scene()})
    patch = pytest.MonkeyPatch()
    patch.setattr(aws, "invoke_endpoint", fake)
    assert Dispatcher(local_stack).run_until_idle(timeout_s=60)  # S3's test events on the new notifications
    d = Dispatcher(local_stack)
    body = _blank_jpeg()
    for video, scene in fake.scenes.items():
        for i in scene:
            meta = FrameMeta(video, "raw", f"uploads/{video}.mp4", "c", i, float(i), None)
            aws.client("s3").put_object(Bucket=local_stack.names.bucket("frames"), Key=keys.frame_key(video, i),
                                        Body=body, Metadata=meta.to_s3())
            count_sampled(local_stack, video, i)
    assert d.run_until_idle(timeout_s=300)
    yield local_stack, fake, d
    patch.undo()


def test_one_endpoint_call_per_batch_asks_down_to_the_track_confidence(run: Any) -> None:
    _, fake, d = run
    assert fake.requests and {r["min_confidence"] for r in fake.requests} == {0.3}
    assert sum(len(r["instances"]) for r in fake.requests) == 10  # each frame once
    assert len(fake.requests) == d.stats["detect_people"].invocations  # one call per batch, as before


def test_a_low_box_continues_its_visit(run: Any) -> None:
    stack, _, _ = run
    video = "lowbox-walker"
    (track,) = _rows(stack, "tracks", video)
    # frames 3-4 were low boxes: still this visit, their time counted in its dwell
    assert (track["first_seen_s"], track["last_seen_s"], track["duration_s"], track["frames"]) == (0.0, 4.0, 4.0, 5)
    assert [p[0] for p in json.loads(track["path"])] == [0.0, 1.0, 2.0, 3.0, 4.0]
    # its thumbnail and face frames among its confident boxes (the taller low boxes are not)
    assert track["best_frame_key"] in {keys.frame_key(video, i) for i in (0, 1, 2)}
    work = FaceWork.from_json(aws.get_json(stack.names.bucket("people"), keys.faces_work_key(video, track["track_id"])))
    assert [f.frame_index for f in work.frames] and all(f.frame_index < 3 for f in work.frames)
    assert all(b.confidence >= 0.5 for f in work.frames for _, b in f.people)  # no stranger's low box


def test_the_people_rows_count_only_confident_boxes(run: Any) -> None:
    stack, _, _ = run
    video = "lowbox-walker"
    (track,) = _rows(stack, "tracks", video)
    rows = {r["frame_index"]: r for r in _rows(stack, "people", video)}
    assert [rows[i]["person_count"] for i in range(5)] == [1, 1, 1, 0, 0]
    assert [rows[i]["max_confidence"] for i in range(5)] == [SURE, SURE, SURE, None, None]
    ids = [[b["track_id"] for b in json.loads(rows[i]["boxes"])] for i in range(5)]
    assert ids == [[track["track_id"]]] * 3 + [[]] * 2
    # only frames with a confident person are copied to the people bucket (their count and best score)
    people = stack.names.bucket("people")
    listed = aws.client("s3").list_objects_v2(Bucket=people, Prefix=f"{video}/").get("Contents", [])
    copies = sorted(o["Key"] for o in listed)
    assert copies == [keys.frame_key(video, i) for i in range(3)]
    head = aws.client("s3").head_object(Bucket=people, Key=copies[0])["Metadata"]
    assert (head["person-count"], head["max-confidence"]) == ("1", str(SURE))
    # the tracker was handed the low boxes: the tracking table keeps them beside the confident ones
    docs = [DetectedFrame.from_json(d) for d in
            DynamoProgressStore(stack.names.tracking_table).frames(completion.segment_part(video, 0))]
    assert [(len(d.boxes), len(d.low_boxes)) for d in docs] == [(1, 1), (1, 1), (1, 1), (0, 2), (0, 2)]


def test_low_boxes_alone_make_no_visit(run: Any) -> None:
    stack, _, _ = run
    video = "lowbox-alone"
    assert _rows(stack, "tracks", video) == [] and _rows(stack, "faces", video) == []
    rows = _rows(stack, "people", video)
    assert [(r["person_count"], r["boxes"]) for r in rows] == [(0, "[]")] * 5
    assert aws.client("s3").list_objects_v2(Bucket=stack.names.bucket("people"), Prefix=f"{video}/").get(
        "KeyCount", 0) == 0  # no copy, so no face work and no alert link


def test_a_replay_gives_the_same_rows(run: Any) -> None:
    stack, fake, d = run
    video = "lowbox-walker"

    def rows() -> dict[str, list[dict[str, Any]]]:
        return {t: [{k: v for k, v in r.items() if k not in ("processed_at", "dt")} for r in _rows(stack, t, video)]
                for t in ("people", "tracks")}

    before, calls = rows(), len(fake.requests)
    aws.send_messages(stack.queue_urls["track_people"],
                      [completion.SegmentMessage(video, 0).to_json(), completion.VideoMessage(video).to_json()])
    assert d.run_until_idle(timeout_s=120)
    after = rows()
    assert after == before and len(fake.requests) == calls
