"""The seeded scene generator (vidsift.testing.crowd) and the scores the tracking bench reports
(merged tracks, identity purity, visit count): what the evaluation of issue 24 rests on.
Truth only (no video, no detector, no download): the bundled figures."""

from __future__ import annotations

import itertools

import pytest

from vidsift.core.detection import Box
from vidsift.core.tracking import Point, Track
from vidsift.testing import crowd, scenes

pytest.importorskip("motmetrics")


@pytest.fixture(scope="module")
def pool() -> crowd.Pool:
    return crowd.bundled_pool()


def test_the_same_seed_gives_the_same_scene_and_others_differ(pool: crowd.Pool) -> None:
    assert crowd.generate(123, pool) == crowd.generate(123, pool)
    assert len({crowd.generate(s, pool).legs for s in range(200, 212)}) == 12


def test_tuning_and_held_out_seeds_are_disjoint_and_enough() -> None:
    assert len(crowd.TUNE_SEEDS) >= 40
    assert len(crowd.HELD_OUT_SEEDS) >= 40
    assert not set(crowd.TUNE_SEEDS) & set(crowd.HELD_OUT_SEEDS)


def test_the_tuning_scenes_cover_every_behaviour_and_crowd_size(pool: crowd.Pool) -> None:
    made = [crowd.generate(s, pool) for s in crowd.TUNE_SEEDS]
    kinds = {k for s in made for k in s.name.split(": ")[1].split(" (")[0].split(",")}
    assert kinds == set(crowd.BEHAVIOURS)
    at_once = [crowd.most_at_once(s) for s in made]
    assert min(at_once) == 1
    assert max(at_once) == 10
    assert any("(dark)" in s.name for s in made)
    assert all(40 <= s.seconds <= 70 for s in made)


def test_a_generated_scene_has_visits_for_who_came_back(pool: crowd.Pool) -> None:
    """come_back: the same actor (figure) twice, two visits; a dark scene casts look-alikes."""
    s = next(s for s in (crowd.generate(n, pool) for n in crowd.TUNE_SEEDS) if "come_back" in s.name)
    truth = scenes.ground_truth(s, fps=1)
    actors = [v.actor for v in truth.visits]
    assert any(actors.count(a) >= 2 for a in actors)
    dark = next(s for s in (crowd.generate(n, pool) for n in crowd.TUNE_SEEDS) if "(dark)" in s.name)
    assert all(key.endswith("~dark") for _, key in dark.cast)


def test_far_shows_the_same_walks_smaller_so_more_heights_a_second(pool: crowd.Pool) -> None:
    """crowd.far: the same paths and times, people 0.3 as tall: a walker's step per second in
    their own heights is 1/0.3 of the near scene's (0.4-1.4, as on surveillance footage)."""
    near = crowd.generate(101, pool)
    far = crowd.far(near)
    assert far.name.endswith("(far)") and far.seconds == near.seconds and far.cast == near.cast
    for a, b in zip(near.legs, far.legs, strict=True):
        assert [w[:3] for w in a.waypoints] == [w[:3] for w in b.waypoints]
        assert all(abs(wb[3] - crowd.FAR_SCALE * wa[3]) < 1e-3 for wa, wb in zip(a.waypoints, b.waypoints, strict=True))
    steps = [abs(p1[1] - p0[1]) / (p1[0] - p0[0]) / p0[3] for leg in far.legs
             for p0, p1 in itertools.pairwise(leg.waypoints) if p1[0] > p0[0] and p1[1] != p0[1]]
    assert steps and min(steps) > 0.3


def _tracks_from_truth(truth: scenes.Truth, times: list[float]) -> dict[str, Track]:
    tracks: dict[str, Track] = {}
    for n, t in enumerate(times):
        for i, p in enumerate(truth.at(t)):
            tracks.setdefault(p.visit, Track(key=p.visit)).points.append(Point(n, t, i, Box(*p.box, 1.0)))
    return tracks


def test_merges_purity_and_visit_error_are_scored() -> None:
    """Tracks that are the truth score perfectly; joining two visits into one track is one
    merged track, purity drops by the smaller visit's share, and one visit is missing."""
    truth = scenes.ground_truth(scenes.scene("walk across both ways"), fps=1)
    times = [float(t) for t in range(52)]
    tracks = _tracks_from_truth(truth, times)
    perfect = scenes.score(truth, times, list(tracks.values()))
    assert (perfect.merged_tracks, perfect.purity, perfect.visit_error) == (0, 1.0, 0)
    joined = Track(key="AB", points=tracks["A#1"].points + tracks["B#1"].points)
    rest = [t for k, t in tracks.items() if k not in ("A#1", "B#1")]
    merged = scenes.score(truth, times, [joined, *rest])
    assert merged.merged_tracks == 1
    assert merged.visit_error == -1
    small = min(len(tracks["A#1"].points), len(tracks["B#1"].points))
    assert merged.purity == pytest.approx(1 - small / perfect.matched_boxes)


def test_people_hidden_behind_others_can_be_left_out_of_the_score() -> None:
    """min_visible: a track that misses a person hidden behind another is not penalised."""
    truth = scenes.ground_truth(scenes.scene("one standing still"), fps=1)
    times = [float(t) for t in range(48)]
    tracks = _tracks_from_truth(truth, times)
    seen = [Track(key=k, points=[p for p in t.points if next(
        q for q in truth.at(p.time_s) if q.visit == k).visible >= 0.35]) for k, t in tracks.items()]
    seen = [t for t in seen if t.points]
    strict, lenient = (scenes.score(truth, times, seen, min_visible=v) for v in (0.0, 0.35))
    assert strict.idf1 < 1.0
    assert lenient.idf1 == pytest.approx(1.0)
