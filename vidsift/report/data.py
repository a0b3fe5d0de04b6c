"""What a report is made of, read back from a results folder.

The report must be reproducible from what ``vidsift run`` left on disk alone (``vidsift
report --out DIR`` is run long after the stack is gone), so everything comes from the
folder: the tables through DuckDB (the same views ``vidsift query`` uses), the per-video
summaries split_frames wrote, the frames with people, and ``run.json`` when there is one
(``vidsift up`` exports no run.json: the report then has no stage times).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from vidsift.query import connect


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
    #: frames_sampled as run.json recorded it, for a video whose summary is missing.
    recorded_frames_sampled: int = 0

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
        return len({r["frame_index"] for r in self.people if (r.get("person_count") or 0) > 0})

    @property
    def face_count(self) -> int:
        return len(self.faces)

    @property
    def duration_s(self) -> float | None:
        value = self.summary.get("duration_s")
        return None if value is None else float(value)

    def faces_by_frame(self) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        for row in self.faces:
            out.setdefault(int(row["frame_index"]), []).append(row)
        return out


@dataclass
class RunData:
    out: Path
    run: dict[str, Any] | None
    videos: list[Video]
    #: Errors run.json could not attribute to a video.
    errors: list[str] = field(default_factory=list)

    @property
    def settings(self) -> dict[str, Any]:
        return dict((self.run or {}).get("settings") or {})

    @property
    def stages(self) -> dict[str, dict[str, Any]] | None:
        return (self.run or {}).get("stages") or None


def _rows(out: Path, table: str) -> list[dict[str, Any]]:
    con = connect(out)
    try:
        cur = con.execute(f"SELECT * FROM {table} ORDER BY video_id, frame_index")
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


def load(out: Path) -> RunData:
    """Everything under ``out`` the report shows, in run.json's order of videos, then any
    video only the summaries know about."""
    out = Path(out)
    run_path = out / "run.json"
    run = json.loads(run_path.read_text()) if run_path.is_file() else None
    summaries = _summaries(out)
    videos: list[Video] = []
    for v in (run or {}).get("videos", []):
        vid = v.get("video_id")
        videos.append(Video(file=str(v.get("file") or v.get("key") or "?"), key=v.get("key"), video_id=vid,
                            ok=bool(v.get("ok")), errors=[str(e) for e in v.get("errors", [])],
                            summary=summaries.get(vid, {}) if vid else {},
                            recorded_frames_sampled=int(v.get("frames_sampled") or 0)))
    known = {v.video_id for v in videos}
    for vid, summary in summaries.items():
        if vid not in known:
            key = str(summary.get("source_key") or vid)
            videos.append(Video(file=PurePosixPath(key).name or key, key=key, video_id=vid, summary=summary))
    by_id = {v.video_id: v for v in videos if v.video_id}
    for table in ("people", "faces"):
        for row in _rows(out, table):
            video = by_id.get(row["video_id"])
            if video is None:  # rows of a video neither run.json nor a summary names
                key = str(row.get("source_key") or row["video_id"])
                video = by_id[row["video_id"]] = Video(file=PurePosixPath(key).name or key, key=key,
                                                       video_id=row["video_id"])
                videos.append(video)
            getattr(video, table).append(row)
    for v in videos:
        v.faces.sort(key=lambda r: (r["frame_index"], r.get("face_index") or 0))
    return RunData(out=out, run=run, videos=videos, errors=[str(e) for e in (run or {}).get("errors", [])])
