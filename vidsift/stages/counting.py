"""Lines and zones in the pipeline: track_people counts each video once its tracks are built,
and a recount counts past videos again from their stored track rows.

The layout is read from the analytics bucket (contract ``cameras_key``) for every video, so
a changed zone applies to the next video without a redeploy. A video's rows go to one object
per table (contract ``count_tables``, vidsift.core.counts says why), overwritten by a replay
or a recount. A camera the layout does not name gets no rows and no object; a layout that
cannot be read is logged as an error and the video keeps its tracks (a recount counts it once
the layout is fixed): counting is an addition to tracking, never a reason to lose a video.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from vidsift import aws, contract
from vidsift.core import counts, keys
from vidsift.core.layout import Layout, LayoutError, parse
from vidsift.logs import get_logger

logger = get_logger("counting")


def layout_location(analytics_bucket: str) -> str:
    return f"s3://{analytics_bucket}/{contract.load()['cameras_key']}"


def read_layout(analytics_bucket: str) -> Layout | None:
    """The stored layout; None when none was stored. LayoutError if it does not parse."""
    body = aws.get_bytes_if_any(analytics_bucket, contract.load()["cameras_key"])
    if body is None:
        return None
    where = layout_location(analytics_bucket)
    try:
        return parse(json.loads(body), where)
    except json.JSONDecodeError as exc:
        raise LayoutError(f"{where}: not JSON ({exc})") from exc


def put_layout(analytics_bucket: str, layout: Layout) -> str:
    """Store a (checked) layout where track_people reads it; returns its location."""
    aws.put_object(analytics_bucket, contract.load()["cameras_key"], layout.to_json().encode(),
                   content_type="application/json", metadata={})
    return layout_location(analytics_bucket)


#: Where a video's rows go: put(key in the analytics bucket's layout, JSON-lines body).
Put = Callable[[str, bytes], None]


def bucket_put(analytics_bucket: str) -> Put:
    return lambda key, body: aws.put_json_lines(analytics_bucket, key, body)


def write_video(put: Put, layout: Layout | None, video_id: str, tracks: list[dict[str, Any]],
                dt: str, *, clear: bool = False) -> dict[str, int] | None:
    """Count one video's tracks and write its two objects; None if its camera has no layout
    (``clear``: a recount then writes the objects empty, so rows of an earlier layout go)."""
    camera_id = next((t.get("camera_id") for t in tracks if t.get("camera_id")), None)
    camera = layout.camera(camera_id) if layout else None
    if camera is None and not clear:
        return None
    crossings, visits = counts.video_rows(camera, tracks, dt) if camera else ([], [])
    for table, rows in (("crossings", crossings), ("zone_visits", visits)):
        put(keys.count_key(table, dt, video_id), counts.lines_body(rows))
    return {"crossings": len(crossings), "zone_visits": len(visits)} if camera else None


def count_tracked_video(analytics_bucket: str, video_id: str, drafts: Iterable[dict[str, Any]],
                        now: datetime) -> dict[str, int] | None:
    """track_people's step, after a video's tracks are built (their drafts hold the path)."""
    try:
        layout = read_layout(analytics_bucket)
    except LayoutError as exc:
        logger.error("camera layout unreadable: the video is not counted (recount it once fixed)",
                     extra={"video_id": video_id, "error": str(exc)})
        return None
    result = write_video(bucket_put(analytics_bucket), layout, video_id, list(drafts), now.strftime("%Y-%m-%d"))
    if result is not None:
        logger.info("video counted", extra={"video_id": video_id, **result})
    return result


def recount(put: Put, layout: Layout, track_rows: Iterable[dict[str, Any]],
            cameras: set[str] | None = None) -> dict[str, dict[str, int] | None]:
    """Count again every video of ``track_rows`` (rows of the tracks table), by video id: each
    video's objects are rewritten under the day its tracks were first written (where track_people
    put them). ``cameras``: only these cameras' videos."""
    by_video: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in track_rows:
        if cameras is None or row.get("camera_id") in cameras:
            # Firehose delivers at least once: one row per track (a track's row is the same each time).
            by_video[row["video_id"]][row["track_id"]] = row
    out = {}
    for video, tracks in sorted(by_video.items()):
        dt = min(str(t["dt"]) for t in tracks.values())
        out[video] = write_video(put, layout, video, list(tracks.values()), dt, clear=True)
    return out


# --- past videos in a bucket (the deployed stack's, or the local stack's) ---------------------


def object_rows(body: bytes) -> list[dict[str, Any]]:
    """A tracks object's rows: JSON lines (GZIP or not), or Parquet (parquet=true) through DuckDB."""
    import gzip

    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    if body[:4] == b"PAR1":
        import tempfile

        import duckdb

        with tempfile.NamedTemporaryFile(suffix=".parquet") as f:
            f.write(body)
            f.flush()
            cur = duckdb.connect().execute(f"SELECT * FROM read_parquet('{f.name}')")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def track_rows_in_bucket(analytics_bucket: str, days: Iterable[str]) -> list[dict[str, Any]]:
    """Every tracks row of the given days (dt partitions) stored in the analytics bucket."""
    return rows_in_bucket(analytics_bucket, "tracks", days)


def table_prefix(table: str) -> str:
    """The table's location in the analytics bucket (before its dt= partitions)."""
    doc = contract.load()
    return doc["count_tables"][table] if table in contract.COUNT_TABLES else \
        doc["analytics_prefixes"][table].split("dt=", 1)[0]


def rows_in_bucket(analytics_bucket: str, table: str, days: Iterable[str]) -> list[dict[str, Any]]:
    """Every row of a table on the given days (dt partitions), each with its dt."""
    prefix = table_prefix(table)
    wanted = list(days)
    rows: list[dict[str, Any]] = []
    for day in wanted:
        for key in aws.list_keys(analytics_bucket, f"{prefix}dt={day}/"):
            rows += [r | {"dt": day} for r in object_rows(aws.get_object_bytes(analytics_bucket, key))]
    # The local stack's Firehose (moto) writes the prefix unexpanded ("dt=!{timestamp:...}/"):
    # there the rows' own dt says the day. Nothing is stored under such a key in AWS.
    for key in aws.list_keys(analytics_bucket, f"{prefix}dt=!{{"):
        rows += [r for r in object_rows(aws.get_object_bytes(analytics_bucket, key)) if r.get("dt") in wanted]
    return rows


def recount_days(analytics_bucket: str, since: str, until: str | None, cameras: list[str] | None,
                 today: Any) -> dict[str, Any]:
    """The recount function's work: the stored layout over the days' stored tracks. ValueError
    (naming the problem) for a bad range, LayoutError without a usable stored layout."""
    layout = read_layout(analytics_bucket)
    if layout is None:
        raise LayoutError(f"{layout_location(analytics_bucket)}: no camera layout stored "
                          "(vidsift cameras put, or deploy with camerasFile)")
    days = counts.days(since, until, today, int(contract.load()["functions"]["recount"]["max_days"]))
    done = recount(bucket_put(analytics_bucket), layout, track_rows_in_bucket(analytics_bucket, days),
                   set(cameras) if cameras else None)
    counted = [r for r in done.values() if r is not None]
    result = {"days": [days[0], days[-1]], "videos": len(done), "videos_with_layout": len(counted),
              "crossings": sum(r["crossings"] for r in counted), "zone_visits": sum(r["zone_visits"] for r in counted)}
    logger.info("recounted", extra=result)
    return result
