"""Prediction schedules (seed 004 §2): derived from the user's treatment record, kept in DuckDB by the api."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import orjson

from schemas.sleep import TreatmentCycle

COLUMNS = ("schedule_id", "tenant", "user_id", "bedtime_goal", "scheduled_trigger_time", "status", "retry_count",
           "next_execution", "timezone", "reason", "last_prediction_id", "last_error", "created_at", "updated_at")
ACTIVE = ("SCHEDULED", "RETRYING")


def schedule_id(tenant: str, user_id: str, bedtime: datetime) -> str:
    """Seed-shaped with a tenant tag (`sched_202508312200_user123_1a2b3c4d`): one per (tenant, user, bedtime).

    The tag hashes the tenant and the exact user id, so the same user id in two tenants (or two user ids that
    read alike once made safe for an id) give two ids; rows are keyed and looked up by (tenant, id) besides.
    """
    tag = hashlib.blake2b(f"{tenant}\x1f{user_id}".encode(), digest_size=4).hexdigest()
    return f"sched_{bedtime.astimezone(UTC):%Y%m%d%H%M}_{re.sub(r'[^A-Za-z0-9_-]', '-', user_id)[:40]}_{tag}"


def next_bedtime(treatment: TreatmentCycle, now: datetime, lead: timedelta) -> datetime | None:
    """The next bedtime goal (in the user's zone) whose trigger time, `lead` before it, is still ahead."""
    if treatment.bedtime_goal is None:
        return None
    zone = ZoneInfo(treatment.timezone)
    local_now = now.astimezone(zone)
    for days in range(3):  # DST shifts can skip a wall-clock time; three days always find one
        day = local_now.date() + timedelta(days=days)
        bedtime = datetime.combine(day, treatment.bedtime_goal, tzinfo=zone).astimezone(UTC)
        if bedtime - lead > now:
            return bedtime
    return None


def latest_treatment(cur: duckdb.DuckDBPyConnection, tenant: str, user_id: str) -> TreatmentCycle | None:
    row = cur.execute("SELECT data FROM sleep_records WHERE tenant = ? AND user_id = ? AND kind = 'treatment' "
                      "ORDER BY date DESC LIMIT 1", [tenant, user_id]).fetchone()
    return TreatmentCycle.model_validate(orjson.loads(row[0])) if row else None


def _fetch(cur: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[dict[str, Any]]:
    rows = cur.execute(f"SELECT {', '.join(COLUMNS)} FROM prediction_schedules WHERE {where}", params).fetchall()
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


def get(cur: duckdb.DuckDBPyConnection, tenant: str | None, sid: str) -> dict[str, Any] | None:
    """The tenant's schedule with this id; tenant None (system_admin) finds it in any tenant."""
    if tenant is None:
        rows = _fetch(cur, "schedule_id = ? ORDER BY tenant LIMIT 1", [sid])
    else:
        rows = _fetch(cur, "tenant = ? AND schedule_id = ?", [tenant, sid])
    return rows[0] if rows else None


def active_for(cur: duckdb.DuckDBPyConnection, tenant: str, user_id: str) -> dict[str, Any] | None:
    rows = _fetch(cur, "tenant = ? AND user_id = ? AND status IN ('SCHEDULED', 'RETRYING') "
                       "ORDER BY scheduled_trigger_time DESC LIMIT 1", [tenant, user_id])
    return rows[0] if rows else None


def create(cur: duckdb.DuckDBPyConnection, tenant: str, user_id: str, bedtime: datetime, lead: timedelta,
           timezone: str, reason: str) -> dict[str, Any]:
    """The schedule for this bedtime as stored: if the scheduler loop or a concurrent request made it first, theirs."""
    now = datetime.now(UTC)
    trigger = bedtime - lead
    row = {"schedule_id": schedule_id(tenant, user_id, bedtime), "tenant": tenant, "user_id": user_id,
           "bedtime_goal": bedtime, "scheduled_trigger_time": trigger, "status": "SCHEDULED", "retry_count": 0,
           "next_execution": trigger, "timezone": timezone, "reason": reason, "last_prediction_id": None,
           "last_error": None, "created_at": now, "updated_at": now}
    cur.execute(f"INSERT OR IGNORE INTO prediction_schedules ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(COLUMNS))})", [row[c] for c in COLUMNS])
    return get(cur, tenant, row["schedule_id"]) or row


def set_status(cur: duckdb.DuckDBPyConnection, tenant: str, sid: str, status: str, **fields: Any) -> None:
    _update(cur, tenant, sid, status, fields, "")


def settle(cur: duckdb.DuckDBPyConnection, tenant: str, sid: str, status: str, **fields: Any) -> bool:
    """The scheduler's outcome for a schedule it took as due, set only while the schedule is still active: a
    cancel, reschedule or archive that came in while it was triggering stands. Whether it was set."""
    return _update(cur, tenant, sid, status, fields, f" AND status IN {ACTIVE}") == 1  # the tuple's repr is SQL


def _update(cur: duckdb.DuckDBPyConnection, tenant: str, sid: str, status: str, fields: dict[str, Any],
            condition: str) -> int:
    sets = ", ".join(["status = ?", "updated_at = now()", *(f"{k} = ?" for k in fields)])
    changed = cur.execute(f"UPDATE prediction_schedules SET {sets} WHERE tenant = ? AND schedule_id = ?{condition}",
                          [status, *fields.values(), tenant, sid]).fetchone()
    return changed[0] if changed else 0


def delete(cur: duckdb.DuckDBPyConnection, tenant: str, sid: str) -> None:
    cur.execute("DELETE FROM prediction_schedules WHERE tenant = ? AND schedule_id = ?", [tenant, sid])


def due(cur: duckdb.DuckDBPyConnection, now: datetime) -> list[dict[str, Any]]:
    return _fetch(cur, "status IN ('SCHEDULED', 'RETRYING') AND next_execution <= ? ORDER BY next_execution", [now])


def users_needing_schedule(cur: duckdb.DuckDBPyConnection) -> list[tuple[str, str, TreatmentCycle]]:
    """Users whose latest treatment record has a bedtime goal, is not paused, and who have no active schedule."""
    rows = cur.execute("""
        SELECT t.tenant, t.user_id, t.data FROM (
            SELECT tenant, user_id, data, row_number() OVER (PARTITION BY tenant, user_id ORDER BY date DESC) AS n
            FROM sleep_records WHERE kind = 'treatment') t
        WHERE t.n = 1 AND NOT EXISTS (SELECT 1 FROM prediction_schedules s WHERE s.tenant = t.tenant
              AND s.user_id = t.user_id AND s.status IN ('SCHEDULED', 'RETRYING'))""").fetchall()
    out = []
    for tenant, user, data in rows:
        treatment = TreatmentCycle.model_validate(orjson.loads(data))
        if treatment.bedtime_goal is not None and not treatment.paused:
            out.append((tenant, user, treatment))
    return out
