"""A results folder made by hand, in the layout and row format ``vidsift run`` writes, with
frames whose "people" and "faces" are solid blocks exactly where their boxes say: the
report tests can then check both numbers and where the boxes land.

Helpers only (imported by the test_report* modules); no tests here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from vidsift import contract

#: Colours of the blocks drawn into fixture frames: pure, so a screenshot can find them.
PERSON_RGB = (0, 0, 255)
FACE_RGB = (255, 255, 0)
BACKGROUND_RGB = (40, 40, 40)

NASTY_NAME = "<script>alert('x')</script> & <img src=x onerror=alert(1)> \"q\" ünï.mp4"


@dataclass
class Face:
    left: float
    top: float
    width: float
    height: float
    age: tuple[int, int] = (25, 35)
    gender: str = "Female"
    emotion: str = "HAPPY"
    smile: bool = True
    confidence: float = 99.0


@dataclass
class Frame:
    index: int
    time_s: float
    #: (left, top, width, height) ratios of each person.
    people: list[tuple[float, float, float, float]] = field(default_factory=list)
    faces: list[Face] = field(default_factory=list)


@dataclass
class Track:
    """One visit: the person drawn at ``rect`` (left, top, width, height) in each of ``frames``
    (frame indices, in time order)."""

    track_id: str
    frames: list[int]
    rect: tuple[float, float, float, float]
    best: int | None = None
    face_frames: int = 1
    faces: int = 0
    matched_name: str | None = None
    match_similarity: float | None = None
    age: tuple[int, int] | None = None
    gender: str | None = None
    emotion: str | None = None
    gap_frames: int = 0
    #: Firehose copies of the row in the analytics folder (at least once: 2 is a duplicate).
    copies: int = 1


@dataclass
class FixtureVideo:
    file: str
    video_id: str | None
    frames: list[Frame] = field(default_factory=list)
    duplicates_skipped: int | None = 0
    duration_s: float | None = 10.0
    width: int = 640
    height: int = 480
    split_seconds: float = 1.0
    bytes_read: int = 1 << 20
    errors: list[str] = field(default_factory=list)
    write_frames: bool = True
    #: Person visits (tracks table); empty: a video from before the tracker, or one without people.
    tracks: list[Track] = field(default_factory=list)
    #: Extra fields of the video's run.json entry (detect_faces_calls, tracks, face_groups).
    recorded: dict[str, Any] = field(default_factory=dict)

    @property
    def frames_kept(self) -> int:
        """Frames written and sent on: the fixture's frames (duplicates have no rows)."""
        return len(self.frames)

    @property
    def frames_sampled(self) -> int:
        return len(self.frames) + (self.duplicates_skipped or 0)

    @property
    def frames_with_people(self) -> int:
        return sum(bool(f.people) for f in self.frames)

    @property
    def face_count(self) -> int:
        return sum(len(f.faces) for f in self.frames)


