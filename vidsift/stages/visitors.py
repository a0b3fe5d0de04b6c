"""Visitors, wired to AWS for analyze_faces: give each visit with a usable face a visitor id.

Off unless ``VISITORS=true`` (``--param="visitors=true"``, ``vidsift run --visitors``): a face
search in a collection of everyone who came by is biometric processing, which needs a legal
basis (README, "Visitors"). When off, nothing here runs and nothing is indexed.

For each visit (track) of a group: if the registry already names its visitor (a replayed
message), that answer is used and nothing is searched or indexed. Otherwise its usable faces
(vidsift.core.visitors.unusable_reason) are cut out of their frames, the best ones searched
in the ``visitors`` collection until one matches (at most :data:`SEARCHES_PER_VISIT`); a
match names the visitor, no match makes a new one (an id from a counter that only grows).
Then up to ``VISITOR_FACES_MAX`` faces per visitor are indexed (ExternalImageId
``<visitor>.<face_ref>``), the visitor's registry item records the visit (first and last seen,
cameras, faces), the first visit's best face is copied to the analytics bucket as the
visitor's thumbnail, and the visit's item is written last. Each write is idempotent or
conditional, so a message retried after any failure gives the same ids and indexes no face
twice.

Two invocations that see one new person at the same moment can make two visitors of them
(both search, neither finds the other's face yet): the cost of not serialising face analysis.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

from vidsift import aws, contract
from vidsift.core import keys, matching
from vidsift.core import visitors as rules
from vidsift.core.messages import FaceWork
from vidsift.core.records import iso, utc_now
from vidsift.logs import get_logger
from vidsift.settings import Settings, VisitorSettings
from vidsift.stages import rate
from vidsift.storage.visitors import DynamoVisitorRegistry

logger = get_logger("visitors")

#: Searches per visit at most (each a billed SearchFacesByImage): the best faces first.
SEARCHES_PER_VISIT = 3
#: Registry keys: one item per visitor, per visit, and the id counter.
COUNTER_KEY = "counter"


def visitor_key(visitor_id: str) -> str:
    return f"visitor#{visitor_id}"


def visit_item_key(video_id: str, track_id: str) -> str:
    return f"visit#{rules.visit_key(video_id, track_id)}"


def collection_name(names: contract.ResourceNames) -> str:
    return f"{names.prefix}-{contract.load()['visitors']['collection']}"


def table_name(names: contract.ResourceNames) -> str:
    return f"{names.prefix}-{contract.load()['visitors']['table']}"


def _update(table: str, key: str, change: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
    """Read-modify-write one registry item until no concurrent writer got in between."""
    for _ in range(20):
        doc, version = DynamoVisitorRegistry(table).get(key)
        new = change(doc)
        if new == doc or DynamoVisitorRegistry(table).put(key, new, expected_version=version):
            return new
    raise RuntimeError(f"registry item {key} kept changing under 20 attempts to update it")


def new_visitor_id(table: str) -> str:
    """The next id from the counter (ids are never reused: the counter only grows)."""
    doc = _update(table, COUNTER_KEY, lambda d: {"n": int((d or {}).get("n", 0)) + 1})
    return rules.visitor_id(int(doc["n"]))


def _box(face: dict[str, Any]) -> dict[str, float]:
    return {"Left": face["bbox_left"] or 0.0, "Top": face["bbox_top"] or 0.0,
            "Width": face["bbox_width"] or 0.0, "Height": face["bbox_height"] or 0.0}


def _ref(face: dict[str, Any]) -> str:
    return rules.face_ref(face["video_id"], face["frame_index"], face["face_index"])


class _Frames:
    """Each frame's bytes and size, read once per group."""

    def __init__(self, bucket: str, keys: dict[int, str]) -> None:
        self.bucket, self.keys = bucket, keys
        self._bytes: dict[int, bytes] = {}

    def data(self, frame_index: int) -> bytes:
        if frame_index not in self._bytes:
            self._bytes[frame_index] = aws.get_object_bytes(self.bucket, self.keys[frame_index])
        return self._bytes[frame_index]

    def size(self, frame_index: int) -> tuple[int, int]:
        from PIL import Image

        with Image.open(io.BytesIO(self.data(frame_index))) as im:
            return im.size

    def crop(self, face: dict[str, Any]) -> bytes:
        (crop,) = matching.face_crops(self.data(face["frame_index"]), [_box(face)])
        return crop


def _search(settings: VisitorSettings, crop: bytes) -> list[rules.SearchHit]:
    rate.rekognition_limiter().acquire()  # the same rekognitionTps budget as DetectFaces
    try:
        return rules.hits(aws.search_visitor_faces(str(settings.collection), crop, settings.threshold))
    except Exception as exc:
        if aws.error_code(exc) == "InvalidParameterException":  # no face found again in the crop
            return []
        raise


def _visit_columns(doc: dict[str, Any]) -> dict[str, Any]:
    return {"visitor_id": doc["visitor_id"], "visit_number": doc["visit_number"],
            "visitor_first_seen": doc["visitor_first_seen"]}


