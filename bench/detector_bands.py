"""The person detector's recall by how much of a person is in view, and its duplicate boxes.

Why: on the generated crowd scenes the detector finds people wholly in view far more often
than people standing partly behind others (docs/tracking.md, *What stands in the way*), and
non-maximum suppression is one suspect: a half-hidden person's box overlaps the nearer
person's, and suppression at a low IoU drops it. Raising the IoU (SSDLITE_NMS_IOU) may keep
them, at the price of two boxes on one person. This counts both on the tracking bench's
scenes, with its cached detections (bench.bench_tracking.prepare; a detector setting not seen
before is run once and cached under its own key):

* recall per visibility band (true people wholly in view, >= 0.9; 0.6-0.9; 0.35-0.6), a box
  of at least MIN_CONFIDENCE matched one-to-one at IoU >= 0.5 (bench_tracking._matched);
* precision of those boxes: matched / all; an unmatched box overlapping (IoU >= 0.5) a true
  person another box already matched is a **duplicate** (two boxes on one person), any other
  unmatched box a false positive (people under 35% in view count as true people here, so a
  box on them is neither).

    python -m bench.detector_bands [--groups regression,tune] [--nms-iou 0.7]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Visibility bands (lowest share in view, highest), as docs/tracking.md names them.
BANDS: tuple[tuple[str, float, float], ...] = (
    ("wholly in view", 0.9, 1.01), ("60-90% in view", 0.6, 0.9), ("35-60% in view", 0.35, 0.6))
MATCH_IOU = 0.5


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two (left, top, width, height) boxes."""
    w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def frame_counts(gt: Sequence[Any], boxes: Sequence[Any]) -> dict[str, int]:
    """One frame's counts: per band, true people and those found; boxes, matched, duplicates.

    ``gt``: true people with ``box`` (left, top, width, height) and ``visible``; ``boxes``: the
    detector's, with left/top/width/height. Matching is greedy by IoU, best pairs first."""
    pairs = sorted(((_iou(p.box, (b.left, b.top, b.width, b.height)), i, j)
                    for i, p in enumerate(gt) for j, b in enumerate(boxes)), reverse=True)
    used_g: set[int] = set()
    used_d: set[int] = set()
    for v, i, j in pairs:
        if v >= MATCH_IOU and i not in used_g and j not in used_d:
            used_g.add(i)
            used_d.add(j)
    out: dict[str, int] = {"boxes": len(boxes), "matched": len(used_d), "duplicates": 0}
    for j, b in enumerate(boxes):
        if j in used_d:
            continue
        if any(_iou(gt[i].box, (b.left, b.top, b.width, b.height)) >= MATCH_IOU for i in used_g):
            out["duplicates"] += 1
    for name, low, high in BANDS:
        members = [i for i, p in enumerate(gt) if low <= p.visible < high]
        out[f"{name} true"] = len(members)
        out[f"{name} found"] = sum(1 for i in members if i in used_g)
    return out


def band_figures(data: Sequence[Any], low: bool = False) -> dict[str, float]:
    """Pooled over scenes' sampled frames (bench_tracking.Sampled: truth, the detector's boxes of
    MIN_CONFIDENCE and more, or with ``low`` all it answered, down to LOW_CONFIDENCE, as the
    tracker reads them): recall per band, precision, duplicates, false positives."""
    total: dict[str, int] = {}
    for d in data:
        for f in (d.detected_low if low else d.detected):
            for k, v in frame_counts(d.truth.at(f.time_s), f.boxes).items():
                total[k] = total.get(k, 0) + v
    figures: dict[str, float] = {}
    for name, _low, _high in BANDS:
        figures[f"recall {name}"] = total.get(f"{name} found", 0) / max(1, total.get(f"{name} true", 0))
        figures[f"true {name}"] = total.get(f"{name} true", 0)
    figures["boxes"] = total.get("boxes", 0)
    figures["precision"] = total.get("matched", 0) / max(1, total.get("boxes", 0))
    figures["duplicates"] = total.get("duplicates", 0)
    figures["false positives"] = total.get("boxes", 0) - total.get("matched", 0) - total.get("duplicates", 0)
    return figures


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Print the figures per group (and all groups together) and return them."""
    from bench.bench_tracking import prepare

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", default="regression,tune", help="scene groups (bench_tracking's)")
    parser.add_argument("--nms-iou", type=float, default=None, help="SSDLITE_NMS_IOU for this run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.nms_iou is not None:
        os.environ["SSDLITE_NMS_IOU"] = str(args.nms_iou)
    groups = tuple(g for g in args.groups.split(",") if g)
    with tempfile.TemporaryDirectory(prefix="vidsift-bench-bands-") as tmp:
        data, model_id = prepare(Path(tmp), 1.0, groups)
    result = {g: band_figures([d for d in data if d.group == g]) for g in groups}
    result["all"] = band_figures(data)
    result.update({f"{g} (low boxes too)": band_figures([d for d in data if d.group == g], low=True) for g in groups})
    print(f"detector {model_id}, boxes of confidence >= 0.5 (low: >= 0.3), IoU >= {MATCH_IOU}")
    for g, fig in result.items():
        bands = ", ".join(f"{name} {fig[f'recall {name}']:.3f} (of {fig[f'true {name}']:.0f})"
                          for name, _l, _h in BANDS)
        print(f"{g}: recall {bands}; precision {fig['precision']:.3f} of {fig['boxes']:.0f} boxes, "
              f"{fig['duplicates']:.0f} duplicates, {fig['false positives']:.0f} false positives")
    if args.json:
        args.json.write_text(json.dumps({"model": model_id, **result}, indent=2))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
