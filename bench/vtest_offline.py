"""vtest.avi's tracking scored offline: the detector's answers cached, the tracker run as the pipeline runs it.

Why: ``vidsift run`` on a half takes a minute or two, most of it the detector; trying tracker
settings needs only the boxes. The detector answers each sampled frame once (the handler the
local runtime loads, asked as detect_people asks: boxes down to PERSON_TRACK_CONFIDENCE 0.3,
with their colours, no area floor) and the answers are kept by the JPEG's sha256 in
``~/.cache/vidsift/vtest-detections.json`` (keyed by the detector's id, its tiling). A half's
frames are sampled from the half's own file by the pipeline's sampler, so their indices and
times are the ones ``vidsift run`` gives them; their JPEGs are the whole clip's byte for byte
(:func:`frames` counts how many are; the detector is asked only for any that are not).

:func:`pipeline_tracks` is what track_people does with one segment's frames (a clip shorter
than SEGMENT_SECONDS is one segment): ``track_segment``, ``stitch``, ``confirmed`` (the far
link in it). :func:`score` compares the tracks with the hand count: tracks against visits,
and at the counted moments (hand boxes matched one-to-one to the tracks' boxes, IoU >= 0.3)
how many tracks each visit is split into and how many tracks hold two visits.

    python -m bench.vtest_offline [--fps 1 2] [--clips A] [--detail]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from bench.bench_real import COUNT, cache_dir, fetch_video, iou_matrix
from bench.vtest_halves import HALVES, Half, cut, half_count
from vidsift.core.confirm import confirmed
from vidsift.core.detection import Box
from vidsift.core.frames import SamplingOptions, sample_frames
from vidsift.core.tracking import FramePeople, Track, TrackParams, stitch, track_segment

MIN_CONFIDENCE = 0.5  # PERSON_MIN_CONFIDENCE's default: boxes under it only continue tracks
IOU_MATCH = 0.3


@dataclass(frozen=True)
class Clip:
    """A clip's sampled frames (the tracker's input) and its hand count."""

    name: str
    fps: float
    frames: list[FramePeople]
    count: dict[str, Any]
    same_jpegs: int  # how many of its sampled JPEGs are the whole clip's, byte for byte


def half_path(half: Half) -> Path:
    return cache_dir() / f"vtest-{half.name.lower()}.mkv"


def clip_path(name: str, video: Path) -> Path:
    """The file of ``name`` ("whole", "A" or "B"), cut the first time."""
    if name == "whole":
        return video
    half = next(h for h in HALVES if h.name == name)
    return cut(video, half, half_path(half))


def _detector() -> tuple[Any, Any, str]:
    from bench.bench_tracking import detector_key
    from vidsift.local.sagemaker_runtime import load_inference_module

    inf = load_inference_module()
    model = inf.load_model(None)  # as the local runtime: VIDSIFT_DETECTOR, PERSON_TILING (auto)
    return inf, model, detector_key(model, inf.APPEARANCE_VERSION)


def _detect(jpegs: list[bytes]) -> dict[str, list[dict[str, Any]]]:
    """Each JPEG's boxes (docs, highest confidence first), by its sha256, from the cache (under
    the detector's id) or the detector."""
    from bench.bench_tracking import detect

    path = cache_dir() / "vtest-detections.json"
    store = json.loads(path.read_text()) if path.exists() else {}
    inf, model, model_id = _detector()
    known = store.setdefault(model_id, {})
    todo = [j for j in dict.fromkeys(jpegs) if hashlib.sha256(j).hexdigest() not in known]
    # bench_tracking's request (boxes down to 0.3, colours): every box, highest score first.
    for j, boxes in zip(todo, detect(inf, model, todo), strict=True):
        known[hashlib.sha256(j).hexdigest()] = [b.as_doc() for b in boxes]
    if todo:
        path.write_text(json.dumps(store))
    return {hashlib.sha256(j).hexdigest(): known[hashlib.sha256(j).hexdigest()] for j in jpegs}


def load(name: str, fps: float) -> Clip:
    """The clip ``name`` sampled at ``fps`` as the pipeline samples it, with the detector's boxes
    (confident first, then the low ones: DetectedFrame.tracked_boxes) and its hand count."""
    count = json.loads(COUNT.read_text())
    video = fetch_video(count)
    path = clip_path(name, video)
    sampled = list(sample_frames(path, SamplingOptions(fps=fps)))
    whole = {hashlib.sha256(f.jpeg).hexdigest() for f in sample_frames(video, SamplingOptions(fps=fps))}
    boxes = _detect([f.jpeg for f in sampled])
    frames = [FramePeople(f.index, f.time_s, tuple(Box.from_doc(b) for b in boxes[hashlib.sha256(f.jpeg).hexdigest()]))
              for f in sampled]
    if name != "whole":
        count = half_count(count, next(h for h in HALVES if h.name == name))
    same = sum(hashlib.sha256(f.jpeg).hexdigest() in whole for f in sampled)
    return Clip(name, fps, frames, count, same)


