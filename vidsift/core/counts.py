"""The rows of the ``crossings`` and ``zone_visits`` tables, from a video's track rows.

Input is what the ``tracks`` table keeps of each visit (track_id, camera_id, path,
first_seen_s, captured_at_first): track_people passes its track drafts, a recount passes the
stored rows, and both give the same rows, since the path is the one stored (rounded as stored).
So recounting a past video with a new layout never needs its frames or a detector.

record_id is deterministic (video, track, line or zone, and the crossing's or stay's number
within them), so writing a video's rows again (a replay, a recount with the same layout)
writes the same rows. Plain Python, no AWS.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from vidsift import contract
from vidsift.core import ids
from vidsift.core.layout import CameraLayout
from vidsift.core.lines import count_track, feet_from_path
from vidsift.core.records import iso, parse_iso


def _ordered(table: str, values: dict[str, Any]) -> dict[str, Any]:
    cols = contract.columns(table)
    if set(cols) != set(values):
        raise AssertionError(f"{table} record mismatch: {sorted(set(cols) ^ set(values))}")
    return {c: values[c] for c in cols}


def recording_start(track: dict[str, Any]) -> Any:
    """When the video's recording began (a datetime), from a track's first capture time and
    first second; None when the recording start is not known."""
    first = parse_iso(track.get("captured_at_first"))
    if first is None or track.get("first_seen_s") is None:
        return None
    return first - timedelta(seconds=float(track["first_seen_s"]))


def video_rows(camera: CameraLayout, tracks: Iterable[dict[str, Any]], dt: str
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(crossings rows, zone_visits rows) of one video's tracks, in track then time order."""
    crossings: list[dict[str, Any]] = []
    visits: list[dict[str, Any]] = []
    for track in sorted(tracks, key=lambda t: (float(t.get("first_seen_s") or 0), str(t["track_id"]))):
        start = recording_start(track)
        found, stays = count_track(camera, feet_from_path(track["path"]))
        seen: dict[str, int] = {}
        for c in found:
            n = seen[c.line] = seen.get(c.line, -1) + 1
            crossings.append(_ordered("crossings", {
                "record_id": ids.crossing_record_id(track["video_id"], track["track_id"], c.line, n),
                "video_id": track["video_id"],
                "camera_id": camera.camera_id,
                "track_id": track["track_id"],
                "line": c.line,
                "direction": c.direction,
                "time_s": round(c.time_s, 3),
                "captured_at": iso(start + timedelta(seconds=c.time_s)) if start else None,
                "dt": dt,
            }))
        seen = {}
        for v in stays:
            n = seen[v.zone] = seen.get(v.zone, -1) + 1
            visits.append(_ordered("zone_visits", {
                "record_id": ids.zone_visit_record_id(track["video_id"], track["track_id"], v.zone, n),
                "video_id": track["video_id"],
                "camera_id": camera.camera_id,
                "track_id": track["track_id"],
                "zone": v.zone,
                "entered_s": round(v.entered_s, 3),
                "left_s": round(v.left_s, 3),
                "dwell_s": round(v.left_s - v.entered_s, 3),
                "captured_at_entered": iso(start + timedelta(seconds=v.entered_s)) if start else None,
                "dt": dt,
            }))
    return crossings, visits


def lines_body(rows: list[dict[str, Any]]) -> bytes:
    """JSON lines, as Firehose writes the other tables (an empty object: no rows)."""
    import json

    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows).encode()


def days(since: str, until: str | None, today: date, max_days: int | None = None) -> list[str]:
    """The days (dt partitions, YYYY-MM-DD) from ``since`` to ``until`` (default ``today``);
    ValueError naming the problem for a bad date, a reversed range or one over ``max_days``."""
    try:
        first = date.fromisoformat(since)
        last = date.fromisoformat(until) if until else today
    except (TypeError, ValueError) as exc:
        raise ValueError(f"since/until take YYYY-MM-DD dates ({exc})") from exc
    if last < first:
        raise ValueError(f"until {last} is before since {first}")
    n = (last - first).days + 1
    if max_days is not None and n > max_days:
        raise ValueError(f"{n} days from {first} to {last}: at most {max_days} at once (split the range)")
    return [(first + timedelta(days=k)).isoformat() for k in range(n)]
