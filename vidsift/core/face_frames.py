"""Which frames of a visit go to face analysis, and whose face a found face is.

DetectFaces is the pipeline's dearest call, so it runs per person visit (a track), not per
frame: on the track's best frame (the largest person box, then the most confident: the
person at their closest), plus one more per ``revisit_s`` of a long stay (each the best
frame at least that far in time from those taken); never on a frame where the person's box
is too short to hold a face Rekognition can find.

Why no "came closer" rule: a tracker deciding online (frame by frame, as Frigate does)
needs one, to replace its best thumbnail so far when the person approaches. Here the whole
visit is known before anything is analysed, so the frame where the person came closest is
the best frame itself, taken first.

The height rule: Rekognition's documented minimum is a face of 40x40 px in a 1920x1080
frame, i.e. 40/1080 = 3.7 % of the frame's height (it scales with the image). A standing
adult's face (chin to hairline) is about 1/7 of their height, so a whole-body person box
must be about 7 x 3.7 % = 26 % of the frame's height before their face can be found; the
default, 0.25, rounds that down a little for boxes that crop the legs (FACE_MIN_PERSON_HEIGHT).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from vidsift.core.detection import Box
from vidsift.core.errors import ConfigError
from vidsift.core.tracking import Point, Track

#: Rekognition's smallest findable face as a fraction of the frame's height (40 px of 1080).
REKOGNITION_MIN_FACE = 40 / 1080
#: A standing person's height in faces (chin to hairline): about seven.
FACES_PER_PERSON_HEIGHT = 7


@dataclass(frozen=True)
class FaceRule:
    """FACE_MIN_PERSON_HEIGHT, FACE_REVISIT_S (0: the best frame only), FACE_FRAMES_MAX."""

    min_person_height: float = 0.25
    revisit_s: float = 60.0
    max_frames: int = 4

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> FaceRule:
        """From the function's variables (vidsift.settings passes them; the core reads no
        environment): ConfigError naming the variable when one is malformed."""
        def num(name: str, default: float) -> float:
            raw = values.get(name)
            if raw in (None, ""):
                return default
            try:
                value = float(raw)
            except ValueError as exc:
                raise ConfigError(f"{name}={raw!r} is not a number") from exc
            if value < 0:
                raise ConfigError(f"{name}={raw!r} must not be negative")
            return value

        d = cls()
        return cls(min_person_height=num("FACE_MIN_PERSON_HEIGHT", d.min_person_height),
                   revisit_s=num("FACE_REVISIT_S", d.revisit_s),
                   max_frames=max(1, int(num("FACE_FRAMES_MAX", d.max_frames))))


def _quality(p: Point) -> tuple[float, float, int]:
    """Largest box first, then the detector's confidence (a sharp, unoccluded person scores
    higher), then the earliest frame: deterministic."""
    return (p.box.height, p.box.confidence, -p.frame_index)


def choose(track: Track, rule: FaceRule) -> list[Point]:
    """The frames of ``track`` to send to DetectFaces, in time order: best first, then each
    next best frame at least ``revisit_s`` from every frame taken, up to ``max_frames``."""
    taken: list[Point] = []
    eligible = [p for p in track.points if p.box.height >= rule.min_person_height]
    for p in sorted(eligible, key=_quality, reverse=True):
        if len(taken) >= rule.max_frames or (taken and rule.revisit_s <= 0):
            break
        if all(abs(p.time_s - q.time_s) >= rule.revisit_s for q in taken):
            taken.append(p)
    return sorted(taken, key=lambda p: p.frame_index)


def best_point(track: Track) -> Point:
    """The frame that shows the person best (the track's thumbnail), tall enough or not."""
    return max(track.points, key=_quality)


def groups(choices: dict[str, Sequence[int]]) -> list[list[str]]:
    """Tracks that chose a common frame go to face analysis together, so that frame is
    analysed once for all of them; every other track goes alone. ``choices`` maps a track
    id to the frame indices it chose; the groups are in order of their first track id."""
    parent = {t: t for t in choices}

    def find(t: str) -> str:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    by_frame: dict[int, str] = {}
    for track_id in sorted(choices):
        for frame in choices[track_id]:
            if frame in by_frame:
                a, b = find(by_frame[frame]), find(track_id)
                parent[max(a, b)] = min(a, b)
            else:
                by_frame[frame] = track_id
    out: dict[str, list[str]] = {}
    for track_id in sorted(choices):
        out.setdefault(find(track_id), []).append(track_id)
    return [out[k] for k in sorted(out)]


def owner(face_box: dict[str, float], people: Iterable[tuple[str | None, Box]]) -> str | None:
    """The track a face (Rekognition BoundingBox, fractions) belongs to: the person box that
    contains the face's centre in its upper half, the smallest one if several do (the
    nearer person stands in front). None when no person box holds it."""
    cx = float(face_box.get("Left", 0)) + float(face_box.get("Width", 0)) / 2
    cy = float(face_box.get("Top", 0)) + float(face_box.get("Height", 0)) / 2
    holders = [(b.width * b.height, track_id) for track_id, b in people
               if b.left <= cx <= b.left + b.width and b.top <= cy <= b.top + b.height * 0.5]
    holders.sort(key=lambda h: (h[0], h[1] or ""))
    return holders[0][1] if holders else None
