"""Reads over sys_api_call_histories: filtered pages (keyset cursor), one row, and route/agent/user stats."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import duckdb
import orjson

from schemas.calls import COLUMNS

Bucket = Literal["minute", "hour", "day"]
_BUCKET_US: dict[str, int] = {"minute": 60_000_000, "hour": 3_600_000_000, "day": 86_400_000_000}


class BadCursor(ValueError):
    """The cursor was not one this API handed out."""


@dataclass(frozen=True, slots=True)
class CallFilters:
    tenant_id: str | None = None
    agent_id: str | None = None
    user_id: str | None = None
    path: str | None = None
    source: str | None = None
    method: str | None = None
    status_min: int | None = None
    status_max: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    route: str | None = None  # the stored route: `/api/v1/tickets/{id}` matches every ticket's calls

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for column, value in (("tenant_id", self.tenant_id), ("agent_id", self.agent_id),
                              ("user_id", self.user_id), ("path", self.path), ("source", self.source),
                              ("route", self.route)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.method is not None:
            clauses.append("method = ?")
            params.append(self.method.upper())
        for sql, value in (("status_code >= ?", self.status_min), ("status_code <= ?", self.status_max),
                           ("created_at >= ?", self.since), ("created_at < ?", self.until)):
            if value is not None:
                clauses.append(sql)
                params.append(value)
        return (" AND ".join(clauses) or "TRUE"), params


def encode_cursor(created_at: datetime, key: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([created_at.isoformat(), key])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        ts, key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(ts), str(key)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise BadCursor("cursor is not valid; use the next_cursor of a previous page") from None


def list_calls(cur: duckdb.DuckDBPyConnection, f: CallFilters, limit: int,
               cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; the cursor continues strictly after the last row, so pages never overlap or skip."""
    where, params = f.where()
    if cursor:
        ts, key = decode_cursor(cursor)
        where += " AND (created_at, api_call_history_id) < (?, ?)"
        params += [ts, key]
    rows = cur.execute(
        f"SELECT {', '.join(COLUMNS)} FROM sys_api_call_histories WHERE {where} "
        f"ORDER BY created_at DESC, api_call_history_id DESC LIMIT ?", [*params, limit + 1]
    ).fetchall()
    items = [dict(zip(COLUMNS, r, strict=True)) for r in rows[:limit]]
    nxt = encode_cursor(items[-1]["created_at"], items[-1]["api_call_history_id"]) if len(rows) > limit else None
    return items, nxt


def get_call(cur: duckdb.DuckDBPyConnection, call_id: str, tenant: str | None) -> dict[str, Any] | None:
    """One row by id within `tenant` (ids are unique per tenant only); None: any tenant's, the first by tenant."""
    scope, params = ("", [call_id]) if tenant is None else (" AND tenant_id = ?", [call_id, tenant])
    row = cur.execute(f"SELECT {', '.join(COLUMNS)} FROM sys_api_call_histories WHERE api_call_history_id = ?"
                      f"{scope} ORDER BY tenant_id LIMIT 1", params).fetchone()
    return dict(zip(COLUMNS, row, strict=True)) if row else None


def _percentiles(values: list[float | None] | None) -> tuple[float | None, float | None, float | None]:
    """p50, p95, p99 from `quantile_cont(x, [0.5, 0.95, 0.99])` (NULL when no row has a latency)."""
    return (values[0], values[1], values[2]) if values else (None, None, None)


