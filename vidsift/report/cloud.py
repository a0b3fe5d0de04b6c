"""``vidsift report --stage dev --since 2026-12-01``: the same report for a deployed stage.

A deployed user has the analytics bucket, not a results folder. This copies the days asked
for (every table's dt partitions, optionally one camera's rows), the camera layout and the
visits' best frames (from the people bucket, while they have not expired) into a results
folder of the same shape ``vidsift run`` leaves, then writes the report from it: the same
page, read by the same code (DuckDB over JSON lines), lines and zones included. Firehose's
GZIP JSON and Parquet objects are both read (vidsift.stages.counting.object_rows).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from vidsift import aws, contract
from vidsift.core.layout import LayoutError
from vidsift.logs import get_logger
from vidsift.stages import counting

logger = get_logger("report")


def fetch(analytics_bucket: str, people_bucket: str | None, days: list[str], out: Path,
          cameras: set[str] | None = None, progress: bool = False) -> dict[str, int]:
    """Copy the days' rows (of ``cameras`` only, if given), the layout and the best frames into
    ``out``; the rows copied per table."""
    out = Path(out)
    copied: dict[str, int] = {}
    tracks: list[dict[str, Any]] = []
    for table in tqdm(contract.ALL_TABLES, desc="tables", disable=not progress):
        rows = [r for r in counting.rows_in_bucket(analytics_bucket, table, days)
                if cameras is None or r.get("camera_id") in cameras]
        copied[table] = _write(out, table, rows)
        if table == "tracks":
            tracks = rows
    try:
        layout = counting.read_layout(analytics_bucket)
    except LayoutError as exc:
        logger.warning("the stored camera layout is not readable: no lines or zones drawn", extra={"error": str(exc)})
        layout = None
    if layout is not None:
        (out / "cameras.json").write_text(layout.to_json())
    if people_bucket:
        copied["frames"] = _frames(people_bucket, out, (str(t.get("best_frame_key") or "") for t in tracks))
    return copied


def _write(out: Path, table: str, rows: list[dict[str, Any]]) -> int:
    """As the local export lays them out: analytics/<table>/dt=<day>/<video>.json, one row per record."""
    groups: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        groups[(str(r["dt"]), str(r.get("video_id") or "none"))][str(r["record_id"])] = r
    for (day, video), by_id in groups.items():
        path = out / "analytics" / table / f"dt={day}" / f"{video}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "dt"}, default=str) + "\n"
                                for r in by_id.values()))
    return sum(len(g) for g in groups.values())


def _frames(people_bucket: str, out: Path, keys: Iterable[str]) -> int:
    got = 0
    for key in sorted({k for k in keys if k and ".." not in k.split("/")}):
        body = aws.get_bytes_if_any(people_bucket, key)
        if body is None:  # expired (frameExpiryDays) or never copied
            continue
        path = out / "frames" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        got += 1
    return got
