"""Who crossed a line, which way and when; who stayed in a zone and how long: from track paths.

A person's position is the bottom centre of their box (their feet), as in Ultralytics' and
supervision's counters, and a track's path is that position at each sampled frame. At one
frame a second a walker moves a good part of the frame between samples, so a path is a
polyline and everything here works on its segments, not on its points:

* **Crossing a line** needs the feet to leave the line's band (``band``, frame fractions, on
  either side of the infinite line) on one side and next leave it on the other side, *and*
  the path between those two points to meet the line's segment. So a person standing on the
  line, walking along it or a box jittering around it crosses nothing (they never leave the
  band on the other side); a person who turns back before the line crosses nothing (they
  leave the band on the side they came from); a person who crosses between two samples is
  counted (the segment between the two positions meets the line); and walking round the end
  of a line crosses nothing (the path meets the infinite line outside the segment). The
  time is the moment the path meets the line, interpolated between the two samples.
  ``in`` is a crossing from the side of the line's ``in_from`` point to the other side.
* **A zone visit** begins when the feet are inside the polygon (even-odd rule: concave
  polygons work) and ends when they are more than the zone's band outside it, or the track
  ends. Entering and leaving times are interpolated where the path meets the polygon's edge,
  so a stay is measured to well within one sample period. Zones are independent: in two
  overlapping zones at once, a person has a visit in each.

Why not supervision's LineZone/PolygonZone: supervision counts on each frame's anchor
against the line with per-tracker state in the counter (no band, so a box jittering on the
line can count in/out pairs; open reports of miscounts, roboflow/supervision#518, #1838),
PolygonZone answers "who is inside now" and not visits, and supervision with its OpenCV
dependency would not fit beside SciPy in track_people's Lambda layers (already 87% of the
250 MB limit). shapely (GEOS, about 10 MB) would give the geometry but none of the counting
rules, which are the hard part. The geometry needed is a few dozen lines, here, tested on its
own (tests/test_lines.py).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from vidsift.core.layout import CameraLayout, Line, Point, Zone, cross

#: (time s, x, y): the feet at one sampled frame, frame fractions.
PathPoint = tuple[float, float, float]


@dataclass(frozen=True)
class Crossing:
    """One person crossing a line, interpolated to the moment the path met it: a row of the
    crossings table."""

    line: str
    direction: str  # "in" | "out"
    time_s: float
    x: float
    y: float


@dataclass(frozen=True)
class ZoneVisit:
    """One stay of a person in a zone (a row of zone_visits), from the first to the last sample
    inside it."""

    zone: str
    entered_s: float
    left_s: float

    @property
    def dwell_s(self) -> float:
        return self.left_s - self.entered_s


def feet_from_path(path: str | Sequence[Sequence[float]]) -> list[PathPoint]:
    """The feet along a track's stored ``path`` (the tracks column: [time s, centre x, centre y,
    box height] per detection, vidsift.core.records.build_track_draft): x, y + height / 2."""
    rows = json.loads(path) if isinstance(path, str) else path
    return [(float(t), float(x), float(y) + float(h) / 2) for t, x, y, h in rows]


# --- geometry ---------------------------------------------------------------------------------


def _segment_hit(p: Point, q: Point, a: Point, b: Point) -> float | None:
    """Where along p->q (0..1) the closed segment p-q meets the closed segment a-b; None if not.
    Collinear overlap gives the first shared point."""
    r = (q[0] - p[0], q[1] - p[1])
    s = (b[0] - a[0], b[1] - a[1])
    denom = r[0] * s[1] - r[1] * s[0]
    qp = (a[0] - p[0], a[1] - p[1])
    eps = 1e-12
    if abs(denom) < eps:
        if abs(qp[0] * r[1] - qp[1] * r[0]) > eps:  # parallel, apart
            return None
        rr = r[0] ** 2 + r[1] ** 2
        if rr < eps:  # p == q: on the segment?
            return 0.0 if abs(cross(a, b, p)) < eps and _within(p, a, b) else None
        t0 = (qp[0] * r[0] + qp[1] * r[1]) / rr
        t1 = t0 + (s[0] * r[0] + s[1] * r[1]) / rr
        lo, hi = min(t0, t1), max(t0, t1)
        if hi < 0 or lo > 1:
            return None
        return max(0.0, lo)
    u = (qp[0] * s[1] - qp[1] * s[0]) / denom
    v = (qp[0] * r[1] - qp[1] * r[0]) / denom
    if -eps <= u <= 1 + eps and -eps <= v <= 1 + eps:
        return min(1.0, max(0.0, u))
    return None


def _within(p: Point, a: Point, b: Point) -> bool:
    return min(a[0], b[0]) - 1e-12 <= p[0] <= max(a[0], b[0]) + 1e-12 and \
        min(a[1], b[1]) - 1e-12 <= p[1] <= max(a[1], b[1]) + 1e-12


def inside(p: Point, polygon: Sequence[Point]) -> bool:
    """Even-odd rule (a ray to the right): right for concave polygons too."""
    x, y = p
    hit = False
    for (x1, y1), (x2, y2) in zip(polygon, [*polygon[1:], polygon[0]], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def _dist_to_segment(p: Point, a: Point, b: Point) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    ll = dx * dx + dy * dy
    u = 0.0 if ll == 0 else max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / ll))
    return math.dist(p, (a[0] + u * dx, a[1] + u * dy))


def distance_outside(p: Point, polygon: Sequence[Point]) -> float:
    """How far p is outside the polygon (0 inside)."""
    if inside(p, polygon):
        return 0.0
    return min(_dist_to_segment(p, a, b) for a, b in zip(polygon, [*polygon[1:], polygon[0]], strict=True))


def _lerp(p: PathPoint, q: PathPoint, u: float) -> PathPoint:
    return (p[0] + (q[0] - p[0]) * u, p[1] + (q[1] - p[1]) * u, p[2] + (q[2] - p[2]) * u)


# --- lines ------------------------------------------------------------------------------------


def _side(line: Line, p: Point) -> float:
    """Signed distance of p from the line's infinite line, positive on in_from's side."""
    length = math.dist(line.a, line.b)
    sign = 1.0 if cross(line.a, line.b, line.in_from) > 0 else -1.0
    return sign * cross(line.a, line.b, p) / length


def line_crossings(line: Line, path: Sequence[PathPoint]) -> list[Crossing]:
    """The crossings of one track's path over one line, in time order (module docstring)."""
    out: list[Crossing] = []
    settled: int | None = None  # +1: beyond the band on in_from's side, -1: on the other
    since = 0  # index of the last point that settled that side
    for i, (_, x, y) in enumerate(path):
        d = _side(line, (x, y))
        if abs(d) <= line.band:
            continue
        side = 1 if d > 0 else -1
        if settled is not None and side != settled:
            for p, q in itertools.pairwise(path[since:i + 1]):
                u = _segment_hit((p[1], p[2]), (q[1], q[2]), line.a, line.b)
                if u is not None:
                    t, hx, hy = _lerp(p, q, u)
                    out.append(Crossing(line.name, "in" if settled == 1 else "out", t, hx, hy))
                    break
        settled, since = side, i
    return out


