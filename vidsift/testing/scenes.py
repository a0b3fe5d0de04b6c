"""Ground-truth clips for the person tracker: people walking across, crossing, standing still,
leaving and coming back, with every person's box known in every frame.

Why generated: a tracker's quality is only measurable against the truth, and footage with a
per-frame annotation of who is where cannot ship in the repo. The people are the bundled
portraits of vidsift.testing.samples (astronaut, camera, grace_hopper), cut out where the pipeline's
own person detector finds them in the photo, pasted as moving figures over a bundled photo
without people (rocket) and encoded as H.264 with sensor noise, 640x480 at 25 fps. 4:3 and not
16:9 because SSDLite squeezes every frame to 300x300: in a 640x360 frame it missed most of
these figures below ~70% of the frame's height (at 640x480 it finds them from ~60%). A figure
is the person's rectangle of the photo: the truth box is the pasted rectangle (clipped to the
frame), which is also where the detector finds a person in the source photo. The truth keeps
people hidden behind nearer ones (as MOT benchmarks do), with their visible share.

Everything is deterministic: the paths are fixed numbers and the noise has a fixed seed.
``ground_truth`` needs no video (the tests use it alone); ``render`` writes the mp4 and the
truth next to it (JSON). ``score`` compares tracks with the truth at the sampled frames:
motmetrics' IDF1, MOTA and ID switches (IoU >= 0.5 matching), visits found against true
visits and, for each true visit, the share of its time one single track covers.

A visit is one continuous stay in view (at least half of the figure's width inside the
frame); someone who leaves and comes back makes two visits. The tracker follows visits (it
does not recognise people), so the identities scored are visits: ``A#2`` is A's second.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vidsift.testing.samples import WITH_PEOPLE, photo

WIDTH, HEIGHT, FPS = 640, 480, 25
BACKGROUND = "rocket"
#: Where the pipeline's SSDLite finds the one person in each bundled portrait (x1, y1, x2, y2
#: as fractions of the photo, confidence > 0.9): the figure cut out of it.
CUTOUTS = {
    "astronaut": (0.012, 0.042, 0.712, 0.940),
    "camera": (0.002, 0.132, 0.589, 1.000),
    "grace_hopper": (0.016, 0.020, 0.939, 0.911),
}
ACTORS = {"A": "astronaut", "B": "camera", "C": "grace_hopper"}
assert set(ACTORS.values()) <= set(WITH_PEOPLE)
#: Least share of the figure's width inside the frame for the person to count as in view.
IN_VIEW = 0.5


@dataclass(frozen=True)
class Leg:
    """One stay of one actor: waypoints (time s, centre x, bottom y, height), x and y as fractions
    of the frame's width and height, height of the frame's height; linear in between. The
    actor exists from the first waypoint's time to the last's (off-frame x is allowed)."""

    actor: str
    waypoints: tuple[tuple[float, float, float, float], ...]

    def at(self, t: float) -> tuple[float, float, float] | None:
        """Where the leg's person is at ``t`` (feet x, feet y, height), interpolated between waypoints;
        None outside the leg's time."""
        pts = self.waypoints
        if t < pts[0][0] or t > pts[-1][0]:
            return None
        for (t0, *a), (t1, *b) in itertools.pairwise(pts):
            if t0 <= t <= t1:
                u = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                return tuple(p + (q - p) * u for p, q in zip(a, b, strict=True))  # type: ignore[return-value]
        return tuple(pts[-1][1:])  # type: ignore[return-value]

    def moving(self, t: float) -> bool:
        """Whether the person is walking at ``t`` (a standing person is drawn without a walking bob)."""
        now, later = self.at(t), self.at(t + 0.04)
        return bool(now and later and abs(later[0] - now[0]) > 1e-6)


