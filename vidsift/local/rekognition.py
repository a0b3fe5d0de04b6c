"""A local Amazon Rekognition that answers ``DetectFaces`` with real offline models.

moto has no DetectFaces (it answers 500 in server mode), and the pipeline's analyze_faces
Lambda must run unchanged against something that speaks Rekognition's wire protocol: AWS
JSON 1.1, ``X-Amz-Target: RekognitionService.DetectFaces``, Rekognition's response shape and
error codes, so that boto3 parses answers with its own service model and raises the same
``client.exceptions.X`` as in the cloud. Point a client at it with ``endpoint_url`` or
``AWS_ENDPOINT_URL_REKOGNITION``.

The faces come from :mod:`vidsift.local.face_analyzer`. Each answer carries the header
``x-vidsift-analyzer`` naming the models that produced it (Rekognition has no such field;
the cloud never sends the header, so its absence means the real service).

``RekognitionService.fail_next`` makes the next N DetectFaces calls fail with a chosen error
(throttling, 500) so that callers' retry and dead-letter paths can be tested.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

import boto3
import cv2
import numpy as np
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from vidsift.local.face_analyzer import FaceAnalyzer
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


class RekognitionService(LocalService):
    """The running service: its URL, its analyser and the fault switch."""

    def __init__(self, analyzer: FaceAnalyzer, s3_client: Any, port: int = 0, *, owns_analyzer: bool) -> None:
        self.analyzer = analyzer
        self.s3 = s3_client
        self._owns_analyzer = owns_analyzer
        self._faults: deque[_Fault] = deque()
        self._lock = threading.Lock()
        #: DetectFaces requests received, failed or not (lets tests count a client's retries).
        self.detect_faces_calls = 0
        handler = type("RekognitionHandler", (_Handler,), {"service": self})
        super().__init__(handler, port)

    def fail_next(self, count: int = 1, error: str = "ThrottlingException", *, status: int | None = None,
                  message: str | None = None) -> None:
        """Make the next ``count`` DetectFaces calls answer ``error`` instead of analysing.

        ``status`` defaults to what the service uses for that error (400 for throttling,
        500 for InternalServerError).
        """
        fault = _Fault(
            code=error,
            status=status if status is not None else FAULT_STATUS.get(error, 400),
            message=message or f"{error} injected by vidsift's local Rekognition fault switch",
        )
        with self._lock:
            self._faults.extend([fault] * count)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            self.detect_faces_calls += 1
            return self._faults.popleft() if self._faults else None

    def start(self) -> RekognitionService:
        super().start()
        return self

    def stop(self) -> None:
        super().stop()
        if self._owns_analyzer:
            self.analyzer.close()

    # --- the operation ---------------------------------------------------------------------

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


def _decode(data: bytes) -> np.ndarray:
    """JPEG or PNG only, as Rekognition; EXIF orientation is applied, as Rekognition does."""
    if not (data.startswith(_JPEG_MAGIC) or data.startswith(_PNG_MAGIC)):
        raise RekognitionError("InvalidImageFormatException", "Request has invalid image format")
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
        if target != TARGET_PREFIX + "DetectFaces":
            operation = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else target
            self._error(RekognitionError(
                "UnknownOperationException",
                f"Operation {operation or '(no X-Amz-Target)'} is not supported by vidsift's local Rekognition "
                "(DetectFaces only)",
            ))
            return
        fault = self.service._take_fault()
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
            response, analyzer_id = self.service.detect_faces(request)
        except RekognitionError as exc:
            self._error(exc)
            return
        except Exception as exc:  # anything else is our bug or a dead model process: a 500, as AWS would
            log.exception("DetectFaces failed")
            self._error(RekognitionError("InternalServerError", f"{type(exc).__name__}: {exc}", 500))
            return
        self._send(200, response, {ANALYZER_HEADER: analyzer_id})

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
) -> RekognitionService:
    """Start the local Rekognition on 127.0.0.1 and return it, models loaded and ready.

    ``s3_endpoint_url`` is where ``Image.S3Object`` images are read (default: the
    ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` environment, else real S3). Pass
    ``analyzer`` to share already-loaded models between services (it is then not closed on
    stop); ``attributes=False`` starts detection only (no Node process).
    """
    owns = analyzer is None
    if analyzer is None:
        analyzer = FaceAnalyzer(attributes=attributes)
    try:
        service = RekognitionService(analyzer, _s3_client(s3_endpoint_url), port, owns_analyzer=owns)
    except BaseException:
        if owns:  # e.g. the port is taken: do not leave the Node process behind
            analyzer.close()
        raise
    return service.start()
