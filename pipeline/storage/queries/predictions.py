"""Reads and the api's own writes over the predictions tables (seed 004)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import duckdb
import orjson

from schemas.sleep import SleepRecord

PREDICTION_COLUMNS = ("prediction_id", "tenant", "user_id", "trigger_type", "priority", "status", "requested_by",
                      "schedule_id", "session_id", "created_at", "completed_at", "processing_time_ms", "sol_score",
                      "confidence_score", "consensus_reached", "total_rounds", "final_consensus_score",
                      "debate_time_ms", "key_findings", "concern_areas", "data_completeness", "outcome", "quality",
                      "error_code", "error_message")
JSON_COLUMNS = frozenset({"key_findings", "concern_areas", "data_completeness", "outcome", "quality"})


def _rows(cur: duckdb.DuckDBPyConnection, columns: tuple[str, ...], sql: str, params: list[Any]) -> list[dict]:
    out = []
    for r in cur.execute(sql, params).fetchall():
        row = dict(zip(columns, r, strict=True))
        for c in JSON_COLUMNS & row.keys():
            row[c] = orjson.loads(row[c]) if row[c] is not None else None
        out.append(row)
    return out


def load_sleep_records(cur: duckdb.DuckDBPyConnection, tenant: str, user_id: str) -> list[SleepRecord]:
    rows = cur.execute("SELECT kind, date, data FROM sleep_records WHERE tenant = ? AND user_id = ? ORDER BY date",
                       [tenant, user_id]).fetchall()
    return [SleepRecord.model_validate({"tenant": tenant, "user_id": user_id, "kind": k, "date": d,
                                        "data": orjson.loads(data)}) for k, d, data in rows]


def active_prediction(cur: duckdb.DuckDBPyConnection, tenant: str, user_id: str, window_s: float) -> str | None:
    row = cur.execute(
        "SELECT prediction_id FROM predictions WHERE tenant = ? AND user_id = ? AND status = 'IN_PROGRESS' "
        "AND created_at > now() - to_seconds(?) ORDER BY created_at DESC LIMIT 1", [tenant, user_id, window_s]
    ).fetchone()
    return row[0] if row else None


def insert_in_progress(cur: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    cols = list(row)
    cur.execute(f"INSERT INTO predictions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [orjson.dumps(row[c]).decode() if c in JSON_COLUMNS else row[c] for c in cols])


def mark_failed(cur: duckdb.DuckDBPyConnection, prediction_id: str, code: str, message: str) -> int:
    """Fail an IN_PROGRESS prediction (publish failure, timeout sweep); a settled one is left alone."""
    return cur.execute(
        "UPDATE predictions SET status = 'FAILED', error_code = ?, error_message = ?, completed_at = now(), "
        "processing_time_ms = CAST(epoch_ms(now()) - epoch_ms(created_at) AS BIGINT) "
        "WHERE prediction_id = ? AND status = 'IN_PROGRESS'", [code, message, prediction_id]).fetchone()[0]


def sweep_timed_out(cur: duckdb.DuckDBPyConnection, after_s: float, code: str) -> list[str]:
    """IN_PROGRESS past the limit (a worker died with it, or the broker lost it) -> FAILED with `code`."""
    ids = [r[0] for r in cur.execute(
        "SELECT prediction_id FROM predictions WHERE status = 'IN_PROGRESS' AND created_at < now() - to_seconds(?)",
        [after_s]).fetchall()]
    for pid in ids:
        mark_failed(cur, pid, code, f"예측 프로세스 타임아웃 ({after_s:.0f}초 초과)")
    return ids


def get_prediction(cur: duckdb.DuckDBPyConnection, prediction_id: str) -> dict[str, Any] | None:
    rows = _rows(cur, PREDICTION_COLUMNS, f"SELECT {', '.join(PREDICTION_COLUMNS)} FROM predictions "
                 "WHERE prediction_id = ?", [prediction_id])
    return rows[0] if rows else None


def list_predictions(cur: duckdb.DuckDBPyConnection, tenant: str | None, user_id: str, status: str | None,
                     start: datetime | date | None, end: datetime | date | None, limit: int,
                     offset: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One user's predictions, newest first, with the total and summary over the whole filtered set."""
    where, params = ["user_id = ?"], [user_id]
    if tenant is not None:
        where.append("tenant = ?")
        params.append(tenant)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if start is not None:
        where.append("created_at >= ?")
        params.append(start)
    if end is not None:
        where.append("created_at < ?" if isinstance(end, datetime) else "CAST(created_at AS DATE) <= ?")
        params.append(end)
    clause = " AND ".join(where)
    rows = _rows(cur, PREDICTION_COLUMNS, f"SELECT {', '.join(PREDICTION_COLUMNS)} FROM predictions WHERE {clause} "
                 "ORDER BY created_at DESC, prediction_id DESC LIMIT ? OFFSET ?", [*params, limit, offset])
    total, avg_sol, avg_conf, last = cur.execute(
        f"SELECT count(*), avg(sol_score), avg(confidence_score), max(created_at) FROM predictions WHERE {clause}",
        params).fetchone()
    return rows, {"total": total, "average_sol": avg_sol, "average_confidence": avg_conf, "last": last}


