"""The recorder: the clip rule frame by frame, then the real model on a video with people.

The scripted detector below is a test double for the clip rule only (it answers by frame time);
the end-to-end test runs the pipeline's real SSDLite person model through OpenCV DNN.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import boto3
import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.clips import SPLIT, START, STOP, ClipRule, ClipSettings, HoursWindow
from edge.config import EdgeConfig
from edge.detector import SsdLitePersonDetector
from edge.queue import SNAPSHOT_PRIORITY, UploadQueue
from edge.recorder import Recorder
from edge.source import LiveSource, TimedFrame
from edge.testing import people_video, photo, reset_moto, start_moto, use_local_s3
from vidsift.contract import local_names
from vidsift.core.records import parse_iso
from vidsift.core.snapshots import is_snapshot, snapshot_meta

BUCKET = local_names().bucket("raw")
FPS = 10


# -- the clip rule, frame by frame ------------------------------------------------------------
def run_rule(rule: ClipRule, person_at, seconds: float, allowed=lambda t: True) -> list[tuple[float, float]]:
    """Feed the rule 10 fps frames; person_at(t) -> bool. Returns clips as (first_t, last_t)."""
    clips, first, last, oldest = [], None, None, 0.0
    for i in range(round(seconds * FPS)):
        t = i / FPS
        event = rule.step(t, person_at(t), allowed(t), oldest)
        if event in (STOP, SPLIT):
            clips.append((first, last))
            oldest = t  # the recorder starts a fresh pre-roll buffer after a clip
        if event in (START, SPLIT):
            first = rule.first_t
        if rule.recording:
            last = t
    if rule.recording:
        clips.append((first, last))
    return [(round(a, 2), round(b, 2)) for a, b in clips]


def within(*spans):
    return lambda t: any(a <= t < b for a, b in spans)


def test_pre_roll_and_stop_after_no_person():
    rule = ClipRule(ClipSettings(pre_roll_s=3, post_roll_s=5, max_clip_s=20, min_gap_s=60))
    assert run_rule(rule, within((10, 12)), 30) == [(7.0, 16.8)]  # last person at 11.9, +5 s


def test_pre_roll_is_limited_to_what_was_buffered():
    rule = ClipRule(ClipSettings(pre_roll_s=3, post_roll_s=1, max_clip_s=20, min_gap_s=0))
    assert rule.step(5.0, True, True, oldest_buffered_t=4.2) == START
    assert rule.first_t == 4.2


def test_a_presence_longer_than_max_clip_is_recorded_whole_in_parts():
    rule = ClipRule(ClipSettings(pre_roll_s=2, post_roll_s=2, max_clip_s=6, min_gap_s=10))
    # A person for 22 s: each part is cut at 6 s and the next begins at the very next frame.
    assert run_rule(rule, within((5, 27)), 35) == [(3.0, 8.9), (9.0, 14.9), (15.0, 20.9), (21.0, 26.9),
                                                   (27.0, 28.8)]


def test_parts_join_frame_to_frame_and_number_from_one():
    rule = ClipRule(ClipSettings(pre_roll_s=1, post_roll_s=2, max_clip_s=4, min_gap_s=0))
    events = [(i / 10, rule.step(i / 10, 3 <= i / 10 < 12, True, 0.0), rule.part) for i in range(200)]
    marks = [(round(t, 1), e, part) for t, e, part in events if e]
    assert marks == [(3.0, START, 1), (6.0, SPLIT, 2), (10.0, SPLIT, 3), (13.9, STOP, 3)]
    assert rule.presences == 1


def test_min_gap_only_rate_limits_new_presences():
    rule = ClipRule(ClipSettings(pre_roll_s=1, post_roll_s=1, max_clip_s=60, min_gap_s=10))
    # A flapping detector: blips at 2, 5, 9, 14 and 20 s. The presence starting at 1 s (pre-roll)
    # holds off the blips at 5 and 9 s; 14 s starts one (at 13 s), which holds off 20 s.
    blips = lambda t: any(abs(t - b) < 0.05 for b in (2, 5, 9, 14, 20))  # noqa: E731
    assert run_rule(rule, blips, 30) == [(1.0, 2.9), (13.0, 14.9)]
    assert rule.presences == 2


def test_a_presence_outliving_the_hours_window_stops_at_its_next_part():
    rule = ClipRule(ClipSettings(pre_roll_s=0, post_roll_s=2, max_clip_s=5, min_gap_s=0))
    assert run_rule(rule, within((0, 30)), 30, allowed=lambda t: t < 7) == [(0.0, 4.9), (5.0, 9.9)]


def test_detector_not_run_is_not_no_person():
    rule = ClipRule(ClipSettings(pre_roll_s=0, post_roll_s=1, max_clip_s=60, min_gap_s=0))
    # detections only every 0.8 s (None in between) keep the clip alive across the gaps
    seen = lambda t: True if round(t * 10) % 8 == 0 and t < 10 else (False if t >= 10 else None)  # noqa: E731
    assert run_rule(rule, seen, 15) == [(0.0, 10.5)]  # last person seen at 9.6, +1 s


def test_operating_hours_gate_clip_starts_only():
    rule = ClipRule(ClipSettings(pre_roll_s=1, post_roll_s=1, max_clip_s=60, min_gap_s=0))
    clips = run_rule(rule, within((2, 4), (10, 14)), 20, allowed=lambda t: t >= 9)
    assert clips == [(9.0, 14.8)]  # the 2-4 s person is outside the hours; last person at 13.9, +1 s


def test_hours_window():
    local = datetime(2025, 3, 1, 0, 0).astimezone()
    day, night = HoursWindow.parse("07:00-19:00"), HoursWindow.parse("22:00-06:30")
    assert day.contains(local.replace(hour=7)) and not day.contains(local.replace(hour=19))
    assert night.contains(local.replace(hour=23)) and night.contains(local.replace(hour=6, minute=29))
    assert not night.contains(local.replace(hour=12))
    assert HoursWindow.parse("00:00-24:00").contains(local.replace(hour=13))


# -- the recorder with a scripted detector (clip assembly, encoding, queueing) -------------------
class ScriptedDetector:
    """Test double: 'sees' a person whenever the frame's time is in one of the spans."""

    name = "scripted"

    def __init__(self, spans):
        self.spans, self.now, self.calls = spans, 0.0, 0

    def detect(self, frame_bgr):
        self.calls += 1
        if any(a <= self.now < b for a, b in self.spans):
            return [(0.9, (10, 10, 40, 60)), (0.7, (50, 10, 80, 60))]
        return []


