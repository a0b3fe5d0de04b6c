"""Speed of human-models' NanoDet and CenterNet on OpenVINO against SSDLite, one frame at a time.

Why: whether the TFJS COCO detectors (sagemaker/code/tfjs_detectors.py) could replace SSDLite
locally depends on what a frame costs on the machine's shared cores, not only on how many
people they find. Each backend gets one inference stream of one thread (what one frame costs
in CPU); each frame is a 640x480 BGR crop of a photo, run through ``detect`` (preprocessing,
inference and decoding, as a request runs it) and through the network alone; medians over
``--frames`` frames after two warm-up frames.

    nice -n 5 python -m bench.bench_tfjs_detectors [--frames 20] [--models DIR] [--streams 1] [--batch 1]

``--streams 2 --batch 16`` measures what the local stack does (SSDLiteOpenVINO's default: two
one-thread streams, a camera's frames sent 16 at a time): ms per frame of the batch.
``--centernet-sides 512 384`` runs CenterNet at each of those input sides (PERSON_COMPLEMENT_SIZE;
CenterNet is taken from ``--models``, else from the @vladmandic/human package ``make node`` installs).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CODE = ROOT / "sagemaker" / "code"


def _module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def frames(count: int) -> list[np.ndarray]:
    """640x480 BGR frames: the group photos (face-api's, when cached) resized, else astronaut."""
    photos = sorted((ROOT / ".venv" / "cache" / "vidsift-figures").glob("sample*.jpg"))
    images = [cv2.imread(str(p)) for p in photos]
    if not images:
        import skimage.data

        images = [cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)]
    return [cv2.resize(images[i % len(images)], (640, 480), interpolation=cv2.INTER_AREA) for i in range(count)]


def median_ms(run: Any, items: list[Any]) -> tuple[float, float]:
    """Median wall ms of ``run`` over ``items`` (two warm-up runs first) and mean CPU ms (all of
    this process's threads, OpenVINO's included): on shared cores wall time varies with the
    neighbours' load, CPU time much less."""
    for item in items[:2]:
        run(item)
    times = []
    cpu = time.process_time()
    for item in items:
        start = time.perf_counter()
        run(item)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times), 1000 * (time.process_time() - cpu) / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--models", type=Path, default=ROOT / ".venv" / "cache" / "human-models" / "3.0.4")
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--centernet-sides", type=int, nargs="+", default=[512])
    args = parser.parse_args()
    inference = _module("vidsift_bench_inference", CODE / "inference.py")
    tfjs = _module("vidsift_tfjs_detectors", CODE / "tfjs_detectors.py")
    cache = inference.openvino_cache_dir()
    backends: dict[str, Any] = {
        "ssdlite": inference.SSDLiteOpenVINO(inference.find_ssdlite_files(None)[0], streams=args.streams,
                                             cache_dir=cache)}
    if (args.models / "nanodet.json").is_file():
        backends["nanodet"] = tfjs.NanoDetOpenVINO(args.models / "nanodet.json", streams=args.streams, cache_dir=cache)
    centernet = next((p for p in (args.models / "centernet.json", inference.HUMAN_MODELS / "centernet.json")
                      if p.is_file()), None)
    for side in args.centernet_sides if centernet is not None else []:
        backends[f"centernet{'' if side == 512 else side}"] = tfjs.CenterNetOpenVINO(
            centernet, streams=args.streams, cache_dir=cache, input_side=side)
    items = frames(args.frames * args.batch)
    batches = [items[i : i + args.batch] for i in range(0, len(items), args.batch)]
    print(f"{args.streams} stream(s) of one thread, {args.batch} frame(s) a call; ms per frame")
    print(f"{'backend':<12}{'model':<36}{'detect ms':>10}{'CPU ms':>8}{'network ms':>12}{'CPU ms':>8}{'people':>8}")
    for name, detector in backends.items():
        total, total_cpu = (v / args.batch for v in median_ms(lambda b, d=detector: d.detect(b, 0.5), batches))
        # SSDLite's rows include its boxes below the threshold (the response drops them).
        people = sum(int((r[:, 4] >= 0.5).sum()) for r in detector.detect(items, 0.5))
        if hasattr(detector, "prepare"):
            prepared = [[detector.prepare(np.ascontiguousarray(f[:, :, ::-1])) for f in b] for b in batches]
            network, network_cpu = (v / args.batch for v in median_ms(lambda x, d=detector: d.infer(x), prepared))
        else:  # SSDLite's graph resizes inside the network
            network, network_cpu = total, total_cpu
        print(f"{name:<12}{detector.model_id:<36}{total:>10.1f}{total_cpu:>8.1f}{network:>12.1f}{network_cpu:>8.1f}"
              f"{people:>8}")


if __name__ == "__main__":
    main()
