"""Scenes with counting lines and zones, and their exact truth, on vidsift.testing.scenes' API.

Each scene is a vidsift.testing.scenes.Scene (people as Legs: waypoints of time, feet x, feet
y, height) plus a camera layout. The truth is what an ideal observer counts: every visit's
feet where its legs put them (no walking bob, not cut by the frame's edge) at 25 frames a
second, with the counting rules of vidsift.core.lines and a band of 3 pixels (``TRUE_BAND``). What is
measured goes through what the pipeline has: the truth's boxes sampled at 1 frame a second
(vidsift.testing.scenes.frame_people, optionally with a detector's noise), followed by
today's tracker (vidsift.core.tracking.track_segment), each track's feet counted.

``FIXED`` are the cases the tests name (crossing both ways, a U-turn before the line, standing
on the line, a crossing between two samples, walking along a line, a zone stay, overlapping
zones, a line at an angle, a concave zone), each with what it was designed to give. ``random_scene``
draws many more for the figures (bench/bench_lines.py).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from vidsift.core.layout import CameraLayout, Line, Zone
from vidsift.core.lines import Crossing, PathPoint, ZoneVisit, line_crossings, zone_visits
from vidsift.core.tracking import FramePeople, TrackParams, track_segment
from vidsift.testing.scenes import Leg, Scene, frame_people, ground_truth

#: The truth's band: the feet must be this far (frame fractions, 3 pixels of 640) past the line
#: to have crossed it, so a person standing on the line (to the waypoints' rounding) has not.
TRUE_BAND = 0.005
SAMPLE_FPS = 1.0


@dataclass(frozen=True)
class LineScene:
    """A tracker scene with a camera layout and what it was designed to show, so the counting can
    be checked against an exact truth rather than against itself."""

    scene: Scene
    camera: CameraLayout
    #: What the scene was made to show: line -> (in, out), zone -> number of stays.
    designed_lines: dict[str, tuple[int, int]] = field(default_factory=dict)
    designed_stays: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The scene's name, which the tests and the benchmark name their cases by."""
        return self.scene.name


def _leg_at(s: Scene, actor: str, t: float) -> Leg | None:
    return next((leg for leg in s.legs if leg.actor == actor and leg.at(t) is not None), None)


def true_paths(s: Scene, fps: int = 25) -> dict[str, list[PathPoint]]:
    """Each true visit's feet at every frame it is in view: where its leg puts them (the
    waypoints: no walking bob, not cut by the frame's edge)."""
    truth = ground_truth(s, fps)
    paths: dict[str, list[PathPoint]] = {}
    for i, people in enumerate(truth.frames):
        t = i / fps
        for p in people:
            leg = _leg_at(s, p.actor, t)
            if leg is not None:
                cx, bottom, _ = leg.at(t)  # type: ignore[misc]
                paths.setdefault(p.visit, []).append((t, cx, bottom))
    return paths


@dataclass
class Counts:
    """Crossings and stays of a set of paths (tracks or true visits)."""

    crossings: list[Crossing]
    stays: list[ZoneVisit]

    def per_line(self, camera: CameraLayout) -> dict[str, tuple[int, int]]:
        """(in, out) crossings of each of ``camera``'s lines, zero for a line nobody crossed."""
        return {ln.name: (sum(c.line == ln.name and c.direction == "in" for c in self.crossings),
                          sum(c.line == ln.name and c.direction == "out" for c in self.crossings))
                for ln in camera.lines}

    def per_zone(self, camera: CameraLayout) -> dict[str, int]:
        """Stays in each of ``camera``'s zones, zero for an empty zone."""
        return {z.name: sum(v.zone == z.name for v in self.stays) for z in camera.zones}


def count(camera: CameraLayout, paths: Sequence[Sequence[PathPoint]], band: float | None = None) -> Counts:
    """The camera's lines and zones over the paths (with ``band`` instead of each one's own)."""
    lines = [Line(ln.name, ln.a, ln.b, ln.in_from, ln.band if band is None else band) for ln in camera.lines]
    zones = [Zone(z.name, z.polygon, z.band if band is None else band) for z in camera.zones]
    out = Counts([], [])
    for path in paths:
        for ln in lines:
            out.crossings += line_crossings(ln, path)
        for z in zones:
            out.stays += zone_visits(z, path)
    return out