def marker(i: int) -> int:
    return 20 + (i * 10) % 220


def frame_number(image: np.ndarray, near: int) -> int:
    """Which frame (within +-10 of ``near``) this decoded image is, by its marker block."""
    level = float(image[8:24, 8:24].mean())
    return min(range(max(0, near - 10), near + 11), key=lambda i: abs(marker(i) - level))


def noise_frames(seconds: float, start_wall: datetime, detector: ScriptedDetector, size=(96, 64)):
    rng = np.random.default_rng(0)
    for i in range(round(seconds * FPS)):
        t = i / FPS
        detector.now = t
        img = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        img[:32, :32] = marker(i)  # the frame number, to find the frame again in the encoded clip
        yield TimedFrame(t, start_wall + timedelta(seconds=t), img)


def decode(path: Path) -> tuple[list[float], list[np.ndarray]]:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
        return [f.time for f in frames], [f.to_ndarray(format="bgr24") for f in frames]


def test_recorder_writes_queues_and_snapshots_clips(tmp_path):
    start = datetime(2025, 6, 1, 9, 0, 0, tzinfo=UTC)
    cfg = EdgeConfig(bucket=BUCKET, state_dir=tmp_path / "state", pre_roll_s=2, post_roll_s=2, max_clip_s=6,
                     min_gap_s=10, detect_fps=10, threshold=0.5)
    queue = UploadQueue(cfg.state_dir)
    det = ScriptedDetector([(5, 8), (20, 32)])
    rec = Recorder(cfg, queue, det, camera_id="cam-1", device_id="dev-1", fps=FPS)
    clips = rec.run(noise_frames(32, start, det))
    spans = [(round(c.first_t, 2), round(c.last_t, 2), c.stop_reason) for c in clips]
    # Two presences (5-8 s and 20-32 s), each recorded whole: a part ends at 6 s and the next
    # begins with the following frame; the second presence may start 10 s after the first stopped.
    assert spans == [(3.0, 8.9, "maximum length 6 s, continues in part 2"), (9.0, 9.8, "no person for 2 s"),
                     (18.0, 23.9, "maximum length 6 s, continues in part 2"),
                     (24.0, 29.9, "maximum length 6 s, continues in part 3"), (30.0, 31.9, "source ended")]
    assert [(c.part, c.group_id == clips[0].group_id) for c in clips] == \
        [(1, True), (2, True), (1, False), (2, False), (3, False)]
    assert clips[2].group_id == clips[3].group_id == clips[4].group_id and len(clips[0].group_id) == 32
    for c in clips:
        assert (c.queued.metadata["group-id"], c.queued.metadata["part"]) == (c.group_id, str(c.part))
        times, images = decode(c.path)
        assert len(times) == round((c.last_t - c.first_t) * FPS) + 1
        assert abs(times[-1] - times[0] - (c.last_t - c.first_t)) < 0.01
        first = round(c.first_t * FPS)
        assert frame_number(images[0], first) == first  # the clip opens with the first pre-roll frame
        assert frame_number(images[-1], round(c.last_t * FPS)) == round(c.last_t * FPS)
        md = c.queued.metadata
        assert md["recorded-at"] == (start + timedelta(seconds=c.first_t)).isoformat(timespec="milliseconds")\
            .replace("+00:00", "Z")
        seen = c.part == 1 or c.first_t >= 20  # the 9.0-9.8 s part is the first presence's post-roll
        assert (md["edge-max-people"], md["edge-max-confidence"]) == (("2", "0.9000") if seen else ("0", "0.0000"))
        assert md["edge-detector"] == "scripted" and md["edge-threshold"] == "0.5"
        assert md["frame-width"] == "96" and md["frame-height"] == "64"
        assert float(md["duration-s"]) == pytest.approx(c.last_t - c.first_t + 1 / FPS, abs=0.15)
    queued = queue.all()
    snaps = [q for q in queued if q.content_type == "image/jpeg"]
    # One snapshot per presence, not per part: it names the presence's first part and group.
    assert len(snaps) == 2 and all(s.priority == SNAPSHOT_PRIORITY for s in snaps)
    assert {(s.metadata["clip-key"], s.metadata["group-id"]) for s in snaps} == \
        {(c.key, c.group_id) for c in clips if c.part == 1}
    assert all(s.key.startswith("uploads/snapshots/") and s.key.endswith(".jpg") for s in snaps)
    # What detect_people makes of them (the alert fast lane): the camera, the detection's wall
    # time, the clip to follow; read with the same keys the edge wrote.
    by_clip = {c.key: c for c in clips}
    for snap in snaps:
        assert is_snapshot(BUCKET, snap.key, BUCKET)
        meta = snapshot_meta(BUCKET, snap.key, "etag", snap.metadata)
        assert meta.camera_id == "cam-1" and meta.alert_only and meta.clip_key in by_clip
        clip = by_clip[meta.clip_key]
        assert clip.first_t <= (parse_iso(meta.captured_at) - start).total_seconds() <= clip.last_t
    assert not list((cfg.state_dir / "spool").rglob("*.part"))


