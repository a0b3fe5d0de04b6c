"""The camera layout file: each camera's counting lines and zones, checked when it is read.

One file per deployment (YAML for people, stored as JSON for the functions)::

    cameras:
      door:
        lines:
          - name: entrance
            points: [[0.5, 0.0], [0.5, 1.0]]   # frame fractions, x right, y down
            in_from: [0.1, 0.5]                # a point on the side people come in from
        zones:
          - name: counter
            polygon: [[0.6, 0.4], [0.9, 0.4], [0.9, 1.0], [0.6, 1.0]]

Why everything is refused at once, with the camera and the line or zone named: a layout is
read before a deploy (vidsift.deploy.checks), by ``vidsift run --cameras`` and by
``vidsift cameras put``; a mistake found later would silently count nothing (a zone that
crosses itself has no clear inside, a zero-length line no sides), so the whole file is
refused, naming every problem, before anything counts with it.

Plain Python, no AWS: PyYAML is imported only to read YAML text (the functions read JSON).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

Point = tuple[float, float]

#: Half-width of a line's band (frame fractions): a person's feet must leave it on the other
#: side for a crossing to count, so standing on the line or a box jittering around it counts
#: nothing. A zone's visit ends only when the feet are this far outside it.
DEFAULT_BAND = 0.03

_TOP_KEYS = {"cameras"}
_CAMERA_KEYS = {"lines", "zones"}
_LINE_KEYS = {"name", "points", "in_from", "band"}
_ZONE_KEYS = {"name", "polygon", "band"}


class LayoutError(ValueError):
    """The layout file is not valid; the message lists every problem found."""


@dataclass(frozen=True)
class Line:
    """A counting line on a camera's view; ``in_from`` says which crossing direction is "in",
    since a line alone has no inside."""

    name: str
    a: Point
    b: Point
    #: A point on the side people come from when they come in.
    in_from: Point
    band: float = DEFAULT_BAND


@dataclass(frozen=True)
class Zone:
    """An area of a camera's view where stays are counted (entered, left, dwell time)."""

    name: str
    polygon: tuple[Point, ...]
    band: float = DEFAULT_BAND


@dataclass(frozen=True)
class CameraLayout:
    """One camera's lines and zones: layouts are per camera because a line only means something
    in the view it was drawn on."""

    camera_id: str
    lines: tuple[Line, ...] = ()
    zones: tuple[Zone, ...] = ()


@dataclass(frozen=True)
class Layout:
    """Every camera's layout, as the cameras file says it: checked before a deploy and stored for
    the functions, so a changed zone needs no redeploy."""

    cameras: dict[str, CameraLayout]

    def camera(self, camera_id: str | None) -> CameraLayout | None:
        """The camera's layout; None for a camera the file does not name (it counts nothing)."""
        return self.cameras.get(camera_id or "")

    def as_doc(self) -> dict[str, Any]:
        """The layout as the file says it (the JSON stored for the functions)."""
        return {"cameras": {cid: {
            "lines": [{"name": ln.name, "points": [list(ln.a), list(ln.b)], "in_from": list(ln.in_from),
                       "band": ln.band} for ln in cam.lines],
            "zones": [{"name": z.name, "polygon": [list(p) for p in z.polygon], "band": z.band} for z in cam.zones],
        } for cid, cam in sorted(self.cameras.items())}}

    def to_json(self) -> str:
        return json.dumps(self.as_doc(), separators=(",", ":"), sort_keys=True)


# --- geometry the checks need (vidsift.core.lines has the counting) --------------------------


