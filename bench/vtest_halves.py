"""vtest.avi cut in two halves, each with its own hand count: a tuning half and a held-out half.

Why: vtest.avi is the only real footage with a hand count, and it was a held-out check only,
so nothing about real far walkers could be tuned without spending it. Cut in two, half A
(0-40 s) can be tuned on and half B (40-79.5 s) stays held out. The generated far scenes were
a poor stand-in (docs/tracking.md, *Far people, rendered*).

The cut is on frame boundaries: frames 0-399 and 400-794 of the 10 fps clip, re-encoded
losslessly (FFV1 in Matroska, yuv420p like the source's MS-MPEG4 frames, every frame a
keyframe) with PyAV, so each half's decoded frames are the whole clip's, pixel for pixel
(:func:`check_half` decodes both and compares every plane). Each half starts at time 0 as a
clip of its own would, so ``vidsift run`` samples it as it samples any video.

Each half's hand count is derived from ``bench/data/vtest_count.json`` (:func:`half_count`):
its counted moments (times shifted to the half's own clock) and its visits clipped to the
half: a visit in view on both sides of the cut counts in both halves, as the pipeline run on
each half sees it. Nothing is hand-edited.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Half:
    """One half of the clip: whole seconds [start_s, end_s) of vtest.avi."""

    name: str
    start_s: int
    end_s: float


#: The halves: A (tuned on) and B (held out). The cut at 40 s is on a whole second, so the
#: 1 and 2 frames/s samples of a half are the whole clip's.
HALVES = (Half("A", 0, 40.0), Half("B", 40, 79.5))


def half_count(count: dict[str, Any], half: Half) -> dict[str, Any]:
    """The hand count of ``half``: the moments inside it (``t`` on the half's own clock) and the
    visits in view during it, their first and last second clipped to it and shifted. A visit
    seen on both sides of the cut is in both halves."""
    out = copy.deepcopy(count)
    fps = count["video"]["fps"]
    first_frame = round(half.start_s * fps)
    last_frame = min(count["video"]["frames"], round(half.end_s * fps)) - 1
    last_second = last_frame // fps  # the last whole second sampled in the half
    out["video"] = {**count["video"], "name": f"vtest-{half.name.lower()}.mkv", "frames": last_frame - first_frame + 1,
                    "half": [half.start_s, half.end_s]}
    out["moments"] = [{**m, "t": m["t"] - half.start_s} for m in out["moments"]
                      if half.start_s <= m["t"] <= last_second]
    out["visits"] = [{**v, "first": max(v["first"], half.start_s) - half.start_s,
                      "last": min(v["last"], last_second) - half.start_s}
                     for v in out["visits"] if v["first"] <= last_second and v["last"] >= half.start_s]
    return out


def cut(video: Path, half: Half, target: Path) -> Path:
    """Frames [start_s, end_s) of ``video`` as ``target`` (FFV1, Matroska, the source's frame
    rate, times from 0); kept if already there and whole (:func:`check_half`)."""
    import av

    if target.is_file() and check_half(video, half, target):
        return target
    tmp = target.with_suffix(".part.mkv")
    with av.open(str(video)) as src, av.open(str(tmp), "w") as dst:
        vin = src.streams.video[0]
        rate = vin.average_rate or vin.guessed_rate
        out = dst.add_stream("ffv1", rate=rate)
        out.width, out.height, out.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        out.codec_context.gop_size = 1
        first, last = round(half.start_s * rate), round(half.end_s * rate)
        for n, frame in enumerate(src.decode(vin)):
            if n < first:
                continue
            if n >= last:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = n - first, Fraction(1, 1) / rate
            for packet in out.encode(frame):
                dst.mux(packet)
        for packet in out.encode():
            dst.mux(packet)
    tmp.replace(target)
    if not check_half(video, half, target):
        raise RuntimeError(f"{target} does not hold frames {half.start_s}-{half.end_s} s of {video} exactly")
    return target


def check_half(video: Path, half: Half, target: Path) -> bool:
    """Whether ``target``'s decoded frames are ``video``'s frames of ``half``, pixel for pixel
    (every yuv420p plane), and as many."""
    import av

    def digests(path: Path, first: int, last: int) -> list[str]:
        out = []
        with av.open(str(path)) as c:
            for n, frame in enumerate(c.decode(c.streams.video[0])):
                if first <= n < last:
                    out.append(hashlib.sha256(frame.reformat(format="yuv420p").to_ndarray().tobytes()).hexdigest())
        return out

    try:
        with av.open(str(video)) as c:
            rate = c.streams.video[0].average_rate or c.streams.video[0].guessed_rate
        want = digests(video, round(half.start_s * rate), round(half.end_s * rate))
        return bool(want) and digests(target, 0, 10**9) == want
    except Exception:  # a broken or missing cut is simply cut again
        return False
