"""Recurring ingest collection (seed 000 "정기 수집"): the schedules the api keeps and fires."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import orjson

COLUMNS = ("schedule_id", "tenant", "platform", "domain", "cron", "timezone", "options", "status", "created_at",
           "next_run_at", "last_run_at", "last_job_id", "last_skipped_at", "last_skip_reason", "runs", "skipped",
           "cancelled_at")


def _row(r: tuple) -> dict[str, Any]:
    d = dict(zip(COLUMNS, r, strict=True))
    d["options"] = orjson.loads(d["options"]) if d["options"] else {}
    return d


def insert_schedule(cur: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    cols = list(row)
    cur.execute(f"INSERT INTO ingest_schedules ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [orjson.dumps(row[c]).decode() if c == "options" else row[c] for c in cols])


def list_schedules(cur: duckdb.DuckDBPyConnection, tenant: str | None) -> list[dict[str, Any]]:
    where, params = ("WHERE tenant = ?", [tenant]) if tenant is not None else ("", [])
    rows = cur.execute(f"SELECT {', '.join(COLUMNS)} FROM ingest_schedules {where} "
                       "ORDER BY created_at DESC, schedule_id", params).fetchall()
    return [_row(r) for r in rows]


def get_schedule(cur: duckdb.DuckDBPyConnection, schedule_id: str, tenant: str) -> dict[str, Any] | None:
    r = cur.execute(f"SELECT {', '.join(COLUMNS)} FROM ingest_schedules WHERE schedule_id = ? AND tenant = ?",
                    [schedule_id, tenant]).fetchone()
    return _row(r) if r else None


def cancel_schedule(cur: duckdb.DuckDBPyConnection, schedule_id: str, tenant: str, at: datetime) -> None:
    cur.execute("UPDATE ingest_schedules SET status = 'cancelled', cancelled_at = ?, next_run_at = NULL "
                "WHERE schedule_id = ? AND tenant = ? AND status = 'active'", [at, schedule_id, tenant])


def due_schedules(cur: duckdb.DuckDBPyConnection, now: datetime) -> list[dict[str, Any]]:
    rows = cur.execute(f"SELECT {', '.join(COLUMNS)} FROM ingest_schedules WHERE status = 'active' AND "
                       "next_run_at <= ? ORDER BY next_run_at, schedule_id", [now]).fetchall()
    return [_row(r) for r in rows]


def schedule_token(cur: duckdb.DuckDBPyConnection, schedule_id: str) -> str | None:
    r = cur.execute("SELECT api_key_token FROM ingest_schedules WHERE schedule_id = ?", [schedule_id]).fetchone()
    return r[0] if r else None


def active_job(cur: duckdb.DuckDBPyConnection, tenant: str, domain: str, queued_since: datetime) -> str | None:
    """A job of this company and domain that is running or paused, or queued since `queued_since` (one
    collection per domain at a time; a job left queued for longer, never started, does not block for ever)."""
    r = cur.execute("SELECT job_id FROM ingest_jobs WHERE tenant = ? AND domain = ? AND (status IN ('running', "
                    "'paused') OR (status = 'queued' AND created_at >= ?)) ORDER BY created_at LIMIT 1",
                    [tenant, domain, queued_since]).fetchone()
    return r[0] if r else None


def mark_fired(cur: duckdb.DuckDBPyConnection, schedule_id: str, at: datetime, job_id: str,
               next_run: datetime) -> None:
    cur.execute("UPDATE ingest_schedules SET last_run_at = ?, last_job_id = ?, runs = runs + 1, next_run_at = ? "
                "WHERE schedule_id = ? AND status = 'active'", [at, job_id, next_run, schedule_id])


def mark_skipped(cur: duckdb.DuckDBPyConnection, schedule_id: str, at: datetime, reason: str,
                 next_run: datetime) -> None:
    cur.execute("UPDATE ingest_schedules SET last_skipped_at = ?, last_skip_reason = ?, skipped = skipped + 1, "
                "next_run_at = ? WHERE schedule_id = ? AND status = 'active'", [at, reason, next_run, schedule_id])