def get_rounds(cur: duckdb.DuckDBPyConnection, session_id: str) -> list[dict[str, Any]]:
    rows = cur.execute(
        "SELECT round_number, start_time, end_time, consensus_score, expert_opinions FROM debate_rounds "
        "WHERE session_id = ? ORDER BY round_number", [session_id]).fetchall()
    return [{"roundNumber": n, "startTime": s, "endTime": e, "consensusScore": c, "expertOpinions": orjson.loads(o)}
            for n, s, e, c, o in rows]


def prediction_by_session(cur: duckdb.DuckDBPyConnection, session_id: str) -> dict[str, Any] | None:
    rows = _rows(cur, PREDICTION_COLUMNS, f"SELECT {', '.join(PREDICTION_COLUMNS)} FROM predictions "
                 "WHERE session_id = ?", [session_id])
    return rows[0] if rows else None


def get_analysis(cur: duckdb.DuckDBPyConnection, analysis_id: str) -> dict[str, Any] | None:
    row = cur.execute("SELECT analysis_id, prediction_id, tenant, user_id, agent_type, processing_time_ms, opinion, "
                      "llm_info FROM expert_analyses WHERE analysis_id = ?", [analysis_id]).fetchone()
    if row is None:
        return None
    keys = ("analysis_id", "prediction_id", "tenant", "user_id", "agent_type", "processing_time_ms")
    return {**dict(zip(keys, row[:6], strict=True)), "opinion": orjson.loads(row[6]),
            "llm_info": orjson.loads(row[7]) if row[7] else None}


def analyses_of(cur: duckdb.DuckDBPyConnection, prediction_id: str) -> list[dict[str, Any]]:
    rows = cur.execute("SELECT analysis_id, agent_type, sol_score, confidence FROM expert_analyses "
                       "WHERE prediction_id = ? ORDER BY agent_type", [prediction_id]).fetchall()
    return [{"analysisId": a, "agentType": t, "solScore": s, "confidence": c} for a, t, s, c in rows]


def get_recommendations(cur: duckdb.DuckDBPyConnection, prediction_id: str) -> dict[str, Any] | None:
    row = cur.execute("SELECT body FROM recommendations WHERE prediction_id = ?", [prediction_id]).fetchone()
    return orjson.loads(row[0]) if row else None


def recent_predictions(cur: duckdb.DuckDBPyConnection, tenant: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest predictions of a tenant (every tenant for None), newest first."""
    where, params = ("WHERE tenant = ?", [tenant]) if tenant is not None else ("", [])
    return _rows(cur, PREDICTION_COLUMNS, f"SELECT {', '.join(PREDICTION_COLUMNS)} FROM predictions {where} "
                 "ORDER BY created_at DESC, prediction_id DESC LIMIT ?", [*params, limit])