@dataclass(frozen=True)
class Scene:
    """A generated clip described by its people's legs (waypoints), so the truth of who is where
    in every frame comes with it."""

    name: str
    seconds: float
    legs: tuple[Leg, ...]
    seed: int = 11
    #: Which figure plays each actor, as (actor, figure key) pairs: a key of CUTOUTS or one
    #: registered with :func:`register_figure` (vidsift.testing.crowd's people). Actors not
    #: listed are played by ACTORS' portraits, as in the four scenes below.
    cast: tuple[tuple[str, str], ...] = ()
    #: The bundled photo without people behind the figures.
    background: str = BACKGROUND

    def figure(self, actor: str) -> str:
        """The figure key that plays ``actor``."""
        return dict(self.cast).get(actor) or ACTORS[actor]


def _walk(actor: str, t0: float, x0: float, t1: float, x1: float, bottom: float, height: float) -> Leg:
    return Leg(actor, ((t0, x0, bottom, height), (t1, x1, bottom, height)))


#: The scenes, 40-60 s each.
SCENES = (
    Scene("walk across both ways", 52, (
        _walk("A", 2, -0.2, 14, 1.2, 0.90, 0.68),    # left to right
        _walk("B", 16, 1.2, 29, -0.2, 0.95, 0.72),   # right to left
        _walk("C", 30, -0.2, 40, 1.2, 0.85, 0.64),   # left to right, faster
        _walk("A", 40, 1.2, 51, -0.2, 0.90, 0.68),   # A again, right to left
    )),
    Scene("two people crossing", 50, (
        _walk("A", 2, -0.2, 16, 1.2, 0.93, 0.68),    # A in front ...
        _walk("B", 2, 1.2, 16, -0.2, 0.84, 0.60),    # ... B behind, they cross at 9 s
        _walk("A", 21, 1.2, 35, -0.2, 0.84, 0.60),   # A behind this time ...
        _walk("C", 21, -0.2, 33, 1.2, 0.93, 0.70),   # ... C in front, crossing at 27.5 s
        _walk("B", 36, -0.2, 48, 1.2, 0.90, 0.66),   # same depth and size: crossing at 42 s
        _walk("C", 36, 1.2, 48, -0.2, 0.91, 0.65),
    )),
    Scene("one standing still", 48, (
        Leg("C", ((0, 0.55, 0.88, 0.64), (48, 0.56, 0.88, 0.64))),  # stands the whole time
        _walk("A", 4, -0.2, 18, 1.2, 0.96, 0.70),    # passes in front of C
        _walk("B", 21, 1.2, 35, -0.2, 0.80, 0.58),   # passes behind C
        _walk("A", 35, 1.2, 47, -0.2, 0.96, 0.70),   # in front again, the other way
    )),
    Scene("enter, leave, come back", 58, (
        Leg("A", ((2, -0.2, 0.92, 0.68), (8, 0.30, 0.92, 0.68), (14, 0.30, 0.92, 0.68), (20, -0.2, 0.92, 0.68))),
        Leg("B", ((6, 1.2, 0.88, 0.64), (12, 0.75, 0.88, 0.64), (18, 0.75, 0.88, 0.64), (24, 1.2, 0.88, 0.64))),
        Leg("A", ((28, 1.2, 0.92, 0.68), (34, 0.70, 0.92, 0.68), (40, 0.70, 0.92, 0.68), (46, 1.2, 0.92, 0.68))),
        Leg("B", ((34, -0.2, 0.86, 0.64), (40, 0.35, 0.86, 0.64), (48, 0.35, 0.86, 0.64), (57, 1.2, 0.86, 0.64))),
    )),
)


def scene(name: str) -> Scene:
    """The scene named ``name``, for a test about one situation."""
    return next(s for s in SCENES if s.name == name)


def slug(s: Scene) -> str:
    """The scene's name as a file name."""
    return "".join(c if c.isalnum() else "_" for c in s.name).strip("_")


@dataclass(frozen=True)
class Person:
    """One person in one frame: actor id, visit id (``A#2``), box (fractions of the frame), how
    far in front they are (larger bottom: nearer), and the figure's unclipped rectangle."""

    actor: str
    visit: str
    box: tuple[float, float, float, float]
    depth: float
    rect: tuple[float, float, float, float]
    #: Share of the box not hidden behind nearer people (1: in full view).
    visible: float = 1.0


