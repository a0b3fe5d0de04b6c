"""bench.vtest_offline's scoring: how a visit split between tracks and a track holding two visits
are counted at the hand-counted seconds, and the per-visit detail (``--detail``) that says which
track held whom. Made-up boxes and count, no video, no detector."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ is beside vidsift/, not installed

from bench.vtest_offline import Clip, detail, score
from vidsift.core.detection import Box
from vidsift.core.tracking import Point, Track

W, H = 100, 100


def _box(x: int) -> Box:
    return Box(x / W, 0.2, 0.1, 0.5, 0.9)


def _hand(pid: str, x: int) -> dict:
    return {"id": pid, "box": [x, 20, 10, 50], "visible": "full"}


def _track(tid: str, *at: tuple[float, int]) -> Track:
    return Track(key=tid, track_id=tid, points=[Point(int(t), t, 0, _box(x)) for t, x in at])


COUNT = {"video": {"size": [W, H]},
         "visits": [{"id": "P"}, {"id": "Q"}],
         "moments": [{"t": 0, "people": [_hand("P", 10), _hand("Q", 60)]},
                     {"t": 5, "people": [_hand("P", 20), _hand("Q", 70)]},
                     {"t": 10, "people": [_hand("P", 30), _hand("Q", 80), {"id": "R", "box": [0, 0, 5, 5],
                                                                        "visible": "head"}]}]}


def test_a_swap_is_a_split_of_each_visit_and_two_merged_tracks() -> None:
    """Two tracks that swap people after 5 s: each visit is held by two tracks (one split each),
    each track holds two visits (two merged), every hand box is held; a head-only hand box is
    not counted."""
    clip = Clip("A", 1.0, [], COUNT, 0)
    tracks = [_track("p001", (0, 10), (5, 20), (10, 80)), _track("p002", (0, 60), (5, 70), (10, 30))]
    s = score(clip, tracks)
    assert (s["tracks"], s["visits"], s["splits"], s["merged"], s["held"], s["people"]) == (2, 2, 2, 2, 6, 6)
    assert s["seen"] == {"P": [(0.0, "p001"), (5.0, "p001"), (10.0, "p002")],
                         "Q": [(0.0, "p002"), (5.0, "p002"), (10.0, "p001")]}
    lines = detail(s).splitlines()
    assert lines[0].split() == ["P", "0:p001", "5:p001", "10:p002", "(split", "into", "2;", "p001", "also", "holds",
                                "Q;", "p002", "also", "holds", "Q)"]


def test_a_visit_no_track_holds_shows_a_dash_and_no_note() -> None:
    """A visit held by one track throughout is neither split nor merged; seconds where no track's
    box matches its hand box (IoU under 0.3) are shown as "-"."""
    clip = Clip("A", 1.0, [], COUNT, 0)
    s = score(clip, [_track("p001", (0, 10), (5, 20), (10, 30))])
    assert (s["splits"], s["merged"], s["held"]) == (0, 0, 3)
    assert detail(s).splitlines() == ["  P   0:p001 5:p001 10:p001", "  Q   0:- 5:- 10:-"]
