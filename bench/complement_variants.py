"""Fill bench_tracking's detection cache for several PERSON_COMPLEMENT variants in one pass.

Why: bench_tracking caches detections by the detector's id, so each variant of the SSDLite +
CenterNet complement (inference.ComplementDetector: threshold, score mapping) would render and
detect the 84 tuning clips again (5-8 minutes each). Here each clip is rendered and sampled
once, SSDLite (tiled, as the environment says) and CenterNet each look at every frame once,
and every variant's answer is built from those two by the detector's own class and merge
(inference.complement_rows) and written where ``bench_tracking`` reads it; the first clip is
also detected by each variant's real detector and must give the same bytes. Then
``PERSON_COMPLEMENT=centernet PERSON_COMPLEMENT_CONFIDENCE=0.4 python -m bench.bench_tracking
--groups regression,tune`` reads its cache. Tuning groups only (regression, tune, far tune).

    python -m bench.complement_variants --variants 0.35:mapped 0.4:mapped 0.5:mapped 0.4:own 0.4:mapped:tiled

CenterNet's input side is the environment's (``PERSON_COMPLEMENT_SIZE``, default 512; it is in the
model id, so each side's cache keeps apart): ``PERSON_COMPLEMENT_SIZE=384 python -m
bench.complement_variants --variants 0.35:low:all``, then the rows with the same setting.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench_tracking import (
    CROWD_RENDER_FPS,
    FAR_DETECT_FPS,
    _cache_key,
    _photo_people,
    detect,
    detector_key,
    progress,
)
from vidsift.core.frames import SamplingOptions, sample_frames
from vidsift.local.sagemaker_runtime import load_inference_module
from vidsift.testing import crowd, scenes


class Once:
    """A detector that answers each image once (by its pixels), at ``floor`` for any threshold at
    or above it: greedy suppression keeps a box by the higher-scored ones alone, so the boxes of a
    higher threshold are the lower threshold's above it."""

    def __init__(self, inner: Any, floor: float) -> None:
        self.inner, self.floor, self.memo = inner, floor, {}

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def detect(self, images: list[np.ndarray], min_confidence: float) -> list[np.ndarray]:
        """The inner detector's rows (computed once per image; every variant sends the same batches,
        so a tiling decision made per batch is the same) and its ``last_tiled`` for them."""
        if min_confidence < self.floor:
            raise ValueError(f"asked at {min_confidence}, memo made at {self.floor}")
        keys = [hashlib.sha1(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images]
        todo = [i for i, k in enumerate(keys) if k not in self.memo]
        if todo:
            found = self.inner.detect([images[i] for i in todo], self.floor)
            tiled = list(getattr(self.inner, "last_tiled", [False] * len(todo)))
            for n, (i, rows) in enumerate(zip(todo, found, strict=True)):
                self.memo[keys[i]] = (np.asarray(rows, dtype=np.float64).reshape(-1, 5), tiled[n])
        self.last_tiled = [self.memo[k][1] for k in keys]
        out = [self.memo[k][0] for k in keys]
        # tfjs's NMS keeps candidates strictly above the threshold (tfjs_detectors.tfjs_nms)
        return [r[r[:, 4] > min_confidence] if min_confidence > self.floor else r for r in out]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["0.35:mapped", "0.4:mapped", "0.5:mapped", "0.4:own"],
                        help="THRESHOLD:SCORE[:FRAMES] each (SCORE mapped | own | low, FRAMES all | tiled | fewer)")
    args = parser.parse_args(argv)
    variants = [(float(v.split(":")[0]), v.split(":")[1], [*v.split(":"), "all"][2]) for v in args.variants]
    floor = min(t for t, _, _ in variants)
    inf = load_inference_module()
    os.environ.update(PERSON_COMPLEMENT="centernet", PERSON_COMPLEMENT_CONFIDENCE=str(floor))
    real = inf.load_model(None)
    s3 = real.s3
    first, second = real.backend.first, Once(real.backend.second, floor)
    first = Once(first, 0.3)
    models = []
    for t, score, frames in variants:
        os.environ.update(PERSON_COMPLEMENT_CONFIDENCE=str(t), PERSON_COMPLEMENT_SCORE=score,
                          PERSON_COMPLEMENT_FRAMES=frames)
        loaded = inf.load_model(None)  # the variant as the environment gives it: its id, its real detector
        confident = loaded.backend.confident
        built = inf.PersonDetector(inf.ComplementDetector(first, second, threshold=t, confident=confident, score=score,
                                                          frames=frames), s3)
        key = detector_key(loaded, inf.APPEARANCE_VERSION)
        assert detector_key(built, inf.APPEARANCE_VERSION) == key, key
        models.append((key, built, loaded))
        print(key)
    pool = crowd.registry_pool(_photo_people(inf, real))
    todo: list[tuple[scenes.Scene, int, float]] = [(s, scenes.FPS, 1.0) for s in scenes.SCENES]
    tune = [crowd.generate(seed, pool) for seed in crowd.TUNE_SEEDS]
    todo += [(s, CROWD_RENDER_FPS, 1.0) for s in tune]
    far_render = max(CROWD_RENDER_FPS, math.ceil(2 * FAR_DETECT_FPS))
    todo += [(crowd.far(s), far_render, FAR_DETECT_FPS) for s in tune]
    cache = crowd.cache_dir() / "detections"
    cache.mkdir(exist_ok=True)
    checked = False
    with tempfile.TemporaryDirectory(prefix="vidsift-complement-") as tmp:
        for s, render_fps, fps in progress(todo, "scenes"):
            hits = [cache / f"{_cache_key(s, render_fps, fps, key)}.json" for key, _, _ in models]
            if all(h.exists() for h in hits):
                continue
            path = Path(tmp) / "scene.mp4"
            scenes.render(s, path, fps=render_fps)
            sampled = list(sample_frames(path, SamplingOptions(fps=fps)))
            jpegs = [f.jpeg for f in sampled]
            for (key, built, loaded), hit in zip(models, hits, strict=True):
                boxes = detect(inf, built, jpegs)
                doc = [[f.index, f.time_s, [b.as_doc() for b in bs]] for f, bs in zip(sampled, boxes, strict=True)]
                if not checked:  # the shortcut must give what the real detector gives
                    again = detect(inf, loaded, jpegs)
                    assert json.dumps([[b.as_doc() for b in bs] for bs in again]) == json.dumps(
                        [d[2] for d in doc]), f"{key}: built and real detectors differ"
                hit.write_text(json.dumps(doc))
            checked = True
            path.unlink()


if __name__ == "__main__":
    main()