def truth(ls: LineScene) -> Counts:
    """What an ideal observer counts in the scene (every visit's true feet at 25 frames a second):
    the figure the pipeline's counts are scored against."""
    return count(ls.camera, list(true_paths(ls.scene).values()), band=TRUE_BAND)


def sampled_times(s: Scene, fps: float = SAMPLE_FPS, offset: float = 0.0) -> list[tuple[int, float]]:
    """(index, time) of the frames the pipeline samples at ``fps`` from ``offset``, to sample the
    truth where the pipeline samples the video."""
    n = int((s.seconds - offset) * fps)
    return [(k, round(offset + k / fps, 4)) for k in range(n + 1) if offset + k / fps < s.seconds]


def frames(ls: LineScene, *, jitter: float = 0.0, drop: float = 0.0, seed: int = 0,
           offset: float = 0.0) -> list[FramePeople]:
    """The truth's boxes at 1 frame a second (``offset``: the first sample's time), with noise."""
    return frame_people(ground_truth(ls.scene), sampled_times(ls.scene, offset=offset), jitter=jitter, drop=drop,
                        seed=seed)


def tracked_paths(frames_: Sequence[FramePeople], params: TrackParams | None = None) -> list[list[PathPoint]]:
    """Today's tracker over the boxes; each track's feet (bottom centre of its boxes)."""
    tracks = track_segment(frames_, params or TrackParams(), prefix="s0-")
    return [[(p.time_s, p.box.left + p.box.width / 2, p.box.top + p.box.height) for p in t.points] for t in tracks]


def sampled_true_paths(ls: LineScene, offset: float = 0.0) -> list[list[PathPoint]]:
    """The true boxes at 1 frame a second, grouped by true visit (a perfect tracker)."""
    truth_ = ground_truth(ls.scene)
    paths: dict[str, list[PathPoint]] = {}
    for _, t in sampled_times(ls.scene, offset=offset):
        for p in truth_.at(t):
            left, top, w, h = p.box
            paths.setdefault(p.visit, []).append((t, left + w / 2, top + h))
    return list(paths.values())


# --- the named cases --------------------------------------------------------------------------


def _walk(actor: str, *pts: tuple[float, float, float], height: float = 0.5) -> Leg:
    """A leg through (time, feet x, feet y) waypoints at one height."""
    return Leg(actor, tuple((t, x, y, height) for t, x, y in pts))


DOOR = Line("entrance", (0.5, 0.3), (0.5, 1.0), (0.1, 0.8))
#: Zones and lines keep clear of the frame's sides: a person half out of view has a box cut by
#: the frame's edge, whose bottom centre is not their feet (docs/lines-and-zones.md).
COUNTER = Zone("counter", ((0.6, 0.75), (0.85, 0.75), (0.85, 0.98), (0.6, 0.98)))
QUEUE = Zone("queue", ((0.35, 0.75), (0.72, 0.75), (0.72, 0.98), (0.35, 0.98)))
#: An L: the inside corner (x 0.45-0.85, y 0.6-0.8) is outside it.
ELL = Zone("ell", ((0.15, 0.6), (0.45, 0.6), (0.45, 0.8), (0.85, 0.8), (0.85, 0.98), (0.15, 0.98)))
DIAGONAL = Line("diagonal", (0.2, 1.0), (0.8, 0.6), (0.2, 0.6))

