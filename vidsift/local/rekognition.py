"""A local Amazon Rekognition that answers ``DetectFaces`` and the face-collection calls
with real offline models.

moto has no DetectFaces (it answers 500 in server mode), and the pipeline's analyze_faces
Lambda must run unchanged against something that speaks Rekognition's wire protocol: AWS
JSON 1.1, ``X-Amz-Target: RekognitionService.DetectFaces``, Rekognition's response shape and
error codes, so that boto3 parses answers with its own service model and raises the same
``client.exceptions.X`` as in the cloud. Point a client at it with ``endpoint_url`` or
``AWS_ENDPOINT_URL_REKOGNITION``.

The faces come from :mod:`vidsift.local.face_analyzer`. Each answer carries the header
``x-vidsift-analyzer`` naming the models that produced it (Rekognition has no such field;
the cloud never sends the header, so its absence means the real service).

``RekognitionService.fail_next`` makes the next N DetectFaces calls (or those of another
operation) fail with a chosen error (throttling, 500) so that callers' retry and dead-letter
paths can be tested.

Face collections (``CreateCollection``, ``DeleteCollection``, ``ListCollections``,
``DescribeCollection``, ``IndexFaces``, ``SearchFacesByImage``, ``ListFaces``, ``DeleteFaces``)
store a real face embedding per indexed face: the 1024-d descriptor of Human's ``faceres``
model (the one Human's own face matching uses), shipped in its npm package. Similarity is
the cosine of two descriptors mapped to Rekognition's 0-100 scale with one knot:
:data:`MATCH_COSINE` (calibrated on bundled photos, see :func:`similarity`) maps to 90, so the
pipeline's default ``FACE_MATCH_THRESHOLD`` of 90 means "same person" here as well. This is a
much weaker identifier than Amazon's: index several photos per person. Collections live in
memory per service, and in a JSON file too when ``serve(state_file=...)`` is given.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import os
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import boto3
import cv2
import numpy as np
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from vidsift.local.face_analyzer import FaceAnalyzer, _human_version
from vidsift.local.httpservice import LocalService

log = logging.getLogger(__name__)

TARGET_PREFIX = "RekognitionService."
CONTENT_TYPE = "application/x-amz-json-1.1"
ANALYZER_HEADER = "x-vidsift-analyzer"

#: Rekognition's documented limits: image bytes in the request up to 5 MB, S3 objects up to 15 MB.
MAX_BYTES_IMAGE = 5 * 1024 * 1024
MAX_S3_IMAGE = 15 * 1024 * 1024
# A request body larger than this cannot hold a valid request (5 MB base64 is about 7 MB):
# it is refused without being read.
MAX_BODY = 16 * 1024 * 1024
#: Images declaring more pixels are refused from their header (ImageTooLargeException) before
#: decoding: a 700-byte JPEG can declare 20000x20000, which cv2 would allocate 1.2 GB for.
MAX_IMAGE_PIXELS = 40_000_000

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: Attribute names (botocore's ``Attribute`` enum) to the FaceDetail keys they add.
ATTRIBUTE_KEYS: dict[str, tuple[str, ...]] = {
    "AGE_RANGE": ("AgeRange",),
    "BEARD": ("Beard",),
    "EMOTIONS": ("Emotions",),
    "EYE_DIRECTION": ("EyeDirection",),
    "EYEGLASSES": ("Eyeglasses",),
    "EYES_OPEN": ("EyesOpen",),
    "GENDER": ("Gender",),
    "MOUTH_OPEN": ("MouthOpen",),
    "MUSTACHE": ("Mustache",),
    "FACE_OCCLUDED": ("FaceOccluded",),
    "SMILE": ("Smile",),
    "SUNGLASSES": ("Sunglasses",),
}
_DEFAULT_KEYS = ("BoundingBox", "Landmarks", "Pose", "Quality", "Confidence")

#: HTTP status of each error the fault switch can inject, as the service sends them.
FAULT_STATUS = {
    "ThrottlingException": 400,
    "ProvisionedThroughputExceededException": 400,
    "InternalServerError": 500,
    "AccessDeniedException": 400,
}


#: Cosine similarity of two faceres descriptors at which two faces are called the same person,
#: reported as Similarity 90. Calibrated on photos shipped in installed packages
#: (``python -m bench.bench_alerts --parts similarity`` prints the figures): altered copies of
#: the astronaut, Grace Hopper and the cameraman (mirrored, half size, noisy, JPEG q30, darker,
#: brighter, rotated, blurred, grey, in a larger frame, and the face crops analyze_faces sends)
#: score 0.82-1.00 (median 0.94) against each other; 18 thumbnails of one man from different
#: photos (the face-match screenshot in Human's npm package) 0.42-0.89 pairwise (median 0.63),
#: 0.66-0.89 against the best of his other 17; different people (those, 97 lfw_subset faces)
#: at most 0.648 over 10152 pairs. Hence 0.65: no false match on those sets, a thin margin, and
#: a person is found reliably only with several indexed photos.
MATCH_COSINE = 0.65
#: Rekognition's own default for SearchFacesByImage's FaceMatchThreshold.
DEFAULT_FACE_MATCH_THRESHOLD = 80.0
_COLLECTION_ID = re.compile(r"[a-zA-Z0-9_.\-]{1,255}")
_EXTERNAL_IMAGE_ID = re.compile(r"[a-zA-Z0-9_.\-:]{1,255}")
_FACE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Rekognition's paging limit for ListFaces / ListCollections (MaxResults up to 4096).
MAX_PAGE = 4096


def similarity(cosine: float) -> float:
    """Rekognition-style Similarity (0-100) from the cosine of two unit descriptors.

    Piecewise linear and monotone: cosine <= 0 is 0, :data:`MATCH_COSINE` is 90, 1 is 100. The
    knot puts the calibrated decision point where Rekognition users put theirs (80-99), so one
    threshold setting means the same decision locally and in the cloud.
    """
    c = min(1.0, max(0.0, float(cosine)))
    if c >= MATCH_COSINE:
        return 90.0 + 10.0 * (c - MATCH_COSINE) / (1.0 - MATCH_COSINE)
    return 90.0 * c / MATCH_COSINE


class RekognitionError(Exception):
    """An error answered in Rekognition's shape: ``{"__type": code, "message": ...}``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class _Fault:
    code: str
    status: int
    message: str
    #: Only for requests whose S3 object key this accepts (None: any request).
    key_filter: Callable[[str], bool] | None = None