def cross(o: Point, a: Point, b: Point) -> float:
    """z of (a - o) x (b - o): > 0 when b is left of o->a in x-right, y-up terms."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def segments_intersect(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """Closed segments p1p2 and q1q2 share a point (touching counts)."""
    d1, d2 = cross(q1, q2, p1), cross(q1, q2, p2)
    d3, d4 = cross(p1, p2, q1), cross(p1, p2, q2)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True

    def on(o: Point, a: Point, p: Point, d: float) -> bool:
        return d == 0 and min(o[0], a[0]) <= p[0] <= max(o[0], a[0]) and min(o[1], a[1]) <= p[1] <= max(o[1], a[1])

    return on(q1, q2, p1, d1) or on(q1, q2, p2, d2) or on(p1, p2, q1, d3) or on(p1, p2, q2, d4)


def self_crossing(polygon: tuple[Point, ...]) -> tuple[int, int] | None:
    """The first pair of edges (by index) that meet other than at their shared corner."""
    n = len(polygon)
    edges = [(polygon[i], polygon[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):  # neighbours share a corner
                continue
            if segments_intersect(*edges[i], *edges[j]):
                return i, j
    return None


def _area(polygon: tuple[Point, ...]) -> float:
    # The shoelace formula over each edge (the next point wraps around). No zip(strict=): 3.10+,
    # and this module is in vidsift/deploy/checks.py's import closure (Python 3.9+).
    n = len(polygon)
    return abs(sum(polygon[i][0] * polygon[(i + 1) % n][1] - polygon[(i + 1) % n][0] * polygon[i][1]
                   for i in range(n))) / 2


# --- reading ------------------------------------------------------------------------------


def _point(value: Any) -> Point | None:
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
        return (float(value[0]), float(value[1]))
    return None


def _points(value: Any, where: str, what: str, problems: list[str]) -> list[Point] | None:
    """A list of [x, y] pairs, each within [0, 1]."""
    if not isinstance(value, (list, tuple)):
        problems.append(f"{where}: {what} must be a list of [x, y] points, got {value!r}")
        return None
    out = []
    for k, raw in enumerate(value):
        p = _point(raw)
        if p is None:
            problems.append(f"{where}: {what} point {k + 1} is not an [x, y] pair of numbers: {raw!r}")
            return None
        if not (0.0 <= p[0] <= 1.0 and 0.0 <= p[1] <= 1.0):
            problems.append(f"{where}: {what} point {k + 1} {list(p)} is outside the frame "
                            "(x and y are fractions of the frame, 0 to 1)")
            return None
        out.append(p)
    return out


def _band(item: dict[str, Any], where: str, problems: list[str]) -> float:
    band = item.get("band", DEFAULT_BAND)
    if isinstance(band, bool) or not isinstance(band, (int, float)) or not 0.0 <= band < 0.5:
        problems.append(f"{where}: band must be a number from 0 to 0.5 (a fraction of the frame), got {band!r}")
        return DEFAULT_BAND
    return float(band)


def _name(item: dict[str, Any], where: str, problems: list[str]) -> str | None:
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{where}: needs a name (text)")
        return None
    return name


def _unknown(item: dict[str, Any], allowed: set[str], where: str, problems: list[str]) -> None:
    extra = sorted(str(k) for k in item if k not in allowed)
    if extra:
        problems.append(f"{where}: unknown key{'s' if len(extra) > 1 else ''} {', '.join(extra)} "
                        f"(allowed: {', '.join(sorted(allowed))})")


def _line(raw: Any, cam: str, k: int, problems: list[str]) -> Line | None:
    where = f"camera {cam!r}, line {k + 1}"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping with name, points and in_from, got {raw!r}")
        return None
    name = _name(raw, where, problems)
    if name:
        where = f"camera {cam!r}, line {name!r}"
    _unknown(raw, _LINE_KEYS, where, problems)
    before = len(problems)
    pts = _points(raw.get("points"), where, "points", problems)
    if pts is not None and len(pts) != 2:
        problems.append(f"{where}: points must be exactly two [x, y] points (the line's ends), got {len(pts)}")
        pts = None
    if "in_from" not in raw:
        problems.append(f"{where}: needs in_from, a point on the side people come from when they come in")
        src = None
    else:
        src = _points([raw["in_from"]], where, "in_from", problems)
    band = _band(raw, where, problems)
    if pts and math.dist(pts[0], pts[1]) < 1e-6:
        problems.append(f"{where}: the line has zero length (both points are {list(pts[0])})")
        return None
    if pts and src:
        length = math.dist(pts[0], pts[1])
        if abs(cross(pts[0], pts[1], src[0])) / length <= band:
            problems.append(f"{where}: in_from {list(src[0])} lies on the line (within its band of {band}): "
                            "it must be a point clearly on one side")
    if len(problems) > before or not (name and pts and src):
        return None
    return Line(name, pts[0], pts[1], src[0], band)


def _zone(raw: Any, cam: str, k: int, problems: list[str]) -> Zone | None:
    where = f"camera {cam!r}, zone {k + 1}"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping with name and polygon, got {raw!r}")
        return None
    name = _name(raw, where, problems)
    if name:
        where = f"camera {cam!r}, zone {name!r}"
    _unknown(raw, _ZONE_KEYS, where, problems)
    before = len(problems)
    pts = _points(raw.get("polygon"), where, "polygon", problems)
    band = _band(raw, where, problems)
    if pts is not None:
        if len(pts) > 3 and pts[0] == pts[-1]:  # a closed ring written out: the same polygon
            pts = pts[:-1]
        if len(pts) < 3:
            problems.append(f"{where}: a polygon needs at least 3 points, got {len(pts)}")
        elif len(set(pts)) < len(pts):
            problems.append(f"{where}: the polygon repeats a point")
        elif (hit := self_crossing(tuple(pts))) is not None:
            i, j = hit
            problems.append(f"{where}: the polygon crosses itself (edge {i + 1}-{i + 2} meets edge "
                            f"{j + 1}-{(j + 1) % len(pts) + 1}); list its points in order around it")
        elif _area(tuple(pts)) < 1e-6:
            problems.append(f"{where}: the polygon has no area (its points are on one line)")
    if len(problems) > before or not (name and pts):
        return None
    return Zone(name, tuple(pts), band)


def _duplicates(names: list[str], cam: str, kind: str, problems: list[str]) -> None:
    seen = set()
    for n in names:
        if n in seen:
            problems.append(f"camera {cam!r}: two {kind}s are named {n!r} (names must differ)")
        seen.add(n)


def parse(doc: Any, source: str = "layout") -> Layout:
    """A layout from its parsed document (YAML or JSON), or LayoutError naming every problem."""
    problems: list[str] = []
    if doc is None:
        doc = {"cameras": {}}
    if not isinstance(doc, dict):
        raise LayoutError(f"{source}: expected a mapping with 'cameras', got {type(doc).__name__}")
    _unknown(doc, _TOP_KEYS, "the file", problems)
    cams = doc.get("cameras") or {}
    if not isinstance(cams, dict):
        raise LayoutError(f"{source}: 'cameras' must map camera ids to their lines and zones")
    cameras = {}
    for cam, spec in cams.items():
        cam = str(cam)
        spec = spec or {}
        if not isinstance(spec, dict):
            problems.append(f"camera {cam!r}: must be a mapping with lines and/or zones, got {spec!r}")
            continue
        _unknown(spec, _CAMERA_KEYS, f"camera {cam!r}", problems)
        raw_lines, raw_zones = spec.get("lines") or [], spec.get("zones") or []
        for what, raw in (("lines", raw_lines), ("zones", raw_zones)):
            if not isinstance(raw, list):
                problems.append(f"camera {cam!r}: {what} must be a list, got {raw!r}")
        lines = [ln for k, r in enumerate(raw_lines if isinstance(raw_lines, list) else [])
                 if (ln := _line(r, cam, k, problems))]
        zones = [z for k, r in enumerate(raw_zones if isinstance(raw_zones, list) else [])
                 if (z := _zone(r, cam, k, problems))]
        _duplicates([r.get("name") for r in raw_lines if isinstance(r, dict) and isinstance(r.get("name"), str)]
                    if isinstance(raw_lines, list) else [], cam, "line", problems)
        _duplicates([r.get("name") for r in raw_zones if isinstance(r, dict) and isinstance(r.get("name"), str)]
                    if isinstance(raw_zones, list) else [], cam, "zone", problems)
        cameras[cam] = CameraLayout(cam, tuple(lines), tuple(zones))
    if problems:
        raise LayoutError(f"{source}: {len(problems)} problem{'s' if len(problems) > 1 else ''}:\n  "
                          + "\n  ".join(problems))
    return Layout(cameras)


def _yaml_loader() -> Any:
    """PyYAML's safe loader, refusing a key written twice (YAML would keep the last silently:
    a camera written twice would lose its first lines without a word)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"{key!r} is written twice",
                                                        key_node.start_mark)
            seen.add(key)
        return loader.construct_mapping(node, deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def loads(text: str, source: str = "layout") -> Layout:
    """A layout from YAML (or JSON, which is YAML) text."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            return parse(json.loads(text), source)
        except json.JSONDecodeError as exc:
            raise LayoutError(f"{source}: not valid JSON: {exc}") from exc
    import yaml

    try:
        doc = yaml.load(text, Loader=_yaml_loader())  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise LayoutError(f"{source}: not valid YAML: {exc}") from exc
    return parse(doc, source)