@dataclass(frozen=True)
class Visit:
    """One person's time in view, from first to last frame: what a tracker must recover as one
    track."""

    visit: str
    actor: str
    first_s: float
    last_s: float


@dataclass(frozen=True)
class Truth:
    """Who is where in every frame of a rendered scene, and each visit: the ground truth a
    tracker is scored against."""

    scene: Scene
    fps: int
    frames: tuple[tuple[Person, ...], ...]
    visits: tuple[Visit, ...]

    def at(self, time_s: float) -> tuple[Person, ...]:
        """Who is where in the frame shown at ``time_s``."""
        return self.frames[min(len(self.frames) - 1, max(0, math.floor(time_s * self.fps + 1e-6)))]

    def as_dict(self) -> dict:
        """The truth as JSON-ready data, written beside a rendered clip so a tracker can be scored
        outside Python too."""
        return {
            "scene": self.scene.name, "fps": self.fps, "width": WIDTH, "height": HEIGHT,
            "visits": [{"visit": v.visit, "id": v.actor, "first_s": v.first_s, "last_s": v.last_s}
                       for v in self.visits],
            "frames": [{"frame": i, "time_s": round(i / self.fps, 4),
                        "people": [{"id": p.actor, "visit": p.visit, "box": [round(x, 5) for x in p.box],
                                    "visible": p.visible}
                                   for p in people]}
                       for i, people in enumerate(self.frames)],
        }


#: Figures other than the bundled portraits (key -> RGB image of the person), registered by
#: the code that builds scenes from them (vidsift.testing.crowd).
_EXTRA_FIGURES: dict[str, np.ndarray] = {}


def register_figure(key: str, image: np.ndarray) -> None:
    """Make ``image`` (RGB uint8, the person's rectangle) available to scenes' casts as ``key``."""
    _EXTRA_FIGURES[key] = np.ascontiguousarray(image[..., :3])
    _ASPECTS.pop(key, None)


def figure_image(key: str) -> np.ndarray:
    """The RGB image of a figure: a bundled portrait cut at CUTOUTS, or a registered one."""
    if key in _EXTRA_FIGURES:
        return _EXTRA_FIGURES[key]
    img = photo(key)
    h, w = img.shape[:2]
    x1, y1, x2, y2 = CUTOUTS[key]
    return img[round(y1 * h): round(y2 * h), round(x1 * w): round(x2 * w)]


def _aspect(name: str) -> float:
    """Width over height of the figure, in pixels of the photo."""
    if name in _EXTRA_FIGURES:
        h, w = _EXTRA_FIGURES[name].shape[:2]
        return w / h
    x1, y1, x2, y2 = CUTOUTS[name]
    h, w = photo(name).shape[:2]
    return (x2 - x1) * w / ((y2 - y1) * h)


_ASPECTS: dict[str, float] = {}


def _rect(leg: Leg, t: float, name: str | None = None) -> tuple[float, float, float, float] | None:
    """The figure's rectangle (left, top, width, height; fractions, unclipped), with a walker's bob.
    ``name``: the figure playing the leg's actor (default: ACTORS')."""
    pos = leg.at(t)
    if pos is None:
        return None
    name = name or ACTORS[leg.actor]
    if name not in _ASPECTS:
        _ASPECTS[name] = _aspect(name)
    cx, bottom, h = pos
    if leg.moving(t):
        bottom -= 0.006 * abs(math.sin(math.pi * 1.8 * t))
    w = h * HEIGHT * _ASPECTS[name] / WIDTH
    return (cx - w / 2, bottom - h, w, h)


def _clip(rect: tuple[float, float, float, float]) -> tuple[float, float, float, float] | None:
    left, top, w, h = rect
    x1, y1 = max(0.0, left), max(0.0, top)
    x2, y2 = min(1.0, left + w), min(1.0, top + h)
    if (x2 - x1) < IN_VIEW * w or y2 <= y1:
        return None
    return (x1, y1, x2 - x1, y2 - y1)


