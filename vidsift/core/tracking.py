"""Follow each person through a segment of a video, and join segments at their boundaries.

The tracker is norfair's (the one Frigate uses): a Kalman filter per person predicts where
their box will be in the next sampled frame, and a detection joins the person whose
predicted box is nearest, measured in the person's own heights (plus how much the box's
height changed). Not IoU: at one sampled frame a second a walking person moves most of
their own width between frames, so consecutive boxes often do not overlap at all, while
they stay well within a body height of the prediction. Two people crossing keep their
ids because each one's velocity carries them past the other.

Where the boxes cannot tell two people apart (one leaves, another steps into the same place
a few seconds later; a person hidden behind another comes out), their colours can: the
endpoint returns each person's appearance (colour histograms of the box's upper and lower
halves), and a detection whose colours are far from the person's last ones
(``max_appearance``, total variation distance) never continues that person. That is what
lets a track bridge a gap of several seconds without merging strangers.

Everything here is plain and deterministic: frames are processed in frame order whatever
order they arrived in, and ids come from the order of first appearance, so a replay gives
the same tracks. norfair is imported lazily: only track_people carries it (and its SciPy),
not the other functions.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from vidsift.core.detection import Box

#: norfair works in pixels; boxes here are fractions of the frame. IoU does not care about
#: the scale, this only keeps the Kalman filter's numbers in a comfortable range.
_SCALE = 1000.0


@dataclass(frozen=True)
class FramePeople:
    """One sampled frame's person boxes (fractions of the frame), as detect_people stored them."""

    frame_index: int
    time_s: float
    boxes: tuple[Box, ...]


@dataclass(frozen=True)
class TrackParams:
    """The tracker's settings. ``max_gap_s``: a person unseen for longer ends their track
    (TRACK_MAX_GAP_S). ``max_distance``: how far (in the person's heights, plus the log of
    the change in height) a detection may be from a person's predicted box and still
    continue that person. ``min_iou``: the least overlap of two tracks' boxes across a
    segment boundary for stitch to join them."""

    max_gap_s: float = 4.0
    max_distance: float = 0.6
    min_iou: float = 0.05
    #: Colours further apart than this (total variation distance between the appearance
    #: histograms, 0 = the same, 1 = nothing in common) are two people. One person from frame
    #: to frame: about 0.03, up to 0.3 when the box takes in changing background; different
    #: bundled portraits: 0.44-0.62.
    max_appearance: float = 0.3
    #: Detections a new track needs before it counts: 1 keeps every detection (a person seen
    #: in one sampled frame was there), higher drops one-frame false positives.
    min_detections: int = 1
    #: A person lost inside the view (hidden behind someone, missed by the detector) and
    #: found again within this many seconds, with the same colours, is one visit (rejoin).
    rejoin_s: float = 8.0
    #: How far (in the person's heights) they may be found from where they were lost, plus
    #: this much per second of the gap: walking behind others, not across the frame at once.
    rejoin_reach: float = 0.5
    rejoin_reach_per_s: float = 1.0
    #: A box within this much (a share of the frame's width) of the frame's left or right
    #: side is at that side: the person may be entering or leaving there. Wide, because the
    #: detector often misses a person less than half in view, so the first and last boxes it
    #: finds of someone crossing can be well inside (0.1 let visits of look-alikes be joined).
    side_margin: float = 0.3


@dataclass(frozen=True)
class Point:
    """One detection of a tracked person."""

    frame_index: int
    time_s: float
    box_index: int
    box: Box


@dataclass
class Track:
    """One person's visit: their detections in time order. ``key`` is the track's id within
    what was tracked (a segment), ``track_id`` its id in the video once stitched."""

    key: str
    points: list[Point] = field(default_factory=list)
    track_id: str | None = None

    @property
    def first(self) -> Point:
        return self.points[0]

    @property
    def last(self) -> Point:
        return self.points[-1]


