"""``vidsift query``: SQL over a results folder, printed as a table, CSV or JSON.

The engine (DuckDB views named like the Athena tables) is ``vidsift/local/warehouse.py``;
this module is only what the command adds to it: reading the SQL and formatting the rows.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from vidsift.local.warehouse import run


def query(out: str | Path, sql: str, fmt: str = "table") -> int:
    """Run ``sql`` (``-``: read it from stdin) over ``out`` and print the rows; 2 on an SQL
    error, printed as one line, because a typo in a query is the user's, not a crash."""
    import duckdb

    sql = sql if sql != "-" else sys.stdin.read()
    try:
        names, rows = run(out, sql)
    except duckdb.Error as exc:
        print(f"vidsift query: {exc}", file=sys.stderr)
        return 2
    text = render(names, rows, fmt)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")  # CSV already ends its last row
    return 0


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render(names: list[str], rows: list[tuple[Any, ...]], fmt: str = "table") -> str:
    """The rows as ``table`` (aligned columns for a terminal), ``csv`` or ``json`` (for a pipe):
    floats to 4 significant digits in the table only, so CSV and JSON keep full precision."""
    if fmt == "json":
        return json.dumps([dict(zip(names, r, strict=True)) for r in rows], default=str, indent=1)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(["" if v is None else v for v in r] for r in rows)
        return buf.getvalue()
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(n)] + [len(c[i]) for c in cells]) for i, n in enumerate(names)]
    lines = [" | ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)
