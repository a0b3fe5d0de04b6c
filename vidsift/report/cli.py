"""``vidsift report --out DIR``: rebuild report.html from a results folder; with ``--stage``
(and ``--since``), from a deployed stage's analytics bucket (vidsift.report.cloud).

Kept here rather than in vidsift/cli/commands.py so the report owns its command; vidsift/cli/commands.py
registers it with ``add_parser(sub)``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_report(args: argparse.Namespace) -> int:
    """``vidsift report``: rebuild report.html from a results folder, or from a deployed stage's
    analytics bucket, long after the run."""
    from vidsift.report import cost_summary_line, write_report

    out = Path(args.out)
    if args.stage or args.bucket:
        return _from_stage(args, out)
    if not out.is_dir():
        print(f"vidsift report: no results folder {out}", file=sys.stderr)
        return 2
    if not (out / "run.json").is_file() and not (out / "analytics").is_dir() and not (out / "summaries").is_dir():
        print(f"vidsift report: {out} holds no results (no run.json, analytics/ or summaries/)", file=sys.stderr)
        return 2
    path = write_report(out)
    print(cost_summary_line(out))
    print(f"Report: {path}")
    return 0


def _from_stage(args: argparse.Namespace, out: Path) -> int:
    import os

    from vidsift import aws, contract
    from vidsift.cli.lines import days_between
    from vidsift.report import write_report
    from vidsift.report.cloud import fetch

    if not args.since:
        print("vidsift report: --stage needs --since (the first day, YYYY-MM-DD)", file=sys.stderr)
        return 2
    if args.region:
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = args.region
        aws.reset_clients()
    days = days_between(args.since, args.until, "vidsift report")
    names = None if args.bucket else contract.ResourceNames(stage=args.stage, account=aws.account_id())
    analytics = args.bucket or names.bucket("analytics")  # type: ignore[union-attr]
    people = args.people_bucket or (names.bucket("people") if names else None)
    out.mkdir(parents=True, exist_ok=True)
    copied = fetch(analytics, people, days, out, set(args.camera) if args.camera else None,
                   progress=sys.stderr.isatty())
    path = write_report(out)
    print(f"{copied.get('tracks', 0)} visit(s), {copied.get('crossings', 0)} crossing(s), "
          f"{copied.get('zone_visits', 0)} zone visit(s) from s3://{analytics} ({days[0]} to {days[-1]})")
    print(f"Report: {path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``report`` on the ``vidsift`` command's subparsers."""
    p = sub.add_parser("report", help="write report.html (timeline, frames with people, cost estimate, lines and "
                                      "zones) from a results folder, or from a deployed stage (--stage --since)")
    p.add_argument("--out", default="vidsift-out", help="results folder (default ./vidsift-out); with --stage, "
                                                         "where the stage's rows are copied and the report written")
    p.add_argument("--stage", help="a deployed stage: read its analytics bucket (your AWS credentials)")
    p.add_argument("--region", help="the stage's region (default: your AWS configuration's)")
    p.add_argument("--bucket", help="the analytics bucket (default vidsift-<stage>-<account>-analytics)")
    p.add_argument("--people-bucket", help="where the visits' best frames are (default the stage's people bucket)")
    p.add_argument("--since", help="first day (YYYY-MM-DD) of the stage's rows")
    p.add_argument("--until", help="last day (default today)")
    p.add_argument("--camera", action="append", help="only this camera (repeatable)")
    p.set_defaults(func=cmd_report)
