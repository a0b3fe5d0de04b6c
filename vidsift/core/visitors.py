"""Visitors, not visits: the plain rules behind "was this person here before?".

A *visit* is one track (a person followed through one video). A *visitor* is a person
recognised across visits, videos and cameras by their face: each visit with a usable face is
searched in the ``visitors`` face collection; a match at or above the threshold is that
visitor, otherwise the visit starts a new one. This module holds the decisions only (which
faces are usable, which visitor a search result names, how many faces to index, who has
expired); the calls are in vidsift.stages.visitors and vidsift/aws.py.

Usable faces follow Amazon Rekognition's own guidance for faces that are indexed or searched
("Recommendations for facial comparison input images" and "... for camera setup"): a face
at least 50 x 50 pixels (in frames up to 1920 x 1080), bright and sharp, pitch under 30
degrees face down and 45 degrees face up, yaw under 45 degrees either way (no limit on roll),
and a confident detection. A face without a pose (the local analyser's mesh missed it) is not
usable: it could not be compared either.

Ids: ``v`` and a number from a counter that only grows (``v000001``), so an id is never
reused, not after a visitor expires nor after one is forgotten. A face is indexed with
ExternalImageId ``<visitor_id>.<face_ref>``, where face_ref names the face's frame and index,
so the collection itself says whose face it is and a replayed visit that finds its own face
(the same crop, similarity about 100) indexes nothing again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

#: Rekognition's camera-setup guidance: 50 x 50 px faces for frames up to 1920 x 1080.
MIN_FACE_PX = 50
#: The detection's own confidence (0-100); Rekognition's IndexFaces AUTO filter drops weaker.
MIN_CONFIDENCE = 90.0
#: Sharpness (0-100, Rekognition's Quality.Sharpness; the local analyser's Laplacian measure).
MIN_SHARPNESS = 10.0
MIN_BRIGHTNESS = 10.0
#: Rekognition's recommended angles: |yaw| < 45, pitch < 30 face down, < 45 face up.
MAX_YAW = 45.0
MAX_PITCH_DOWN = 30.0
MAX_PITCH_UP = 45.0
#: Faces indexed per visitor (Rekognition recommends at least five images of a person).
FACES_PER_VISITOR = 5
DEFAULT_RETENTION_DAYS = 30

_VISITOR_ID = re.compile(r"v[0-9]{6,}")
_EXTERNAL = re.compile(r"(v[0-9]{6,})\.([0-9a-f]{16})")


@dataclass(frozen=True)
class QualityRules:
    """When a face is good enough to be indexed or searched as a visitor's."""

    min_face_px: int = MIN_FACE_PX
    min_confidence: float = MIN_CONFIDENCE
    min_sharpness: float = MIN_SHARPNESS
    min_brightness: float = MIN_BRIGHTNESS
    max_yaw: float = MAX_YAW
    max_pitch_down: float = MAX_PITCH_DOWN
    max_pitch_up: float = MAX_PITCH_UP


def unusable_reason(face: dict[str, Any], frame_size: tuple[int, int], rules: QualityRules) -> str | None:
    """Why a ``faces`` row's face cannot identify a visitor, or None when it can.

    ``face`` is a faces row (vidsift.core.records.build_face_record): ratios for the box,
    Rekognition's confidence, pose and quality. ``frame_size`` is (width, height) in pixels.
    Pitch: Rekognition reports a face turned up as positive pitch.
    """
    width, height = frame_size
    w_px = (face.get("bbox_width") or 0) * width
    h_px = (face.get("bbox_height") or 0) * height
    if min(w_px, h_px) < rules.min_face_px:
        return f"face {w_px:.0f}x{h_px:.0f} px, under {rules.min_face_px} px"
    if (face.get("confidence") or 0) < rules.min_confidence:
        return f"confidence {face.get('confidence')} under {rules.min_confidence}"
    yaw, pitch = face.get("pose_yaw"), face.get("pose_pitch")
    if yaw is None or pitch is None:
        return "no head pose (the face could not be measured)"
    if abs(yaw) >= rules.max_yaw:
        return f"yaw {yaw:.0f} deg, {rules.max_yaw:.0f} or more"
    if pitch <= -rules.max_pitch_down or pitch >= rules.max_pitch_up:
        return f"pitch {pitch:.0f} deg, outside -{rules.max_pitch_down:.0f}..{rules.max_pitch_up:.0f}"
    if face.get("sharpness") is not None and face["sharpness"] < rules.min_sharpness:
        return f"sharpness {face['sharpness']:.0f} under {rules.min_sharpness:.0f}"
    if face.get("brightness") is not None and face["brightness"] < rules.min_brightness:
        return f"brightness {face['brightness']:.0f} under {rules.min_brightness:.0f}"
    return None


def face_rank(face: dict[str, Any]) -> tuple[float, float, float, str]:
    """Best face first when sorted descending: the largest, then the sharpest, the most frontal."""
    area = (face.get("bbox_width") or 0) * (face.get("bbox_height") or 0)
    return (round(area, 4), face.get("sharpness") or 0, -abs(face.get("pose_yaw") or 0), face["record_id"])