def ground_truth(s: Scene, fps: int = FPS) -> Truth:
    """Every frame's people, and the visits (continuous stays in view), without any video."""
    n = round(s.seconds * fps)
    raw: list[list[tuple[int, Leg, tuple, tuple]]] = []
    for i in range(n):
        t = i / fps
        row = []
        for li, leg in enumerate(s.legs):
            rect = _rect(leg, t, s.figure(leg.actor))
            box = _clip(rect) if rect else None
            if box:
                row.append((li, leg, box, rect))
        raw.append(row)
    # Visits: per actor, runs of consecutive frames in view (any leg of theirs).
    counts: dict[str, int] = {}
    current: dict[str, str] = {}
    spans: dict[str, list] = {}
    frames = []
    for i, row in enumerate(raw):
        here = {leg.actor for _, leg, _, _ in row}
        for actor in list(current):
            if actor not in here:
                del current[actor]
        people = []
        for _, leg, box, rect in sorted(row, key=lambda r: r[3][1] + r[3][3]):
            if leg.actor not in current:
                counts[leg.actor] = counts.get(leg.actor, 0) + 1
                current[leg.actor] = f"{leg.actor}#{counts[leg.actor]}"
                spans[current[leg.actor]] = [leg.actor, i, i]
            vid = current[leg.actor]
            spans[vid][2] = i
            people.append(Person(leg.actor, vid, box, rect[1] + rect[3], rect))
        frames.append(tuple(_with_visibility(people)))
    visits = tuple(Visit(v, a, round(f / fps, 4), round(last / fps, 4))
                   for v, (a, f, last) in sorted(spans.items(), key=lambda kv: (kv[1][1], kv[0])))
    return Truth(s, fps, tuple(frames), visits)


def _with_visibility(people: list[Person]) -> list[Person]:
    """Each person's visible share: a coarse raster of their box minus the nearer people's."""
    out = []
    for k, p in enumerate(people):  # sorted far to near
        left, top, w, h = p.box
        xs = left + w * (np.arange(24) + 0.5) / 24
        ys = top + h * (np.arange(24) + 0.5) / 24
        gx, gy = np.meshgrid(xs, ys)
        hidden = np.zeros_like(gx, dtype=bool)
        for q in people[k + 1:]:
            ql, qt, qw, qh = q.box
            hidden |= (gx >= ql) & (gx < ql + qw) & (gy >= qt) & (gy < qt + qh)
        out.append(Person(p.actor, p.visit, p.box, p.depth, p.rect, round(1.0 - float(hidden.mean()), 3)))
    return out


def frame_people(truth: Truth, times: Sequence[tuple[int, float]], *, jitter: float = 0.0, drop: float = 0.0,
                 min_visible: float = 0.0, seed: int = 0) -> list:
    """The truth's boxes at sampled (frame index, time) as the tracker's input (FramePeople), as a
    detector might give them: each edge moved by a normal ``jitter`` (fraction of the box's size),
    a share ``drop`` of boxes missed at random and people less than ``min_visible`` in view
    (hidden behind nearer ones) missed. Deterministic for a seed."""
    from vidsift.core.detection import Box
    from vidsift.core.tracking import FramePeople

    rng = np.random.default_rng(seed)
    out = []
    for index, t in times:
        boxes = []
        for p in truth.at(t):
            noise, missed = rng.normal(0.0, jitter, 4), rng.random() < drop
            if missed or p.visible < min_visible:
                continue
            left, top, w, h = p.box
            x1, y1 = left + noise[0] * w, top + noise[1] * h
            x2, y2 = left + w + noise[2] * w, top + h + noise[3] * h
            x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(1.0, x2), min(1.0, y2)
            boxes.append(Box(*(round(float(v), 4) for v in (x1, y1, x2 - x1, y2 - y1)), confidence=1.0))
        out.append(FramePeople(index, t, tuple(boxes)))
    return out