def call_stats(cur: duckdb.DuckDBPyConnection, f: CallFilters, bucket: Bucket, top: int,
               large_bytes: int = 1 << 20) -> dict[str, Any]:
    """Totals, per-route count / error rate / latency p50-p95-p99, top agents, users and tenants, a time series,
    and the size figures of seed 003's monitoring (`size_stats`)."""
    where, params = f.where()
    base = f"FROM sys_api_call_histories WHERE {where}"
    # An error is a 5xx or a 4xx: what Kong's and Envoy's dashboards count as failed requests.
    # Per route: the path with its identifier segments as {id}, stored with the row (pipeline/calls/routes.py).
    # Raw paths carry ids: 10M seed-shaped calls hold ~6M of them, and this query over raw paths took 2.0-2.7 s
    # (counting them first, percentiles for the top ones only); over the stored routes it is one pass, 0.28 s
    # in-process (docs/architecture.md "What one machine holds"). The three percentiles from one list: one sort
    # per group, not three, with the same exact values.
    routes = [(*r[:4], *_percentiles(r[4])) for r in cur.execute(
        f"""SELECT method, route, count(*) AS count, avg(CASE WHEN status_code >= 400 THEN 1 ELSE 0 END),
                   quantile_cont(latency_ms, [0.5, 0.95, 0.99])
            {base} GROUP BY method, route ORDER BY count DESC, method, route LIMIT ?""", [*params, top]).fetchall()]
    count, error_rate, latency = cur.execute(
        f"""SELECT count(*), avg(CASE WHEN status_code >= 400 THEN 1 ELSE 0 END),
                   quantile_cont(latency_ms, [0.5, 0.95, 0.99])
            {base}""", params).fetchone()
    totals = (count, error_rate, *_percentiles(latency))

    def top_by(column: str) -> list[dict[str, Any]]:
        rows = cur.execute(
            f"SELECT {column}, count(*) AS n, avg(CASE WHEN status_code >= 400 THEN 1 ELSE 0 END) {base} "
            f"AND {column} IS NOT NULL GROUP BY {column} ORDER BY n DESC, {column} LIMIT ?", [*params, top]
        ).fetchall()
        return [{column: r[0], "count": r[1], "error_rate": r[2]} for r in rows]

    # UTC buckets by integer arithmetic on the microseconds since 1970 (floored, so times before 1970 bucket as
    # date_trunc does): the same buckets as `date_trunc(bucket, created_at AT TIME ZONE 'UTC')`, which goes
    # through the time-zone calendar for every row (10M rows: 113 against 600-790 ms, measured).
    us, width = "epoch_us(created_at)", _BUCKET_US[bucket]
    series = cur.execute(
        f"""SELECT make_timestamp({us} - (({us} % {width}) + {width}) % {width}) AS bucket, count(*),
                   sum(CASE WHEN status_code >= 400 THEN 1 ELSE 0 END)
            {base} GROUP BY bucket ORDER BY bucket""", params).fetchall()
    return {
        "total": {"count": totals[0], "error_rate": totals[1], "p50_ms": totals[2], "p95_ms": totals[3],
                  "p99_ms": totals[4]},
        "routes": [dict(zip(("method", "path", "count", "error_rate", "p50_ms", "p95_ms", "p99_ms"), r, strict=True))
                   for r in routes],
        "top_agents": top_by("agent_id"),
        "top_users": top_by("user_id"),
        "top_tenants": top_by("tenant_id"),
        "bucket": bucket,
        "series": [{"bucket": b.isoformat() + "Z", "count": n, "errors": e} for b, n, e in series],
        "sizes": size_stats(cur, f, large_bytes, top),
    }


# Size classes for "latency by request size" (seed 003 요청 크기별 응답 시간 분석): decades from 1 KiB, the way
# Kong's and Envoy's size histograms are read. A NULL size (a GET without a body) is its own class.
SIZE_CLASSES: tuple[tuple[str, int | None], ...] = (
    ("< 1 KiB", 1 << 10), ("1-10 KiB", 10 << 10), ("10-100 KiB", 100 << 10), ("100 KiB-1 MiB", 1 << 20),
    ("1-10 MiB", 10 << 20), (">= 10 MiB", None),
)


def _size_class(column: str) -> str:
    arms = " ".join(f"WHEN {column} < {upper} THEN {i}" for i, (_, upper) in enumerate(SIZE_CLASSES) if upper)
    return f"CASE WHEN {column} IS NULL THEN -1 {arms} ELSE {len(SIZE_CLASSES) - 1} END"


def size_stats(cur: duckdb.DuckDBPyConnection, f: CallFilters, large_bytes: int, top: int) -> dict[str, Any]:
    """Seed 003's size monitoring: request and response size percentiles, calls and latency per request-size
    class, and the large requests and responses (a body at or over `large_bytes`), newest first."""
    where, params = f.where()
    base = f"FROM sys_api_call_histories WHERE {where}"

    def distribution(column: str) -> dict[str, Any]:
        known, q, biggest = cur.execute(
            f"SELECT count({column}), quantile_cont({column}, [0.5, 0.95, 0.99]), max({column}) {base}",
            params).fetchone()
        p50, p95, p99 = _percentiles(q)
        return {"count": known, "p50_bytes": p50, "p95_bytes": p95, "p99_bytes": p99, "max_bytes": biggest}

    by_class = {r[0]: r[1:] for r in cur.execute(
        f"""SELECT {_size_class("request_size_bytes")} AS c, count(*), quantile_cont(latency_ms, [0.5, 0.95, 0.99])
            {base} GROUP BY c""", params).fetchall()}
    classes = []
    for i, label in [(-1, "unknown"), *enumerate(label for label, _ in SIZE_CLASSES)]:
        count, q = by_class.get(i, (0, None))
        p50, p95, p99 = _percentiles(q)
        classes.append({"size_class": label, "count": count, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99})
    keys = ("api_call_history_id", "tenant_id", "agent_id", "method", "path", "request_size_bytes",
            "response_size_bytes", "latency_ms", "status_code", "created_at")

    def large(column: str) -> dict[str, Any]:
        count = cur.execute(f"SELECT count(*) {base} AND {column} >= ?", [*params, large_bytes]).fetchone()[0]
        latest = cur.execute(
            f"""SELECT {", ".join(keys)} {base} AND {column} >= ?
                ORDER BY created_at DESC, api_call_history_id LIMIT ?""", [*params, large_bytes, top]).fetchall()
        return {"threshold_bytes": large_bytes, "count": count,
                "latest": [dict(zip(keys, r, strict=True)) for r in latest]}

    return {
        "request": distribution("request_size_bytes"),
        "response": distribution("response_size_bytes"),
        "latency_by_request_size": classes,
        "large_requests": large("request_size_bytes"),
        "large_responses": large("response_size_bytes"),
    }
