"""What operations ask the file: is it answering, which workers sent a heartbeat lately, how many rows a table has,
which messages were dead-lettered and why."""

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

DEAD_LETTER_COLUMNS = ("dead_letter_id", "dlq_topic", "error", "topic", "partition", "offset", "index", "rejected_at",
                       "size", "sha256")


def latest_dead_letters(cur: duckdb.DuckDBPyConnection, limit: int) -> list[dict[str, Any]]:
    """The newest dead letters (without their bytes), newest first."""
    cols = ", ".join(f'"{c}"' for c in DEAD_LETTER_COLUMNS)
    rows = cur.execute(f"SELECT {cols} FROM dead_letters ORDER BY rejected_at DESC, dead_letter_id LIMIT ?",
                       [limit]).fetchall()
    return [dict(zip(DEAD_LETTER_COLUMNS, r, strict=True)) for r in rows]


def dead_letter_counts(cur: duckdb.DuckDBPyConnection, within_s: float) -> list[tuple[str, int, int]]:
    """(source topic, dead letters in the last `within_s`, all kept) per source topic."""
    return cur.execute("SELECT topic, count(*) FILTER (WHERE rejected_at > now() - to_seconds(?)), count(*) "
                       "FROM dead_letters GROUP BY topic ORDER BY topic", [within_s]).fetchall()


def dead_letter(cur: duckdb.DuckDBPyConnection, dead_letter_id: str) -> dict[str, Any] | None:
    """One dead letter with its original bytes (`value`)."""
    cols = ", ".join(f'"{c}"' for c in DEAD_LETTER_COLUMNS)
    row = cur.execute(f"SELECT {cols}, value FROM dead_letters WHERE dead_letter_id = ?", [dead_letter_id]).fetchone()
    return {**dict(zip(DEAD_LETTER_COLUMNS, row[:-1], strict=True)), "value": row[-1]} if row else None
