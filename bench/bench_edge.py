"""The edge recorder: how much of the time people are in view ends up in uploaded clips, and
what one camera costs the device.

Why: the camera's footage cannot be recorded again, so the share of a presence the clips
miss is footage lost; and a user sizing a device needs frames per second per core.

* coverage: generated clips (bundled photos; people enter, stay longer than ``max_clip_s``,
  leave and come back) recorded with the default settings and the real SSDLite detector;
  coverage is the share of person time inside a clip, beside the share of the whole footage
  uploaded (what continuous recording, the alternative, uploads: 100% of both).
* cost: a 720p stream through the recorder on one core (motion check every frame, detector
  at ``detect_fps``, H.264 encoding while recording), frames per second, beside Debian's
  ``ffmpeg`` merely decoding the same file on one thread.

    python -m bench.bench_edge [--seconds 30]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2

from edge.config import EdgeConfig
from edge.detector import SsdLitePersonDetector
from edge.recorder import Recorder
from edge.source import FileSource
from edge.testing import people_video

PEOPLE = {"astronaut", "camera", "grace_hopper"}
#: (photo, seconds): empty, a 35 s presence (> max_clip_s), gone 12 s, back 14 s, gone 20 s, back 26 s.
SCENES = {
    "long stay, leave, come back": [("coffee", 6), ("astronaut", 35), ("rocket", 12), ("camera", 14),
                                    ("chelsea", 20), ("grace_hopper", 26), ("coffee", 7)],
    "short visits": [("rocket", 5), ("camera", 6), ("coffee", 9), ("astronaut", 4), ("chelsea", 15),
                     ("grace_hopper", 8), ("rocket", 5)],
}


def text_graph() -> Path:
    """The SSDLite text graph the endpoint's code uses (not committed: generated once per
    machine into the cache), which a device's config names as model_pbtxt."""
    from bench.bench_detector import load_inference

    return load_inference().find_ssdlite_files(None)[1]


def _overlap(spans: list[tuple[float, float]], a: float, b: float) -> float:
    return sum(max(0.0, min(b, e) - max(a, s)) for s, e in spans)


def coverage(tmp: Path, fps: int = 10) -> None:
    cfg = EdgeConfig(bucket="bench", state_dir=tmp / "state", snapshots=False, detector_threads=1)
    detector = SsdLitePersonDetector(pbtxt=text_graph(), threads=1)
    print(f"defaults: pre_roll {cfg.pre_roll_s:g} s, post_roll {cfg.post_roll_s:g} s, max_clip {cfg.max_clip_s:g} s, "
          f"min_gap {cfg.min_gap_s:g} s, detect_fps {cfg.detect_fps:g}")
    print(f"{'scene':<30} {'person s':>9} {'covered':>8} {'footage uploaded':>17} {'clips':>6} {'presences':>10}")
    for name, segments in SCENES.items():
        path = tmp / f"{name.replace(' ', '_').replace(',', '')}.mp4"
        timeline = people_video(path, segments, fps=fps, size=(320, 240))
        rec = Recorder(cfg, None, detector, camera_id="bench", device_id="bench", fps=fps)
        clips = rec.run(FileSource(path, datetime(2026, 1, 1, tzinfo=UTC)).frames(threading.Event()))
        spans = [(c.first_t, c.last_t + 1 / fps) for c in clips]
        person = [(a, b) for photo, a, b in timeline if photo in PEOPLE]
        total = sum(b - a for a, b in person)
        covered = sum(_overlap(spans, a, b) for a, b in person)
        length = timeline[-1][2]
        uploaded = sum(e - s for s, e in spans)
        print(f"{name:<30} {total:>9.1f} {covered / total:>8.1%} {uploaded / length:>17.1%} {len(clips):>6} "
              f"{len({c.group_id for c in clips}):>10}")


def cost(tmp: Path, seconds: float, fps: int = 10) -> None:
    path = tmp / "720p.mp4"
    people_video(path, [("coffee", 2), ("astronaut", seconds - 4), ("rocket", 2)], fps=fps, size=(1280, 720))
    frames = list(FileSource(path, datetime(2026, 1, 1, tzinfo=UTC)).frames(threading.Event()))
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        cfg = EdgeConfig(bucket="bench", state_dir=tmp / "state-720", snapshots=False, detector_threads=1)
        detector = SsdLitePersonDetector(pbtxt=text_graph(), threads=1)
        rec = Recorder(cfg, None, detector, camera_id="bench", device_id="bench", fps=fps)
        start = time.process_time()
        rec.run(iter(frames))
        cpu = time.process_time() - start
    finally:
        cv2.setNumThreads(threads)
    recorder_fps = len(frames) / cpu
    print(f"720p, {len(frames)} frames, {rec.detector_runs} detector runs (detect_fps {cfg.detect_fps:g}), "
          f"{sum(c.frames for c in rec.clips)} frames encoded")
    print(f"recorder on one core (CPU time, decoding excluded): {recorder_fps:.1f} frames/s")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        start = time.perf_counter()
        subprocess.run([ffmpeg, "-v", "error", "-threads", "1", "-i", str(path), "-f", "null", "-"], check=True)
        decode_fps = len(frames) / (time.perf_counter() - start)
        print(f"ffmpeg decoding alone, one thread: {decode_fps:.1f} frames/s "
              f"(recorder / ffmpeg decode: {recorder_fps / decode_fps:.2f}x)")
    for camera_fps in (5, 10, 15, 25):
        print(f"  a {camera_fps} fps 720p camera needs {camera_fps / recorder_fps:.0%} of one such core")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args(argv if argv is not None else [])
    with tempfile.TemporaryDirectory() as tmp:
        print("-- coverage of the time people are in view")
        coverage(Path(tmp))
        print("-- cost per camera")
        cost(Path(tmp), args.seconds)


if __name__ == "__main__":
    main(sys.argv[1:])
