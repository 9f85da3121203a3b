"""Retention: rows older than their family's setting are deleted, a few thousand per transaction.

Each call here is one short transaction on its own (`api/retention.py` runs them one after another, off the
event loop), so the materializer, which writes the same tables, never waits long behind one: a delete of
5,000 call rows takes about as long as one of its own batches.
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb

from pipeline.storage.db import retry_conflicts, rollback
from pipeline.storage.queries.user_data import ARCHIVED

# table -> the column that dates a row
DATED = {"sys_api_call_histories": "created_at", "dead_letters": "rejected_at", "ingest_job_logs": "timestamp"}
# Seed 004's archive policies: how many years after its archive date an archive is kept (None: for ever).
POLICY_YEARS: dict[str, int | None] = {"STANDARD_5_YEARS": 5, "EXTENDED_10_YEARS": 10, "LEGAL_HOLD": None}


@retry_conflicts
def expire_rows(cur: duckdb.DuckDBPyConnection, table: str, cutoff: datetime, limit: int) -> int:
    """Delete at most `limit` of the table's rows dated before `cutoff`; returns how many."""
    column = DATED[table]
    return int(cur.execute(
        f'DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE "{column}" < ? LIMIT ?)',
        [cutoff, limit]).fetchone()[0])


def expired_archives(cur: duckdb.DuckDBPyConnection, today: date) -> list[tuple[str, str, str]]:
    """(tenant, user, policy) of the archives whose policy's years have passed since their archive date."""
    rows = cur.execute("SELECT tenant, user_id, retention_policy, coalesce(archive_date, archived_at::DATE) "
                       "FROM user_archives WHERE status = 'ARCHIVED'").fetchall()
    out = []
    for tenant, user, policy, since in rows:
        years = POLICY_YEARS.get(policy)
        if years is not None and since is not None and _add_years(since, years) <= today:
            out.append((tenant, user, policy))
    return out


@retry_conflicts
def expire_archive(cur: duckdb.DuckDBPyConnection, tenant: str, user_id: str) -> int:
    """Delete one user's archived rows and mark the archive EXPIRED (one transaction); returns rows deleted."""
    cur.begin()
    try:
        deleted = 0
        for t in ARCHIVED:
            deleted += int(cur.execute(f"DELETE FROM archive_{t} WHERE tenant = ? AND user_id = ?",
                                       [tenant, user_id]).fetchone()[0])
        deleted += int(cur.execute("DELETE FROM archived_rows WHERE tenant = ? AND user_id = ?",
                                   [tenant, user_id]).fetchone()[0])
        cur.execute("UPDATE user_archives SET status = 'EXPIRED', restored_at = NULL WHERE tenant = ? AND user_id = ?",
                    [tenant, user_id])
        cur.commit()
    except BaseException:
        rollback(cur)
        raise
    return deleted


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


