"""Ingest jobs in DuckDB: the api's own writes (a job row before its command is published) and reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import orjson

COLUMNS = ("job_id", "tenant", "platform", "domain", "status", "priority", "options", "created_at", "started_at",
           "last_activity", "completed_at", "current_step", "step_details", "completed_items", "total_items",
           "items_per_second", "statistics", "cursor", "phase", "error", "worker", "seq", "ignored_query")
JSON = frozenset({"options", "statistics", "cursor", "ignored_query"})
TICKET_TABLES = ("tickets", "conversations", "integrated_objects", "kb_articles", "kb_categories", "kb_folders",
                 "attachments", "ticket_vectors")


def _row(r: tuple) -> dict[str, Any]:
    d = dict(zip(COLUMNS, r, strict=True))
    for c in JSON:
        d[c] = orjson.loads(d[c]) if d[c] is not None else None
    return d


def insert_job(cur: duckdb.DuckDBPyConnection, job: dict[str, Any]) -> None:
    cols = list(job)
    cur.execute(f"INSERT INTO ingest_jobs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [orjson.dumps(job[c]).decode() if c in JSON else job[c] for c in cols])


def remember_key(cur: duckdb.DuckDBPyConnection, tenant: str, platform: str, domain: str, digest: str) -> None:
    """A key the platform just confirmed, beside the company's earlier keys (rotation: those keep working)."""
    cur.execute("INSERT INTO company_keys VALUES (?, ?, ?, ?, now(), now()) ON CONFLICT DO UPDATE SET "
                "verified_at = coalesce(company_keys.verified_at, excluded.verified_at)",
                [tenant, platform, domain, digest])


def verified_keys(cur: duckdb.DuckDBPyConnection, tenant: str, platform: str | None = None,
                  domain: str | None = None) -> list[str]:
    """The keyed hashes of the company's confirmed keys (of one domain when given)."""
    rows = cur.execute("SELECT key_hash FROM company_keys WHERE tenant = ? AND verified_at IS NOT NULL "
                       "AND (? IS NULL OR platform = ?) AND (? IS NULL OR domain = ?)",
                       [tenant, platform, platform, domain, domain]).fetchall()
    return [h for (h,) in rows]


def bound_domains(cur: duckdb.DuckDBPyConnection, tenant: str, platform: str) -> list[str]:
    rows = cur.execute("SELECT domain FROM company_domains WHERE tenant = ? AND platform = ? ORDER BY bound_at",
                       [tenant, platform]).fetchall()
    return [d for (d,) in rows]


def bind_domain(cur: duckdb.DuckDBPyConnection, tenant: str, platform: str, domain: str, by: str) -> None:
    cur.execute("INSERT OR IGNORE INTO company_domains VALUES (?, ?, ?, now(), ?)", [tenant, platform, domain, by])


def get_job(cur: duckdb.DuckDBPyConnection, job_id: str, tenant: str) -> dict[str, Any] | None:
    r = cur.execute(f"SELECT {', '.join(COLUMNS)} FROM ingest_jobs WHERE job_id = ? AND tenant = ?",
                    [job_id, tenant]).fetchone()
    return _row(r) if r else None


def job_token(cur: duckdb.DuckDBPyConnection, job_id: str) -> str | None:
    r = cur.execute("SELECT api_key_token FROM ingest_jobs WHERE job_id = ?", [job_id]).fetchone()
    return r[0] if r else None


def list_jobs(cur: duckdb.DuckDBPyConnection, tenant: str | None, status: str | None, platform: str | None,
              limit: int, page: int) -> tuple[list[dict[str, Any]], int, dict[str, int]]:
    """A page of jobs, newest first, the filtered total and the count per status (tenant None: every tenant)."""
    where, params = (["tenant = ?"], [tenant]) if tenant is not None else (["TRUE"], [])
    for col, val in (("status", status), ("platform", platform)):
        if val is not None:
            where.append(f"{col} = ?")
            params.append(val)
    clause = " AND ".join(where)
    rows = cur.execute(f"SELECT {', '.join(COLUMNS)} FROM ingest_jobs WHERE {clause} ORDER BY created_at DESC, "
                       "job_id LIMIT ? OFFSET ?", [*params, limit, (page - 1) * limit]).fetchall()
    total = cur.execute(f"SELECT count(*) FROM ingest_jobs WHERE {clause}", params).fetchone()[0]
    counts = dict(cur.execute(f"SELECT status, count(*) FROM ingest_jobs WHERE {where[0]} GROUP BY 1",
                              params[:1] if tenant is not None else []).fetchall())
    return [_row(r) for r in rows], total, counts


def last_full_run(cur: duckdb.DuckDBPyConnection, tenant: str, domain: str) -> tuple[int, float] | None:
    """(items collected, seconds taken) of the domain's latest completed run that was not incremental."""
    row = cur.execute(
        "SELECT completed_items, epoch(completed_at) - epoch(started_at) FROM ingest_jobs WHERE tenant = ? AND "
        "domain = ? AND status = 'completed' AND started_at IS NOT NULL AND completed_at IS NOT NULL AND "
        "coalesce(json_extract(options, '$.incremental')::BOOLEAN, TRUE) = FALSE "
        "ORDER BY completed_at DESC LIMIT 1", [tenant, domain]).fetchone()
    return (int(row[0] or 0), float(row[1])) if row else None


