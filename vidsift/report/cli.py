"""``vidsift report --out DIR``: rebuild report.html from a results folder.

Kept here rather than in vidsift/cli/commands.py so the report owns its command; vidsift/cli/commands.py
registers it with ``add_parser(sub)``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_report(args: argparse.Namespace) -> int:
    from vidsift.report import cost_summary_line, write_report

    out = Path(args.out)
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


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``report`` on the ``vidsift`` command's subparsers."""
    p = sub.add_parser("report", help="write report.html (timeline, frames with people, cost estimate) "
                                      "from a results folder")
    p.add_argument("--out", default="vidsift-out", help="results folder (default ./vidsift-out)")
    p.set_defaults(func=cmd_report)