def pipeline_tracks(frames: list[FramePeople], params: TrackParams) -> list[Track]:
    """What track_people keeps of a one-segment video: its segment's tracks (track_segment_work),
    stitched (track_video_work; one segment starting at its first frame's time) and confirmed,
    far pieces linked first (vidsift.core.confirm)."""
    segment = track_segment(frames, params, prefix="s0-")
    tracks = stitch([(frames[0].time_s if frames else 0.0, segment)], params)
    indices = [f.frame_index for f in frames]
    return confirmed(tracks, min(indices, default=0), max(indices, default=0), params)


def score(clip: Clip, tracks: list[Track]) -> dict[str, Any]:
    """Tracks against the hand count's visits; at the counted moments, each hand box (people of
    whom more than a head shows) matched one-to-one to a track's box of that second: how many
    tracks each visit is split into beyond one (``splits``), how many tracks hold two or more
    visits (``merged``), and how many of the hand boxes a track holds (``held``)."""
    w, h = clip.count["video"]["size"]
    at: dict[float, list[tuple[str, Box]]] = {}
    for t in tracks:
        for p in t.points:
            at.setdefault(round(p.time_s, 3), []).append((t.track_id or t.key, p.box))
    visits_of: dict[str, set[str]] = {}
    tracks_of: dict[str, set[str]] = {}
    seen: dict[str, list[tuple[float, str]]] = {}  # per visit, (second, its track or "-")
    people = held = 0
    for m in clip.count["moments"]:
        hand = [p for p in m["people"] if p["visible"] != "head"]
        for p in hand:
            seen.setdefault(p["id"], []).append((float(m["t"]), "-"))
        truth = np.array([[x, y, x + bw, y + bh] for x, y, bw, bh in (p["box"] for p in hand)], dtype=float)
        mine = at.get(round(float(m["t"]), 3), [])
        det = np.array([[b.left * w, b.top * h, (b.left + b.width) * w, (b.top + b.height) * h] for _, b in mine],
                       dtype=float).reshape(-1, 4)
        people += len(hand)
        iou = iou_matrix(truth.reshape(-1, 4), det)
        if not iou.size:
            continue
        for r, c in zip(*linear_sum_assignment(-iou), strict=True):
            if iou[r, c] >= IOU_MATCH:
                held += 1
                visit, track = hand[r]["id"], mine[c][0]
                seen[visit][-1] = (float(m["t"]), track)
                tracks_of.setdefault(visit, set()).add(track)
                visits_of.setdefault(track, set()).add(visit)
    truth_visits = len(clip.count["visits"])
    return {"clip": clip.name, "fps": clip.fps, "tracks": len(tracks), "visits": truth_visits,
            "error": (len(tracks) - truth_visits) / truth_visits,
            "splits": sum(len(v) - 1 for v in tracks_of.values()),
            "merged": sum(len(v) > 1 for v in visits_of.values()),
            "held": held, "people": people, "seen": seen}


def line(s: dict[str, Any], label: str = "") -> str:
    return (f"{label:<40} {s['clip']:>5} {s['fps']:>3g} fps: {s['tracks']:>3} tracks / {s['visits']} visits "
            f"({s['error']:+.0%}); at the counted seconds: splits {s['splits']}, merged tracks {s['merged']}, "
            f"hand boxes held {s['held']}/{s['people']}")


def detail(s: dict[str, Any]) -> str:
    """Per visit, the track holding its hand box at each counted second ("-": none), marked
    where the visit is split or shares a track with another visit: where to look first."""
    shared: dict[str, set[str]] = {}
    for visit, row in s["seen"].items():
        for _, track in row:
            if track != "-":
                shared.setdefault(track, set()).add(visit)
    out = []
    for visit, row in s["seen"].items():
        tracks = {t for _, t in row if t != "-"}
        notes = ([f"split into {len(tracks)}"] if len(tracks) > 1 else []) + [
            f"{t} also holds {','.join(sorted(shared[t] - {visit}))}" for t in sorted(tracks) if len(shared[t]) > 1]
        cells = " ".join(f"{t:g}:{track}" for t, track in row)
        out.append(f"  {visit:<3} {cells}" + (f"   ({'; '.join(notes)})" if notes else ""))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fps", type=float, nargs="+", default=[1.0])
    parser.add_argument("--clips", nargs="+", default=["A"], choices=["A", "B", "whole"])
    parser.add_argument("--detail", action="store_true",
                        help="per visit, the track holding it at each counted second")
    args = parser.parse_args(argv if argv is not None else [])
    params = TrackParams(track_confidence=MIN_CONFIDENCE)  # the pipeline's (vidsift.settings)
    for fps in args.fps:
        for name in args.clips:
            clip = load(name, fps)
            scored = score(clip, pipeline_tracks(clip.frames, params))
            print(line(scored, "default") + f"; JPEGs as the whole clip's {clip.same_jpegs}/{len(clip.frames)}")
            if args.detail:
                print(detail(scored))


if __name__ == "__main__":
    main(sys.argv[1:])
