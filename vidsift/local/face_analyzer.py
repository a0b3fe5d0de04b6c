"""Face analysis for the local Rekognition: real offline models, answers in FaceDetail shape.

Why this split of models:

* Detection, box, confidence and the 5 main landmarks come from ``yuface`` (libfacedetection's
  YuNet, weights compiled into the PyPI wheel): fast (about 30 ms for a 512x512 frame on one
  core), no download, and exact on the bundled photos.
* Head pose, the finer landmarks, age, gender, emotions and mouth/eye openness come from
  ``@vladmandic/human`` (npm, MIT), whose tarball ships TensorFlow.js models (BlazeFace,
  MediaPipe face mesh + iris, an emotion CNN, "faceres" age/gender). No Python package in a
  registry ships comparable weights, so they run in a Node process (``human/sidecar.mjs``)
  on crops around the faces yuface found. Rekognition's DEFAULT set runs the mesh only
  (pose, landmarks); ALL adds the emotion and age/gender models.
* Quality (brightness, sharpness) is measured on the face pixels, not predicted.

The Node process is optional: without Node or ``vidsift/local/human/node_modules`` the
analyser still finds faces and reports what it measured (box, 5 landmarks, confidence,
quality) and leaves out Pose and every attribute rather than invent them.

Rekognition has no field naming the model; :data:`ANALYZER_ID` (and
:attr:`FaceAnalyzer.analyzer_id` for a running analyser) names it instead, so the
``analyzer`` column says which local models produced a row.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import struct
import subprocess
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yuface

log = logging.getLogger(__name__)

HUMAN_DIR = Path(__file__).resolve().parent / "human"
SIDECAR = HUMAN_DIR / "sidecar.mjs"
_HUMAN_PACKAGE = HUMAN_DIR / "node_modules" / "@vladmandic" / "human" / "package.json"

DETECTOR_ID = f"yuface-{metadata.version('yuface')}"


def _human_version() -> str | None:
    """The installed @vladmandic/human version, read from disk (no process started)."""
    try:
        return str(json.loads(_HUMAN_PACKAGE.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def _full_id(human_version: str | None) -> str:
    return f"{DETECTOR_ID}+human-{human_version}" if human_version else DETECTOR_ID


#: The analyser id on this install: ``yuface-<v>+human-<v>`` when Node and the Human models are
#: installed, else ``yuface-<v>`` (detection only: no pose, no attribute is reported).
ANALYZER_ID = _full_id(_human_version() if shutil.which("node") else None)

#: Faces yuface scores at or below this (0-100) are not reported. Rekognition reports weak
#: faces too and leaves the cut to the caller (FACE_MIN_CONFIDENCE in analyze_faces).
MIN_DETECTOR_SCORE = 50
#: yuface's network loses accuracy above this side (its own warning says so): frames are
#: scaled down to it for detection and coordinates scaled back.
MAX_DETECT_SIDE = 960
#: Rekognition's DetectFaces reports at most the 100 largest faces.
MAX_FACES = 100

# Human's emotion classes to Rekognition's EmotionName. The model has no "confused" class, so
# CONFUSED is never reported rather than made up; its "neutral" is Rekognition's CALM.
_EMOTIONS = {
    "angry": "ANGRY",
    "disgust": "DISGUSTED",
    "fear": "FEAR",
    "happy": "HAPPY",
    "sad": "SAD",
    "surprise": "SURPRISED",
    "neutral": "CALM",
}
# Human's own thresholds for its "blink" and "mouth open" gestures, on the same mesh ratios.
EYE_OPEN_RATIO = 0.2
MOUTH_OPEN_RATIO = 0.02
# Square crop side, as a multiple of yuface's box, sent to Human: its detector wants context
# around the face, and the crop keeps each face's attributes tied to the face yuface found.
CROP_SCALE = 2.0
CROP_MAX_SIDE = 320
# Laplacian variance (on a 128x128 face) at which sharpness reads 50 of 100.
SHARPNESS_HALF = 100.0

_FIVE_POINTS = ("eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight")


class SidecarError(RuntimeError):
    """The Node attribute process failed; the caller turns this into a 500."""


class HumanSidecar:
    """One long-lived ``node sidecar.mjs`` process: models load once, requests go in order."""

    def __init__(self, start_timeout_s: float = 120.0, *, wait: bool = True) -> None:
        """``wait=False`` returns as soon as the process is spawned: the models load while the
        caller goes on (a local stack starting up, a video splitting), and the first request
        waits for them (``wait_ready``)."""
        node = shutil.which("node")
        if node is None:
            raise SidecarError("node is not on PATH")
        if not _HUMAN_PACKAGE.exists():
            raise SidecarError(f"{HUMAN_DIR}/node_modules is missing: run `npm ci --prefix {HUMAN_DIR}`")
        self._lock = threading.Lock()
        self._next_id = 0
        self._proc = subprocess.Popen(
            [node, str(SIDECAR)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=HUMAN_DIR,
        )
        self._stderr: list[str] = []
        threading.Thread(target=self._drain_stderr, name="human-sidecar-stderr", daemon=True).start()
        self._versions: dict[str, str] = {}
        self._ready = threading.Event()
        self._start_error: SidecarError | None = None
        if wait:
            self._await_ready(start_timeout_s)
            self.wait_ready()
        else:
            threading.Thread(target=self._await_ready, args=(start_timeout_s,), name="human-sidecar-start",
                             daemon=True).start()

    def _await_ready(self, timeout_s: float) -> None:
        try:
            ready = self._read_line(timeout_s)
            if not ready.get("ready"):
                raise SidecarError(f"sidecar did not start: {ready}")
            self._versions = ready.get("versions", {})
        except SidecarError as exc:
            self._start_error = exc
        except Exception as exc:  # e.g. a line that is not JSON
            self._start_error = SidecarError(f"sidecar did not start: {exc!r}")
        finally:
            self._ready.set()

    def wait_ready(self) -> None:
        """Block until the models are loaded; SidecarError if they never will be."""
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    @property
    def versions(self) -> dict[str, str]:
        """The sidecar's library and model versions, for the FaceModelVersion the local Rekognition reports."""
        self.wait_ready()
        return self._versions

    def _drain_stderr(self) -> None:
        # Kept (last lines only) so that a crash can be explained; read so the pipe never fills.
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            self._stderr.append(raw.decode("utf-8", "replace").rstrip())
            del self._stderr[:-50]

    def _read_line(self, timeout_s: float) -> dict[str, Any]:
        assert self._proc.stdout is not None
        result: list[bytes] = []
        reader = threading.Thread(target=lambda: result.append(self._proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout_s)
        if reader.is_alive():
            self.close()
            raise SidecarError(f"sidecar gave no answer in {timeout_s:.0f} s")
        if not result or not result[0]:
            self._proc.wait(timeout=5)
            raise SidecarError(f"sidecar exited ({self._proc.returncode}): {' | '.join(self._stderr[-5:])}")
        return json.loads(result[0])

    @property
    def alive(self) -> bool:
        """Whether the Node process still runs, so a dead sidecar is restarted rather than written to."""
        return self._proc.poll() is None

    def analyse(
        self, crops: list[np.ndarray], attributes: bool = True, timeout_s: float = 60.0, *, descriptor: bool = False
    ) -> list[list[dict[str, Any]]]:
        """Human's findings for each RGB crop, in order (an empty list where it saw no face).

        ``attributes=False`` runs the mesh and iris only (pose, landmarks), skipping the
        emotion and age/gender models. ``descriptor=True`` adds each face's 1024-d faceres
        identity descriptor under ``"descriptor"`` (what face collections compare).
        """
        if not crops:
            return []
        self.wait_ready()
        with self._lock:
            self._next_id += 1
            header = json.dumps(
                {
                    "id": self._next_id,
                    "attributes": attributes,
                    "descriptor": descriptor,
                    "images": [{"width": c.shape[1], "height": c.shape[0]} for c in crops],
                }
            ).encode()
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(struct.pack(">I", len(header)) + header)
                for crop in crops:
                    self._proc.stdin.write(np.ascontiguousarray(crop, dtype=np.uint8).tobytes())
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise SidecarError(f"sidecar is gone: {' | '.join(self._stderr[-5:])}") from exc
            answer = self._read_line(timeout_s)
        if answer.get("id") != self._next_id or "error" in answer:
            raise SidecarError(f"sidecar failed: {answer.get('error', answer)}")
        return answer["results"]

    def close(self) -> None:
        """End the Node process (stdin closed, then killed if it lingers), so no child outlives the stack."""
        if self._proc.poll() is None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait(timeout=5)


def measure_quality(gray: np.ndarray, box: tuple[int, int, int, int]) -> dict[str, float]:
    """Brightness and sharpness (0-100) measured on the face's pixels.

    Brightness is the mean luminance. Sharpness is the variance of the Laplacian on the face
    resized to 128x128 (so big and small faces are judged at the same scale), mapped to 0-100
    by v / (v + SHARPNESS_HALF): monotone, 50 at the usual "blurry" threshold of 100.
    """
    x, y, w, h = box
    ih, iw = gray.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(iw, x + w), min(ih, y + h)
    face = gray[y0:y1, x0:x1]
    if face.size == 0:
        return {"Brightness": 0.0, "Sharpness": 0.0}
    brightness = float(face.mean()) / 255.0 * 100.0
    interp = cv2.INTER_AREA if face.shape[0] > 128 else cv2.INTER_LINEAR
    norm = cv2.resize(face, (128, 128), interpolation=interp)
    var = float(cv2.Laplacian(norm, cv2.CV_64F).var())
    return {"Brightness": brightness, "Sharpness": 100.0 * var / (var + SHARPNESS_HALF)}


def _crop_square(rgb: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, float, float, float]:
    """A square crop of CROP_SCALE x the box (padded black off-image), at most CROP_MAX_SIDE.

    Returns the crop and (x0, y0, scale) mapping crop pixels back: image = x0 + crop / scale.
    """
    x, y, w, h = box
    side = max(2, round(max(w, h) * CROP_SCALE))
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = round(cx - side / 2.0), round(cy - side / 2.0)
    ih, iw = rgb.shape[:2]
    crop = np.zeros((side, side, 3), dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(iw, x0 + side), min(ih, y0 + side)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    scale = 1.0
    if side > CROP_MAX_SIDE:
        scale = CROP_MAX_SIDE / side
        crop = cv2.resize(crop, (CROP_MAX_SIDE, CROP_MAX_SIDE), interpolation=cv2.INTER_AREA)
    return crop, float(x0), float(y0), scale


def _unit(values: list[float] | None) -> np.ndarray | None:
    """The descriptor scaled to unit length (cosine similarity is then a dot product)."""
    if not values:
        return None
    vec = np.asarray(values, dtype=np.float32)
    norm = float(np.linalg.norm(vec))
    if not math.isfinite(norm) or norm == 0.0:
        return None
    return vec / norm


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def _binary(value: bool, margin: float) -> dict[str, Any]:
    """A Rekognition {Value, Confidence} from a thresholded measurement.

    ``margin`` is the distance from the threshold relative to the threshold: 0 on it (50%
    confidence, a coin toss) rising to 100% at twice/zero the threshold. This is a geometric
    margin, not a calibrated probability; the README says so.
    """
    return {"Value": bool(value), "Confidence": 50.0 + 50.0 * min(1.0, abs(margin))}


def _age_range(distribution: list[float]) -> dict[str, int]:
    """The middle half (25th-75th percentile) of faceres's softmax over ages 0..99."""
    cdf = np.cumsum(np.asarray(distribution, dtype=np.float64))
    cdf /= cdf[-1]
    low = int(np.searchsorted(cdf, 0.25))
    high = int(np.searchsorted(cdf, 0.75))
    return {"Low": low, "High": max(low, high)}


class FaceAnalyzer:
    """Finds faces and their attributes. Models load once here; ``analyze`` is thread-safe."""

    def __init__(self, attributes: bool = True, max_side: int = MAX_DETECT_SIDE, *, background: bool = False) -> None:
        """``attributes=False`` skips starting the Node models (detection-only use, faster start);
        ``background=True`` lets them load while the caller goes on (the first use waits)."""
        self.max_side = max_side
        self._detect_lock = threading.Lock()
        self._sidecar: HumanSidecar | None = None
        self._sidecar_lock = threading.Lock()
        self.attributes_error: str | None = None
        if attributes:
            try:
                self._sidecar = HumanSidecar(wait=not background)
            except (SidecarError, OSError) as exc:
                self._no_attributes(exc)

    def _no_attributes(self, exc: Exception) -> None:
        self.attributes_error = str(exc)
        log.warning("face attributes unavailable, reporting detection only: %s", exc)

    @property
    def has_attributes(self) -> bool:
        """Whether the Node models are up (waiting for them if they are still loading)."""
        with self._sidecar_lock:
            if self._sidecar is not None:
                try:
                    self._sidecar.wait_ready()
                except SidecarError as exc:
                    self._sidecar.close()
                    self._sidecar = None
                    self._no_attributes(exc)
            return self._sidecar is not None

    @property
    def analyzer_id(self) -> str:
        """What produces this analyser's answers: the detector alone, or detector + Human."""
        if self.has_attributes and self._sidecar is not None:
            return f"{DETECTOR_ID}+human-{self._sidecar.versions.get('human', _human_version())}"
        return DETECTOR_ID

    def detect(self, bgr: np.ndarray) -> list[tuple[float, tuple[int, int, int, int], np.ndarray]]:
        """yuface on the frame scaled to at most ``max_side``: (score 0-100, box xywh, 5x2 points)."""
        h, w = bgr.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = bgr if scale == 1.0 else cv2.resize(bgr, (round(w * scale), round(h * scale)), cv2.INTER_AREA)
        with self._detect_lock:
            raw = yuface.c_detect(np.ascontiguousarray(small, dtype=np.uint8))
        faces = []
        for row in np.asarray(raw, dtype=np.float64):
            score = float(row[0])
            if score <= MIN_DETECTOR_SCORE:
                continue
            bx, by, bw, bh = (row[1:5] / scale).tolist()
            box = (round(bx), round(by), round(bw), round(bh))
            if box[2] <= 0 or box[3] <= 0:
                continue
            points = row[5:15].reshape(5, 2) / scale
            faces.append((score, box, points))
        faces.sort(key=lambda f: f[1][2] * f[1][3], reverse=True)
        return faces[:MAX_FACES]

    def analyze(self, image: np.ndarray, attributes_all: bool = False) -> list[dict[str, Any]]:
        """FaceDetail dicts for a BGR image; with ``attributes_all`` also the estimated attributes."""
        return [detail for detail, _ in self._analyze(image, attributes_all, descriptors=False)]

    def analyze_with_descriptors(
        self, image: np.ndarray, attributes_all: bool = False
    ) -> list[tuple[dict[str, Any], np.ndarray | None]]:
        """FaceDetail dicts, each with its identity descriptor (unit-length float32, 1024-d).

        The descriptor is faceres's (Human's face matching model) on the face Human aligned
        inside yuface's box; it is None where Human did not confirm the face, or when the Node
        models are unavailable, since a face without a descriptor can be neither indexed nor
        searched. Largest face first, as ``analyze``.
        """
        return self._analyze(image, attributes_all, descriptors=True)

    def _analyze(
        self, image: np.ndarray, attributes_all: bool, *, descriptors: bool
    ) -> list[tuple[dict[str, Any], np.ndarray | None]]:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        h, w = image.shape[:2]
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        faces = self.detect(image)
        details: list[dict[str, Any]] = []
        for score, box, points in faces:
            x, y, bw, bh = box
            details.append(
                {
                    "BoundingBox": {"Width": bw / w, "Height": bh / h, "Left": x / w, "Top": y / h},
                    "Landmarks": [
                        {"Type": name, "X": float(px) / w, "Y": float(py) / h}
                        for name, (px, py) in zip(_FIVE_POINTS, points, strict=True)
                    ],
                    "Quality": measure_quality(gray, box),
                    "Confidence": min(100.0, score),
                }
            )
        found: list[np.ndarray | None] = [None] * len(details)
        if faces and self.has_attributes:
            found = self._add_mesh(image, faces, details, attributes_all, descriptors)
        return list(zip(details, found, strict=True))

    def _add_mesh(
        self,
        bgr: np.ndarray,
        faces: list[tuple[float, tuple[int, int, int, int], np.ndarray]],
        details: list[dict[str, Any]],
        attributes_all: bool,
        descriptors: bool = False,
    ) -> list[np.ndarray | None]:
        """Pose and fine landmarks (always), attributes and descriptors (if asked) from Human,
        per face; returns the descriptors (None where not asked or not found)."""
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        crops = [_crop_square(rgb, box) for _, box, _ in faces]
        results = self._run_sidecar([c[0] for c in crops], attributes_all, descriptors)
        out: list[np.ndarray | None] = []
        for (_, box, _), (_, x0, y0, scale), found, detail in zip(faces, crops, results, details, strict=True):
            # Human sees one face per crop; it must be the face yuface found (the crop's centre),
            # not a neighbour that also fits in the crop.
            expected = ((box[0] - x0) * scale, (box[1] - y0) * scale, box[2] * scale, box[3] * scale)
            match = next((f for f in found if _iou(tuple(f["box"]), expected) >= 0.3), None)
            out.append(_unit(match.get("descriptor")) if match is not None else None)
            if match is None:
                continue
            attributes, landmarks = self._attributes(match, x0, y0, scale, w, h)
            if not attributes_all:
                attributes = {"Pose": attributes["Pose"]} if "Pose" in attributes else {}
            detail.update(attributes)
            # The mesh adds Rekognition's finer landmark types; the 5 main ones stay yuface's.
            detail["Landmarks"].extend(landmarks)
        return out

    def _run_sidecar(
        self, crops: list[np.ndarray], attributes: bool, descriptors: bool = False
    ) -> list[list[dict[str, Any]]]:
        with self._sidecar_lock:
            sidecar = self._sidecar
            assert sidecar is not None
            if not sidecar.alive:
                # One restart: a crashed Node process must not silently drop attributes forever.
                log.warning("human sidecar died; restarting it")
                sidecar.close()
                sidecar = self._sidecar = HumanSidecar()
        return sidecar.analyse(crops, attributes, descriptor=descriptors)

    @staticmethod
    def _attributes(
        face: dict[str, Any], x0: float, y0: float, scale: float, w: int, h: int
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Rekognition attributes from one Human face (crop coordinates mapped back to the image)."""
        out: dict[str, Any] = {}
        if face.get("ageDistribution"):
            out["AgeRange"] = _age_range(face["ageDistribution"])
        if face.get("pMale") is not None and not math.isnan(face["pMale"]):
            p_male = float(face["pMale"])
            out["Gender"] = {
                "Value": "Male" if p_male > 0.5 else "Female",
                "Confidence": 100.0 * max(p_male, 1.0 - p_male),
            }
        emotions = [e for e in face.get("emotion") or [] if e["emotion"] in _EMOTIONS]
        if emotions:
            out["Emotions"] = sorted(
                ({"Type": _EMOTIONS[e["emotion"]], "Confidence": 100.0 * float(e["score"])} for e in emotions),
                key=lambda e: e["Confidence"],
                reverse=True,
            )
            # No dedicated smile model ships: the emotion CNN's "happy" class (trained on faces
            # labelled happy by their smile) is the estimate, as a probability.
            happy = next((float(e["score"]) for e in emotions if e["emotion"] == "happy"), 0.0)
            out["Smile"] = {"Value": happy >= 0.5, "Confidence": 100.0 * max(happy, 1.0 - happy)}
        if face.get("eyeOpenness"):
            least = float(min(face["eyeOpenness"]))
            out["EyesOpen"] = _binary(least >= EYE_OPEN_RATIO, (least - EYE_OPEN_RATIO) / EYE_OPEN_RATIO)
        if face.get("mouthOpenness") is not None:
            mouth = float(face["mouthOpenness"])
            out["MouthOpen"] = _binary(mouth > MOUTH_OPEN_RATIO, (mouth - MOUTH_OPEN_RATIO) / MOUTH_OPEN_RATIO)
        rotation = face.get("rotation")
        if rotation:
            # From the 468-point mesh. yuface's 5 points cannot give a pose: they barely move
            # when a face is rotated in the image (a 15-degree turn reads as 1-2 degrees).
            out["Pose"] = {
                "Roll": math.degrees(float(rotation["roll"])),
                "Yaw": math.degrees(float(rotation["yaw"])),
                "Pitch": math.degrees(float(rotation["pitch"])),
            }
        landmarks = [
            {"Type": name, "X": (x0 + px / scale) / w, "Y": (y0 + py / scale) / h}
            for name, (px, py) in (face.get("points") or {}).items()
        ]
        return out, landmarks

    def close(self) -> None:
        """Stop the sidecar, if one was started: the analyser owns it."""
        if self._sidecar is not None:
            self._sidecar.close()
            self._sidecar = None


_default: FaceAnalyzer | None = None
_default_lock = threading.Lock()


def default_analyzer() -> FaceAnalyzer:
    """A process-wide analyser, created on first use (models load once)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = FaceAnalyzer(attributes=os.environ.get("VIDSIFT_FACE_ATTRIBUTES", "1") != "0")
        return _default


def analyze(image: np.ndarray, attributes_all: bool = False) -> list[dict[str, Any]]:
    """FaceDetail dicts (Rekognition's shape) for a BGR image, using the shared analyser."""
    return default_analyzer().analyze(image, attributes_all)