def _frame_step(frames: Sequence[FramePeople]) -> float:
    """The sampling interval: the median gap between consecutive frames (1 s at 1 fps)."""
    gaps = sorted(b.time_s - a.time_s for a, b in itertools.pairwise(frames) if b.time_s > a.time_s)
    return gaps[len(gaps) // 2] if gaps else 1.0


def track_segment(frames: Sequence[FramePeople], params: TrackParams = TrackParams(),
                  prefix: str = "") -> list[Track]:
    """The tracks of one run of consecutive frames (in any order: they are sorted here).

    Track keys are ``<prefix><n>`` with n counted in order of first appearance (frame, then
    the box's left edge), so they do not depend on norfair's internal counters.
    """
    from norfair import Detection as NfDetection
    from norfair import Tracker
    from norfair.filter import OptimizedKalmanFilterFactory

    ordered = sorted({f.frame_index: f for f in frames}.values(), key=lambda f: f.frame_index)
    step = _frame_step(ordered)
    _quiet_norfair()
    # Process noise and velocity variance well above norfair's defaults (0.1, 1): those are
    # tuned for video at 25 fps, where a person barely moves between frames; at 1 fps the
    # filter must take a walking pace from two detections.
    def distance(detection: object, tracked: object) -> float:
        d = _body_distance(detection, tracked)
        mine, theirs = detection.data[1], tracked.last_detection.data[1]  # type: ignore[attr-defined]
        if appearance_distance(mine, theirs) > params.max_appearance:
            return params.max_distance + 1.0  # never the same person
        return d

    tracker = Tracker(distance_function=distance, distance_threshold=params.max_distance,
                      hit_counter_max=max(1, math.ceil(params.max_gap_s / step)),
                      initialization_delay=0, pointwise_hit_counter_max=1,
                      filter_factory=OptimizedKalmanFilterFactory(Q=10.0, vel_variance=100.0))
    by_object: dict[int, list[Point]] = {}
    for frame in ordered:
        dets = []
        for i, b in enumerate(frame.boxes):
            corners = [[b.left * _SCALE, b.top * _SCALE], [(b.left + b.width) * _SCALE, (b.top + b.height) * _SCALE]]
            dets.append(NfDetection(points=_array(corners), scores=_array([b.confidence, b.confidence]),
                                    data=(i, b.appearance)))
        for obj in tracker.update(detections=dets):
            det = obj.last_detection
            if any(det is d for d in dets):  # matched in this frame (not a prediction alone)
                i = int(det.data[0])
                by_object.setdefault(obj.id, []).append(Point(frame.frame_index, frame.time_s, i, frame.boxes[i]))
    found = rejoin([pts for pts in by_object.values() if len(pts) >= params.min_detections], params)
    found.sort(key=lambda pts: (pts[0].frame_index, pts[0].box.left, pts[0].box.top))
    return [Track(key=f"{prefix}{n}", points=pts) for n, pts in enumerate(found, start=1)]


def _mean_appearance(points: Sequence[Point]) -> list[float] | None:
    apps = [p.box.appearance for p in points if p.box.appearance]
    return [sum(v) / len(apps) for v in zip(*apps, strict=True)] if apps else None


def _side(box: Box, params: TrackParams) -> str | None:
    """"left" or "right" for a box at that side of the frame (side_margin), else None."""
    left, right = box.left <= params.side_margin, box.left + box.width >= 1.0 - params.side_margin
    return None if left == right else ("left" if left else "right")


def _centre_distance(a: Box, b: Box) -> float:
    """Centre to centre, in ``a``'s heights."""
    return math.dist((a.left + a.width / 2, a.top + a.height / 2),
                     (b.left + b.width / 2, b.top + b.height / 2)) / max(a.height, 1e-6)


def rejoin(tracks: list[list[Point]], params: TrackParams) -> list[list[Point]]:
    """Re-identification after the tracker: a track that ended and one that began later are
    one person's when the gap is at most ``rejoin_s``, their colours agree (the mean of the
    last and first three detections, ``max_appearance``), the second begins within reach of
    where the first ended, and not both at the same side of the frame: a track ending at a
    side and one starting at that side are someone leaving and someone (perhaps the same
    person) coming back in, two visits. What the Kalman filter cannot bridge (hidden for longer than
    ``max_gap_s``, a first speed taken from boxes clipped by the frame's edge that sends the
    prediction the wrong way), colours can. Later tracks are joined in order of first
    appearance, each to the closest in colour of the tracks that ended before it; a track
    so continued ends where its new part ends (deterministic)."""
    chains = sorted(tracks, key=lambda pts: (pts[0].frame_index, pts[0].box.left, pts[0].box.top))
    out: list[list[Point]] = []
    for pts in chains:
        first = pts[0]
        best: tuple[float, float, int] | None = None
        for n, chain in enumerate(out):
            last = chain[-1]
            gap = first.time_s - last.time_s
            if not 0 < gap <= params.rejoin_s:
                continue
            side = _side(last.box, params)
            if side is not None and side == _side(first.box, params):  # out and back in there
                continue
            if _centre_distance(last.box, first.box) > params.rejoin_reach + params.rejoin_reach_per_s * gap:
                continue
            if not (last.box.appearance and first.box.appearance):  # no colours: boxes alone cannot tell
                continue
            colours = appearance_distance(_mean_appearance(chain[-3:]), _mean_appearance(pts[:3]))
            if colours > params.max_appearance:
                continue
            if best is None or (colours, gap) < best[:2]:
                best = (colours, gap, n)
        if best is None:
            out.append(list(pts))
        else:  # the chain continues, open at its new end
            out[best[2]].extend(pts)
    return out


def _body_distance(detection: object, tracked: object) -> float:
    """Centre distance in the predicted person's heights, plus |log| of the height ratio."""
    import numpy as np

    a, b = detection.points, tracked.estimate  # type: ignore[attr-defined]
    h_pred = max(float(b[1, 1] - b[0, 1]), 1e-6)
    h_det = max(float(a[1, 1] - a[0, 1]), 1e-6)
    return float(np.linalg.norm(a.mean(axis=0) - b.mean(axis=0)) / h_pred + abs(math.log(h_det / h_pred)))


class _ScalarDistanceNotice(logging.Filter):
    """norfair warns on the root logger, per tracker, that a scalar distance is slower than
    its vectorised ones; with a few people per frame the difference is nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("You are using a scalar distance function")


def _quiet_norfair() -> None:
    root = logging.getLogger()
    if not any(isinstance(f, _ScalarDistanceNotice) for f in root.filters):
        root.addFilter(_ScalarDistanceNotice())


def _array(values: list) -> object:
    import numpy as np

    return np.asarray(values, dtype=float)


def appearance_distance(a: Sequence[float] | None, b: Sequence[float] | None) -> float:
    """Total variation distance between two appearances (each half's histogram sums to 1):
    0 when either is unknown, so boxes alone decide then."""
    if not a or not b or len(a) != len(b):
        return 0.0
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / 4.0


def iou(a: Box, b: Box) -> float:
    x1, y1 = max(a.left, b.left), max(a.top, b.top)
    x2, y2 = min(a.left + a.width, b.left + b.width), min(a.top + a.height, b.top + b.height)
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def stitch(segments: Sequence[tuple[float, Sequence[Track]]], params: TrackParams = TrackParams()) -> list[Track]:
    """Join the tracks of consecutive segments, given as (start time, tracks) in time order.

    A track of segment k continues as a track of segment k+1 when the first starts within
    ``max_gap_s`` of that segment's start, follows the other's last detection by at most
    ``max_gap_s`` and their boxes there overlap; pairs are taken best overlap first, each
    joined at most once. The video's ids are ``p<n>`` (three digits and more), n in order
    of first appearance in the video, so they do not depend on how the video was cut.
    """
    chains: list[Track] = []
    for start_s, seg in sorted(segments, key=lambda s: s[0]):
        seg_tracks = sorted(seg, key=lambda t: (t.first.frame_index, t.first.box.left, t.first.box.top))
        open_ends = [c for c in chains if start_s - c.last.time_s <= params.max_gap_s]
        pairs = []
        for ci, chain in enumerate(open_ends):
            for ti, tr in enumerate(seg_tracks):
                gap = tr.first.time_s - chain.last.time_s
                if 0 < gap <= params.max_gap_s and tr.first.time_s - start_s <= params.max_gap_s:
                    overlap = iou(chain.last.box, tr.first.box)
                    same_colours = appearance_distance(chain.last.box.appearance,
                                                       tr.first.box.appearance) <= params.max_appearance
                    if overlap >= params.min_iou and same_colours:
                        pairs.append((-overlap, gap, ci, ti))
        pairs.sort()
        used_c: set[int] = set()
        joined: dict[int, Track] = {}
        for _, _, ci, ti in pairs:
            if ci not in used_c and ti not in joined:
                used_c.add(ci)
                joined[ti] = open_ends[ci]
        for ti, tr in enumerate(seg_tracks):
            if ti in joined:
                joined[ti].points.extend(tr.points)
            else:
                chains.append(Track(key=tr.key, points=list(tr.points)))
    chains.sort(key=lambda t: (t.first.frame_index, t.first.box.left, t.first.box.top))
    for n, chain in enumerate(chains, start=1):
        chain.track_id = f"p{n:03d}"
    return chains
