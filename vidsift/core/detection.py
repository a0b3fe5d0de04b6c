"""The request detect_people sends to the person-detection endpoint and how its answer
is read. The protocol is the one sagemaker/code/inference.py serves."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from vidsift.core.errors import BadInputError


@dataclass(frozen=True)
class Box:
    """One person the endpoint found, in fractions of the frame (independent of the frame's
    size, as the people rows and the tracker use them)."""

    left: float
    top: float
    width: float
    height: float
    confidence: float
    #: The person's colours (the endpoint's ``appearance``), for the tracker; None when not asked.
    appearance: tuple[float, ...] | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, float]:
        """The box as the people rows show it (no appearance: it is the tracker's working data)."""
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height,
                "confidence": self.confidence}

    def as_doc(self) -> dict[str, Any]:
        """The box with its appearance, as the stages pass it on to the tracker."""
        return self.as_dict() | ({"appearance": list(self.appearance)} if self.appearance is not None else {})

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> Box:
        app = d.get("appearance")
        return cls(float(d["left"]), float(d["top"]), float(d["width"]), float(d["height"]), float(d["confidence"]),
                   tuple(float(x) for x in app) if app else None)


@dataclass(frozen=True)
class Detection:
    """The endpoint's answer for one frame: the model that answered and its boxes, so rows can
    say which model counted the people.

    ``boxes`` are the confident ones (PERSON_MIN_CONFIDENCE and more): the people counted,
    copied, alerted on and written to the ``people`` rows. ``low_boxes`` (under it, down to
    PERSON_TRACK_CONFIDENCE) are for the tracker's second pass only: a half-hidden person the
    detector is unsure of may continue someone already tracked, never count on their own."""

    model: str
    boxes: tuple[Box, ...]
    #: The frame's S3 user metadata as the endpoint read it with the frame (None where not
    #: asked for, or not from an endpoint): detect_people's FrameMeta, without a HeadObject.
    metadata: dict[str, str] | None = field(default=None, compare=False)
    #: Boxes under the confident threshold, most confident first (see the class docstring).
    low_boxes: tuple[Box, ...] = ()

    @property
    def person_count(self) -> int:
        """The confident boxes only: a low box alone is nobody."""
        return len(self.boxes)

    @property
    def max_confidence(self) -> float | None:
        return max((b.confidence for b in self.boxes), default=None)

    def split(self, min_confidence: float) -> Detection:
        """The same boxes, those under ``min_confidence`` moved to ``low_boxes`` (order kept)."""
        every = self.boxes + self.low_boxes
        return replace(self, boxes=tuple(b for b in every if b.confidence >= min_confidence),
                       low_boxes=tuple(b for b in every if b.confidence < min_confidence))


def build_request(s3_uris: list[str], min_confidence: float, min_area: float = 0.0) -> dict[str, Any]:
    """Frames travel as S3 URIs, so a batch stays far below the 4 MB payload limit of
    serverless endpoints; the endpoint reads them itself. The thresholds travel with every
    request, so the stack's settings rule whatever the endpoint was deployed with
    (detect_people asks down to PERSON_TRACK_CONFIDENCE, the tracker's low boxes). Each
    person's appearance is asked for: the tracker tells people apart with it. So is each
    frame's S3 metadata, which the endpoint's GetObject returns with the frame: detect_people
    needs it to record the frame, and would otherwise ask S3 for it once more per frame."""
    return {"instances": [{"s3_uri": u} for u in s3_uris], "min_confidence": min_confidence, "min_area": min_area,
            "appearance": True, "metadata": True}


def parse_response(doc: Any, expected: int, min_confidence: float = 0.0) -> list[Detection]:
    """The endpoint's answer as one Detection per requested frame, in order; an answer of the
    wrong shape is a clear error, not a silent empty frame. Boxes under ``min_confidence``
    (PERSON_MIN_CONFIDENCE) go to ``low_boxes`` (Detection.split)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("predictions"), list):
        raise BadInputError("endpoint response", "no 'predictions' list")
    preds = doc["predictions"]
    if len(preds) != expected:
        raise BadInputError("endpoint response", f"{len(preds)} predictions for {expected} frames")
    model = str(doc.get("model") or "unknown")
    out = []
    for pred in preds:
        boxes = tuple(
            Box(*(round(float(b[k]), 4) for k in ("left", "top", "width", "height", "confidence")),
                appearance=tuple(float(x) for x in b["appearance"]) if isinstance(b.get("appearance"), list) else None)
            for b in pred.get("boxes", [])
        )
        metadata = pred.get("metadata")
        if metadata is not None and not (isinstance(metadata, dict)
                                         and all(isinstance(v, str) for v in metadata.values())):
            raise BadInputError("endpoint response", "a prediction's 'metadata' is not an object of strings")
        out.append(Detection(model=model, boxes=tuple(sorted(boxes, key=lambda b: -b.confidence)),
                             metadata={str(k): v for k, v in metadata.items()} if metadata is not None else None)
                   .split(min_confidence))
    return out
