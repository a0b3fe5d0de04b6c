"""What a report is made of, read back from a results folder.

The report must be reproducible from what ``vidsift run`` left on disk alone (``vidsift
report --out DIR`` is run long after the stack is gone), so everything comes from the
folder: the tables through DuckDB (the same views ``vidsift query`` uses), the per-video
summaries split_frames wrote, the frames with people, and ``run.json`` when there is one
(``vidsift up`` exports no run.json: the report then has no stage times).

Tracks (one row per person visit, written since track_people) are optional: a results
folder from before the tracker has none, and every ``Video`` property that depends on
them says so (None, or the pre-tracker rule) rather than pretending zero.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from vidsift.local.warehouse import connect


@dataclass
class Video:
    """One input video: its outcome, its summary and its rows (sorted by frame)."""

    file: str
    key: str | None = None
    video_id: str | None = None
    ok: bool = True
    errors: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    people: list[dict[str, Any]] = field(default_factory=list)
    faces: list[dict[str, Any]] = field(default_factory=list)
    #: One row per person visit (tracks table), by first_seen_s; one copy per record_id.
    tracks: list[dict[str, Any]] = field(default_factory=list)
    #: frames_sampled as run.json recorded it, for a video whose summary is missing.
    recorded_frames_sampled: int = 0
    #: The video's entry in run.json ({} without one): detect_faces_calls, tracks, face_groups...
    recorded: dict[str, Any] = field(default_factory=dict)
    #: True when the run had the tracker (run.json's stages name track_people) even if this
    #: video has no track: a video without people then made no DetectFaces call either.
    run_tracked: bool = False

    @property
    def frames_sampled(self) -> int:
        """Frames the sampling rule chose (fps or keyframes), before duplicate skipping."""
        return int(self.summary.get("frames_sampled", self.recorded_frames_sampled) or 0)

    @property
    def duplicates_skipped(self) -> int | None:
        """Sampled frames split_frames did not send on as near-duplicates of the previous one;
        None when the summary does not record it (split_frames without duplicate skipping)."""
        value = self.summary.get("duplicates_skipped")
        return None if value is None else int(value)

    @property
    def frames_kept(self) -> int:
        """Frames split_frames wrote to the frames bucket: what detect_people was sent."""
        if self.summary.get("frames_kept") is not None:
            return int(self.summary["frames_kept"])
        return max(0, self.frames_sampled - (self.duplicates_skipped or 0))

    @property
    def segments(self) -> int:
        """Parallel split_frames segments the video was cut into (1 for a short video)."""
        return max(1, int(self.summary.get("segments") or 1))

    @property
    def frames_with_people(self) -> int:
        """Sampled frames where the detector found at least one person."""
        return len({r["frame_index"] for r in self.people if (r.get("person_count") or 0) > 0})

    @property
    def face_count(self) -> int:
        """Faces found in the video (faces rows)."""
        return len(self.faces)

    @property
    def duration_s(self) -> float | None:
        """The video's length from its summary; None when split_frames wrote no summary."""
        value = self.summary.get("duration_s")
        return None if value is None else float(value)

    @property
    def tracked(self) -> bool:
        """Whether the video went through track_people (DetectFaces on each track's chosen
        frames), rather than the pre-tracker pipeline (DetectFaces on every frame with people)."""
        if self.tracks:
            return True
        if not self.video_id or not (self.summary or self.people):
            return False  # never split into frames (a failed input): nothing was tracked
        if self.run_tracked or "tracks" in self.recorded or "detect_faces_calls" in self.recorded:
            return True
        return any("track_id" in b for r in self.people for b in _json_list(r.get("boxes")))

    @property
    def unique_people(self) -> int | None:
        """People seen (tracks: one per visit), None when the video was not tracked."""
        if self.tracks:
            return len(self.tracks)
        recorded = self.recorded.get("tracks")
        if isinstance(recorded, int | float) and not isinstance(recorded, bool):
            return int(recorded)
        if isinstance(recorded, list):
            return len(recorded)
        return 0 if self.tracked else None

    @property
    def detect_faces_calls(self) -> int:
        """DetectFaces calls the video made: run.json's count when it has one, else the sum of
        the tracks' face_frames (a frame two tracks of one group share is called once, so
        this is an upper bound), else, before the tracker, one per frame with people."""
        if self.recorded.get("detect_faces_calls") is not None:
            return int(self.recorded["detect_faces_calls"])
        if self.tracked:
            return sum(int(t.get("face_frames") or 0) for t in self.tracks)
        return self.frames_with_people

    @property
    def face_groups(self) -> int:
        """Messages (and work documents) track_people sent analyze_faces: run.json's count,
        else one per track with frames to analyse (an upper bound: tracks are grouped)."""
        if self.recorded.get("face_groups") is not None:
            return int(self.recorded["face_groups"])
        return sum(1 for t in self.tracks if (t.get("face_frames") or 0) > 0)

    def faces_by_frame(self) -> dict[int, list[dict[str, Any]]]:
        """The faces rows grouped by frame, to draw each frame's faces with its thumbnail."""
        out: dict[int, list[dict[str, Any]]] = {}
        for row in self.faces:
            out.setdefault(int(row["frame_index"]), []).append(row)
        return out


