"""Join a far walker's track pieces after tracking, when the video's walkers take long steps.

Why: far from the camera a walker covers 0.5-1.4 of their own heights between two sampled
frames (1 frame a second), and the detector misses small people in runs; the online tracker,
which must decide frame by frame within a fraction of a height, breaks such a walker into
pieces of 1-5 detections (vtest.avi: 22 of 49 tracks had 1-3). The pieces are easy to join
once the whole video is seen: a piece that ends and one that begins a few seconds later on
the first's own line, at the same size, are one walk. This is an offline tracklet link
(StrongSORT's AFLink, appearance-free: colours only as a veto), solved as one min-cost
assignment of track ends to track starts.

Near the camera (people who move a fraction of their height a second) the same joins merge
strangers (someone hidden behind another, someone stepping out from behind them a body
width away): measured, merges 4.7% -> 5.0% (docs/tracking.md). So it runs only where the
tracks themselves show long steps (:func:`far_regime`: the median step of the walkers,
measured in their own heights a second), as PERSON_TILING=auto looks at the boxes' sizes
before tiling: no per-camera setting.

Plain Python (SciPy's assignment, imported lazily, is already in the tracking layer).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from vidsift.core.tracking import (
    Point,
    Track,
    TrackParams,
    anchor,
    appearance_distance,
    at_side,
    left_view,
    mean_appearance,
    ref_width,
    velocity,
)


@dataclass(frozen=True)
class LinkParams:
    """How far pieces may be joined. Chosen on the far tuning seeds 100-139 (docs/tracking.md,
    *Far people, rendered*), never on the held-out seeds or vtest.avi."""

    #: The walkers' median step (heights a second between consecutive sampled detections of a
    #: moving person, :func:`far_regime`) from which the video is far and its pieces are
    #: linked. Per scene on the tuning seeds: near scenes at most 0.27 (any input), far scenes
    #: true boxes 0.32-0.90 (median 0.57); people walking sideways: about 0.8.
    far_step: float = 0.35
    #: Steps slower than this (heights a second) are someone standing, not a walker's step.
    walking_step: float = 0.15
    #: A piece may start at most this long after the other ended.
    max_gap_s: float = 4.0
    #: How far (in heights) the second piece's start may be from the first's path carried on
    #: (either carried forward, or the second's carried backward; stopping anywhere on the way
    #: allowed), plus this much per second of the gap.
    reach: float = 0.5
    reach_per_s: float = 0.25
    #: |log| of the height ratio allowed between the end and the start.
    max_size_change: float = 0.3
    #: A start is joined to an end only if no other detection of its frame is nearer the end's
    #: walk carried on, and no other detection of the end's frame nearer the start's walk
    #: carried back: a piece is not joined past someone else's box that fits it better (the
    #: online tracker gave that box to another track, usually rightly).
    nearest: bool = True


def steps(tracks: Sequence[Track], step_s: float) -> list[float]:
    """Every step of every track between sampled detections at most 1.5 sampling intervals
    apart: centre distance over the mean of the two heights, per second."""
    out = []
    for t in tracks:
        for a, b in itertools.pairwise(t.points):
            gap = b.time_s - a.time_s
            if 0 < gap <= 1.5 * step_s:
                h = max((a.box.height + b.box.height) / 2, 1e-6)
                out.append(math.dist(_centre(a), _centre(b)) / h / gap)
    return out


def far_regime(tracks: Sequence[Track], step_s: float, link: LinkParams = LinkParams()) -> bool:
    """Whether the video's walkers take long steps for their size (the far regime): the median
    of their moving steps (at least ``walking_step``) is at least ``far_step``. Without any
    moving step (no one walks, or every track is one detection): not far."""
    moving = sorted(s for s in steps(tracks, step_s) if s >= link.walking_step)
    return bool(moving) and moving[len(moving) // 2] >= link.far_step


def link_cost(a: Sequence[Point], b: Sequence[Point], params: TrackParams, step_s: float,
              link: LinkParams = LinkParams(),
              others: dict[float, list[Point]] | None = None) -> float | None:
    """How far (in heights, plus |log| of the height ratio) piece ``b``'s start is from piece
    ``a``'s walk carried on, or ``a``'s end from ``b``'s walk carried back; None when they
    cannot be one person: ``b`` does not start 0-``max_gap_s`` after ``a`` ends, ``a`` walked
    out of the view, ``b`` enters at a side ``a`` was not at, other sizes or other colours, or
    too far for the gap, or (``others``: every detection by its time, with ``link.nearest``)
    another detection of ``b``'s first frame fits ``a``'s walk better, or another of ``a``'s
    last frame fits ``b``'s walk carried back better."""
    end, start = a[-1], b[0]
    gap = start.time_s - end.time_s
    if not 0 < gap <= link.max_gap_s or left_view(a, start.time_s, params, step_s):
        return None
    if at_side(start.box, params) != 0 or at_side(end.box, params) != 0:
        return None  # someone coming in, or going out, at a side: a visit begins or ends there
    size = abs(math.log(max(start.box.height, 1e-6) / max(end.box.height, 1e-6)))
    if size > link.max_size_change:
        return None
    colours = appearance_distance(mean_appearance(a[-3:]), mean_appearance(b[:3]))
    if colours > params.max_appearance:
        return None
    h = max(end.box.height, 1e-6)
    wa, wb = ref_width(a, params), ref_width(b, params)
    pa, pb = anchor(end.box, wa, params), anchor(start.box, wb, params)
    va, vb = velocity(a, params, step_s), _backward(b, params, step_s)
    forward = _to_segment(pb, pa, (pa[0] + va[0] * gap, pa[1] + va[1] * gap))
    backward = _to_segment(pa, pb, (pb[0] - vb[0] * gap, pb[1] - vb[1] * gap))
    cost = min(forward, backward) / h + size
    if cost > link.reach + link.reach_per_s * gap:
        return None
    if others is not None and link.nearest:
        ahead = (pa, (pa[0] + va[0] * gap, pa[1] + va[1] * gap))
        back = (pb, (pb[0] - vb[0] * gap, pb[1] - vb[1] * gap))
        if any(_to_segment(anchor(q.box, wb, params), *ahead) < forward
               for q in others.get(round(start.time_s, 3), ()) if q is not start):
            return None
        if any(_to_segment(anchor(q.box, wa, params), *back) < backward
               for q in others.get(round(end.time_s, 3), ()) if q is not end):
            return None
    return cost


