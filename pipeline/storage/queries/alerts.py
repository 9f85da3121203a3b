"""What seed 000's alerts read: finished and queued jobs, and the rate budget running jobs report."""

from __future__ import annotations

from datetime import datetime

import duckdb
import orjson


def job_outcomes(cur: duckdb.DuckDBPyConnection, since: datetime) -> list[tuple[str, int, int]]:
    """Per tenant: (tenant, failed, finished) over jobs that completed or failed since `since` (a cancelled job
    is an operator's choice, not a failure, and is not counted)."""
    return cur.execute(
        "SELECT tenant, count(*) FILTER (WHERE status = 'failed'), count(*) FROM ingest_jobs "
        "WHERE status IN ('completed', 'failed') AND completed_at >= ? GROUP BY tenant ORDER BY tenant",
        [since]).fetchall()


def oldest_queued(cur: duckdb.DuckDBPyConnection) -> list[tuple[str, datetime, str, int]]:
    """Per tenant: (tenant, oldest queued job's created_at, its job id, jobs queued)."""
    return cur.execute(
        "SELECT tenant, min(created_at), arg_min(job_id, created_at), count(*) FROM ingest_jobs "
        "WHERE status = 'queued' GROUP BY tenant ORDER BY tenant").fetchall()


def rate_budget_use(cur: duckdb.DuckDBPyConnection) -> list[tuple[str, float, str]]:
    """Per tenant: (tenant, highest rate-limit use in % among its running jobs, that job's domain)."""
    rows = cur.execute("SELECT tenant, domain, statistics FROM ingest_jobs WHERE status = 'running'").fetchall()
    best: dict[str, tuple[float, str]] = {}
    for tenant, domain, stats in rows:
        use = (orjson.loads(stats) if stats else {}).get("rate_limit_usage")
        if isinstance(use, int | float) and use > best.get(tenant, (-1.0, ""))[0]:
            best[tenant] = (float(use), domain)
    return [(t, use, domain) for t, (use, domain) in sorted(best.items())]
