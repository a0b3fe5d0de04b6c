"""The person tracker's quality on generated ground-truth clips, and its speed.

Why: a track is a visit in the records (who came, when, for how long); a tracker that splits
one visit into three, or swaps two people who cross, counts people wrong. This measures it
against the truth, with the pipeline's own inputs: each scene of vidsift.testing.scenes
(people walking across both ways, two crossing, one standing still while others pass,
people leaving and coming back; 640x480, 25 fps, 48-58 s) is sampled at 1 frame a second by
the pipeline's sampler, every frame goes through the local person detector in-process (the
handler of sagemaker/code/inference.py, as the local SageMaker runtime loads it: SSDLite
unless YOLO weights and ultralytics are there) and its answer is read by detect_people's
parser; track_segment then runs with the default TrackParams.

Figures per scene, with motmetrics (IoU >= 0.5): IDF1, MOTA, ID switches; visits found
against true visits (goal: within +-1); for each true visit the share of its time one single
track covers (goal: >= 70% for every visit). The same on the truth's boxes (no detector) tells
tracker errors from detector errors; the detector's recall and precision are shown too.
Speed: track_segment's frames per second and CPU time over all scenes' sampled frames.

    python -m bench tracking          (python -m bench.bench_tracking [--json out.json])
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidsift.core.detection import Box, parse_response
from vidsift.core.frames import SamplingOptions, sample_frames
from vidsift.core.tracking import FramePeople, TrackParams, track_segment
from vidsift.local.sagemaker_runtime import load_inference_module
from vidsift.testing import scenes

MIN_CONFIDENCE = 0.5  # the stack's PERSON_MIN_CONFIDENCE default
BATCH = 8
COVERAGE_GOAL = 0.70
#: The truth as a fair detector would give it: edges off by 3% of the box, 10% of the boxes
#: missed, people less than a third in view (behind nearer ones) missed.
NOISY = {"jitter": 0.03, "drop": 0.10, "min_visible": 0.35}
SOURCES = ("detector", "truth", "truth+noise")


@dataclass
class Sampled:
    scene: scenes.Scene
    truth: scenes.Truth
    detected: list[FramePeople]
    true_boxes: list[FramePeople]
    noisy_boxes: list[FramePeople]


def detect(inf: Any, model: Any, jpegs: list[bytes]) -> list[tuple[Box, ...]]:
    """The detector's boxes per JPEG, through the handler and detect_people's parser."""
    out: list[tuple[Box, ...]] = []
    for start in range(0, len(jpegs), BATCH):
        part = jpegs[start: start + BATCH]
        body = json.dumps({"instances": [{"image_b64": base64.b64encode(j).decode()} for j in part],
                           "min_confidence": MIN_CONFIDENCE, "min_area": 0.0, "appearance": True}).encode()
        answer, _ = inf.handle(model, body, "application/json")
        out.extend(d.boxes for d in parse_response(json.loads(answer), len(part)))
    return out


def prepare(tmp: Path, fps: float = 1.0) -> tuple[list[Sampled], str]:
    inf = load_inference_module()
    model = inf.load_model(None)  # the backend the local runtime picks (VIDSIFT_DETECTOR, else auto)
    out = []
    for s in scenes.SCENES:
        path = tmp / f"{scenes.slug(s)}.mp4"
        truth = scenes.render(s, path)
        sampled = list(sample_frames(path, SamplingOptions(fps=fps)))
        boxes = detect(inf, model, [f.jpeg for f in sampled])
        detected = [FramePeople(f.index, f.time_s, b) for f, b in zip(sampled, boxes, strict=True)]
        times = [(f.index, f.time_s) for f in sampled]
        out.append(Sampled(s, truth, detected, scenes.frame_people(truth, times),
                           scenes.frame_people(truth, times, **NOISY, seed=s.seed)))
    return out, str(model.model_id)


def detector_quality(sampled: Sampled) -> tuple[float, float]:
    """Recall and precision of the detector's boxes against the truth (IoU >= 0.5, greedy)."""
    tp = n_true = n_det = 0
    for f in sampled.detected:
        gt = [p.box for p in sampled.truth.at(f.time_s)]
        n_true, n_det = n_true + len(gt), n_det + len(f.boxes)
        pairs = sorted(((scenes.iou(g, (b.left, b.top, b.width, b.height)), i, j)
                        for i, g in enumerate(gt) for j, b in enumerate(f.boxes)), reverse=True)
        used_g: set[int] = set()
        used_d: set[int] = set()
        for v, i, j in pairs:
            if v >= 0.5 and i not in used_g and j not in used_d:
                used_g.add(i)
                used_d.add(j)
                tp += 1
    return tp / max(1, n_true), tp / max(1, n_det)