def _row(table: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(contract.columns(table))
    row.update(values)
    assert set(row) == set(contract.columns(table)), set(row) ^ set(contract.columns(table))
    return row


def people_row(v: FixtureVideo, f: Frame, n: int) -> dict[str, Any]:
    boxes = [{"left": b[0], "top": b[1], "width": b[2], "height": b[3], "confidence": 0.9} for b in f.people]
    for t in v.tracks:  # as track_people writes them: each box names its track
        if f.index in t.frames:
            boxes[f.people.index(t.rect)]["track_id"] = t.track_id
    return _row("people", record_id=f"p{v.video_id}{f.index}", video_id=v.video_id, source_bucket="raw",
                source_key=f"uploads/{n:04d}/{v.file}", camera_id="cam", frame_index=f.index,
                frame_time_s=f.time_s, frame_key=f"{v.video_id}/{f.index:06d}.jpg",
                captured_at=f"2026-01-01T12:00:{int(f.time_s) % 60:02d}.000Z", person_count=len(f.people),
                max_confidence=0.9 if f.people else None, boxes=json.dumps(boxes, separators=(",", ":")),
                detector="fixture-detector", processed_at="2026-01-01T12:05:00.000Z", dt="2026-01-01")


def face_row(v: FixtureVideo, f: Frame, i: int, face: Face, n: int) -> dict[str, Any]:
    emotions = {"HAPPY": 90.0 if face.emotion == "HAPPY" else 5.0, face.emotion: 90.0}
    return _row("faces", record_id=f"f{v.video_id}{f.index}_{i}", video_id=v.video_id,
                source_key=f"uploads/{n:04d}/{v.file}", camera_id="cam", frame_index=f.index,
                frame_time_s=f.time_s, frame_key=f"{v.video_id}/{f.index:06d}.jpg", captured_at=None, face_index=i,
                confidence=face.confidence, bbox_left=face.left, bbox_top=face.top, bbox_width=face.width,
                bbox_height=face.height, age_low=face.age[0], age_high=face.age[1], gender=face.gender,
                gender_confidence=97.0, top_emotion=face.emotion, emotions=json.dumps(emotions),
                smile=face.smile, eyes_open=True, mouth_open=False, pose_roll=0.0, pose_yaw=0.0, pose_pitch=0.0,
                analyzer="fixture-analyzer", processed_at="2026-01-01T12:05:01.000Z", dt="2026-01-01")


def track_row(v: FixtureVideo, t: Track, n: int) -> dict[str, Any]:
    frames = {f.index: f for f in v.frames}
    assert all(t.rect in frames[i].people for i in t.frames), t
    pts = [(frames[i].time_s, t.rect) for i in t.frames]
    best = t.best if t.best is not None else t.frames[0]
    b = t.rect
    first, last = pts[0][0], pts[-1][0]
    return _row("tracks", record_id=f"t{v.video_id}{t.track_id}", track_id=t.track_id, video_id=v.video_id,
                camera_id="cam", source_key=f"uploads/{n:04d}/{v.file}", first_seen_s=first, last_seen_s=last,
                duration_s=last - first, captured_at_first=f"2026-01-01T12:00:{int(first) % 60:02d}.000Z",
                captured_at_last=f"2026-01-01T12:00:{int(last) % 60:02d}.000Z", frames=len(pts),
                max_box_height=max(p[1][3] for p in pts), best_frame_key=f"{v.video_id}/{best:06d}.jpg",
                best_box=json.dumps({"confidence": 0.9, "height": b[3], "left": b[0], "top": b[1], "width": b[2]}),
                path=json.dumps([[tm, bx[0] + bx[2] / 2, bx[1] + bx[3] / 2, bx[3]] for tm, bx in pts]),
                face_frames=t.face_frames, faces=t.faces, matched_name=t.matched_name,
                match_similarity=t.match_similarity, age_low=t.age[0] if t.age else None,
                age_high=t.age[1] if t.age else None, gender=t.gender, top_emotion=t.emotion,
                gap_frames=t.gap_frames, processed_at="2026-01-01T12:05:02.000Z", dt="2026-01-01")


def frame_jpeg(v: FixtureVideo, f: Frame) -> Image.Image:
    img = Image.new("RGB", (v.width, v.height), BACKGROUND_RGB)
    draw = ImageDraw.Draw(img)
    for left, top, width, height in f.people:
        draw.rectangle([left * v.width, top * v.height, (left + width) * v.width - 1, (top + height) * v.height - 1],
                       fill=PERSON_RGB)
    for face in f.faces:
        draw.rectangle([face.left * v.width, face.top * v.height, (face.left + face.width) * v.width - 1,
                        (face.top + face.height) * v.height - 1], fill=FACE_RGB)
    return img


def stages(split_s: float = 3.0, detect_s: float = 8.0, analyze_s: float = 6.0, *, split_inv: int = 2,
           detect_inv: int = 5, detect_received: int = 44, analyze_inv: int = 3, analyze_received: int = 12,
           memory: dict[str, int] | None = None, track_s: float | None = None,
           track_inv: int = 2) -> dict[str, dict[str, Any]]:
    """run.json's stages. detect_people receives more messages than there are frames (the S3
    test event, retries), as in real runs. ``track_s``: a run with the tracker (track_people's
    handler seconds); None, a run from before it."""
    mem = {s: contract.stage(s)["memory_mb"] for s in contract.STAGES} | (memory or {})
    tracker = {} if track_s is None else {
        "track_people": {"invocations": track_inv, "received": track_inv, "succeeded": track_inv, "failed": 0,
                         "seconds": track_s, "memory_mb": mem["track_people"]}}
    return tracker | {
        "split_frames": {"invocations": split_inv, "received": split_inv, "succeeded": split_inv, "failed": 0,
                         "seconds": split_s, "memory_mb": mem["split_frames"]},
        "detect_people": {"invocations": detect_inv, "received": detect_received, "succeeded": detect_received,
                          "failed": 0, "seconds": detect_s, "memory_mb": mem["detect_people"]},
        "analyze_faces": {"invocations": analyze_inv, "received": analyze_received, "succeeded": analyze_received,
                          "failed": 0, "seconds": analyze_s, "memory_mb": mem["analyze_faces"]},
    }


def write_results(out: Path, videos: list[FixtureVideo], *, run_stages: dict[str, Any] | None = None,
                  run_json: bool = True, run_errors: list[str] | None = None,
                  endpoint: dict[str, Any] | None = None) -> Path:
    """Write ``out`` as ``vidsift run --out out`` would have, for these videos."""
    out.mkdir(parents=True, exist_ok=True)
    for n, v in enumerate(videos):
        if v.video_id is None:
            continue
        summary = {"video_id": v.video_id, "source_bucket": "raw", "source_key": f"uploads/{n:04d}/{v.file}",
                   "camera_id": "cam", "width": v.width, "height": v.height, "codec": "h264",
                   "duration_s": v.duration_s, "frames_decoded": 15 * len(v.frames),
                   "frames_sampled": v.frames_sampled, "sample_fps": 1.0, "keyframes": False,
                   "bytes_read": v.bytes_read, "size": v.bytes_read, "seconds": v.split_seconds}
        if v.duplicates_skipped is not None:  # None: a summary from before duplicate skipping
            summary["duplicates_skipped"] = v.duplicates_skipped
            summary["frames_kept"] = v.frames_kept
        (out / "summaries").mkdir(exist_ok=True)
        (out / "summaries" / f"{v.video_id}.json").write_text(json.dumps(summary, indent=1))
        people = [people_row(v, f, n) for f in v.frames]
        faces = [face_row(v, f, i, face, n) for f in v.frames for i, face in enumerate(f.faces)]
        tracks = [track_row(v, t, n) for t in v.tracks for _ in range(t.copies)]
        for table, rows in (("people", people), ("faces", faces), ("tracks", tracks)):
            if rows:
                path = out / "analytics" / table / "dt=2026-01-01" / f"{v.video_id}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        if v.write_frames:
            for f in v.frames:
                if f.people:
                    path = out / "frames" / v.video_id / f"{f.index:06d}.jpg"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    frame_jpeg(v, f).save(path, "JPEG", quality=95)
    if run_json:
        doc: dict[str, Any] = {
            "settings": {"fps": 1.0, "keyframes": False},
            "stages": run_stages if run_stages is not None else stages(),
            "videos": [{"file": v.file, "key": f"uploads/{n:04d}/{v.file}", "video_id": v.video_id,
                        "ok": not v.errors and v.video_id is not None, "frames_sampled": v.frames_sampled,
                        "frames_with_people": v.frames_with_people, "faces": v.face_count, "errors": v.errors}
                       | v.recorded for n, v in enumerate(videos)],
            "errors": run_errors or [],
        }
        if endpoint is not None:
            doc["endpoint"] = endpoint
        (out / "run.json").write_text(json.dumps(doc, indent=1))
    return out


def two_videos() -> list[FixtureVideo]:
    """A: 40 frames sampled, 10 skipped as duplicates, 30 kept, people in 9, 12 faces, 60 s.
    B: 10 frames sampled and kept, people in 3, no faces, 20 s. What the cost tests compute by hand."""
    a_frames = [Frame(i, float(i * 2), people=[(0.25, 0.2, 0.375, 0.7)] if i < 9 else [],
                      faces=[Face(0.375, 0.25, 0.125, 0.2)] + ([Face(0.55, 0.3, 0.1, 0.15)] if i < 3 else [])
                      if i < 9 else [])
                for i in range(30)]
    b_frames = [Frame(i, float(i * 2), people=[(0.1, 0.1, 0.3, 0.8)] if i in (2, 5, 7) else []) for i in range(10)]
    return [
        FixtureVideo("a.mp4", "aaaa", a_frames, duplicates_skipped=10, duration_s=60.0, split_seconds=2.0,
                     bytes_read=10 << 20),
        FixtureVideo("b.mp4", "bbbb", b_frames, duplicates_skipped=0, duration_s=20.0, split_seconds=1.0,
                     bytes_read=1 << 20),
    ]


def tracked_video() -> FixtureVideo:
    """C, through the tracker: 20 frames at 1 s (20 s), none skipped. Alice (p001) from 2 s to
    12 s, a man (p002) from 8 s to 15 s, and a small figure (p003) at 18 s only, too small for a
    face (no frame analysed). 15 frames with people; DetectFaces on 2 + 1 + 0 chosen frames.
    p002's row was delivered twice."""
    alice, man, small = (0.1, 0.1, 0.3, 0.8), (0.6, 0.2, 0.3, 0.7), (0.4, 0.5, 0.1, 0.2)
    frames = []
    for i in range(20):
        people = ([alice] if 2 <= i <= 12 else []) + ([man] if 8 <= i <= 15 else []) + ([small] if i == 18 else [])
        faces = ([Face(0.15, 0.12, 0.1, 0.12, age=(30, 38))] if i == 5 else
                 [Face(0.65, 0.22, 0.1, 0.12, gender="Male", emotion="CALM", age=(20, 26))] if i == 10 else [])
        frames.append(Frame(i, float(i), people=people, faces=faces))
    tracks = [Track("p001", list(range(2, 13)), alice, best=5, face_frames=2, faces=1, matched_name="alice",
                    match_similarity=97.4, age=(30, 38), gender="Female", emotion="HAPPY"),
              Track("p002", list(range(8, 16)), man, best=10, face_frames=1, faces=1, age=(20, 26), gender="Male",
                    emotion="CALM", copies=2),
              Track("p003", [18], small, face_frames=0)]
    return FixtureVideo("c.mp4", "cccc", frames, duplicates_skipped=0, duration_s=20.0, split_seconds=1.0,
                        tracks=tracks)


# ------------------------------------------------------------------ a tiny DOM for assertions


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.content: list[Node | str] = []

    @property
    def children(self) -> list[Node]:
        return [c for c in self.content if isinstance(c, Node)]

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.content)

    def iter(self) -> Iterator[Node]:
        yield self
        for c in self.children:
            yield from c.iter()

    def find_all(self, tag: str, cls: str | None = None) -> list[Node]:
        return [n for n in self.iter() if n.tag == tag and (cls is None or cls in n.attrs.get("class", "").split())]

    def find(self, tag: str, cls: str | None = None, **attrs: str) -> Node:
        found = [n for n in self.find_all(tag, cls) if all(n.attrs.get(k.replace("_", "-")) == v
                                                          for k, v in attrs.items())]
        assert found, f"no <{tag} class={cls} {attrs}>"
        return found[0]


VOID = {"meta", "br", "img", "input", "link", "hr", "source", "wbr", "area", "base", "col", "embed", "track"}


class DomBuilder(HTMLParser):
    """Enough of an HTML tree builder for these pages (well-formed, as we write them or as a
    browser serialises them); SVG self-closing elements included."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.cur.content.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.cur.content.append(Node(tag, {k: v or "" for k, v in attrs}, self.cur))

    def handle_endtag(self, tag: str) -> None:
        node = self.cur
        while node.parent is not None and node.tag != tag:
            node = node.parent
        if node.parent is not None:
            self.cur = node.parent

    def handle_data(self, data: str) -> None:
        self.cur.content.append(data)


def parse(page: str) -> Node:
    b = DomBuilder()
    b.feed(page)
    return b.root