# --- zones ------------------------------------------------------------------------------------


def _edge_hits(p: PathPoint, q: PathPoint, polygon: Sequence[Point]) -> list[float]:
    hits = []
    for a, b in zip(polygon, [*polygon[1:], polygon[0]], strict=True):
        u = _segment_hit((p[1], p[2]), (q[1], q[2]), a, b)
        if u is not None:
            hits.append(u)
    return hits


def zone_visits(zone: Zone, path: Sequence[PathPoint]) -> list[ZoneVisit]:
    """The stays of one track's path in one zone, in time order (module docstring)."""
    out: list[ZoneVisit] = []
    entered: float | None = None
    last_in = -1  # index of the last point inside during the current visit
    for i, (t, x, y) in enumerate(path):
        if inside((x, y), zone.polygon):
            if entered is None:
                if i == 0:
                    entered = t
                else:  # the last edge crossing on the way in: inside from there on
                    hits = _edge_hits(path[i - 1], path[i], zone.polygon)
                    entered = _lerp(path[i - 1], path[i], max(hits))[0] if hits else t
            last_in = i
        elif entered is not None and distance_outside((x, y), zone.polygon) > zone.band:
            out.append(ZoneVisit(zone.name, entered, _left(zone, path, last_in)))
            entered = None
    if entered is not None:
        out.append(ZoneVisit(zone.name, entered, _left(zone, path, last_in)))
    return out


def _left(zone: Zone, path: Sequence[PathPoint], last_in: int) -> float:
    """When the feet left after the last point inside: the first edge crossing on the way out,
    or the last point's time when the track ends inside (or in the band just outside)."""
    if last_in + 1 >= len(path):
        return path[last_in][0]
    p, q = path[last_in], path[last_in + 1]
    hits = _edge_hits(p, q, zone.polygon)
    return _lerp(p, q, min(hits))[0] if hits else q[0]


# --- a camera ---------------------------------------------------------------------------------


def count_track(camera: CameraLayout, path: Sequence[PathPoint]) -> tuple[list[Crossing], list[ZoneVisit]]:
    """Every line's crossings and every zone's visits of one track, lines and zones in the
    layout's order, each in time order."""
    return ([c for ln in camera.lines for c in line_crossings(ln, path)],
            [v for z in camera.zones for v in zone_visits(z, path)])
