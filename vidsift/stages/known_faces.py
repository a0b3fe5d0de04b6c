"""Known faces, wired to AWS for analyze_faces: read the frame once, search each face's
crop in the collection (the pure parts are in vidsift.core.matching, the calls in
vidsift/aws.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vidsift import aws
from vidsift.core.matching import MatchResult, MatchSettings, best_match, face_crops
from vidsift.core.records import FaceMatch
from vidsift.settings import Settings
from vidsift.stages import rate


def match_faces(bucket: str, key: str, details: Sequence[dict[str, Any]],
                settings: MatchSettings | None = None) -> MatchResult:
    """Search every face of one frame in the collection; the frame is read once.

    An empty collection is checked first (one DescribeCollection per frame, a collection
    call, instead of one billed image search per face): with nobody known there is nobody
    to find. A crop in which Rekognition finds no face is no match; any other error
    propagates, so the frame is retried by SQS before any row is written.
    """
    settings = settings or Settings.from_env().match
    if not settings.collection or not details:
        return MatchResult(searched=False, matches=[None] * len(details))
    if aws.collection_face_count(settings.collection) == 0:
        return MatchResult(searched=True, matches=[None] * len(details))
    crops = face_crops(aws.get_object_bytes(bucket, key), [d.get("BoundingBox") or {} for d in details])
    matches: list[FaceMatch | None] = []
    for crop in crops:
        rate.rekognition_limiter().acquire()  # the same budget as DetectFaces
        try:
            resp = aws.search_faces_by_image(settings.collection, crop, settings.threshold)
        except Exception as exc:
            if aws.error_code(exc) != "InvalidParameterException":  # "no faces in the image"
                raise
            matches.append(None)
            continue
        matches.append(best_match(resp))
    return MatchResult(searched=True, matches=matches)