def logs(cur: duckdb.DuckDBPyConnection, job_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The job's latest `limit` lines, oldest first, with its lifecycle lines ("Job started on …", paused,
    resumed, completed, failed) and warnings from before them, up to 20 more: one line per batch would
    otherwise push who ran the job, and what went wrong, out of view."""
    rows = cur.execute(
        """WITH l AS (SELECT seq, n, timestamp, level, message, details,
                             row_number() OVER (ORDER BY seq DESC, n DESC) AS k,
                             (message LIKE 'Job %' OR level IN ('WARN', 'ERROR')) AS kept
                      FROM ingest_job_logs WHERE job_id = ?)
           SELECT timestamp, level, message, details FROM l
           WHERE k <= ? OR kept
           QUALIFY row_number() OVER (ORDER BY (k <= ?) DESC, seq DESC, n DESC) <= ? + 20
           ORDER BY seq DESC, n DESC""", [job_id, limit, limit, limit]).fetchall()
    return [{"timestamp": t, "level": lv, "message": m, "details": orjson.loads(d) if d else {}}
            for t, lv, m, d in reversed(rows)]


def last_cursor(cur: duckdb.DuckDBPyConnection, tenant: str, domain: str) -> dict[str, Any] | None:
    """Where the last completed job of this company and domain stopped listing tickets: incremental starts there."""
    r = cur.execute("SELECT cursor FROM ingest_jobs WHERE tenant = ? AND domain = ? AND status = 'completed' "
                    "AND cursor IS NOT NULL AND cursor <> 'null' ORDER BY completed_at DESC LIMIT 1",
                    [tenant, domain]).fetchone()
    return orjson.loads(r[0]) if r else None


def set_fields(cur: duckdb.DuckDBPyConnection, job_id: str, **fields: Any) -> None:
    sets = ", ".join(f"{k} = ?" for k in fields)
    cur.execute(f"UPDATE ingest_jobs SET {sets} WHERE job_id = ?", [*fields.values(), job_id])


def stale_running(cur: duckdb.DuckDBPyConnection, older_than_s: float) -> list[str]:
    """Running jobs whose worker has gone quiet: every running job reports at least every second."""
    return [r[0] for r in cur.execute(
        "SELECT job_id FROM ingest_jobs WHERE status = 'running' AND last_activity < now() - to_seconds(?)",
        [older_than_s]).fetchall()]


def purge_company(cur: duckdb.DuckDBPyConnection, tenant: str) -> dict[str, int]:
    """`purge`/`force_rebuild`: the calling company's ticket data only (docs/decisions.md "Seed 000 details")."""
    existing = {r[0] for r in cur.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    return {t: int(cur.execute(f"DELETE FROM {t} WHERE tenant = ?", [tenant]).fetchone()[0])
            for t in TICKET_TABLES if t in existing}


def jobs_since(cur: duckdb.DuckDBPyConnection, since: datetime) -> list[dict[str, Any]]:
    rows = cur.execute(f"SELECT {', '.join(COLUMNS)} FROM ingest_jobs WHERE created_at >= ?", [since]).fetchall()
    return [_row(r) for r in rows]


def job_tenant(cur: duckdb.DuckDBPyConnection, job_id: str) -> str | None:
    """The company a job belongs to (for the watchdog, which sees every company's jobs)."""
    row = cur.execute("SELECT tenant FROM ingest_jobs WHERE job_id = ?", [job_id]).fetchone()
    return row[0] if row else None


def marks(cur: duckdb.DuckDBPyConnection, job_id: str) -> list[str]:
    """The stages the job's end mark reached: `stored` (in DuckDB), then `embedded` (searchable)."""
    return [r[0] for r in cur.execute("SELECT stage FROM ingest_marks WHERE job_id = ?", [job_id]).fetchall()]


def _tables(cur: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in cur.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def record_counts(cur: duckdb.DuckDBPyConnection, tenant: str) -> dict[str, int]:
    """The company's stored tickets, conversations, integrated objects and KB articles."""
    existing = _tables(cur)
    return {t: cur.execute(f"SELECT count(*) FROM {t} WHERE tenant = ?", [tenant]).fetchone()[0]
            for t in ("tickets", "conversations", "integrated_objects", "kb_articles") if t in existing}


def quality_counts(cur: duckdb.DuckDBPyConnection, tenant: str) -> dict[str, int] | None:
    """Tickets stored, of them missing a subject or description, records refused, duplicates dropped; None before
    any ticket table exists. A refused record keeps its envelope, which names the tenant; one that is not even
    JSON counts for nobody."""
    tables = _tables(cur)
    if "tickets" not in tables:
        return None
    total, missing = cur.execute("SELECT count(*), count(*) FILTER (WHERE coalesce(subject, '') = '' OR "
                                 "coalesce(description_text, '') = '') FROM tickets WHERE tenant = ?",
                                 [tenant]).fetchone()
    refused = cur.execute("SELECT count(*) FROM dead_letters WHERE topic LIKE '%tickets.raw' AND "
                          "try(json_extract_string(decode(value), '$.tenant')) = ?", [tenant]).fetchone()[0]
    dupes = cur.execute("SELECT coalesce(sum(duplicates), 0) FROM ingest_duplicates WHERE tenant = ?",
                        [tenant]).fetchone()[0] if "ingest_duplicates" in tables else 0
    return {"tickets": total, "missing_fields": missing, "refused": refused, "duplicates": int(dupes)}


def vector_coverage(cur: duckdb.DuckDBPyConnection, tenant: str) -> tuple[int, int]:
    """The company's integrated objects, and how many have a vector of their current version."""
    return cur.execute("SELECT count(*), count(v.key) FROM integrated_objects o LEFT JOIN ticket_vectors v ON "
                       "v.tenant = o.tenant AND v.key = o.key AND v.updated_at >= o.updated_at WHERE o.tenant = ?",
                       [tenant]).fetchone()