def face_ref(video_id: str, frame_index: int, face_index: int) -> str:
    """A face's short, deterministic reference (16 hex digits): the same face, the same ref."""
    return hashlib.sha256(f"{video_id}\x1f{frame_index}\x1f{face_index}".encode()).hexdigest()[:16]


def external_image_id(visitor_id: str, ref: str) -> str:
    """``<visitor_id>.<face_ref>``: Rekognition's ExternalImageId pattern [a-zA-Z0-9_.\\-:]+."""
    if not _VISITOR_ID.fullmatch(visitor_id):
        raise ValueError(f"not a visitor id: {visitor_id!r}")
    return f"{visitor_id}.{ref}"


def parse_external_image_id(external: str | None) -> tuple[str, str] | None:
    """(visitor id, face ref) of a visitor face's ExternalImageId; None for anything else."""
    m = _EXTERNAL.fullmatch(external or "")
    return (m.group(1), m.group(2)) if m else None


def visitor_id(number: int) -> str:
    """The visitor id for the counter's ``number`` (1, 2, ...): ``v000001``."""
    if number < 1:
        raise ValueError("visitor numbers start at 1")
    return f"v{number:06d}"


def is_visitor_id(value: str) -> bool:
    return bool(_VISITOR_ID.fullmatch(value or ""))


def visit_key(video_id: str, track_id: str) -> str:
    return f"{video_id}/{track_id}"


@dataclass(frozen=True)
class SearchHit:
    """One face of a SearchFacesByImage answer that belongs to a visitor."""

    visitor_id: str
    ref: str
    similarity: float


def hits(resp: dict[str, Any]) -> list[SearchHit]:
    """The visitor faces of a SearchFacesByImage answer, most similar first (faces of the
    collection that are not a visitor's are ignored)."""
    out = []
    for m in resp.get("FaceMatches") or []:
        parsed = parse_external_image_id((m.get("Face") or {}).get("ExternalImageId"))
        if parsed:
            out.append(SearchHit(parsed[0], parsed[1], float(m.get("Similarity", 0))))
    return sorted(out, key=lambda h: (-h.similarity, h.visitor_id, h.ref))


@dataclass(frozen=True)
class Decision:
    """Which visitor a visit is: ``visitor_id`` None means a new one is to be created."""

    visitor_id: str | None
    similarity: float | None
    #: Faces of this visit the collection already holds (a replay after a crash).
    indexed_refs: frozenset[str]


def decide(found: Iterable[SearchHit], own_refs: Iterable[str], threshold: float,
           gone: set[str] | frozenset[str] = frozenset()) -> Decision:
    """The visitor of a visit from the hits of its faces' searches.

    The most similar hit at or above ``threshold`` names the visitor; a hit on one of the
    visit's own faces (``own_refs``: indexed before a crash) names it too, whatever its
    similarity, and says that face needs no indexing. Hits on visitors in ``gone`` (expired
    or forgotten ones whose faces a failed delete left behind) are ignored.
    """
    own = set(own_refs)
    ranked = sorted((h for h in found if h.visitor_id not in gone), key=lambda h: (-h.similarity, h.visitor_id, h.ref))
    indexed = frozenset(h.ref for h in ranked if h.ref in own)
    mine = next((h for h in ranked if h.ref in own), None)
    if mine is not None:
        return Decision(mine.visitor_id, mine.similarity, indexed)
    best = next((h for h in ranked if h.similarity >= threshold), None)
    return Decision(best.visitor_id if best else None, best.similarity if best else None, indexed)


def faces_to_index(usable: Sequence[dict[str, Any]], already: int, per_visitor: int,
                   indexed_refs: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The visit's best faces to index: as many as the visitor still has room for (a visitor
    holds at most ``per_visitor`` faces), never one the collection already holds."""
    skip = set(indexed_refs)
    room = max(0, per_visitor - already)
    fresh = [f for f in usable if face_ref(f["video_id"], f["frame_index"], f["face_index"]) not in skip]
    return sorted(fresh, key=face_rank, reverse=True)[:room]


def seen_at(row: dict[str, Any]) -> str:
    """When a visit happened: its recording time when known, else when it was processed."""
    return str(row.get("captured_at_first") or row.get("processed_at"))


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def expired(last_seen: str, now: datetime, retention_days: float) -> bool:
    """Whether a visitor last seen at ``last_seen`` (ISO 8601) is past the retention period."""
    return parse_time(last_seen) < now - timedelta(days=retention_days)


def check_name(name: str) -> str:
    """A visitor's display name: trimmed, not empty, at most 200 characters, one line."""
    clean = (name or "").strip()
    if not clean:
        raise ValueError("a visitor's name must not be empty")
    if len(clean) > 200 or "\n" in clean or "\r" in clean:
        raise ValueError("a visitor's name must be one line of at most 200 characters")
    return clean