def _figures(s: Scene | None = None) -> dict[str, np.ndarray]:
    """Each actor's figure image, keyed by the figure (ACTORS' portraits without a scene)."""
    keys = {s.figure(leg.actor) for leg in s.legs} if s else set(ACTORS.values())
    return {key: figure_image(key) for key in keys}


def _background(name: str = BACKGROUND) -> np.ndarray:
    import cv2

    img = photo(name)
    h, w = img.shape[:2]
    # Crop to the frame's aspect (centred), then resize.
    ch = min(h, round(w * HEIGHT / WIDTH))
    top = (h - ch) // 2
    return cv2.resize(img[top: top + ch], (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)


def render(s: Scene, path: str | Path, fps: int = FPS, crf: int = 23) -> Truth:
    """Write the scene as an H.264 MP4 (``path``) and its truth as JSON (``path`` + ``.json``)."""
    import av
    import cv2

    path = Path(path)
    truth = ground_truth(s, fps)
    figures = _figures(s)
    base = _background(s.background).astype(np.int16)
    rng = np.random.default_rng(s.seed)
    noise = [rng.integers(-5, 6, size=base.shape, dtype=np.int16) for _ in range(5)]
    sized: dict[tuple[str, int, int], np.ndarray] = {}  # a figure keeps its size for a whole leg
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.codec_context.gop_size = 2 * fps
        stream.options = {"crf": str(crf), "preset": "veryfast", "bf": "0"}
        for i, people in enumerate(truth.frames):
            img = base.copy()
            for p in people:  # far to near: the nearer person is drawn over the farther
                left, top, w, h = p.rect
                pw, ph = max(1, round(w * WIDTH)), max(1, round(h * HEIGHT))
                px, py = round(left * WIDTH), round(top * HEIGHT)
                key = (s.figure(p.actor), pw, ph)
                if key not in sized:
                    sized[key] = cv2.resize(figures[key[0]], (pw, ph), interpolation=cv2.INTER_AREA)
                fig = sized[key]
                x1, y1 = max(0, px), max(0, py)
                x2, y2 = min(WIDTH, px + pw), min(HEIGHT, py + ph)
                if x2 > x1 and y2 > y1:
                    img[y1:y2, x1:x2] = fig[y1 - py: y2 - py, x1 - px: x2 - px]
            img += noise[i % len(noise)]
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    Path(f"{path}.json").write_text(json.dumps(truth.as_dict(), separators=(",", ":")))
    return truth


# --------------------------------------------------------------------------- scoring


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two (left, top, width, height) boxes."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Score:
    """How well a tracker did on a scene (IDF1, MOTA, switches, fragments, merges, coverage), in
    the standard multi-object tracking terms so numbers compare with published trackers."""

    idf1: float
    mota: float
    switches: int
    visits_found: int
    visits_true: int
    #: Per true visit (that was in view at a sampled frame): the share of its sampled frames
    #: within the span of the one track that matched it most.
    coverage: dict[str, float]
    fragmentations: int = 0
    #: Tracks holding boxes of two or more true visits (at least two boxes of each).
    merged_tracks: int = 0
    #: Of the tracks' boxes matched to a true person, the share carrying their own visit's track
    #: under the best one-to-one assignment of tracks to visits (1: every visit is one track
    #: and every track one visit).
    purity: float = 1.0
    #: Boxes matched to a true person (purity's denominator).
    matched_boxes: int = 0

    @property
    def visit_error(self) -> int:
        """Tracks found minus true visits (a track is a visit in the records)."""
        return self.visits_found - self.visits_true

    @property
    def min_coverage(self) -> float:
        """The worst-covered visit's share: one person lost for most of a visit shows here, not in the mean."""
        return min(self.coverage.values(), default=1.0)

    @property
    def mean_coverage(self) -> float:
        """The visits' mean coverage (1.0 with no visit to cover)."""
        return sum(self.coverage.values()) / len(self.coverage) if self.coverage else 1.0


def score(truth: Truth, times: Sequence[float], tracks: Sequence, min_iou: float = 0.5,
          min_visible: float = 0.0) -> Score:
    """Compare ``tracks`` (vidsift.core.tracking.Track) with the truth at the sampled ``times``.

    People less than ``min_visible`` in view (hidden behind nearer ones) are left out, as an
    ignore region of a MOT benchmark: neither missed when not found nor wrong when a track's
    box is theirs (no box found for them or matched to them counts either way).

    The IoU distances are computed here: motmetrics 1.4's iou_matrix calls np.asfarray, which
    NumPy 2 removed. motmetrics does the matching (MOTAccumulator) and the metrics."""
    import motmetrics as mm

    hyp_at: dict[float, list[tuple[str, tuple]]] = {}
    for tr in tracks:
        for p in tr.points:
            hyp_at.setdefault(round(p.time_s, 4), []).append(
                (tr.key, (p.box.left, p.box.top, p.box.width, p.box.height)))
    acc = mm.MOTAccumulator(auto_id=True)
    matched: dict[str, dict[int, list[float]]] = {}
    gt_ids: dict[str, int] = {}
    hyp_ids: dict[str, int] = {}
    times = list(times)
    frames_of: dict[str, list[float]] = {}
    for t in times:
        gt = [g for g in truth.at(t) if g.visible >= min_visible]
        hidden = [g for g in truth.at(t) if g.visible < min_visible]
        hyp = [(k, hb) for k, hb in hyp_at.get(round(t, 4), [])
               if not any(iou(g.box, hb) >= min_iou for g in hidden) or any(iou(g.box, hb) >= min_iou for g in gt)]
        dist = np.full((len(gt), len(hyp)), np.nan)
        for i, g in enumerate(gt):
            frames_of.setdefault(g.visit, []).append(t)
            for j, (_, hb) in enumerate(hyp):
                v = iou(g.box, hb)
                if v >= min_iou:
                    dist[i, j] = 1.0 - v
        # motmetrics 1.4 stores ids as floats: numbers stand for the visit and track names.
        acc.update([gt_ids.setdefault(g.visit, len(gt_ids) + 1) for g in gt],
                   [hyp_ids.setdefault(k, len(hyp_ids) + 1) for k, _ in hyp], dist)
    visit_of = {n: v for v, n in gt_ids.items()}
    events = acc.mot_events
    for (frame_id, _), ev in events[events.Type.isin(["MATCH", "SWITCH"])].iterrows():
        matched.setdefault(visit_of[int(ev.OId)], {}).setdefault(int(ev.HId), []).append(times[frame_id])
    mh = mm.metrics.create()
    summary = mh.compute(acc, metrics=["idf1", "mota", "num_switches", "num_fragmentations"], name="scene")
    coverage = {}
    for visit, ts in frames_of.items():
        by_track = matched.get(visit, {})
        if not by_track:
            coverage[visit] = 0.0
            continue
        best = max(by_track.values(), key=len)
        coverage[visit] = sum(min(best) <= t <= max(best) for t in ts) / len(ts)
    row = summary.loc["scene"]
    merged, purity, n_matched = _identity(matched)
    return Score(idf1=float(row.idf1), mota=float(row.mota), switches=int(row.num_switches),
                 visits_found=len(tracks), visits_true=len(frames_of), coverage=coverage,
                 fragmentations=int(row.num_fragmentations), merged_tracks=merged, purity=purity,
                 matched_boxes=n_matched)


def _identity(matched: dict[str, dict[int, list[float]]]) -> tuple[int, float, int]:
    """Merged tracks, identity purity and matched boxes from each visit's matched boxes per track."""
    from scipy.optimize import linear_sum_assignment

    visits = sorted(matched)
    tracks = sorted({h for by in matched.values() for h in by})
    if not visits or not tracks:
        return 0, 1.0, 0
    counts = np.array([[len(matched[v].get(h, ())) for h in tracks] for v in visits])
    merged = int(((counts >= 2).sum(axis=0) >= 2).sum())
    rows, cols = linear_sum_assignment(-counts)
    total = int(counts.sum())
    return merged, float(counts[rows, cols].sum() / total) if total else 1.0, total
