"""bench.vtest_halves: each half's hand count derived from the whole clip's, and a half cut on
frame boundaries with the whole clip's pixels; bench/__main__ hands options to the benches.
A made-up count and a 2 s generated video, no download."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ is beside vidsift/, not installed

from bench.__main__ import split_args
from bench.vtest_halves import HALVES, Half, check_half, cut, half_count

COUNT = {
    "video": {"name": "vtest.avi", "size": [768, 576], "fps": 10, "frames": 795},
    "moments": [{"t": t, "people": [{"id": "X", "box": [1, 2, 3, 4], "visible": "full"}]} for t in (0, 35, 40, 75)],
    "visits": [{"id": "early", "first": 0, "last": 21}, {"id": "across", "first": 23, "last": 40},
               {"id": "late", "first": 42, "last": 79}, {"id": "long", "first": 1, "last": 79}],
}


def test_the_halves_meet_at_40_s_and_cover_the_clip() -> None:
    a, b = HALVES
    assert (a.name, a.start_s, a.end_s, b.name, b.start_s, b.end_s) == ("A", 0, 40.0, "B", 40, 79.5)


def test_a_visit_in_view_on_both_sides_counts_in_both_halves() -> None:
    a, b = (half_count(COUNT, h) for h in HALVES)
    assert [(v["id"], v["first"], v["last"]) for v in a["visits"]] == [
        ("early", 0, 21), ("across", 23, 39), ("long", 1, 39)]
    assert [(v["id"], v["first"], v["last"]) for v in b["visits"]] == [
        ("across", 0, 0), ("late", 2, 39), ("long", 0, 39)]


def test_a_half_keeps_its_moments_on_its_own_clock() -> None:
    a, b = (half_count(COUNT, h) for h in HALVES)
    assert [m["t"] for m in a["moments"]] == [0, 35]
    assert [m["t"] for m in b["moments"]] == [0, 35]
    assert (a["video"]["frames"], b["video"]["frames"]) == (400, 395)
    assert COUNT["moments"][2]["t"] == 40  # the clip's own count is not changed


def _video(path: Path, frames: int = 20) -> Path:
    """A 10 fps MPEG-4 clip whose every frame differs (a moving bright square on noise)."""
    av = pytest.importorskip("av")
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for n in range(frames):
            img = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            img[10:20, 2 * n:2 * n + 10] = 255
            for packet in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


def test_a_half_holds_the_clips_frames_pixel_for_pixel(tmp_path: Path) -> None:
    video = _video(tmp_path / "clip.avi")
    half = Half("B", 1, 2.0)
    out = cut(video, half, tmp_path / "b.mkv")
    assert check_half(video, half, out)
    assert not check_half(video, Half("B", 0, 1.0), out)  # another second's frames are not these


def test_options_after_the_names_go_to_the_benches() -> None:
    assert split_args(["real", "--settings", "auto"]) == (["real"], ["--settings", "auto"])
    assert split_args(["frames", "faces"]) == (["frames", "faces"], [])
    assert split_args([]) == ([], [])
