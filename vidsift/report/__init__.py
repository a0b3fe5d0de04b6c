"""The run report: ``report.html`` (timeline of people, frames with their boxes, totals) and
the cost estimate, both rebuilt from a results folder alone.

Public entry points (what ``vidsift run`` and ``vidsift report`` call):
``write_report(out)``, ``cost_summary_line(out)``, ``run_costs(out)``, ``load_results(out)``
(the folder read once, for ``run_costs`` and ``write_report`` both) and
``estimate_run(out, run=None)`` (the run's total for run.json's "cost").
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vidsift.report.data import RunData

REPORT_NAME = "report.html"


def write_report(out: Path, data: RunData | None = None) -> Path:
    """Write ``out/report.html`` from what is stored under ``out`` (or ``data``, read from it
    already) and return its path.

    Written to a temporary name first and renamed, so a browser that has the old report
    open never sees half a file.
    """
    from vidsift.report.data import load
    from vidsift.report.render import render

    out = Path(out)
    page = render(data if data is not None else load(out))
    path = out / REPORT_NAME
    tmp = path.with_name(f".{REPORT_NAME}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


def cost_summary_line(out: Path) -> str:
    """One line for ``vidsift run``'s summary: the run's estimated AWS cost, per video
    minute, the DetectFaces calls avoided and the two alternatives."""
    from vidsift.report.cost import run_estimates, summary_line
    from vidsift.report.data import load

    total, _ = run_estimates(load(Path(out)))
    return summary_line(total)


def load_results(out: Path) -> RunData:
    """Everything the report and the cost estimate read from a results folder, read once."""
    from vidsift.report.data import load

    return load(Path(out))


def run_costs(out: Path, data: RunData | None = None) -> tuple[str, dict[str, str]]:
    """For ``vidsift run``: the summary line and each video's estimated cost by its raw object
    key, from one read of the results (``data``, when read already)."""
    from vidsift.report.cost import run_estimates, summary_line, usd
    from vidsift.report.data import load

    data = data if data is not None else load(Path(out))
    total, per_video = run_estimates(data)
    return summary_line(total), {v.key: usd(e.total) for v, e in zip(data.videos, per_video, strict=True) if v.key}


def estimate_run(out: Path, run: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run's estimated AWS cost as JSON-ready numbers ({"usd", "video_minutes", ...}),
    see ``vidsift.report.cost.estimate_run``."""
    from vidsift.report.cost import estimate_run as estimate

    return estimate(Path(out), run=run)


__all__ = ["REPORT_NAME", "cost_summary_line", "estimate_run", "load_results", "run_costs", "write_report"]