def _s3_key(body: bytes) -> str | None:
    """The S3 object a request names (Image.S3Object.Name), if any."""
    try:
        return str(json.loads(body or b"{}")["Image"]["S3Object"]["Name"])
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class _Face:
    """One indexed face: what ListFaces shows, plus the descriptor searches compare."""

    face_id: str
    image_id: str
    external_image_id: str | None
    bounding_box: dict[str, float]
    confidence: float
    descriptor: np.ndarray

    def as_face(self, model_version: str) -> dict[str, Any]:
        face: dict[str, Any] = {"FaceId": self.face_id, "BoundingBox": self.bounding_box, "ImageId": self.image_id,
                                "Confidence": self.confidence, "IndexFacesModelVersion": model_version}
        if self.external_image_id is not None:
            face["ExternalImageId"] = self.external_image_id
        return face

    def to_json(self) -> dict[str, Any]:
        return {"face_id": self.face_id, "image_id": self.image_id, "external_image_id": self.external_image_id,
                "bounding_box": self.bounding_box, "confidence": self.confidence,
                "descriptor": [round(float(v), 6) for v in self.descriptor]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> _Face:
        return cls(d["face_id"], d["image_id"], d.get("external_image_id"), d["bounding_box"], float(d["confidence"]),
                   np.asarray(d["descriptor"], dtype=np.float32))


@dataclass
class _Collection:
    collection_id: str
    arn: str
    created: float
    faces: dict[str, _Face] = field(default_factory=dict)


class RekognitionService(LocalService):
    """The running service: its URL, its analyser, its face collections and the fault switch."""

    def __init__(self, analyzer: FaceAnalyzer, s3_client: Any, port: int = 0, *, owns_analyzer: bool,
                 state_file: Path | None = None, region: str = "us-east-1", account: str = "123456789012") -> None:
        self.analyzer = analyzer
        self.s3 = s3_client
        self._owns_analyzer = owns_analyzer
        self._faults: dict[str, deque[_Fault]] = {}
        self._lock = threading.Lock()
        #: DetectFaces requests received, failed or not (lets tests count a client's retries).
        self.detect_faces_calls = 0
        #: Requests received per operation, failed or not.
        self.calls: dict[str, int] = {}
        self.region, self.account = region, account
        self.state_file = state_file
        self._collections: dict[str, _Collection] = {}
        self._load_state()
        handler = type("RekognitionHandler", (_Handler,), {"service": self})
        super().__init__(handler, port)

    @property
    def model_version(self) -> str:
        """Rekognition's FaceModelVersion (digits and dots, botocore's pattern): here the
        version of @vladmandic/human, whose faceres model makes the descriptors."""
        version = _human_version() or "0"
        return version if re.fullmatch(r"[0-9.]+", version) else "0"

    def fail_next(self, count: int = 1, error: str = "ThrottlingException", *, status: int | None = None,
                  message: str | None = None, operation: str = "DetectFaces",
                  key_filter: Callable[[str], bool] | None = None) -> None:
        """Make the next ``count`` calls of ``operation`` answer ``error`` instead of working.

        ``status`` defaults to what the service uses for that error (400 for throttling,
        500 for InternalServerError). ``key_filter``: only calls on an S3 object whose key it
        accepts (one stage's frames, when several stages call at once).
        """
        fault = _Fault(
            code=error,
            status=status if status is not None else FAULT_STATUS.get(error, 400),
            message=message or f"{error} injected by vidsift's local Rekognition fault switch",
            key_filter=key_filter,
        )
        with self._lock:
            self._faults.setdefault(operation, deque()).extend([fault] * count)

    def clear_faults(self) -> None:
        """Drop every injected fault, so the next test starts with a service that answers."""
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """Faults injected but not yet served: a test checks it reached zero, i.e. the calls it meant to
        fail were really made."""
        with self._lock:
            return sum(len(q) for q in self._faults.values())

    def _take_fault(self, operation: str = "DetectFaces", body: bytes = b"") -> _Fault | None:
        with self._lock:
            self.calls[operation] = self.calls.get(operation, 0) + 1
            if operation == "DetectFaces":
                self.detect_faces_calls += 1
            queue = self._faults.get(operation)
            if not queue:
                return None
            key = _s3_key(body) if any(f.key_filter for f in queue) else ""
            for fault in queue:
                if fault.key_filter is None or (key is not None and fault.key_filter(key)):
                    queue.remove(fault)
                    return fault
            return None

    def start(self) -> RekognitionService:
        """Start serving (and return self, so the service is started where it is made)."""
        super().start()
        return self

    def stop(self) -> None:
        """Stop serving, and stop the face analyser too when this service created it."""
        super().stop()
        if self._owns_analyzer:
            self.analyzer.close()

    # --- the operations --------------------------------------------------------------------

    def operations(self) -> dict[str, Callable[[dict[str, Any]], tuple[dict[str, Any], str | None]]]:
        """X-Amz-Target operation name -> method answering (response body, analyser id or None)."""
        return {
            "DetectFaces": self.detect_faces,
            "CreateCollection": self.create_collection,
            "DeleteCollection": self.delete_collection,
            "ListCollections": self.list_collections,
            "DescribeCollection": self.describe_collection,
            "IndexFaces": self.index_faces,
            "SearchFacesByImage": self.search_faces_by_image,
            "ListFaces": self.list_faces,
            "DeleteFaces": self.delete_faces,
        }

    def detect_faces(self, request: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """Rekognition's DetectFaces: (response body, analyser id) or a RekognitionError."""
        attributes = request.get("Attributes")
        if attributes is None:
            attributes = ["DEFAULT"]
        if not isinstance(attributes, list) or not all(isinstance(a, str) for a in attributes):
            raise RekognitionError("InvalidParameterException", "Attributes must be a list of strings")
        unknown = [a for a in attributes if a not in ATTRIBUTE_KEYS and a not in ("DEFAULT", "ALL")]
        if unknown:
            raise RekognitionError("InvalidParameterException", f"Invalid Attributes value(s): {unknown}")
        wanted = set(attributes)
        image = self._load_image(request.get("Image"))
        with_attributes = bool(wanted - {"DEFAULT"})
        faces = self.analyzer.analyze(image, with_attributes)
        if with_attributes and "ALL" not in wanted:
            keep = set(_DEFAULT_KEYS).union(*(ATTRIBUTE_KEYS[a] for a in wanted if a in ATTRIBUTE_KEYS))
            faces = [{k: v for k, v in face.items() if k in keep} for face in faces]
        return {"FaceDetails": faces}, self.analyzer.analyzer_id

    # --- face collections --------------------------------------------------------------------

    def _collection_arn(self, collection_id: str) -> str:
        return f"arn:aws:rekognition:{self.region}:{self.account}:collection/{collection_id}"

    @staticmethod
    def _collection_id(request: dict[str, Any]) -> str:
        cid = request.get("CollectionId")
        if not isinstance(cid, str) or not _COLLECTION_ID.fullmatch(cid):
            raise RekognitionError("InvalidParameterException",
                                   "CollectionId must match [a-zA-Z0-9_.\\-]+ (1-255 characters)")
        return cid

    def _get(self, request: dict[str, Any]) -> _Collection:
        cid = self._collection_id(request)
        found = self._collections.get(cid)
        if found is None:
            raise RekognitionError("ResourceNotFoundException", f"The collection id: {cid} does not exist")
        return found

    def create_collection(self, request: dict[str, Any]) -> tuple[dict[str, Any], None]:
        """CreateCollection, with Rekognition's error for an id that exists (the stack's set-up relies on it)."""
        cid = self._collection_id(request)
        with self._lock:
            if cid in self._collections:
                raise RekognitionError("ResourceAlreadyExistsException", f"The collection id: {cid} already exists")
            self._collections[cid] = _Collection(cid, self._collection_arn(cid), time.time())
            self._save_state()
        arn = self._collection_arn(cid)
        return {"StatusCode": 200, "CollectionArn": arn, "FaceModelVersion": self.model_version}, None

    def delete_collection(self, request: dict[str, Any]) -> tuple[dict[str, Any], None]:
        """DeleteCollection: the collection and its faces go, as ResourceNotFound for an unknown id."""
        with self._lock:
            collection = self._get(request)
            del self._collections[collection.collection_id]
            self._save_state()
        return {"StatusCode": 200}, None

    def list_collections(self, request: dict[str, Any]) -> tuple[dict[str, Any], None]:
        """ListCollections, paged with NextToken as the real API pages it."""
        with self._lock:
            ids = sorted(self._collections)
        start, size = _page(request, len(ids))
        page = ids[start:start + size]
        out: dict[str, Any] = {"CollectionIds": page, "FaceModelVersions": [self.model_version] * len(page)}
        if start + size < len(ids):
            out["NextToken"] = str(start + size)
        return out, None

    def describe_collection(self, request: dict[str, Any]) -> tuple[dict[str, Any], None]:
        """DescribeCollection: face count, model version and ARN, as the real API answers."""
        with self._lock:
            c = self._get(request)
            return {"FaceCount": len(c.faces), "FaceModelVersion": self.model_version, "CollectionARN": c.arn,
                    "CreationTimestamp": c.created, "UserCount": 0}, None

    def _faces_with_descriptors(
        self, request: dict[str, Any], attributes: list[str] | None = None
    ) -> list[tuple[dict[str, Any], np.ndarray | None]]:
        if not self.analyzer.has_attributes:
            raise RekognitionError(
                "InternalServerError",
                "face collections need face descriptors, which come from the Node models "
                f"(vidsift/local/human): {self.analyzer.attributes_error or 'not started'}", 500)
        image = self._load_image(request.get("Image"))
        wanted = set(attributes or ["DEFAULT"])
        found = self.analyzer.analyze_with_descriptors(image, bool(wanted - {"DEFAULT"}))
        if wanted - {"DEFAULT"} and "ALL" not in wanted:
            keep = set(_DEFAULT_KEYS).union(*(ATTRIBUTE_KEYS[a] for a in wanted if a in ATTRIBUTE_KEYS))
            found = [({k: v for k, v in d.items() if k in keep}, desc) for d, desc in found]
        return found

    def index_faces(self, request: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """IndexFaces: the largest ``MaxFaces`` faces Human confirmed are stored with their descriptor."""
        with self._lock:
            self._get(request)
        external = request.get("ExternalImageId")
        if external is not None and (not isinstance(external, str) or not _EXTERNAL_IMAGE_ID.fullmatch(external)):
            raise RekognitionError("InvalidParameterException",
                                   "ExternalImageId must match [a-zA-Z0-9_.\\-:]+ (1-255 characters)")
        max_faces = request.get("MaxFaces")
        if max_faces is not None and (not isinstance(max_faces, int) or not 1 <= max_faces <= MAX_PAGE):
            raise RekognitionError("InvalidParameterException", "MaxFaces must be 1-4096")
        quality = request.get("QualityFilter", "AUTO")
        if quality not in ("NONE", "AUTO", "LOW", "MEDIUM", "HIGH"):
            raise RekognitionError("InvalidParameterException", f"Invalid QualityFilter {quality!r}")
        attributes = request.get("DetectionAttributes") or ["DEFAULT"]
        if not isinstance(attributes, list) or any(
                a not in ATTRIBUTE_KEYS and a not in ("DEFAULT", "ALL") for a in attributes):
            raise RekognitionError("InvalidParameterException", f"Invalid DetectionAttributes {attributes!r}")
        found = self._faces_with_descriptors(request, attributes)
        image_id = str(uuid.uuid4())
        records: list[dict[str, Any]] = []
        unindexed: list[dict[str, Any]] = []
        new: list[_Face] = []
        for detail, descriptor in found:  # largest first
            if descriptor is None:
                # Human did not confirm the face: there is nothing to compare it by.
                unindexed.append({"Reasons": ["LOW_CONFIDENCE"], "FaceDetail": detail})
                continue
            if max_faces is not None and len(new) >= max_faces:
                unindexed.append({"Reasons": ["EXCEEDS_MAX_FACES"], "FaceDetail": detail})
                continue
            face = _Face(str(uuid.uuid4()), image_id, external, detail["BoundingBox"], float(detail["Confidence"]),
                         descriptor)
            new.append(face)
            records.append({"Face": face.as_face(self.model_version), "FaceDetail": detail})
        with self._lock:
            collection = self._get(request)  # it may have been deleted meanwhile
            for face in new:
                collection.faces[face.face_id] = face
            self._save_state()
        return ({"FaceRecords": records, "FaceModelVersion": self.model_version, "UnindexedFaces": unindexed},
                self.analyzer.analyzer_id)

    def search_faces_by_image(self, request: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """SearchFacesByImage: the largest face in the image against every face of the collection."""
        with self._lock:
            self._get(request)
        threshold = request.get("FaceMatchThreshold", DEFAULT_FACE_MATCH_THRESHOLD)
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not 0 <= threshold <= 100:
            raise RekognitionError("InvalidParameterException", "FaceMatchThreshold must be 0-100")
        max_faces = request.get("MaxFaces", 100)
        if not isinstance(max_faces, int) or not 1 <= max_faces <= MAX_PAGE:
            raise RekognitionError("InvalidParameterException", "MaxFaces must be 1-4096")
        found = self._faces_with_descriptors(request)
        if not found:
            raise RekognitionError("InvalidParameterException",
                                   "There are no faces in the image. Should be at least 1.")
        detail, descriptor = found[0]  # Rekognition searches the largest face only
        matches: list[dict[str, Any]] = []
        if descriptor is not None:
            with self._lock:
                faces = list(self._get(request).faces.values())
            if faces:
                scores = np.stack([f.descriptor for f in faces]) @ descriptor
                ranked = sorted(zip(scores.tolist(), faces, strict=True), key=lambda t: -t[0])
                for cosine, face in ranked[:max_faces]:
                    sim = similarity(cosine)
                    if sim < threshold:
                        break
                    matches.append({"Similarity": sim, "Face": face.as_face(self.model_version)})
        else:
            log.info("SearchFacesByImage: Human did not confirm the largest face; no match reported")
        return ({"SearchedFaceBoundingBox": detail["BoundingBox"], "SearchedFaceConfidence": detail["Confidence"],
                 "FaceMatches": matches, "FaceModelVersion": self.model_version}, self.analyzer.analyzer_id)

    def list_faces(self, request: dict[str, Any]) -> tuple[dict[str, Any], None]:
        """ListFaces (optionally only ``FaceIds``), paged as the real API pages it."""
        wanted = request.get("FaceIds")
        with self._lock:
            faces = list(self._get(request).faces.values())
        if wanted is not None:
            if not isinstance(wanted, list) or not all(isinstance(f, str) for f in wanted):
                raise RekognitionError("InvalidParameterException", "FaceIds must be a list of face ids")
            faces = [f for f in faces if f.face_id in set(wanted)]
        start, size = _page(request, len(faces))
        out: dict[str, Any] = {"Faces": [f.as_face(self.model_version) for f in faces[start:start + size]],
                               "FaceModelVersion": self.model_version}
        if start + size < len(faces):
            out["NextToken"] = str(start + size)
        return out, None

    def delete_faces(self, request: dict[str, Any]) -> tuple[dict[str, Any], None]:
        """DeleteFaces with the real API's validation: a malformed id refuses the call, an unknown
        one is left out of DeletedFaces rather than failing it."""
        ids = request.get("FaceIds")
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_PAGE or not all(isinstance(f, str) for f in ids):
            raise RekognitionError("InvalidParameterException", "FaceIds must list 1-4096 face ids")
        bad = [f for f in ids if not _FACE_ID.fullmatch(f)]
        if bad:
            raise RekognitionError("InvalidParameterException", f"Invalid FaceIds: {bad[:3]}")
        deleted: list[str] = []
        with self._lock:
            collection = self._get(request)
            for face_id in dict.fromkeys(ids):
                if collection.faces.pop(face_id, None) is not None:
                    deleted.append(face_id)
            self._save_state()
        return {"DeletedFaces": deleted, "UnsuccessfulFaceDeletions": []}, None

    # --- persistence ---------------------------------------------------------------------------

    def _load_state(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        doc = json.loads(self.state_file.read_text())
        for c in doc.get("collections", []):
            faces = {f["face_id"]: _Face.from_json(f) for f in c.get("faces", [])}
            self._collections[c["id"]] = _Collection(c["id"], self._collection_arn(c["id"]), float(c["created"]), faces)

    def _save_state(self) -> None:
        """Write every collection to ``state_file`` (atomically); the caller holds the lock."""
        if self.state_file is None:
            return
        doc = {"collections": [{"id": c.collection_id, "created": c.created,
                                "faces": [f.to_json() for f in c.faces.values()]}
                               for c in self._collections.values()]}
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.state_file)

    def _load_image(self, image: Any) -> np.ndarray:
        if not isinstance(image, dict):
            raise RekognitionError("InvalidParameterException", "Request has invalid parameters: Image is required")
        has_bytes, has_s3 = image.get("Bytes") is not None, image.get("S3Object") is not None
        if has_bytes == has_s3:
            raise RekognitionError(
                "InvalidParameterException",
                "Request has invalid parameters: give exactly one of Image.Bytes, Image.S3Object",
            )
        if has_bytes:
            if not isinstance(image["Bytes"], str):
                raise RekognitionError("SerializationException", "Image.Bytes must be a base64 string")
            try:
                data = base64.b64decode(image["Bytes"], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise RekognitionError("SerializationException", f"Image.Bytes is not valid base64: {exc}") from exc
            if not data:
                raise RekognitionError("InvalidParameterException", "Image.Bytes is empty")
            if len(data) > MAX_BYTES_IMAGE:
                raise RekognitionError(
                    "ImageTooLargeException", f"Image size is too large ({len(data)} bytes, at most 5 MB)"
                )
        else:
            data = self._read_s3(image["S3Object"])
        return _decode(data)

    def _read_s3(self, ref: Any) -> bytes:
        if not isinstance(ref, dict) or not isinstance(ref.get("Bucket"), str) or not isinstance(ref.get("Name"), str):
            raise RekognitionError("InvalidParameterException", "Image.S3Object needs Bucket and Name")
        args: dict[str, str] = {"Bucket": ref["Bucket"], "Key": ref["Name"]}
        if ref.get("Version"):
            args["VersionId"] = str(ref["Version"])
        try:
            obj = self.s3.get_object(**args)
        except ClientError as exc:
            raise RekognitionError(
                "InvalidS3ObjectException",
                "Unable to get object metadata from S3. Check object key, region and/or access permissions. "
                f"({exc.response.get('Error', {}).get('Code')})",
            ) from exc
        except BotoCoreError as exc:
            raise RekognitionError("InternalServerError", f"local S3 unreachable: {exc}", 500) from exc
        try:
            if int(obj.get("ContentLength", 0)) > MAX_S3_IMAGE:
                raise RekognitionError("ImageTooLargeException", "Image size is too large (S3 objects: at most 15 MB)")
            return obj["Body"].read()
        finally:
            obj["Body"].close()


def _page(request: dict[str, Any], total: int) -> tuple[int, int]:
    """(start, size) from a List* request's NextToken and MaxResults."""
    size = request.get("MaxResults", 1000)
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_PAGE:
        raise RekognitionError("InvalidParameterException", "MaxResults must be 0-4096")
    token = request.get("NextToken")
    if token is None:
        return 0, size
    if not isinstance(token, str) or not token.isdigit() or int(token) > total:
        raise RekognitionError("InvalidPaginationTokenException", "Invalid pagination token")
    return int(token), size


def _check_declared_size(data: bytes) -> None:
    """Refuse an image whose header declares more than MAX_IMAGE_PIXELS, without decoding it
    (Pillow reads only the header; it refuses bigger bombs itself)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except Image.DecompressionBombError as exc:
        raise RekognitionError("ImageTooLargeException", f"Image dimensions are too large ({exc})") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return  # no readable header: the decoder below names the problem
    if width * height > MAX_IMAGE_PIXELS:
        raise RekognitionError("ImageTooLargeException", f"Image dimensions are too large ({width}x{height}, at "
                                                         f"most {MAX_IMAGE_PIXELS} pixels)")


def _decode(data: bytes) -> np.ndarray:
    """JPEG or PNG only, as Rekognition; EXIF orientation is applied, as Rekognition does."""
    if not (data.startswith(_JPEG_MAGIC) or data.startswith(_PNG_MAGIC)):
        raise RekognitionError("InvalidImageFormatException", "Request has invalid image format")
    _check_declared_size(data)
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise RekognitionError("InvalidImageFormatException", "Request has invalid image format")
    return image


class _Handler(BaseHTTPRequestHandler):
    """AWS JSON 1.1 over HTTP/1.1 keep-alive, as boto3 speaks it."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, a keep-alive client's delayed
    # ACK stalls every answer by about 40 ms.
    disable_nagle_algorithm = True
    service: RekognitionService  # set on the per-service subclass
    server_version = "vidsift-local-rekognition"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        # A health check for the embedded local AWS: models are loaded before serve() returns.
        if self.path.rstrip("/") == "/_vidsift/health":
            self._send(200, {"status": "ok", "analyzer": self.service.analyzer.analyzer_id})
        else:
            self._error(RekognitionError("UnknownOperationException", "Only POST / is served", 404))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._error(RekognitionError("ImageTooLargeException", "Request too large"))
            return
        body = self.rfile.read(length) if length else b""
        target = self.headers.get("X-Amz-Target", "")
        operation = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else target
        operations = self.service.operations()
        if not target.startswith(TARGET_PREFIX) or operation not in operations:
            self._error(RekognitionError(
                "UnknownOperationException",
                f"Operation {operation or '(no X-Amz-Target)'} is not supported by vidsift's local Rekognition "
                f"({', '.join(sorted(operations))})",
            ))
            return
        fault = self.service._take_fault(operation, body)
        if fault is not None:
            self._error(RekognitionError(fault.code, fault.message, fault.status))
            return
        try:
            try:
                request = json.loads(body or b"{}")
            except ValueError as exc:
                raise RekognitionError("SerializationException", f"Request body is not valid JSON: {exc}") from exc
            if not isinstance(request, dict):
                raise RekognitionError("SerializationException", "Request body must be a JSON object")
            response, analyzer_id = operations[operation](request)
        except RekognitionError as exc:
            self._error(exc)
            return
        except Exception as exc:  # anything else is our bug or a dead model process: a 500, as AWS would
            log.exception("%s failed", operation)
            self._error(RekognitionError("InternalServerError", f"{type(exc).__name__}: {exc}", 500))
            return
        self._send(200, response, {ANALYZER_HEADER: analyzer_id} if analyzer_id else None)

    def _error(self, exc: RekognitionError) -> None:
        self._send(exc.status, {"__type": exc.code, "message": exc.message}, {"x-amzn-ErrorType": exc.code})

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _s3_client(endpoint_url: str | None) -> Any:
    """A client for the S3 that holds the images: the local one when an endpoint is given."""
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    kwargs: dict[str, Any] = {
        "region_name": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        "config": Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
    }
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
        # A local S3 takes any key; real ones in the environment still win.
        if not os.environ.get("AWS_ACCESS_KEY_ID"):
            kwargs.update(aws_access_key_id="vidsift-local", aws_secret_access_key="vidsift-local")
    return boto3.client("s3", **kwargs)


def serve(
    port: int = 0,
    *,
    s3_endpoint_url: str | None = None,
    analyzer: FaceAnalyzer | None = None,
    attributes: bool = True,
    state_file: Path | None = None,
    background: bool = False,
) -> RekognitionService:
    """Start the local Rekognition on 127.0.0.1 and return it, models loaded and ready.

    ``s3_endpoint_url`` is where ``Image.S3Object`` images are read (default: the
    ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` environment, else real S3). Pass
    ``analyzer`` to share already-loaded models between services (it is then not closed on
    stop); ``attributes=False`` starts detection only (no Node process, so no face
    collections). ``state_file`` keeps the face collections across restarts (JSON).
    ``background=True`` answers as soon as it listens, the Node models still loading: the
    first request that needs them waits (a local stack starts while they load).
    """
    owns = analyzer is None
    if analyzer is None:
        analyzer = FaceAnalyzer(attributes=attributes, background=background)
    try:
        service = RekognitionService(analyzer, _s3_client(s3_endpoint_url), port, owns_analyzer=owns,
                                     state_file=state_file)
    except BaseException:
        if owns:  # e.g. the port is taken: do not leave the Node process behind
            analyzer.close()
        raise
    return service.start()