def test_detector_runs_only_on_moving_frames(tmp_path):
    cfg = EdgeConfig(bucket=BUCKET, state_dir=tmp_path / "state", detect_fps=10, snapshots=False)
    det = ScriptedDetector([(0, 100)])
    rec = Recorder(cfg, None, det, camera_id="c", device_id="d", fps=FPS)
    still = np.full((64, 96, 3), 128, np.uint8)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rec.run(TimedFrame(i / FPS, start, still) for i in range(50))
    assert det.calls == 0 and rec.clips == []


def test_a_person_standing_still_keeps_the_clip_going(tmp_path):
    """A person walks in (motion), then stands still: the clip must not end after post_roll_s
    for want of motion while the person is still there; it ends at the maximum length."""
    cfg = EdgeConfig(bucket=BUCKET, state_dir=tmp_path / "state", pre_roll_s=1, post_roll_s=2, max_clip_s=8,
                     detect_fps=5, snapshots=False)
    det = ScriptedDetector([(1, 100)])
    rec = Recorder(cfg, UploadQueue(cfg.state_dir), det, camera_id="c", device_id="d", fps=FPS)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    moving = noise_frames(2, start, det)
    still = np.full((64, 96, 3), 128, np.uint8)

    def frames():
        yield from moving
        for i in range(round(2 * FPS), round(12 * FPS)):
            det.now = i / FPS
            yield TimedFrame(i / FPS, start + timedelta(seconds=i / FPS), still)

    clips = rec.run(frames())
    first = clips[0]
    assert first.stop_reason == "maximum length 8 s, continues in part 2" and first.last_t - first.first_t >= 7.8