def link_tracks(tracks: Sequence[Track], params: TrackParams, step_s: float,
                link: LinkParams = LinkParams()) -> list[Track]:
    """The tracks with pieces joined: one min-cost assignment of ends to starts
    (:func:`link_cost`), each end to at most one start; a chain of joined pieces is one track,
    keeping its first piece's key and track id, in the order of the tracks given."""
    ordered = list(tracks)
    following = links(ordered, params, step_s, link)
    followed = set(following.values())
    out = []
    for i, t in enumerate(ordered):
        if i in followed:
            continue
        points = list(t.points)
        j = i
        while j in following:
            j = following[j]
            points += ordered[j].points
        out.append(Track(key=t.key, points=points, track_id=t.track_id))
    return out


def links(tracks: Sequence[Track], params: TrackParams, step_s: float,
          link: LinkParams = LinkParams()) -> dict[int, int]:
    """Which track (by index) each track is continued by: the min-cost assignment of ends to
    starts over the pairs :func:`link_cost` allows."""
    ordered = list(tracks)
    by_time: dict[float, list[Point]] = {}
    for t in ordered:
        for q in t.points:
            by_time.setdefault(round(q.time_s, 3), []).append(q)
    pairs: dict[tuple[int, int], float] = {}
    for i, a in enumerate(ordered):
        for j, b in enumerate(ordered):
            if i != j and a.points and b.points:
                cost = link_cost(a.points, b.points, params, step_s, link, by_time)
                if cost is not None:
                    pairs[(i, j)] = cost
    if not pairs:
        return {}
    from scipy.optimize import linear_sum_assignment

    ends = sorted({i for i, _ in pairs})
    starts = sorted({j for _, j in pairs})
    never = 1e6
    matrix = [[pairs.get((i, j), never) for j in starts] for i in ends]
    rows, cols = linear_sum_assignment(matrix)
    return {ends[r]: starts[c] for r, c in zip(rows, cols, strict=True) if matrix[r][c] < never}


def link_if_far(tracks: Sequence[Track], params: TrackParams, step_s: float,
                link: LinkParams = LinkParams()) -> list[Track]:
    """:func:`link_tracks` when the tracks are in the far regime (:func:`far_regime`), else the
    tracks unchanged."""
    if not far_regime(tracks, step_s, link):
        return list(tracks)
    return link_tracks(tracks, params, step_s, link)


def sampling_step(tracks: Sequence[Track]) -> float:
    """The sampling interval seen in the tracks: the shortest gap between distinct detection
    times (1 s at 1 frame a second; 1.0 when there are fewer than two). Not the median: a
    far video's few detections leave gaps of several intervals between them."""
    times = sorted({round(p.time_s, 3) for t in tracks for p in t.points})
    return min((b - a for a, b in itertools.pairwise(times) if b > a), default=1.0)


def _backward(points: Sequence[Point], params: TrackParams, step_s: float) -> tuple[float, float]:
    """The piece's velocity at its start, from its first detections (over the tracker's
    velocity window); 0 when seen once."""
    first = points[0]
    early = [p for p in points if p.time_s - first.time_s <= params.velocity_window_s + 1e-6]
    span = early[-1].time_s - first.time_s
    if span < 0.5 * step_s:
        return 0.0, 0.0
    w = ref_width(points, params)
    (x0, y0), (x1, y1) = anchor(first.box, w, params), anchor(early[-1].box, w, params)
    return (x1 - x0) / span, (y1 - y0) / span


def _to_segment(p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    """Distance from ``p`` to the segment a-b (a walker carried on may stop anywhere on the way)."""
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    n = dx * dx + dy * dy
    s = 0.0 if n <= 0 else max(0.0, min(1.0, ((p[0] - ax) * dx + (p[1] - ay) * dy) / n))
    return math.dist(p, (ax + s * dx, ay + s * dy))


def _centre(p: Point) -> tuple[float, float]:
    return p.box.left + p.box.width / 2, p.box.top + p.box.height / 2
