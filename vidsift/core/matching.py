"""Known faces: which person of the face collection each detected face is.

Rekognition's ``SearchFacesByImage`` searches only the *largest* face of the image it is
given. A frame often shows several people, so each face DetectFaces found is cut out of the
frame (with context around it: the service must detect the face again in the crop) and
searched alone, sending the crop's bytes (:func:`face_crops`; the searching itself, which
calls AWS, is vidsift.stages.known_faces.match_faces).

A person's name travels as the face's ``ExternalImageId``, which Rekognition restricts to
``[a-zA-Z0-9_.\\-:]+``: :func:`encode_name` keeps those characters (except ``:``) and writes
every other UTF-8 byte as ``:XX`` (percent-encoding with ``:`` for ``%``), so any display name
("Zoë O'Neil") survives the round trip exactly.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vidsift import contract
from vidsift.core.errors import ConfigError
from vidsift.core.records import FaceMatch

#: Rekognition's ExternalImageId: [a-zA-Z0-9_.\-:]+, 1-255 characters.
MAX_EXTERNAL_ID = 255
_PLAIN = re.compile(r"[A-Za-z0-9_.\-]")
_ESCAPED = re.compile(r":([0-9A-F]{2})")
#: Context around a face in its crop: the crop is a square CROP_SCALE times the face's
#: larger side, centred on it (Rekognition must find the face again in the crop).
CROP_SCALE = 2.0
#: Rekognition's minimum image size is 80 pixels on each side; smaller crops are upscaled.
MIN_CROP_SIDE = 80
DEFAULT_THRESHOLD = 90.0


def encode_name(name: str) -> str:
    """A display name as a valid, reversible ExternalImageId (``Jane Doe`` -> ``Jane:20Doe``)."""
    if not name or not name.strip():
        raise ValueError("a person's name must not be empty")
    out = "".join(ch if _PLAIN.fullmatch(ch) else "".join(f":{b:02X}" for b in ch.encode("utf-8")) for ch in name)
    if len(out) > MAX_EXTERNAL_ID:
        raise ValueError(f"name too long once encoded ({len(out)} > {MAX_EXTERNAL_ID} characters): {name!r}")
    return out


def decode_name(external_image_id: str) -> str:
    """The display name back from an ExternalImageId written by :func:`encode_name`."""
    raw = bytearray()
    pos = 0
    for m in _ESCAPED.finditer(external_image_id):
        raw += external_image_id[pos:m.start()].encode("utf-8")
        raw.append(int(m.group(1), 16))
        pos = m.end()
    raw += external_image_id[pos:].encode("utf-8")
    return raw.decode("utf-8", errors="replace")


def collection_name(names: contract.ResourceNames) -> str:
    """The stack's collection of known faces: ``vidsift-<stage>-known-faces``."""
    return f"{names.prefix}-{contract.load()['face_collection']}"


@dataclass(frozen=True)
class MatchSettings:
    """FACE_COLLECTION (unset or empty: no search) and FACE_MATCH_THRESHOLD (default 90)."""

    collection: str | None
    threshold: float

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> MatchSettings:
        """From the function's variables (vidsift.settings passes them; the core reads no
        environment): ConfigError naming the variable when one is malformed."""
        raw = values.get("FACE_MATCH_THRESHOLD") or ""
        try:
            threshold = float(raw) if raw else DEFAULT_THRESHOLD
        except ValueError as exc:
            raise ConfigError(f"FACE_MATCH_THRESHOLD={raw!r} is not a number") from exc
        if not 0 <= threshold <= 100:
            raise ConfigError(f"FACE_MATCH_THRESHOLD={raw!r}: expected 0-100 (Rekognition's similarity)")
        return cls(collection=values.get("FACE_COLLECTION") or None, threshold=threshold)


@dataclass(frozen=True)
class MatchResult:
    """One entry per face, in order: the person matched, or None. ``searched`` is False when
    no collection is configured: then "no match" means nothing (an empty collection is a
    search that could find nobody)."""

    searched: bool
    matches: list[FaceMatch | None]


def face_crops(frame: bytes, boxes: Sequence[dict[str, float]]) -> list[bytes]:
    """JPEG crops of each face box (Rekognition's ratios), with context, at least 80 px a side."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(frame)) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")  # Rekognition's boxes are for the upright image
    width, height = image.size
    crops = []
    for box in boxes:
        bw, bh = float(box.get("Width", 0)) * width, float(box.get("Height", 0)) * height
        cx = (float(box.get("Left", 0)) + float(box.get("Width", 0)) / 2) * width
        cy = (float(box.get("Top", 0)) + float(box.get("Height", 0)) / 2) * height
        half = max(bw, bh) * CROP_SCALE / 2
        x0, y0 = max(0, round(cx - half)), max(0, round(cy - half))
        x1, y1 = min(width, round(cx + half)), min(height, round(cy + half))
        crop = image.crop((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)))
        short = min(crop.size)
        if short < MIN_CROP_SIDE:
            scale = MIN_CROP_SIDE / short
            crop = crop.resize((round(crop.width * scale), round(crop.height * scale)), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        crop.save(buf, "JPEG", quality=95)
        crops.append(buf.getvalue())
    return crops


def best_match(resp: dict[str, Any]) -> FaceMatch | None:
    """The most similar known face of a SearchFacesByImage answer, named by its ExternalImageId."""
    found = sorted(resp.get("FaceMatches") or [], key=lambda m: -float(m.get("Similarity", 0)))
    if not found:
        return None
    face = found[0].get("Face") or {}
    external = face.get("ExternalImageId")
    name = decode_name(external) if external else f"face:{face.get('FaceId', '?')}"
    return FaceMatch(name=name, similarity=float(found[0]["Similarity"]))