# -- a camera that drops ----------------------------------------------------------------------
def test_live_source_reconnects_after_the_camera_drops(caplog):
    connections = {"n": 0}

    class Camera(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            connections["n"] += 1
            if connections["n"] == 1:  # not up yet
                self.send_error(503)
                return
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            for i in range(12):
                _, jpg = cv2.imencode(".jpg", np.full((48, 64, 3), i * 20, np.uint8))
                data = jpg.tobytes()
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                 % (len(data), data))
                self.wfile.flush()
                time.sleep(0.01)
            # then the connection drops, as a camera losing power or Wi-Fi does

    server = ThreadingHTTPServer(("127.0.0.1", 0), Camera)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = LiveSource(f"http://user:secret@127.0.0.1:{server.server_address[1]}/video.mjpg",
                            reconnect_base_s=0.1, reconnect_max_s=0.5)
        stop = threading.Event()
        got = 0
        with caplog.at_level(logging.INFO, logger="edge.source"):
            for frame in source.frames(stop):
                got += 1
                assert frame.image.shape == (48, 64, 3)
                if got >= 30:
                    stop.set()
    finally:
        server.shutdown()
        server.server_close()
    assert got == 30 and connections["n"] >= 4  # one refused, then 12 frames per connection
    assert source.reconnects >= 2
    assert "cannot open" in caplog.text and "stream dropped; reconnecting" in caplog.text
    assert "secret" not in caplog.text  # camera passwords stay out of logs


# -- end to end: the real person model on a video with and without people ---------------------
SEGMENTS = [("coffee", 3), ("astronaut", 3), ("rocket", 8), ("camera", 14), ("chelsea", 7), ("grace_hopper", 3),
            ("coffee", 3)]
PEOPLE = {"astronaut", "camera", "grace_hopper"}


@pytest.fixture(scope="module")
def people_mp4(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "street.mp4"
    return path, people_video(path, SEGMENTS, fps=FPS, size=(320, 240))


@pytest.fixture
def s3(monkeypatch, tmp_path):
    server, port = start_moto()
    reset_moto(port)
    url = f"http://127.0.0.1:{port}"
    use_local_s3(monkeypatch, tmp_path, url)
    admin = boto3.client("s3", endpoint_url=url)
    admin.create_bucket(Bucket=BUCKET)
    # SSE-S3 by default, as every S3 bucket (the edge's default sse = "bucket" asks for none).
    admin.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    yield admin
    server.stop()


def closest_photo(image: np.ndarray) -> str:
    def grey(img):
        return cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), (80, 60)).astype(np.float32)

    scores = {}
    for name, _ in SEGMENTS:
        ref = cv2.resize(cv2.cvtColor(photo(name), cv2.COLOR_RGB2BGR), (336, 256))[8:248, 8:328]
        scores[name] = float(np.abs(grey(ref) - grey(image)).mean())
    return min(scores, key=scores.get)