def evaluate(data: list[Sampled], params: TrackParams) -> list[dict[str, Any]]:
    rows = []
    for d in data:
        recall, precision = detector_quality(d)
        for source, frames in zip(SOURCES, (d.detected, d.true_boxes, d.noisy_boxes), strict=True):
            sc = scenes.score(d.truth, [f.time_s for f in frames], track_segment(frames, params))
            rows.append({
                "scene": d.scene.name, "boxes": source, "frames": len(frames), "idf1": sc.idf1, "mota": sc.mota,
                "id_switches": sc.switches, "visits_found": sc.visits_found, "visits_true": sc.visits_true,
                "min_coverage": sc.min_coverage, "mean_coverage": sc.mean_coverage, "coverage": sc.coverage,
                "visits_ok": sum(v >= COVERAGE_GOAL for v in sc.coverage.values()),
                **({"detector_recall": recall, "detector_precision": precision} if source == "detector" else {}),
            })
    return rows


def speed(data: list[Sampled], params: TrackParams, repeat: int = 5) -> dict[str, float]:
    """track_segment alone on every scene's detected frames, ``repeat`` times after a warm-up."""
    for d in data:
        track_segment(d.detected, params)
    frames = sum(len(d.detected) for d in data) * repeat
    boxes = sum(len(f.boxes) for d in data for f in d.detected) * repeat
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(repeat):
        for d in data:
            track_segment(d.detected, params)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"frames": frames, "boxes": boxes, "cpu_s": cpu, "wall_s": wall, "frames_per_cpu_s": frames / cpu,
            "cpu_ms_per_frame": 1000 * cpu / frames}


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'scene':<24} {'boxes':<11} {'frames':>6} {'visits':>7} {'IDF1':>6} {'MOTA':>6} {'IDsw':>4} "
            f"{'min cov':>7} {'mean cov':>8} {'cov>=70%':>8} {'det R/P':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        det = f"{r['detector_recall']:.2f}/{r['detector_precision']:.2f}" if "detector_recall" in r else ""
        lines.append(
            f"{r['scene']:<24} {r['boxes']:<11} {r['frames']:>6} {r['visits_found']:>3}/{r['visits_true']:<3} "
            f"{r['idf1']:>6.3f} {r['mota']:>6.3f} {r['id_switches']:>4} {r['min_coverage']:>7.0%} "
            f"{r['mean_coverage']:>8.0%} {r['visits_ok']:>4}/{len(r['coverage']):<3} {det:>9}")
    return "\n".join(lines)


def verdict(rows: list[dict[str, Any]]) -> str:
    out = []
    for source in SOURCES:
        mine = [r for r in rows if r["boxes"] == source]
        visits = all(abs(r["visits_found"] - r["visits_true"]) <= 1 for r in mine)
        cover = all(r["min_coverage"] >= COVERAGE_GOAL for r in mine)
        idf1 = sum(r["idf1"] for r in mine) / len(mine)
        out.append(f"{source}: visits within +-1 on every scene: {'yes' if visits else 'NO'}; every visit covered "
                   f">= {COVERAGE_GOAL:.0%} by one track: {'yes' if cover else 'NO'}; mean IDF1 {idf1:.3f}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run, print the table and return the figures (``python -m bench tracking`` calls it with no arguments)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of the tracker over all scenes")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--fps", type=float, default=1.0, help="frames sampled (and detected) per second")
    args = parser.parse_args(argv or [])
    params = TrackParams()
    with tempfile.TemporaryDirectory(prefix="vidsift-bench-tracking-") as tmp:
        data, model_id = prepare(Path(tmp), args.fps)
    rows = evaluate(data, params)
    fast = speed(data, params, args.repeat)
    print(f"detector {model_id} (min_confidence {MIN_CONFIDENCE}), {args.fps:g} frame/s; TrackParams: max_gap_s "
          f"{params.max_gap_s:g}, max_distance {params.max_distance:g}, min_detections {params.min_detections}")
    print(table(rows))
    print(verdict(rows))
    print(f"tracker speed: {fast['frames']} frames ({fast['boxes']} boxes) in {fast['cpu_s']:.2f} s CPU: "
          f"{fast['frames_per_cpu_s']:.0f} frames/s, {fast['cpu_ms_per_frame']:.2f} ms CPU per frame")
    figures = {"model": model_id, "params": params.__dict__, "scenes": rows, "speed": fast}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
