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

Two decisions wait for more evidence, as ByteTrack's and OC-SORT's tentative tracks do: a new
person's first step, when longer than a guess allows (far from the camera a walker moves most
of a body height a second), is taken only if the next sampled frame confirms it (the segment
is tracked as a whole, so the tracker looks one frame ahead); and boxes of low confidence,
when given, only continue someone already tracked (ByteTrack's second pass).

Where two people overlap (one stops in front of another, a walker passes someone standing),
one box may be within reach of both: it then teaches no one their colours, and the colours
each had before the overlap decide whom it continues, not whose motion is nearest
(``occlusion_reach``, ``occlusion_margin``; docs/tracking.md, *Occlusion*). Where colours do
not decide, such a box goes to the one seen a frame ago before one lost behind them
(``occlusion_missed_cost``: a track that missed its person reaches further, and took the
box of the person in front; docs/tracking.md, *Merges and switches, diagnosed*).

The segment is tracked both ways (``two_way_run``): once forwards and once backwards in
time, and a track is cut where the backward pass gives its detections before and after to two
different people for several detections each. A swap or a merge made by one direction
(someone stopping behind a standing person, two who meet) is seldom made alike by the other,
which comes to the same moment from its future (docs/tracking.md, *Both ways*).

Far from the camera (walkers covering a third of their height a second or more,
vidsift.core.linking.far_regime) a segment is tracked again with ``TrackParams.far``'s
settings: there a person's box is a few dozen pixels and their colours say less
(docs/tracking.md, *vtest.avi halved*).

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
from dataclasses import dataclass, field, replace

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
    the change in height, plus their colours' distance) a detection may be from where the
    person's own motion puts them and still continue that person (motion_cost). ``min_iou``
    is no longer used (stitch joins by motion_cost since issue 24); kept for callers.
    Chosen on crowd.TUNE_SEEDS (docs/tracking.md), never on the held-out seeds."""

    max_gap_s: float = 4.0
    max_distance: float = 0.35
    min_iou: float = 0.05
    #: Colours further apart than this (total variation distance between the appearance
    #: histograms, 0 = the same, 1 = nothing in common) are two people. One person from frame
    #: to frame: about 0.03, up to 0.3 when the box takes in changing background; different
    #: bundled portraits: 0.44-0.62.
    max_appearance: float = 0.25
    #: A track of fewer detections near another track (within ``fragment_s`` and one height)
    #: is a fragment of that person and dropped (drop_fragments); alone, it stays: someone
    #: seen in one sampled frame was there. Visits +24% over the truth with 1 on the tuning
    #: scenes (one-frame fragments: a doubled box, a figure half found).
    min_detections: int = 2
    fragment_s: float = 2.0
    #: A person lost inside the view (hidden behind someone, missed by the detector) and
    #: found again within this many seconds, with the same colours, is one visit (rejoin).
    rejoin_s: float = 8.0
    #: How far (in the person's heights) they may be found from where they were lost, plus
    #: this much per second of the gap: walking behind others, not across the frame at once.
    rejoin_reach: float = 0.5
    rejoin_reach_per_s: float = 0.3
    #: A box within this much (a share of the frame's width) of the frame's left or right
    #: side touches it: the person is cut by the frame, entering or leaving there.
    edge_margin: float = 0.01
    #: A person's velocity is taken from their own detections over this many seconds.
    velocity_window_s: float = 3.0
    #: At least this many of their heights a second is walking (below it, standing).
    walking_speed: float = 0.15
    #: A walker's next detection may be at most this many heights behind their last one.
    reverse_tolerance: float = 0.3
    #: Someone seen once, at a side of the frame, is taken to walk in at this many heights a second.
    entering_speed: float = 0.2
    #: Someone seen once may be this many times further from where they were (their speed unknown).
    first_step_reach: float = 1.5
    #: For each sampled frame a person was missed, the distance allowed grows by this share.
    reach_per_missed: float = 0.5
    #: Colours (total variation distance) added to the distance, times this.
    appearance_weight: float = 1.0
    #: A first step further than the guess above allows is decided by the next frame (the
    #: decision is delayed one frame, as a tentative track's would be): taken when the step is
    #: at most this many of their heights a second and the same step again lands on a
    #: detection of the next sampled frame (within ``max_distance``). 0: off.
    first_step_max: float = 1.5
    #: Boxes of lower confidence than this only continue someone already tracked, after every
    #: box of this confidence or more has been matched (ByteTrack's second pass); they never
    #: start a track, nor make one long enough to be more than a fragment. 0: every box is
    #: matched alike. (detect_people asks for boxes of PERSON_MIN_CONFIDENCE, 0.5, and more:
    #: a lower setting hands the tracker these boxes.)
    track_confidence: float = 0.5
    #: A low box overlapping a confident box of its frame by this IoU or more is a second box
    #: on someone found already: not tracked.
    low_overlap: float = 0.3
    #: Occlusion (docs/tracking.md, *Occlusion*). A detection within this distance
    #: (``motion_cost``) of two or more tracked people, or overlapping another box of its frame
    #: by ``occlusion_iou`` or more, is taken while people overlap: it continues whoever it is
    #: given to, but does not teach them their colours (its box may hold both). 0: off.
    #: Chosen on the tuning seeds (0.5-1.0 alike); coasting such a person on their motion from
    #: before the overlap was measured and left out (merges 14.9% -> 22-25% on noisy boxes).
    occlusion_reach: float = 0.7
    occlusion_iou: float = 0.3
    #: Of the people such a detection could continue, one whose colours (from before the
    #: overlap) are further from it than another's by more than this does not take it, however
    #: near their motion puts it (the joint decision greedy nearest-first would not make).
    #: 0: off. Chosen on the tuning seeds (0.02 / 0.03 / 0.05 / 0.1 measured).
    occlusion_margin: float = 0.03
    #: Of the people such a detection could continue, those missed at the sampled frame before
    #: it cost this much more (in motion_cost's units) when another of them was seen there and
    #: their colours do not decide (no colours, or within ``occlusion_margin``): the box is
    #: more likely the person in view a second ago than one who was lost behind them (a track
    #: reaching past its missed frame took a stranger's box: most merges of boxes without
    #: colours, docs/tracking.md, *Merges and switches, diagnosed*). 0: off. Chosen on the
    #: tuning seeds (0.03-0.2 measured); off far from the camera (``far``: vtest.avi's first half).
    occlusion_missed_cost: float = 0.07
    #: Forward-backward consistency (docs/tracking.md, *Both ways*): the segment is also tracked
    #: backwards in time, and a track is cut where its last this-many detections all belong to
    #: one backwards track and its next this-many all to another: a lasting disagreement is a
    #: swap or a merge one of the two directions made (a disagreement over a box or two, often
    #: a box around two people, is left alone). Each direction alone sees only the past; the
    #: walker who took a standing person's box forwards comes from the other side backwards.
    #: 0: off. Chosen on the tuning seeds (1-4 measured: shorter runs cut merges further but
    #: split visits; relinking the pieces by motion was measured and not adopted).
    two_way_run: int = 4
    #: A new box's height is compared with the median of the person's last this-many
    #: detections (not only the last one): without colours, height is what tells two people
    #: of one place apart, and one box's is off by a few per cent. Chosen on the tuning seeds
    #: (3 / 5 / 8 alike; 1, the last box only, merges more: 2.9% against 2.1% of tracks,
    #: detector). 1: the last box only.
    height_window: int = 5
    #: A video's final track of fewer detections is not a visit (vidsift.core.confirm), unless it
    #: is at the video's first or last sampled frame. 1: every track is.
    confirm_detections: int = 1
    #: Join a video's track pieces offline (vidsift.core.linking) before confirming them:
    #: "auto" where its walkers take long steps for their size (far from the camera), "always",
    #: or "off".
    link: str = "auto"
    #: The settings that replace the ones above where the walkers are far from the camera
    #: (vidsift.core.linking.far_regime, judged on the tracks these settings give): the
    #: segment is tracked again with them (:func:`track_segment`), and its video stitched and
    #: confirmed with them. Far, a person's box is a few dozen pixels, mostly background and
    #: blur, so their colours say less (docs/tracking.md, *vtest.avi halved*). Empty: none.
    #: Chosen on vtest.avi's first half (0-40 s) only: the colours weigh half as much in the
    #: distance and are a veto from 0.35 (one person's boxes 5-10 s apart there: median 0.30,
    #: other people's 0.39), where the generated figures' 0.25 and 1.0 split its walkers.
    far: tuple[tuple[str, float], ...] = (("appearance_weight", 0.5), ("max_appearance", 0.35),
                                          ("occlusion_missed_cost", 0.0))

    def in_far_regime(self) -> TrackParams:
        """These settings with ``far``'s in place (and no further far settings)."""
        return replace(self, far=(), **dict(self.far))


@dataclass(frozen=True)
class Point:
    """One detection of a tracked person. ``occluded``: taken while this person and another
    overlapped (their box may be both of them): not used for their colours."""

    frame_index: int
    time_s: float
    box_index: int
    box: Box
    occluded: bool = field(default=False, compare=False)


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

    norfair does the bookkeeping (which person each detection continues, greedily by the
    distance below; a person unseen for ``max_gap_s`` ends), the distance is observation
    centric (:func:`motion_cost`): each person's next position comes from their own last
    detections, not from a filter that a wrong match has already bent; the same association
    run backwards in time cuts a track where the two disagree for good (:func:`two_way`).
    Track keys are
    ``<prefix><n>`` with n counted in order of first appearance (frame, then the box's left
    edge), so they do not depend on norfair's internal counters.
    """

    ordered = sorted({f.frame_index: f for f in frames}.values(), key=lambda f: f.frame_index)
    step = _frame_step(ordered)
    found = _track_once(ordered, params, step)
    far = for_regime([Track(key="", points=pts) for pts in found], params, step)
    if far is not params:  # far from the camera: tracked again with the far settings
        found = _track_once(ordered, far, step)
    return [Track(key=f"{prefix}{n}", points=pts) for n, pts in enumerate(found, start=1)]


def for_regime(tracks: Sequence[Track], params: TrackParams, step: float) -> TrackParams:
    """``params.in_far_regime()`` where ``params.far`` is set and ``tracks`` are in the far
    regime (vidsift.core.linking.far_regime), else ``params`` itself."""
    if not params.far:
        return params
    from vidsift.core.linking import far_regime  # linking builds on this module

    return params.in_far_regime() if far_regime(tracks, step) else params


def _track_once(ordered: Sequence[FramePeople], params: TrackParams, step: float) -> list[list[Point]]:
    """track_segment's work with one set of settings: each track's points, in key order."""
    first_index = ordered[0].frame_index if ordered else 0
    _quiet_norfair()
    found_tracks = _associate(ordered, params, step)
    if params.two_way_run > 0 and ordered:
        found_tracks = two_way(ordered, found_tracks, params, step)
    # A short track at the segment's first or last frame may go on in the next or the previous
    # segment: stitch decides (it drops what is still short once joined).
    ends = (ordered[0].frame_index, ordered[-1].frame_index) if ordered else (0, 0)
    keep = {id(pts) for pts in drop_fragments(found_tracks, params)}
    found = rejoin([pts for pts in found_tracks if id(pts) in keep
                    or pts[0].frame_index == ends[0] or pts[-1].frame_index == ends[1]], params, step, first_index)
    found.sort(key=lambda pts: (pts[0].frame_index, pts[0].box.left, pts[0].box.top))
    return found


def _associate(ordered: Sequence[FramePeople], params: TrackParams, step: float) -> list[list[Point]]:
    """Which detection continues whom, frame by frame in the order given (norfair's books,
    :func:`motion_cost`'s distance): each person's detections in time order, before fragments
    are dropped and lost people rejoined."""
    first_index = ordered[0].frame_index if ordered else 0

    # The segment is tracked as a whole, so a first step can look one sampled frame ahead.
    after = {a.frame_index: b for a, b in itertools.pairwise(ordered) if b.time_s - a.time_s <= 1.5 * step}

    def distance(detection: object, tracked: object, raw: bool = False) -> float:
        trail = tracked.last_detection.data["trail"]  # type: ignore[attr-defined]
        point = detection.data["point"]  # type: ignore[attr-defined]
        if not trail or point.time_s <= trail[-1].time_s:
            return params.max_distance + 1.0
        if id(tracked) in detection.data.get("not_for", ()):  # type: ignore[attr-defined]
            return _NEVER  # another overlapping person's colours are much nearer
        # Someone already there at the segment's first frame may have come from anywhere.
        cost = motion_cost(trail, point, params, step, entering=trail[0].frame_index != first_index,
                           ahead=after.get(point.frame_index))
        if not raw and id(tracked) in detection.data.get("missed_for", ()):  # type: ignore[attr-defined]
            cost += params.occlusion_missed_cost  # lost behind someone seen a frame ago
        if raw or params.track_confidence <= 0:
            return cost
        if cost >= params.max_distance:
            return _NEVER
        # Two passes in one greedy matching: every high box's cost is below every low box's.
        return cost + params.max_distance * (point.box.confidence < params.track_confidence)

    return list(_norfair(ordered, params, step, distance).values())


_NEVER = 1e9


def two_way(ordered: Sequence[FramePeople], tracks: list[list[Point]], params: TrackParams,
            step: float) -> list[list[Point]]:
    """Forward-backward consistency: ``tracks`` (the forward association of ``ordered``), each
    cut where the same association run backwards in time disagrees with it for good: its last
    ``two_way_run`` detections are all one backwards track's and its next ``two_way_run`` all
    another's. The tracker sees a whole segment, so it can ask the future too: where a person
    stops behind a standing one or two meet, the forward pass decides from what came before
    and the backward pass from what comes after; a swap or a merge made by one of them shows
    up as two long runs of the other's tracks inside one track. A cut splits a merged track
    (two visits in one) into its visits; a cut in a right track (the backward pass wrong)
    splits one visit into two, which rejoin can mend when colours agree."""
    first_index, last_index = ordered[0].frame_index, ordered[-1].frame_index
    m_index, m_time = first_index + last_index, ordered[0].time_s + ordered[-1].time_s
    mirrored = [FramePeople(m_index - f.frame_index, round(m_time - f.time_s, 6), f.boxes) for f in reversed(ordered)]
    owner = {(m_index - p.frame_index, p.box_index): n
             for n, pts in enumerate(_associate(mirrored, params, step)) for p in pts}
    run = params.two_way_run
    out = []
    for pts in tracks:
        ids = [owner.get((p.frame_index, p.box_index)) for p in pts]
        start = 0
        for k in range(run - 1, len(pts) - run):
            before, after = set(ids[k - run + 1: k + 1]), set(ids[k + 1: k + 1 + run])
            if len(before) == len(after) == 1 and None not in before | after and before != after:
                out.append(pts[start: k + 1])
                start = k + 1
        out.append(pts[start:])
    return out


def drop_fragments(tracks: list[list[Point]], params: TrackParams) -> list[list[Point]]:
    """The tracks without fragments: a track of fewer than ``min_detections`` detections
    within ``fragment_s`` seconds and one of its heights of another track's detection is a
    piece of someone tracked already (a doubled box, a figure half found) and is dropped; on
    its own (someone seen once, a single frame), it is a visit and stays."""
    def sure(pts: list[Point]) -> int:  # low boxes (track_confidence) do not make a track long
        return sum(p.box.confidence >= params.track_confidence for p in pts)

    long = [pts for pts in tracks if sure(pts) >= params.min_detections]
    out = []
    for pts in tracks:
        if sure(pts) >= params.min_detections:
            out.append(pts)
            continue
        near = any(abs(p.time_s - q.time_s) <= params.fragment_s
                   and _centre_distance(p.box, q.box) <= 1.0
                   for other in long for q in other for p in pts)
        if not near:
            out.append(pts)
    return out


def _centre_distance(a: Box, b: Box) -> float:
    """Centre to centre, in ``a``'s heights."""
    return math.dist((a.left + a.width / 2, a.top + a.height / 2),
                     (b.left + b.width / 2, b.top + b.height / 2)) / max(a.height, 1e-6)


def _norfair(ordered: Sequence[FramePeople], params: TrackParams, step: float,
             distance: object) -> dict[int, list[Point]]:
    from norfair import Detection as NfDetection
    from norfair import Tracker
    from norfair.filter import OptimizedKalmanFilterFactory

    # norfair's own Kalman filter only keeps its books here (the distance ignores it).
    low = params.track_confidence > 0  # low boxes' costs are shifted up by max_distance (distance above)
    tracker = Tracker(distance_function=distance, distance_threshold=params.max_distance * (2 if low else 1),
                      hit_counter_max=max(1, math.ceil(params.max_gap_s / step)),
                      initialization_delay=0, pointwise_hit_counter_max=1, past_detections_length=0,
                      filter_factory=OptimizedKalmanFilterFactory(Q=10.0, vel_variance=100.0))
    by_object: dict[int, list[Point]] = {}
    for frame in ordered:
        dets = []
        high = [b for b in frame.boxes if b.confidence >= params.track_confidence]
        for i, b in enumerate(frame.boxes):
            if low and b.confidence < params.track_confidence and any(iou(b, o) >= params.low_overlap for o in high):
                continue
            corners = [[b.left * _SCALE, b.top * _SCALE], [(b.left + b.width) * _SCALE, (b.top + b.height) * _SCALE]]
            point = Point(frame.frame_index, frame.time_s, i, b)
            dets.append(NfDetection(points=_array(corners), scores=_array([b.confidence, b.confidence]),
                                    data={"point": point, "trail": [point]}))
        existing = list(tracker.tracked_objects)  # held, so no new object can reuse their ids
        before = {id(o) for o in existing}
        if params.occlusion_reach > 0:
            _mark_occlusions(dets, existing, params, distance, step)
        active = tracker.update(detections=dets)
        if low:  # a low box that continued no one starts no one
            started_low = {id(o) for o in tracker.tracked_objects if id(o) not in before
                           and o.last_detection.data["point"].box.confidence < params.track_confidence}
            tracker.tracked_objects = [o for o in tracker.tracked_objects if id(o) not in started_low]
            active = [o for o in active if id(o) not in started_low]
        for obj in active:
            det = obj.last_detection
            if any(det is d for d in dets):  # matched in this frame (not a prediction alone)
                trail = by_object.setdefault(obj.id, [])
                trail.append(det.data["point"])
                det.data["trail"] = trail
    return by_object


def _clean(trail: Sequence[Point]) -> Sequence[Point]:
    """The person's detections taken while no one overlapped them (all of them if none was)."""
    clean = [p for p in trail if not p.occluded]
    return clean or trail


def _mark_occlusions(dets: list, objects: list, params: TrackParams, distance: object, step: float = 1.0) -> None:
    """Before a frame is matched: mark each detection near two or more tracked people (or on
    another box of the frame) occluded, and keep, per detection, the people whose colours say
    it is not theirs while another's say it is (``occlusion_margin``), and, where colours do
    not decide, the people missed at the frame before while another was seen there
    (``occlusion_missed_cost``). norfair's matching then reads ``data["not_for"]`` and
    ``data["missed_for"]`` (track_segment's distance)."""
    boxes = [d.data["point"].box for d in dets]
    for n, det in enumerate(dets):
        point = det.data["point"]
        near = [o for o in objects if distance(det, o, raw=True) < params.occlusion_reach]  # type: ignore[operator]
        overlaps = any(iou(point.box, b) >= params.occlusion_iou for m, b in enumerate(boxes) if m != n)
        if len(near) < 2 and not overlaps:
            continue
        det.data["point"] = replace(point, occluded=True)
        det.data["trail"] = [det.data["point"]]
        if params.occlusion_missed_cost > 0 and len(near) >= 2:
            missed = {id(o) for o in near if point.time_s - o.last_detection.data["trail"][-1].time_s > 1.5 * step}
            if len(missed) < len(near):  # someone near was seen at the frame before
                det.data["missed_for"] = missed
        if params.occlusion_margin <= 0 or len(near) < 2 or not point.box.appearance:
            continue
        colours = {id(o): appearance_distance(mean_appearance(_clean(o.last_detection.data["trail"])[-3:]),
                                              list(point.box.appearance)) for o in near}
        best = min(colours.values())
        det.data["not_for"] = {k for k, c in colours.items() if c > best + params.occlusion_margin}
        if det.data["not_for"]:  # the colours decide: not the frame missed
            det.data.pop("missed_for", None)


def at_side(box: Box, params: TrackParams) -> int:
    """-1 for a box touching the frame's left side, 1 its right side, 0 neither (or both)."""
    left, right = box.left <= params.edge_margin, box.left + box.width >= 1.0 - params.edge_margin
    return 0 if left == right else (-1 if left else 1)


def ref_width(trail: Sequence[Point], params: TrackParams) -> float:
    """The person's unclipped width: the widest box not cut by a side (else the widest)."""
    whole = [p.box.width for p in trail if at_side(p.box, params) == 0]
    return max(whole or [p.box.width for p in trail])


def anchor(box: Box, width: float, params: TrackParams) -> tuple[float, float]:
    """Where the person's centre is: a box cut by the frame's side is measured from its inner edge."""
    side = at_side(box, params)
    cy = box.top + box.height / 2
    if side < 0:
        return box.left + box.width - width / 2, cy
    if side > 0:
        return box.left + width / 2, cy
    return box.left + box.width / 2, cy


def velocity(trail: Sequence[Point], params: TrackParams, step: float, entering: bool = True) -> tuple[float, float]:
    """Frame fractions a second, from the person's own detections over the last
    ``velocity_window_s`` (first to last: jitter averages out over the span). Seen once:
    walking in at ``entering_speed`` when at a side of the frame and ``entering`` (they
    appeared there), else 0."""
    last = trail[-1]
    recent = [p for p in trail if last.time_s - p.time_s <= params.velocity_window_s + 1e-6]
    span = last.time_s - recent[0].time_s
    if span < 0.5 * step:  # seen once: at a side, coming in; elsewhere, no idea
        return -at_side(last.box, params) * params.entering_speed * last.box.height * entering, 0.0
    w = ref_width(trail, params)
    (x0, y0), (x1, y1) = anchor(recent[0].box, w, params), anchor(last.box, w, params)
    return (x1 - x0) / span, (y1 - y0) / span


def left_view(trail: Sequence[Point], time_s: float, params: TrackParams, step: float,
              entering: bool = True) -> bool:
    """Whether the person has walked out of the frame by ``time_s``: their last box was at a
    side and they were not walking inwards, or their own motion has taken their centre out
    of the frame since. Either way they were not seen at the next sampled frame."""
    last = trail[-1]
    gap = time_s - last.time_s
    if gap <= 1.5 * step:
        return False
    vx, _ = velocity(trail, params, step, entering)
    side = at_side(last.box, params)
    h = max(last.box.height, 1e-6)
    if side != 0 and vx * side > -params.walking_speed * h:
        return True
    cx, _ = anchor(last.box, ref_width(trail, params), params)
    return not 0.0 <= cx + vx * gap <= 1.0


def motion_cost(trail: Sequence[Point], point: Point, params: TrackParams, step: float,
                entering: bool = True, ahead: FramePeople | None = None) -> float:
    """How far ``point`` is from where the person of ``trail`` should be: centre distance from
    their own motion's prediction in their heights, plus |log| of the height ratio, scaled
    down for each sampled frame they were missed (``reach_per_missed``). Never (above any
    threshold) when they had left the view, when it would turn a walking person around on
    the spot, or when the colours say someone else."""
    last = trail[-1]
    gap = point.time_s - last.time_s
    if gap <= 0 or left_view(trail, point.time_s, params, step, entering):
        return _NEVER
    a, b = last.box, point.box
    h = max(a.height, 1e-6)
    vx, vy = velocity(trail, params, step, entering)
    w = ref_width(trail, params)
    (cx, cy), (dx, dy) = anchor(a, w, params), anchor(b, w, params)
    if abs(vx) >= params.walking_speed * h and (dx - cx) * vx < 0 and abs(dx - cx) > params.reverse_tolerance * h:
        return _NEVER  # a walker does not turn around between two frames
    colours = appearance_distance(mean_appearance(_clean(trail)[-3:]), b.appearance and list(b.appearance))
    if colours > params.max_appearance:
        return _NEVER
    d = (math.dist((cx + vx * gap, cy + vy * gap), (dx, dy)) / h
         + abs(math.log(max(b.height, 1e-6) / _height(trail, params))))
    missed = max(0.0, gap / step - 1.0)
    known = last.time_s - trail[0].time_s >= 0.5 * step  # a speed measured, not guessed
    reach = (1.0 + params.reach_per_missed * missed) * (1.0 if known else params.first_step_reach)
    cost = (d + params.appearance_weight * colours) / reach
    if known or cost <= params.max_distance or ahead is None or params.first_step_max <= 0:
        return cost
    confirmed = _confirmed_step(a, b, w, gap, point.time_s, ahead, params)
    return cost if confirmed is None else confirmed + params.appearance_weight * colours


def _height(trail: Sequence[Point], params: TrackParams) -> float:
    """The person's height to compare a new box's with: the median of their last
    ``height_window`` detections not taken while overlapping someone (one box's edges are off
    by a few per cent; people's heights differ by up to a quarter)."""
    if params.height_window <= 1:
        return max(trail[-1].box.height, 1e-6)
    heights = sorted(p.box.height for p in _clean(trail)[-params.height_window:])
    return max(heights[len(heights) // 2], 1e-6)


def _confirmed_step(a: Box, b: Box, width: float, gap: float, time_s: float, ahead: FramePeople,
                    params: TrackParams) -> float | None:
    """A first step from ``a`` to ``b`` (at ``time_s``) longer than a guessed speed allows,
    decided by the next frame: the step's speed (at most ``first_step_max`` heights a second)
    carried on from ``b`` must land within ``max_distance`` of one of ``ahead``'s boxes.
    Returns how far it lands from the nearest (in heights, plus |log| of the height ratio),
    or None."""
    h = max(a.height, 1e-6)
    (cx, cy), (dx, dy) = anchor(a, width, params), anchor(b, width, params)
    vx, vy = (dx - cx) / gap, (dy - cy) / gap
    if math.hypot(vx, vy) > params.first_step_max * h or abs(math.log(max(b.height, 1e-6) / h)) > params.max_distance:
        return None
    dt = ahead.time_s - time_s
    hb = max(b.height, 1e-6)
    best = min((math.dist((dx + vx * dt, dy + vy * dt), anchor(c, width, params)) / hb
                + abs(math.log(max(c.height, 1e-6) / hb)) for c in ahead.boxes), default=_NEVER)
    return best if best <= params.max_distance else None


def mean_appearance(points: Sequence[Point]) -> list[float] | None:
    """The mean of the points' colours (None when none has any): one detection's colours are
    noisy, a few seconds' mean is what a rejoin or a link compares."""
    apps = [p.box.appearance for p in points if p.box.appearance]
    return [sum(v) / len(apps) for v in zip(*apps, strict=True)] if apps else None


def rejoin(tracks: list[list[Point]], params: TrackParams, step: float = 1.0,
           first_index: int | None = None) -> list[list[Point]]:
    """Re-identification after the tracker: a track that ended and one that began later are
    one person's when the gap is at most ``rejoin_s``, the first had not walked out of the
    view (:func:`left_view`: someone who left at a side and someone entering later are two
    visits, even at the far side, even in the same colours), the second begins within reach
    of where the first's own motion would have taken them (``rejoin_reach`` heights plus
    ``rejoin_reach_per_s`` a second of the gap), and their colours agree (the mean of the
    last and first three detections, ``max_appearance``; without colours, nothing is
    rejoined). What the tracker cannot bridge (hidden behind others for longer than
    ``max_gap_s``), colours and motion together can. Later tracks are joined in order of
    first appearance, each to the closest in colour of the tracks that ended before it; a
    track so continued ends where its new part ends (deterministic)."""
    chains = sorted(tracks, key=lambda pts: (pts[0].frame_index, pts[0].box.left, pts[0].box.top))
    out: list[list[Point]] = []
    for pts in chains:
        first = pts[0]
        best: tuple[float, float, int] | None = None
        for n, chain in enumerate(out):
            last = chain[-1]
            gap = first.time_s - last.time_s
            entering = chain[0].frame_index != first_index  # not there since the segment began
            if not 0 < gap <= params.rejoin_s or left_view(chain, first.time_s, params, step, entering):
                continue
            if not (last.box.appearance and first.box.appearance):  # no colours: boxes alone cannot tell
                continue
            if at_side(first.box, params) != 0 and at_side(first.box, params) != at_side(last.box, params):
                continue  # entering at a side the first was not at: someone coming in
            vx, vy = velocity(chain, params, step, entering)
            w = ref_width(chain, params)
            (cx, cy), (dx, dy) = anchor(last.box, w, params), anchor(first.box, w, params)
            far = math.dist((cx + vx * gap, cy + vy * gap), (dx, dy)) / max(last.box.height, 1e-6)
            if far > params.rejoin_reach + params.rejoin_reach_per_s * gap:
                continue
            colours = appearance_distance(mean_appearance(chain[-3:]), mean_appearance(pts[:3]))
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
    """Total variation distance between two appearances (each half's histogram sums to 1; the
    endpoint's version 2 layout also sums to 2 in all, so the scale is the same): 0 when either
    is unknown or they are of two layouts (two lengths: frames detected before and after an
    endpoint's appearance version changed), so boxes alone decide then."""
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

    A track of segment k continues as a track of segment k+1 by the rule that continues a
    person within a segment: the second starts within ``max_gap_s`` of its segment's start
    and of the first's last detection, and its first detection is within ``max_distance`` of
    where the first's own motion puts them (:func:`motion_cost`: not after they left the
    view, not turned around, not in other colours). Pairs are taken nearest first, each
    joined at most once. The video's ids are ``p<n>`` (three digits and more), n in order of
    first appearance in the video, so they do not depend on how the video was cut. Tracks
    still shorter than ``min_detections`` once joined are dropped.
    """
    ordered = sorted(segments, key=lambda s: s[0])
    times = sorted({p.time_s for _, seg in ordered for t in seg for p in t.points})
    step = _frame_step([FramePeople(i, t, ()) for i, t in enumerate(times)])
    params = for_regime([t for _, seg in ordered for t in seg], params, step)  # far: the far settings
    chains: list[Track] = []
    for start_s, seg in ordered:
        seg_tracks = sorted(seg, key=lambda t: (t.first.frame_index, t.first.box.left, t.first.box.top))
        open_ends = [c for c in chains if start_s - c.last.time_s <= params.max_gap_s]
        pairs = []
        for ci, chain in enumerate(open_ends):
            for ti, tr in enumerate(seg_tracks):
                gap = tr.first.time_s - chain.last.time_s
                if 0 < gap <= params.max_gap_s and tr.first.time_s - start_s <= params.max_gap_s:
                    cost = motion_cost(chain.points, tr.first, params, step)
                    if cost <= params.max_distance:
                        pairs.append((cost, gap, ci, ti))
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
    keep = {id(pts) for pts in drop_fragments([c.points for c in chains], params)}
    chains = [c for c in chains if id(c.points) in keep]
    chains.sort(key=lambda t: (t.first.frame_index, t.first.box.left, t.first.box.top))
    for n, chain in enumerate(chains, start=1):
        chain.track_id = f"p{n:03d}"
    return chains