def assign_visit(settings: VisitorSettings, analytics_bucket: str, frames: _Frames, track: dict[str, Any],
                 faces: list[dict[str, Any]], video_id: str, now: datetime) -> dict[str, Any] | None:
    """The visitor columns of one visit (None: no usable face), indexing and recording as it goes."""
    table, collection = str(settings.table), str(settings.collection)
    visit_key = visit_item_key(video_id, track["track_id"])
    done, _ = DynamoVisitorRegistry(table).get(visit_key)
    if done is not None:  # a replay: the answer stands, nothing searched or indexed again
        return _visit_columns(done)
    usable = []
    for face in faces:
        reason = rules.unusable_reason(face, frames.size(face["frame_index"]), settings.quality)
        if reason is None:
            usable.append(face)
        else:
            logger.debug("face not usable for visitors", extra={"face": face["record_id"], "reason": reason})
    if not usable:
        return None
    usable.sort(key=rules.face_rank, reverse=True)
    own = {_ref(f) for f in usable}
    crops = {f["record_id"]: frames.crop(f) for f in usable}
    found: list[rules.SearchHit] = []
    if aws.collection_face_count(collection) > 0:  # nobody to find in an empty collection
        for face in usable[:SEARCHES_PER_VISIT]:
            found += _search(settings, crops[face["record_id"]])
            if any(h.similarity >= settings.threshold or h.ref in own for h in found):
                break
    gone = set()
    for vid in {h.visitor_id for h in found}:
        doc, _ = DynamoVisitorRegistry(table).get(visitor_key(vid))
        if doc is not None and doc.get("status") != "active":
            gone.add(vid)
    decision = rules.decide(found, own, settings.threshold, gone)
    vid = decision.visitor_id or new_visitor_id(table)
    current, _ = DynamoVisitorRegistry(table).get(visitor_key(vid))
    indexed: dict[str, str] = {}
    for face in rules.faces_to_index(usable, len((current or {}).get("faces", {})), settings.faces_max,
                                     decision.indexed_refs):
        rate.rekognition_limiter().acquire()
        resp = aws.index_faces(collection, crops[face["record_id"]], rules.external_image_id(vid, _ref(face)))
        for rec in resp.get("FaceRecords", []):
            indexed[_ref(face)] = rec["Face"]["FaceId"]
    seen = rules.seen_at({"captured_at_first": track.get("captured_at_first"), "processed_at": iso(now)})
    vk = rules.visit_key(video_id, track["track_id"])
    best = usable[0]
    thumb = keys.visitor_face_key(vid, _ref(best))

    def record(doc: dict[str, Any] | None) -> dict[str, Any]:
        doc = dict(doc or {"visitor_id": vid, "status": "active", "visits": [], "cameras": [], "faces": {},
                           "first_seen": seen, "last_seen": seen, "thumbnail": None})
        if vk not in doc["visits"]:
            doc["visits"] = [*doc["visits"], vk]
        doc["first_seen"], doc["last_seen"] = min(doc["first_seen"], seen), max(doc["last_seen"], seen)
        camera = track.get("camera_id") or ""
        if camera not in doc["cameras"]:
            doc["cameras"] = sorted([*doc["cameras"], camera])
        doc["faces"] = {**doc["faces"], **indexed}
        if not doc.get("thumbnail"):
            doc["thumbnail"] = thumb
        return doc

    doc = _update(table, visitor_key(vid), record)
    if doc["thumbnail"] == thumb:  # the visitor's first visit: its best face is the thumbnail
        aws.put_object(analytics_bucket, thumb, crops[best["record_id"]], content_type="image/jpeg", metadata={})
    visit = {"visitor_id": vid, "visit_number": doc["visits"].index(vk) + 1, "visitor_first_seen": doc["first_seen"]}
    if not DynamoVisitorRegistry(table).put(visit_key, visit, expected_version=0):
        visit, _ = DynamoVisitorRegistry(table).get(visit_key)  # a concurrent replay wrote it first
        assert visit is not None
    logger.info("visit assigned", extra={"visit": vk, **visit, "similarity": decision.similarity,
                                         "indexed": len(indexed), "usable_faces": len(usable)})
    return _visit_columns(visit)


def assign(people_bucket: str, analytics_bucket: str, work: FaceWork, faces: list[dict[str, Any]],
           settings: VisitorSettings | None = None, now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Visitor columns per track id of one group of tracks (analyze_faces' work), and each
    face row's ``visitor_id`` set in place; an empty answer when visitors are off."""
    settings = settings or Settings.from_env().visitors
    if not settings.enabled:
        return {}
    now = now or utc_now()
    frames = _Frames(people_bucket, {f.frame_index: f.key for f in work.frames})
    out: dict[str, dict[str, Any]] = {}
    for track in work.tracks:
        mine = [f for f in faces if f["track_id"] == track["track_id"]]
        visit = assign_visit(settings, analytics_bucket, frames, track, mine, work.video_id, now)
        if visit is None:
            continue
        out[track["track_id"]] = visit
        for face in mine:
            face["visitor_id"] = visit["visitor_id"]
    return out

