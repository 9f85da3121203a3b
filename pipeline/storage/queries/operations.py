"""What operations ask the file: is it answering, which workers sent a heartbeat lately, how many rows a table has."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb


def ping(cur: duckdb.DuckDBPyConnection) -> None:
    cur.execute("SELECT 1").fetchone()


def recent_workers(cur: duckdb.DuckDBPyConnection, within_s: float) -> list[tuple[Any, ...]]:
    """(worker_id, host, pid, last_seen as epoch seconds, counters JSON) of workers seen in the last `within_s`,
    most recent first."""
    return cur.execute("SELECT worker_id, host, pid, epoch(last_seen), counters FROM worker_heartbeats "
                       "WHERE last_seen > now() - to_seconds(?) ORDER BY last_seen DESC", [within_s]).fetchall()


def row_counts(cur: duckdb.DuckDBPyConnection, tables: Iterable[str]) -> dict[str, int]:
    """Rows per table (names from the code, never from a request)."""
    return {t: cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