FIXED: tuple[LineScene, ...] = (
    LineScene(Scene("crossing both ways", 30, (
        _walk("A", (1, -0.1, 0.85), (13, 1.1, 0.85)),        # left to right: in
        _walk("B", (15, 1.1, 0.9), (28, -0.1, 0.9)),         # right to left: out
    )), CameraLayout("door", (DOOR,)), {"entrance": (1, 1)}),
    LineScene(Scene("u-turn before the line", 34, (
        _walk("A", (1, -0.1, 0.85), (8, 0.40, 0.85), (15, -0.1, 0.85)),   # turns 0.1 before it
        _walk("B", (17, -0.1, 0.9), (25, 0.49, 0.9), (33, -0.1, 0.9)),    # turns inside its band
    )), CameraLayout("door", (DOOR,)), {"entrance": (0, 0)}),
    LineScene(Scene("standing on the line", 40, (
        # walks in, stands on the line for 20 s (boxes jitter), goes on: one crossing
        _walk("C", (1, -0.1, 0.88), (7, 0.5, 0.88), (27, 0.5, 0.88), (38, 1.1, 0.88)),
    )), CameraLayout("door", (DOOR,)), {"entrance": (1, 0)}),
    LineScene(Scene("crossing between two samples", 20, (
        # fast: x 0.35 at 4 s, 0.65 at 5 s, never sampled near the line
        _walk("A", (2.0, -0.25, 0.85), (7.0, 1.25, 0.85)),
    )), CameraLayout("door", (DOOR,)), {"entrance": (1, 0)}),
    LineScene(Scene("walking along a line", 40, (
        # on the horizontal line (y 0.85) along all of it, then passing below the vertical one's end
        _walk("A", (1, -0.1, 0.85), (16, 1.1, 0.85)),
        # on the vertical line (x 0.5) along all of it, then passing beside the horizontal one's end
        _walk("B", (18, 0.5, 0.5), (38, 0.5, 0.98), height=0.45),
    )), CameraLayout("door", (Line("floor", (0.05, 0.85), (0.45, 0.85), (0.3, 0.6)),
                              Line("entrance", (0.5, 0.3), (0.5, 0.8), (0.1, 0.5)))),
        {"floor": (0, 0), "entrance": (0, 0)}),
    LineScene(Scene("zone stay", 36, (
        # walks to the counter, waits 12 s there, leaves the way they came
        _walk("A", (1, 1.1, 0.88), (6, 0.78, 0.88), (18, 0.78, 0.88), (24, 1.1, 0.88)),
        # walks straight past it
        _walk("B", (24, -0.1, 0.9), (35, 1.1, 0.9)),
    )), CameraLayout("shop", (), (COUNTER,)), {}, {"counter": 2}),
    LineScene(Scene("overlapping zones", 40, (
        # queue, then the overlap (both zones), then the counter alone, then out to the right
        _walk("A", (1, -0.1, 0.88), (6, 0.45, 0.88), (14, 0.45, 0.88), (16, 0.67, 0.88), (24, 0.67, 0.88),
              (26, 0.78, 0.88), (32, 0.78, 0.88), (38, 1.1, 0.88)),
    )), CameraLayout("shop", (), (QUEUE, COUNTER)), {}, {"queue": 1, "counter": 1}),
    LineScene(Scene("line at an angle", 42, (
        _walk("A", (1, -0.1, 0.85), (12, 1.1, 0.85)),                  # crosses it (at x 0.425): in
        _walk("B", (14, 1.1, 0.66), (26, -0.1, 0.66), height=0.4),     # crosses it near its top end: out
        _walk("C", (28, -0.1, 0.52), (40, 1.1, 0.52), height=0.35),    # passes above its end: nothing
    )), CameraLayout("hall", (DIAGONAL,)), {"diagonal": (1, 1)}),
    LineScene(Scene("concave zone", 44, (
        # through the L's notch (outside it) and out: no stay
        _walk("A", (1, 1.1, 0.7), (10, 0.5, 0.7), (16, 0.5, 0.7), (22, 1.1, 0.7), height=0.4),
        # into the L's foot, waits, out: one stay
        _walk("B", (22, 1.1, 0.9), (28, 0.7, 0.9), (36, 0.7, 0.9), (43, 1.1, 0.9)),
    )), CameraLayout("shop", (), (ELL,)), {}, {"ell": 1}),
)


def fixed(name: str) -> LineScene:
    """The fixed scene named ``name``, for a test about one situation."""
    return next(s for s in FIXED if s.name == name)


# --- random scenes for the figures --------------------------------------------------------------


