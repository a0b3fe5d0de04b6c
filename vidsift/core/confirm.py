"""Which of a video's tracks are visits: a track is confirmed only once it was seen long enough.

Why: users count visits as rows of the ``tracks`` table, and a person the detector finds in
one sampled frame out of three breaks into several short tracks, each one a row. Trackers
confirm a track only after it was matched in several frames (SORT's and ByteTrack's
``min_hits``, norfair's ``initialization_delay``); a detection that never becomes part of a
confirmed track is left unassigned. Here the rule is applied once, to the video's final
tracks (after :func:`vidsift.core.tracking.stitch`), so a person cut by a segment boundary is
judged on their whole visit, not on the piece in each segment.

A track at the video's first or last sampled frame is kept however short: someone already
there when the recording began, or still there when it ended, was seen briefly because the
video is short, not because the detector lost them (a clip of a single frame with someone in
it has one visit).

A dropped track's boxes stay in the ``people`` rows, with no track id: every box the
detector found is still counted per frame; only the count of visits changes.

Before judging, a far walker's pieces are joined into one track (vidsift.core.linking,
``TrackParams.link``): a piece is judged as part of the walk it belongs to, not as a short
track of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from vidsift.core.linking import link_if_far, link_tracks, sampling_step
from vidsift.core.tracking import Track, TrackParams, for_regime


def is_confirmed(track: Track, first_frame: int, last_frame: int, *, min_detections: int = 1,
                 min_seconds: float = 0.0, at_ends: bool = True, track_confidence: float = 0.0) -> bool:
    """Whether ``track`` is a visit: at least ``min_detections`` detections (of confidence
    ``track_confidence`` or more: low-score boxes only continue someone, as in
    drop_fragments) and at least ``min_seconds`` from its first detection to its last, or,
    with ``at_ends``, a detection at the video's first or last sampled frame. A track of low
    boxes only (a piece the two-way cut or a segment's end left) is never a visit: a low box
    never counts as a person on its own."""
    sure = sum(p.box.confidence >= track_confidence for p in track.points)
    if not sure:  # no box counted as a person (only low ones, e.g. a piece cut off both ways)
        return False
    if at_ends and (track.first.frame_index <= first_frame or track.last.frame_index >= last_frame):
        return True
    return sure >= min_detections and track.last.time_s - track.first.time_s >= min_seconds


def confirmed(tracks: Sequence[Track], first_frame: int, last_frame: int,
              params: TrackParams) -> list[Track]:
    """The tracks of a video (``first_frame`` and ``last_frame``: its first and last sampled
    frames) that are visits by ``params.confirm_detections`` (1: every track). The tracks
    keep their ids: a dropped track leaves a gap in the numbering, so a track's id does not
    depend on how many short tracks came before it. A far walker's pieces are joined first
    (``params.link``: "auto", "always" or "off"); a joined track keeps its first piece's id.
    Where the tracks are far (and ``params.far`` is set), its settings judge them."""
    step = sampling_step(tracks)
    params = for_regime(tracks, params, step)  # far from the camera: ``params.far``'s settings
    if params.link == "always":
        tracks = link_tracks(tracks, params, step)
    elif params.link == "auto":
        tracks = link_if_far(tracks, params, step)
    elif params.link != "off":
        raise ValueError(f"TrackParams.link must be auto, always or off, got {params.link!r}")
    return [t for t in tracks if is_confirmed(t, first_frame, last_frame, min_detections=params.confirm_detections,
                                              track_confidence=params.track_confidence)]
