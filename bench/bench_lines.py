"""Lines and zones against exact truth: crossings per direction and zone dwell on generated scenes.

Why: a line counter is judged by one number, whether the ins and outs are right, and a
counter that bursts on someone standing on the line or misses a fast walker is wrong where it
matters. Each scene (vidsift.testing.line_scenes.random_scene) puts 2-4 people on a random
line (up to 35 degrees off vertical) and a random zone (half of them concave): crossing,
pausing on the far side, turning back before the line, standing on it and leaving either way,
walking to the zone and waiting 3-15 s. The truth is the ideal observer's count on the people's
true feet at 25 frames a second (no band); what is measured is what the pipeline sees: the
sampled frames at 1 a second.

Inputs, each counted with vidsift.core.lines (the layout's default band, 0.03):
* *truth, ideal tracks*: the true boxes at 1 frame a second, grouped by true visit;
* *truth, tracker*: the true boxes through today's tracker (vidsift.core.tracking.track_segment);
* *truth+noise, tracker*: each box edge off by 3% of the box and 10% of boxes missed (a fair
  detector, as bench_tracking's), through the tracker.

Figures: the share of scenes whose crossing counts per line and direction are all exact (goal
>= 95%), and the share of true zone stays whose matched stay's dwell is within +-2 s (the
measured stay of the same zone overlapping it most; none: a miss, measured as 0 s). The band was set (0.03) before
any figure; seeds 0-99 were looked at while writing the scene generator, seeds 100-299 only for
the figures (``--seeds``).

    python -m bench lines            (python -m bench.bench_lines [--seeds 100-299] [--json out.json])
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from vidsift.core.lines import ZoneVisit
from vidsift.testing import line_scenes as ls

NOISY = {"jitter": 0.03, "drop": 0.10}
DWELL_TOLERANCE_S = 2.0


@dataclass
class Tally:
    scenes: int = 0
    exact: int = 0
    stays: int = 0
    stays_within: int = 0
    extra_stays: int = 0
    missed: int = 0
    crossings_true: int = 0
    crossings_wrong: int = 0
    dwell_errors: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _match(truth: list[ZoneVisit], got: list[ZoneVisit]) -> tuple[list[float | None], int]:
    """Each true stay's dwell error (None: no stay overlapped it), and stays matching none."""
    used: set[int] = set()
    errors: list[float | None] = []
    for t in truth:
        best, overlap = None, 0.0
        for k, g in enumerate(got):
            o = min(t.left_s, g.left_s) - max(t.entered_s, g.entered_s)
            if g.zone == t.zone and k not in used and o > overlap:
                best, overlap = k, o
        if best is None:
            errors.append(None)
        else:
            used.add(best)
            errors.append(got[best].dwell_s - t.dwell_s)
    return errors, len(got) - len(used)


def score(scene: ls.LineScene, got: ls.Counts, truth: ls.Counts, tally: Tally) -> None:
    tally.scenes += 1
    want, have = truth.per_line(scene.camera), got.per_line(scene.camera)
    tally.crossings_true += sum(a + b for a, b in want.values())
    tally.crossings_wrong += sum(abs(want[k][0] - have[k][0]) + abs(want[k][1] - have[k][1]) for k in want)
    if want == have:
        tally.exact += 1
    else:
        tally.failures.append(f"{scene.name}: crossings {have} for {want}")
    errors, extra = _match(truth.stays, got.stays)
    tally.extra_stays += extra
    for t, e in zip(truth.stays, errors, strict=True):
        tally.stays += 1
        if e is None:  # no stay measured: its dwell was 0
            tally.missed += 1
            e = -t.dwell_s
        tally.dwell_errors.append(e)
        if abs(e) <= DWELL_TOLERANCE_S:
            tally.stays_within += 1
        else:
            tally.failures.append(f"{scene.name}: a stay of {t.dwell_s:.1f} s in {t.zone} measured {e:+.2f} s off")


INPUTS: dict[str, Callable[[ls.LineScene, int], list]] = {
    "truth, ideal tracks": lambda s, seed: ls.sampled_true_paths(s),
    "truth, tracker": lambda s, seed: ls.tracked_paths(ls.frames(s)),
    "truth+noise, tracker": lambda s, seed: ls.tracked_paths(ls.frames(s, seed=seed, **NOISY)),
}


def run(seeds: list[int], progress: bool = True, band: float | None = None) -> dict[str, Tally]:
    tallies = {name: Tally() for name in INPUTS}
    for seed in tqdm(seeds, desc="scenes", unit="scene", disable=not progress):
        scene = ls.random_scene(seed)
        truth = ls.truth(scene)
        for name, paths in INPUTS.items():
            score(scene, ls.count(scene.camera, paths(scene, seed), band=band), truth, tallies[name])
    return tallies


def _seeds(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def report(tallies: dict[str, Tally], seeds: list[int], seconds: float) -> dict[str, Any]:
    print(f"{len(seeds)} generated scenes (seeds {seeds[0]}-{seeds[-1]}), {seconds:.1f} s")
    print("| input | scenes with exact in/out | crossings wrong / true | true stays with dwell within ±2 s "
          "| mean abs dwell error | true stays not seen | stays not in the truth |")
    print("|---|---|---|---|---|---|---|")
    doc: dict[str, Any] = {}
    for name, t in tallies.items():
        mean_err = sum(abs(e) for e in t.dwell_errors) / len(t.dwell_errors) if t.dwell_errors else 0.0
        print(f"| {name} | {t.exact}/{t.scenes} ({100 * t.exact / t.scenes:.1f}%) | {t.crossings_wrong}/"
              f"{t.crossings_true} | {t.stays_within}/{t.stays} ({100 * t.stays_within / max(1, t.stays):.1f}%) "
              f"| {mean_err:.2f} s | {t.missed} | {t.extra_stays} |")
        doc[name] = {"scenes": t.scenes, "exact": t.exact, "crossings_true": t.crossings_true,
                     "crossings_wrong": t.crossings_wrong, "stays": t.stays, "stays_within": t.stays_within,
                     "mean_abs_dwell_error_s": round(mean_err, 3), "missed": t.missed, "extra_stays": t.extra_stays,
                     "failures": t.failures}
    for name, t in tallies.items():
        for f in t.failures[:8]:
            print(f"  {name}: {f}")
    return doc


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--seeds", default="100-299", help="scene seeds, FIRST-LAST (default 100-299)")
    p.add_argument("--json", help="write the figures here too")
    p.add_argument("--band", type=float, help="every line's and zone's band instead of the layout's (0.03)")
    args = p.parse_args(argv if argv is not None else [])
    seeds = _seeds(args.seeds)
    started = time.perf_counter()
    tallies = run(seeds, band=args.band)
    doc = report(tallies, seeds, time.perf_counter() - started)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