def random_scene(seed: int) -> LineScene:
    """A scene of 2-4 people on a random line and a random zone: crossing (some pausing on the
    line), turning back before it, standing on it and leaving either way, walking to the zone and
    waiting there 3-15 s. Deterministic for a seed."""
    rng = random.Random(seed)
    # A line through the walking area, up to 35 degrees off vertical.
    cx, angle = rng.uniform(0.4, 0.6), math.radians(rng.uniform(-35, 35))
    dx, dy = math.sin(angle) * 0.3, math.cos(angle) * 0.3
    line = Line("line", (cx - dx, 0.75 - dy), (cx + dx, min(1.0, 0.75 + dy)), (0.02, 0.8))
    zx, zy = rng.uniform(0.62, 0.75), rng.uniform(0.72, 0.8)
    zw, zh = rng.uniform(0.12, 0.2), rng.uniform(0.12, 0.18)
    if rng.random() < 0.5:
        poly = ((zx, zy), (zx + zw, zy), (zx + zw, zy + zh), (zx, zy + zh))
    else:  # concave: a notch in the top edge
        m = zx + zw / 2
        poly = ((zx, zy), (m - zw / 6, zy), (m, zy + zh / 2), (m + zw / 6, zy), (zx + zw, zy),
                (zx + zw, zy + zh), (zx, zy + zh))
    zone = Zone("zone", tuple((round(x, 4), round(min(y, 0.99), 4)) for x, y in poly))
    legs: list[Leg] = []
    t = 1.0 + rng.random()
    for k in range(rng.randint(2, 4)):
        actor = "ABC"[k % 3]
        y = rng.uniform(0.8, 0.97)
        h = rng.uniform(0.45, 0.6)
        speed = rng.uniform(0.08, 0.2)  # frame widths a second
        kind = rng.choice(["cross", "cross", "pause", "uturn", "stand", "zone"])
        left = rng.random() < 0.5
        start_x, far_x = (-0.1, 1.1) if left else (1.1, -0.1)
        line_x = _line_x(line, y)
        pts: list[tuple[float, float, float]] = [(t, start_x, y)]

        def go(x: float, y2: float | None = None, pts: list = pts, speed: float = speed) -> None:
            t0, x0, y0 = pts[-1]
            y2 = y0 if y2 is None else y2
            pts.append((t0 + max(0.5, math.dist((x0, y0), (x, y2)) / speed), x, y2))

        def wait(s: float, pts: list = pts) -> None:
            t0, x0, y0 = pts[-1]
            pts.append((t0 + s, x0, y0))

        if kind == "cross":
            go(far_x)
        elif kind == "pause":  # stops just past the line a while, goes on
            go(line_x + (0.02 if left else -0.02))
            wait(rng.uniform(2, 6))
            go(far_x)
        elif kind == "uturn":
            go(line_x + (-1 if left else 1) * rng.uniform(0.06, 0.2))
            wait(rng.uniform(0, 3))
            go(start_x)
        elif kind == "stand":
            go(line_x)
            wait(rng.uniform(4, 12))
            go(far_x if rng.random() < 0.5 else start_x)
        else:
            zxp = rng.uniform(zx + 0.03, zx + zw - 0.03)
            zyp = zy + zh - 0.02
            go(zxp, zyp)
            wait(rng.uniform(3, 15))
            go(1.1, zyp)
        legs.append(Leg(actor, tuple((round(a, 3), round(b, 4), round(c, 4), h) for a, b, c in pts)))
        # the next person starts before or after this one is done
        t = pts[-1][0] + rng.uniform(-4, 3) if k % 3 != 2 else pts[-1][0] + 1
        t = max(t, legs[-1].waypoints[0][0] + 2)
    seconds = max(leg.waypoints[-1][0] for leg in legs) + 1
    # one actor never has two legs at once
    fixed_legs: list[Leg] = []
    busy: dict[str, float] = {}
    for leg in legs:
        shift = max(0.0, busy.get(leg.actor, -1.0) + 2 - leg.waypoints[0][0])
        leg = Leg(leg.actor, tuple((a + shift, b, c, d) for a, b, c, d in leg.waypoints))
        busy[leg.actor] = leg.waypoints[-1][0]
        fixed_legs.append(leg)
    seconds = max(seconds, max(leg.waypoints[-1][0] for leg in fixed_legs) + 1)
    return LineScene(Scene(f"random {seed}", round(seconds, 1), tuple(fixed_legs), seed=seed),
                     CameraLayout("cam", (line,), (zone,)))


def _line_x(line: Line, y: float) -> float:
    (x1, y1), (x2, y2) = line.a, line.b
    return x1 if y2 == y1 else x1 + (y - y1) * (x2 - x1) / (y2 - y1)