def test_record_command_on_a_video_with_people_uploads_the_right_clips(people_mp4, s3, tmp_path, capsys,
                                                                       ssdlite_pbtxt):
    video, timeline = people_mp4
    start = datetime(2025, 6, 1, 8, 30, 0, tzinfo=UTC)
    settings = {"pre_roll_s": 2.0, "post_roll_s": 2.0, "max_clip_s": 8.0, "min_gap_s": 10.0}
    argv = ["record", str(video), "--start-time", "2025-06-01T08:30:00Z", "--bucket", BUCKET,
            "--state-dir", str(tmp_path / "state"), "--camera-id", "cam-street", "--device-id", "pi-1",
            "--detect-fps", "4", "--threshold", "0.5", "--backoff-base-s", "0.05", "--max-wait", "60",
            "--detector-threads", "1", "--model-pbtxt", str(ssdlite_pbtxt)]
    for k, v in settings.items():
        argv += ["--" + k.replace("_", "-"), str(v)]
    threads = cv2.getNumThreads()
    try:
        assert main(argv) == 0
    finally:
        cv2.setNumThreads(threads)  # process-wide: leave it as other tests expect

    objs = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    clip_keys = [k for k in objs if k.endswith(".mp4")]
    snap_keys = [k for k in objs if k.startswith("uploads/snapshots/")]
    clips = []
    for key in clip_keys:
        obj = s3.get_object(Bucket=BUCKET, Key=key)
        md = obj["Metadata"]
        assert obj["ServerSideEncryption"] == "AES256"
        local = tmp_path / key.rsplit("/", 1)[-1]
        local.write_bytes(obj["Body"].read())
        times, images = decode(local)
        first = (datetime.fromisoformat(md["recorded-at"].replace("Z", "+00:00")) - start).total_seconds()
        clips.append({"first": first, "last": first + times[-1] - times[0], "md": md, "images": images})
    clips.sort(key=lambda c: c["first"])
    people = [(a, b) for name, a, b in timeline if name in PEOPLE]
    print([(round(c["first"], 2), round(c["last"], 2)) for c in clips])

    # One presence per person segment, each recorded whole: the 14 s one in parts of at most
    # max_clip_s that join frame to frame and share a group id.
    groups: dict[str, list[dict]] = {}
    for clip in clips:
        groups.setdefault(clip["md"]["group-id"], []).append(clip)
    presences = sorted(groups.values(), key=lambda g: g[0]["first"])
    assert [len(g) for g in presences] == [1, 3, 1], [(c["first"], c["last"]) for c in clips]
    for group, (seg_start, seg_end), before in zip(presences, people, ("coffee", "rocket", "chelsea"), strict=True):
        assert [int(c["md"]["part"]) for c in group] == list(range(1, len(group) + 1))
        head, tail = group[0], group[-1]
        # The presence starts ~pre_roll before the person is detected, on the empty scene...
        assert seg_start - 2.0 - 0.01 <= head["first"] <= seg_start + 2.0
        assert closest_photo(head["images"][0]) == before  # the pre-roll shows the moments before
        # ...and covers the person to the end, with nothing lost or doubled between parts.
        assert tail["last"] >= seg_end - 0.01
        for prev, nxt in itertools.pairwise(group):
            assert nxt["first"] - prev["last"] == pytest.approx(1 / FPS, abs=0.01)
            assert prev["last"] - prev["first"] == pytest.approx(8.0 - 1 / FPS, abs=0.11)  # cut at max length
    for clip in clips:
        assert clip["last"] - clip["first"] <= 8.0
        md = clip["md"]
        assert md["camera-id"] == "cam-street" and md["device-id"] == "pi-1"
        assert md["edge-detector"] == "ssdlite_mobilenet_v2_person" and md["edge-threshold"] == "0.5"
        assert (md["frame-width"], md["frame-height"]) == ("320", "240")
    # No clip over the middle of an empty stretch.
    for name, s, e in timeline:
        if name not in PEOPLE and e - s >= 7:
            mid = (s + e) / 2
            assert not any(cl["first"] <= mid <= cl["last"] for cl in clips), name

    # Snapshots: one per presence (not per part), outside the video notification's suffixes, showing a person.
    assert len(snap_keys) == 3
    detector = SsdLitePersonDetector(pbtxt=ssdlite_pbtxt)
    for key in snap_keys:
        obj = s3.get_object(Bucket=BUCKET, Key=key)
        assert obj["ContentType"] == "image/jpeg" and obj["Metadata"]["clip-key"] in clip_keys
        image = cv2.imdecode(np.frombuffer(obj["Body"].read(), np.uint8), cv2.IMREAD_COLOR)
        assert detector.detect(image)[0][0] >= 0.5
    assert not [p for p in (tmp_path / "state" / "spool").rglob("*") if p.is_file()]  # uploaded, removed locally
    assert capsys.readouterr().out.count("clip uploads/") == 5