@dataclass
class RunData:
    """Everything a report is made of, read once from a results folder: the report and the cost
    estimate both need it, and the folder is all there is once the stack has gone."""

    out: Path
    run: dict[str, Any] | None
    videos: list[Video]
    #: Errors run.json could not attribute to a video.
    errors: list[str] = field(default_factory=list)
    #: Lines and zones (vidsift.report.lines): the layout counted with, and its rows.
    layout: Any = None
    crossings: list[dict[str, Any]] = field(default_factory=list)
    zone_visits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def settings(self) -> dict[str, Any]:
        """The run's settings from run.json ({} without one), for the report's "how it ran" line."""
        return dict((self.run or {}).get("settings") or {})

    @property
    def stages(self) -> dict[str, dict[str, Any]] | None:
        """Each stage's statistics from run.json; None without one (``vidsift up``), so no stage times are shown."""
        return (self.run or {}).get("stages") or None

    @property
    def tracked(self) -> bool:
        """The run had the person tracker (any video tracked)."""
        return any(v.tracked for v in self.videos)


def _json_list(text: Any) -> list[Any]:
    try:
        value = json.loads(text or "[]")
    except (TypeError, ValueError):
        return []
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


_ORDER = {"people": "video_id, frame_index", "faces": "video_id, frame_index",
          "tracks": "video_id, first_seen_s, track_id, processed_at",
          "crossings": "video_id, track_id, time_s, record_id",
          "zone_visits": "video_id, track_id, entered_s, record_id"}


def _rows(out: Path, table: str) -> list[dict[str, Any]]:
    con = connect(out)
    try:
        cur = con.execute(f"SELECT * FROM {table} ORDER BY {_ORDER[table]}")
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def _summaries(out: Path) -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted((out / "summaries").glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict):
            docs[str(doc.get("video_id") or path.stem)] = doc
    return docs


def load(out: Path, run: dict[str, Any] | None = None) -> RunData:
    """Everything under ``out`` the report shows, in run.json's order of videos, then any
    video only the summaries know about. ``run``: use this document instead of
    ``out/run.json`` (the runner's, before it writes the file)."""
    out = Path(out)
    run_path = out / "run.json"
    if run is None and run_path.is_file():
        run = json.loads(run_path.read_text())
    summaries = _summaries(out)
    videos: list[Video] = []
    for v in (run or {}).get("videos", []):
        vid = v.get("video_id")
        videos.append(Video(file=str(v.get("file") or v.get("key") or "?"), key=v.get("key"), video_id=vid,
                            ok=bool(v.get("ok")), errors=[str(e) for e in v.get("errors", [])],
                            summary=summaries.get(vid, {}) if vid else {},
                            recorded_frames_sampled=int(v.get("frames_sampled") or 0), recorded=dict(v)))
    known = {v.video_id for v in videos}
    for vid, summary in summaries.items():
        if vid not in known:
            key = str(summary.get("source_key") or vid)
            videos.append(Video(file=PurePosixPath(key).name or key, key=key, video_id=vid, summary=summary))
    by_id = {v.video_id: v for v in videos if v.video_id}
    for table in ("people", "faces", "tracks"):
        for row in _rows(out, table):
            video = by_id.get(row["video_id"])
            if video is None:  # rows of a video neither run.json nor a summary names
                key = str(row.get("source_key") or row["video_id"])
                video = by_id[row["video_id"]] = Video(file=PurePosixPath(key).name or key, key=key,
                                                       video_id=row["video_id"])
                videos.append(video)
            getattr(video, table).append(row)
    run_tracked = "track_people" in ((run or {}).get("stages") or {})
    for v in videos:
        v.faces.sort(key=lambda r: (r["frame_index"], r.get("face_index") or 0))
        # Firehose delivers at least once: one row per record_id (the latest copy, as the export keeps).
        latest = {t["record_id"]: t for t in v.tracks}
        v.tracks = sorted(latest.values(), key=lambda t: (t.get("first_seen_s") or 0.0, str(t.get("track_id"))))
        v.run_tracked = run_tracked
    from vidsift.report.lines import load_layout

    return RunData(out=out, run=run, videos=videos, errors=[str(e) for e in (run or {}).get("errors", [])],
                   layout=load_layout(out),
                   crossings=list({r["record_id"]: r for r in _rows(out, "crossings")}.values()),
                   zone_visits=list({r["record_id"]: r for r in _rows(out, "zone_visits")}.values()))
