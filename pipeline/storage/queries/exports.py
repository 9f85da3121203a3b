"""Seed 004's my-data export: the export rows (requested, completed with their content, failed) and the user's
schedules and raw sleep records that go into one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb


def create(cur: duckdb.DuckDBPyConnection, export_id: str, tenant: str, user_id: str, fmt: str, include_raw: bool,
           at: datetime) -> None:
    cur.execute("INSERT INTO data_exports (export_id, tenant, user_id, status, format, include_raw, created_at) "
                "VALUES (?, ?, ?, 'IN_PROGRESS', ?, ?, ?)", [export_id, tenant, user_id, fmt, include_raw, at])


def complete(cur: duckdb.DuckDBPyConnection, tenant: str, export_id: str, content: bytes, expires: datetime) -> None:
    cur.execute("UPDATE data_exports SET status = 'COMPLETED', content = ?, completed_at = now(), expires_at = ? "
                "WHERE tenant = ? AND export_id = ?", [content, expires, tenant, export_id])


def fail(cur: duckdb.DuckDBPyConnection, tenant: str, export_id: str, error: str) -> None:
    cur.execute("UPDATE data_exports SET status = 'FAILED', error = ? WHERE tenant = ? AND export_id = ?",
                [error, tenant, export_id])


def own(cur: duckdb.DuckDBPyConnection, export_id: str, tenant: str, user_id: str) -> tuple[Any, ...] | None:
    """(export_id, status, format, created_at, expires_at, content) of the user's own export, else None."""
    return cur.execute("SELECT export_id, status, format, created_at, expires_at, content FROM data_exports "
                       "WHERE export_id = ? AND tenant = ? AND user_id = ?", [export_id, tenant, user_id]).fetchone()


def schedules_of(cur: duckdb.DuckDBPyConnection, tenant: str, user_id: str) -> list[tuple[Any, ...]]:
    """(schedule_id, bedtime_goal, scheduled_trigger_time, status), earliest trigger first."""
    return cur.execute("SELECT schedule_id, bedtime_goal, scheduled_trigger_time, status FROM prediction_schedules "
                       "WHERE tenant = ? AND user_id = ? ORDER BY scheduled_trigger_time", [tenant, user_id]).fetchall()


def sleep_records_of(cur: duckdb.DuckDBPyConnection, tenant: str, user_id: str) -> list[tuple[Any, ...]]:
    """(kind, date, data JSON) of every raw record, by date then kind."""
    return cur.execute("SELECT kind, date, data FROM sleep_records WHERE tenant = ? AND user_id = ? "
                       "ORDER BY date, kind", [tenant, user_id]).fetchall()
