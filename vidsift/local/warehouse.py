"""The results folder as a database: DuckDB views with the same table names and columns as Athena.

A local run's results (``vidsift/local/results.py`` writes them under ``out/analytics``) are
queried by ``vidsift query``, the report (``vidsift/report/data.py``), the demo and the tests
with the same SQL the cloud's Athena tables answer; this is the engine they share, so no
reader has to go through a command to reach it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from vidsift import contract

_DUCK_TYPES = {"string": "VARCHAR", "int": "INTEGER", "bigint": "BIGINT", "double": "DOUBLE",
               "boolean": "BOOLEAN", "timestamp": "TIMESTAMP"}


def _columns_sql(table: str, with_partitions: bool) -> dict[str, str]:
    spec = contract.load()["tables"][table]
    cols = spec["columns"] + (spec["partition_keys"] if with_partitions else [])
    return {c["Name"]: _DUCK_TYPES[c["Type"]] for c in cols}


def connect(out: str | Path) -> duckdb.DuckDBPyConnection:
    """A connection where ``people``, ``faces``, ``tracks``, ``crossings`` and ``zone_visits`` are
    views over ``out/analytics``.

    ``dt`` comes from the hive partition folder and stays a string, as in Athena.
    """
    con = duckdb.connect()
    for table in contract.ALL_TABLES:
        folder = Path(out) / "analytics" / table
        files = sorted(folder.glob("dt=*/*.json"))
        if files:
            cols = _columns_sql(table, with_partitions=False)
            glob = str(folder / "dt=*" / "*.json").replace("'", "''")
            struct = "{" + ", ".join(f"'{n}': '{t}'" for n, t in cols.items()) + "}"
            con.execute(
                f"CREATE VIEW {table} AS SELECT {', '.join([*cols, 'dt'])} FROM read_json('{glob}', "
                f"format='newline_delimited', hive_partitioning=true, hive_types={{'dt': 'VARCHAR'}}, "
                f"columns={struct})"
            )
        else:
            cols = _columns_sql(table, with_partitions=True)
            con.execute(f"CREATE TABLE {table} ({', '.join(f'{n} {t}' for n, t in cols.items())})")
    _visitor_tables(con, Path(out))
    return con


def _visitor_tables(con: duckdb.DuckDBPyConnection, out: Path) -> None:
    """``visitor_names`` (vidsift visitors name): one small JSON file, joined at query time."""
    spec = contract.load()["visitor_tables"]["visitor_names"]
    cols = {c["Name"]: _DUCK_TYPES[c["Type"]] for c in spec["columns"]}
    path = out / "analytics" / contract.load()["visitors"]["names_key"]
    if path.exists() and path.stat().st_size:
        struct = "{" + ", ".join(f"'{n}': '{t}'" for n, t in cols.items()) + "}"
        con.execute(f"CREATE VIEW visitor_names AS SELECT * FROM read_json('{str(path).replace(chr(39), chr(39) * 2)}',"
                    f" format='newline_delimited', columns={struct})")
    else:
        con.execute(f"CREATE TABLE visitor_names ({', '.join(f'{n} {t}' for n, t in cols.items())})")


def run(out: str | Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of ``sql`` over the results folder ``out``: one fresh connection
    per query, so a folder a run is still writing is read as it is now."""
    con = connect(out)
    cur = con.execute(sql)
    names = [d[0] for d in cur.description or []]
    return names, cur.fetchall()

