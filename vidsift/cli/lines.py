"""``vidsift cameras`` and ``vidsift recount``: the camera layout file, and counting past videos again.

    vidsift cameras check cameras.yaml                       # refused with every problem named, or a summary
    vidsift cameras put cameras.yaml --stage dev             # where the deployed track_people reads it
    vidsift recount --out results --cameras cameras.yaml     # a local run's results folder
    vidsift recount --stage dev --cameras cameras.yaml --since 2026-12-01 [--until ...] [--camera door]

A recount reads the stored tracks rows (each visit's path is kept in the ``path`` column) and
rewrites the videos' ``crossings`` and ``zone_visits`` objects: no frame is read and nothing
is detected again. In the cloud it runs with your credentials against the stage's analytics
bucket (``--bucket`` to name it; else vidsift-<stage>-<account>-analytics), the same bucket
and objects track_people writes; ``cameras put`` stores the layout there too, so the next
video is counted with it, no redeploy. Both talk to whatever S3 the environment points at:
AWS's, or ``vidsift up``'s local stack.

Kept out of vidsift/cli/commands.py so the feature owns its commands (registered by ``add_parsers``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vidsift.core.layout import Layout, LayoutError, loads


def read_layout_file(path: str | Path, command: str) -> Layout | None:
    """The checked layout, or None after printing why it is refused."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"{command}: cannot read the camera layout {path}: {exc.strerror or exc}", file=sys.stderr)
        return None
    try:
        return loads(text, str(path))
    except LayoutError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return None


def _summary(layout: Layout) -> str:
    return "\n".join(f"{cid}: {len(c.lines)} line(s) {', '.join(ln.name for ln in c.lines) or '-'}; "
                     f"{len(c.zones)} zone(s) {', '.join(z.name for z in c.zones) or '-'}"
                     for cid, c in sorted(layout.cameras.items()))


def analytics_bucket(args: argparse.Namespace) -> str:
    """The analytics bucket of ``--bucket`` or of the deployed ``--stage`` (its name includes the
    account id), where the functions read the camera layout."""
    import os

    from vidsift import aws, contract

    if args.region:
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = args.region
        aws.reset_clients()
    if args.bucket:
        return str(args.bucket)
    return contract.ResourceNames(stage=args.stage, account=aws.account_id()).bucket("analytics")


def cmd_check(args: argparse.Namespace) -> int:
    """``vidsift cameras check``: a layout file's problems, or what it counts, before it is stored."""
    layout = read_layout_file(args.file, "vidsift cameras check")
    if layout is None:
        return 2
    print(_summary(layout))
    return 0


def cmd_put(args: argparse.Namespace) -> int:
    """``vidsift cameras put``: store a layout where the deployed track_people reads it (no redeploy)."""
    from vidsift.stages import counting

    layout = read_layout_file(args.file, "vidsift cameras put")
    if layout is None:
        return 2
    where = counting.put_layout(analytics_bucket(args), layout)
    print(_summary(layout))
    print(f"stored: {where} (track_people counts the next videos with it; `vidsift recount` for past ones)")
    return 0


def days_between(since: str, until: str | None, command: str = "vidsift recount") -> list[str]:
    """The days from --since to --until (default today, UTC), as dt partitions are named."""
    from datetime import UTC, datetime

    from vidsift.core.counts import days

    try:
        return days(since, until, datetime.now(UTC).date())
    except ValueError as exc:
        raise SystemExit(f"{command}: --since/--until: {exc}") from exc


def _folder_rows(out: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted((out / "analytics" / "tracks").glob("dt=*/*.json")):
        day = path.parent.name.removeprefix("dt=")
        rows += [json.loads(line) | {"dt": day} for line in path.read_text().splitlines() if line.strip()]
    return rows


def cmd_recount(args: argparse.Namespace) -> int:
    """``vidsift recount``: count past videos again with a (new) layout, from their tracks' paths,
    never the frames, locally from a results folder or on a deployed stage."""
    from vidsift.stages import counting

    layout = read_layout_file(args.cameras, "vidsift recount")
    if layout is None:
        return 2
    cameras = set(args.camera) if args.camera else None
    if args.out:
        out = Path(args.out)
        if not (out / "analytics" / "tracks").is_dir():
            print(f"vidsift recount: {out} holds no tracks (analytics/tracks/)", file=sys.stderr)
            return 2

        def put(key: str, body: bytes) -> None:
            path = out / "analytics" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)

        rows, where = _folder_rows(out), str(out)
    else:
        if not args.since:
            print("vidsift recount: give --out (a local results folder) or --since (a deployed stage's days)",
                  file=sys.stderr)
            return 2
        bucket = analytics_bucket(args)
        put, where = counting.bucket_put(bucket), f"s3://{bucket}"
        rows = counting.track_rows_in_bucket(bucket, days_between(args.since, args.until))
    done = counting.recount(put, layout, rows, cameras)
    counted = {v: r for v, r in done.items() if r is not None}
    print(f"{len(done)} video(s) recounted in {where}: {len(counted)} with a layout, "
          f"{sum(r['crossings'] for r in counted.values())} crossing(s), "
          f"{sum(r['zone_visits'] for r in counted.values())} zone visit(s)")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``cameras`` and ``recount`` commands, registered with ``vidsift``'s parser."""
    cams = sub.add_parser("cameras", help="the camera layout file: lines and zones to count")
    csub = cams.add_subparsers(dest="cameras_command", required=True)
    p = csub.add_parser("check", help="check a layout file (YAML) and show what it counts")
    p.add_argument("file")
    p.set_defaults(func=cmd_check)
    p = csub.add_parser("put", help="store a layout where the deployed track_people reads it (no redeploy)")
    p.add_argument("file")
    _stage_args(p)
    p.set_defaults(func=cmd_put)

    p = sub.add_parser("recount", help="count lines and zones of past videos again from their stored tracks")
    p.add_argument("--cameras", required=True, metavar="FILE", help="the camera layout (YAML)")
    p.add_argument("--out", help="a local results folder (vidsift run --out)")
    _stage_args(p)
    p.add_argument("--since", help="first day (YYYY-MM-DD, the tracks' dt) of a deployed stage's videos")
    p.add_argument("--until", help="last day (default today)")
    p.add_argument("--camera", action="append", help="only this camera's videos (repeatable)")
    p.set_defaults(func=cmd_recount)


def _stage_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stage", default="dev", help="deployed stage (default dev)")
    p.add_argument("--region", help="the stage's region (default: your AWS configuration's)")
    p.add_argument("--bucket", help="the analytics bucket (default vidsift-<stage>-<account>-analytics)")
