"""Person-detector throughput: ms per frame and frames per second by batch size and backend.

Why: detect_people sends a batch of frames in one InvokeEndpoint call, so the batch size
trades Lambda wall time against endpoint memory; this shows what each size buys on this
machine. Each measurement goes through the whole handler (JSON with base64 JPEGs ->
decode -> detect -> JSON), as a request would, on 640x480 frames made from bundled photos.

Backends: SSDLite (always; the offline model) on both its runtimes side by side, OpenVINO
(what the local endpoint uses when installed) and OpenCV's DNN module (the fallback, and the
serving container's SSDLite option), and YOLO (an *untrained* yolo11n built from its yaml,
only when ultralytics imports: speed is the architecture's, accuracy is meaningless). Besides
wall time per frame, the CPU time per frame (all threads): locally the detector shares the
machine's cores with the rest of the pipeline, so CPU is what a frame really costs there.

    python -m bench.bench_detector [--frames 48] [--batch-sizes 1 4 16] [--backends ssdlite-opencv ...] [--nms-iou 0.7]
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
INFERENCE = ROOT / "sagemaker" / "code" / "inference.py"
FRAME_SIZE = (640, 480)
PHOTOS = ("astronaut", "coffee", "camera", "chelsea", "rocket", "grace_hopper")


@dataclass
class Result:
    backend: str
    model: str
    batch: int
    frames: int
    seconds: float
    batch_ms: list[float]
    people: int
    cpu_seconds: float = 0.0

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.seconds / self.frames

    @property
    def cpu_ms_per_frame(self) -> float:
        return 1000.0 * self.cpu_seconds / self.frames

    @property
    def fps(self) -> float:
        return self.frames / self.seconds


def load_inference() -> ModuleType:
    name = "vidsift_bench_inference"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, INFERENCE)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def frames() -> list[bytes]:
    """640x480 JPEGs (quality 90, as split_frames writes) from photos that ship in packages."""
    from skimage import data

    out = []
    for name in PHOTOS:
        if name == "grace_hopper":
            from matplotlib import cbook

            image = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), cv2.IMREAD_COLOR)
        else:
            rgb = getattr(data, name)()
            image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR if rgb.ndim == 3 else cv2.COLOR_GRAY2BGR)
        image = cv2.resize(image, FRAME_SIZE, interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        out.append(buf.tobytes())
    return out


#: SSDLite on each of its runtimes (sagemaker/code/inference.py ssdlite_detector).
SSDLITE = {"ssdlite-openvino": "openvino", "ssdlite-opencv": "opencv"}


def available_backends() -> list[str]:
    names = [n for n, runtime in SSDLITE.items() if runtime != "openvino" or importlib.util.find_spec("openvino")]
    if importlib.util.find_spec("ultralytics") is not None:
        names.append("yolo")
    return names


def load_backend(inf: ModuleType, backend: str) -> Any:
    if backend in SSDLITE:
        os.environ["SSDLITE_RUNTIME"] = SSDLITE[backend]
        try:
            return inf.load_model(None, backend="ssdlite")
        finally:
            os.environ.pop("SSDLITE_RUNTIME", None)
    if backend == "yolo":
        # Offline and out of the user's home: Ultralytics writes settings on import.
        scratch = tempfile.mkdtemp(prefix="vidsift-bench-yolo-")
        os.environ.setdefault("YOLO_OFFLINE", "1")
        os.environ.setdefault("YOLO_CONFIG_DIR", scratch)
        os.environ["YOLO_WEIGHTS"] = os.environ.get("BENCH_YOLO_WEIGHTS", "yolo11n.yaml")
    return inf.load_model(None, backend=backend)


def run(inf: ModuleType, model: Any, backend: str, batch: int, jpegs: list[bytes], total: int, bar: tqdm) -> Result:
    encoded = [base64.b64encode(j).decode() for j in jpegs]
    bodies = []
    for start in range(0, total, batch):
        instances = [{"image_b64": encoded[(start + i) % len(encoded)]} for i in range(batch)]
        bodies.append(json.dumps({"instances": instances, "min_confidence": 0.5}).encode())
    inf.handle(model, bodies[0], "application/json")  # warm-up: first-call allocations
    times, people = [], 0
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    for body in bodies:
        t = time.perf_counter()
        out, _ = inf.handle(model, body, "application/json")
        times.append(1000.0 * (time.perf_counter() - t))
        people += sum(len(p["boxes"]) for p in json.loads(out)["predictions"])
        bar.update(batch)
    seconds = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return Result(backend, model.model_id, batch, len(bodies) * batch, seconds, times, people, cpu)


def table(results: list[Result]) -> str:
    head = (f"{'backend':<17} {'model':<28} {'batch':>5} {'frames':>6} {'ms/frame':>9} {'CPU ms/frame':>12} "
            f"{'fps':>7} {'p50 ms/batch':>13}")
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.backend:<17} {r.model:<28} {r.batch:>5} {r.frames:>6} {r.ms_per_frame:>9.1f} "
            f"{r.cpu_ms_per_frame:>12.1f} {r.fps:>7.1f} {statistics.median(r.batch_ms):>13.1f}"
        )
    base = {r.batch: r for r in results if r.backend == "ssdlite-opencv"}
    for r in results:
        if r.backend == "ssdlite-openvino" and r.batch in base:
            b = base[r.batch]
            lines.append(f"  batch {r.batch}: OpenVINO takes {r.ms_per_frame / b.ms_per_frame:.2f} of OpenCV's wall "
                         f"time and {r.cpu_ms_per_frame / b.cpu_ms_per_frame:.2f} of its CPU per frame")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run and print the table; argv defaults to the command line only when run as a script."""
    if argv is None:
        argv = sys.argv[1:] if __name__ == "__main__" else []
    parser = argparse.ArgumentParser(description="Person-detector latency and throughput by batch size.")
    parser.add_argument("--frames", type=int, default=48, help="frames per (backend, batch size); default 48")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--backends", nargs="+", choices=(*SSDLITE, "yolo"), help="default: all that load here")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--nms-iou", type=float, default=None,
                        help="SSDLite's suppression IoU (SSDLITE_NMS_IOU) for this run (default: the environment)")
    args = parser.parse_args(argv)
    if args.nms_iou is not None:  # read as each backend loads
        os.environ["SSDLITE_NMS_IOU"] = str(args.nms_iou)

    inf = load_inference()
    jpegs = frames()
    backends = args.backends or available_backends()
    if "yolo" not in backends and args.backends is None:
        print("yolo: skipped (ultralytics does not import here)", file=sys.stderr)
    plan = [(b, n) for b in backends for n in args.batch_sizes]
    total_frames = sum(max(args.frames // n, 1) * n for _, n in plan)
    results: list[Result] = []
    with tqdm(total=total_frames, unit="frame", desc="detector bench") as bar:
        for backend in backends:
            bar.set_postfix_str(f"loading {backend}")
            model = load_backend(inf, backend)
            for n in args.batch_sizes:
                bar.set_postfix_str(f"{backend} batch {n}")
                results.append(run(inf, model, backend, n, jpegs, max(args.frames // n, 1) * n, bar))
    print(f"\n{FRAME_SIZE[0]}x{FRAME_SIZE[1]} JPEG frames through the full handler; cv2 {cv2.__version__}, "
          f"numpy {np.__version__}, {os.cpu_count()} CPUs")
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([{**r.__dict__, "ms_per_frame": r.ms_per_frame, "fps": r.fps}
                                         for r in results], indent=2))


if __name__ == "__main__":
    main()
