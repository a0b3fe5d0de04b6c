"""The tracker against the truth of a generated scene (vidsift.testing.scenes), without a detector
or a video: two pairs of people cross (one in front of the other, then two at the same depth),
with the truth's boxes jittered and one detection dropped right at a crossing. The tracker
must find each visit once and keep each person's id through the crossings; motmetrics' IDF1
must stay above what was measured (bench/bench_tracking.py, docs/tracking.md), with margin."""

from __future__ import annotations

import pytest

from vidsift.core.tracking import FramePeople, TrackParams, track_segment
from vidsift.testing import scenes

pytest.importorskip("norfair")
pytest.importorskip("motmetrics")

SCENE = scenes.scene("two people crossing")
#: Measured 2026-12-03 with the default TrackParams: IDF1 0.991 on this input (the dropped box
#: is the only miss); the bar leaves margin.
IDF1_MEASURED = 0.991
IDF1_MIN = 0.95
#: Over other jitter draws (seeds 1-10) IDF1 is 0.991 on every one (2026-12-07, the tracker of
#: issue 24). Before it, three (seeds 3, 4, 8) gave 0.845: A's track, A having left at the left
#: edge at 33 s, was continued by B entering at that edge 5 s later (one visit too few); a
#: person who walked out of the view now ends there.
SEEDS = range(1, 11)
IDF1_MIN_ANY_SEED = 0.95
#: The detection dropped: A's, at the sampled frame where A and B overlap most (first crossing).
DROPPED = ("A#1", 9.0)


def build_input(seed: int = 5) -> tuple[scenes.Truth, list[FramePeople]]:
    """The scene's truth, and its boxes at 1 frame/s jittered (2% of the box) with one dropped."""
    truth = scenes.ground_truth(SCENE)
    times = [(round(t * truth.fps), float(t)) for t in range(int(SCENE.seconds))]
    frames = scenes.frame_people(truth, times, jitter=0.02, seed=seed)
    visit, at = DROPPED
    out = []
    for f in frames:
        if f.time_s == at:
            gone = next(p.box for p in truth.at(at) if p.visit == visit)
            nearest = max(f.boxes, key=lambda b: scenes.iou(gone, (b.left, b.top, b.width, b.height)))
            keep = tuple(b for b in f.boxes if b is not nearest)
            f = FramePeople(f.frame_index, f.time_s, keep)
        out.append(f)
    return truth, out


@pytest.fixture(scope="module")
def scene_input() -> tuple[scenes.Truth, list[FramePeople]]:
    return build_input()


@pytest.fixture(scope="module")
def tracks(scene_input):
    return track_segment(scene_input[1], TrackParams())


def _track_of(truth: scenes.Truth, tracks, visit: str, t: float) -> str | None:
    """The key of the track whose box at ``t`` is the visit's (IoU >= 0.5)."""
    box = next(p.box for p in truth.at(t) if p.visit == visit)
    for tr in tracks:
        for p in tr.points:
            if p.time_s == t and scenes.iou(box, (p.box.left, p.box.top, p.box.width, p.box.height)) >= 0.5:
                return tr.key
    return None


def test_scene_has_the_crossings_it_claims(scene_input):
    truth, frames = scene_input
    assert sorted(v.visit for v in truth.visits) == ["A#1", "A#2", "B#1", "B#2", "C#1", "C#2"]
    for a, b, t in (("A#1", "B#1", 9.0), ("A#2", "C#1", 28.0), ("B#2", "C#2", 42.0)):
        boxes = {p.visit: p.box for p in truth.at(t)}
        assert scenes.iou(boxes[a], boxes[b]) > 0.3, (a, b, t)
    assert sum(len(f.boxes) for f in frames) == sum(len(truth.at(f.time_s)) for f in frames) - 1


def test_one_track_per_visit(scene_input, tracks):
    truth, _ = scene_input
    assert len(tracks) == len(truth.visits)


@pytest.mark.parametrize(("visit", "before", "after"), [
    ("A#1", 6.0, 12.0), ("B#1", 6.0, 12.0),   # A in front of B
    ("A#2", 25.0, 31.0), ("C#1", 25.0, 31.0),  # C in front of A
    ("B#2", 39.0, 45.0), ("C#2", 39.0, 45.0),  # side by side, same size
])
def test_ids_kept_through_crossing(scene_input, tracks, visit, before, after):
    truth, _ = scene_input
    key = _track_of(truth, tracks, visit, before)
    assert key is not None
    assert _track_of(truth, tracks, visit, after) == key


def test_idf1_above_measured_bar(scene_input, tracks):
    truth, frames = scene_input
    score = scenes.score(truth, [f.time_s for f in frames], tracks)
    assert score.switches == 0
    assert score.visits_found == score.visits_true
    assert score.min_coverage >= 0.7
    assert score.idf1 >= IDF1_MIN, f"IDF1 {score.idf1:.3f} (measured {IDF1_MEASURED})"


def test_other_jitter_draws_swap_no_id():
    for seed in SEEDS:
        truth, frames = build_input(seed)
        score = scenes.score(truth, [f.time_s for f in frames], track_segment(frames, TrackParams()))
        assert score.switches == 0, seed
        assert abs(score.visits_found - score.visits_true) <= 1, seed
        assert score.idf1 >= IDF1_MIN_ANY_SEED, (seed, score.idf1)
