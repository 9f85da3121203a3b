"""Seed 004 §4: performance computed from stored results, accuracy against the diary SOL observed later.

A prediction is *accurate* when the SOL the user then recorded for the predicted night (the diary entry of
its `target_date`) is within ±10 minutes or ±25 % of the prediction, whichever is wider: night-to-night SOL
varies by about that much within a person (Buysse et al. 2006), so a closer target would score noise.
`averageAccuracy` is the share of observed predictions that were accurate; predictions whose night has no
diary entry yet are left out of it.
"""

from __future__ import annotations

from typing import Any

import duckdb

PERIOD_DAYS = {"1d": 1, "7d": 7, "30d": 30}
TOLERANCE = "greatest(10.0, 0.25 * o.observed)"

OBSERVED = """
    LEFT JOIN (SELECT tenant, user_id, date, CAST(json_extract(data, '$.sol_minutes') AS DOUBLE) AS observed
               FROM sleep_records WHERE kind = 'diary') o
      ON o.tenant = p.tenant AND o.user_id = p.user_id AND o.date = p.target_date"""


def _scope(tenant: str | None, days: int) -> tuple[str, list[Any]]:
    where, params = ["p.created_at >= now() - to_days(?)"], [days]
    if tenant is not None:
        where.append("p.tenant = ?")
        params.append(tenant)
    return " AND ".join(where), params


def overview(cur: duckdb.DuckDBPyConnection, tenant: str | None, period: str) -> dict[str, Any]:
    where, params = _scope(tenant, PERIOD_DAYS[period])
    total, success, avg_time, errors, accuracy, observed = cur.execute(f"""
        SELECT count(*), avg(CASE WHEN status = 'COMPLETED' THEN 1.0 ELSE 0.0 END),
               avg(processing_time_ms) FILTER (WHERE status = 'COMPLETED'),
               avg(CASE WHEN status = 'FAILED' THEN 1.0 ELSE 0.0 END),
               avg(CASE WHEN abs(p.sol_score - o.observed) <= {TOLERANCE} THEN 1.0 ELSE 0.0 END)
                   FILTER (WHERE o.observed IS NOT NULL AND p.status = 'COMPLETED'),
               count(o.observed) FILTER (WHERE p.status = 'COMPLETED')
        FROM predictions p {OBSERVED} WHERE {where}""", params).fetchone()
    trend = cur.execute(f"""
        SELECT CAST(p.created_at AT TIME ZONE 'UTC' AS DATE) AS d, count(*),
               avg(processing_time_ms) FILTER (WHERE status = 'COMPLETED')
        FROM predictions p WHERE {where} GROUP BY d ORDER BY d""", params).fetchall()
    return {"total": total, "success_rate": success, "avg_time": avg_time, "error_rate": errors,
            "accuracy": accuracy, "observed": observed, "trend": trend}


def agents(cur: duckdb.DuckDBPyConnection, tenant: str | None, period: str, agent: str | None) -> list[dict]:
    """Per expert: volume, data coverage, speed, confidence, and accuracy/consistency against observed SOL."""
    where, params = _scope(tenant, PERIOD_DAYS[period])
    if agent is not None:
        where += " AND a.agent_type = ?"
        params.append(agent)
    rows = cur.execute(f"""
        SELECT a.agent_type, count(*) AS n,
               avg(CASE WHEN a.confidence > 0.1 THEN 1.0 ELSE 0.0 END) AS had_data,
               avg(a.processing_time_ms), avg(a.confidence),
               avg(CASE WHEN abs(a.sol_score - o.observed) <= {TOLERANCE} THEN 1.0 ELSE 0.0 END)
                   FILTER (WHERE o.observed IS NOT NULL) AS accuracy,
               stddev_samp(a.sol_score - o.observed) AS error_sd,
               avg(CASE WHEN abs(a.sol_score - p.sol_score) <= 15 THEN 1.0 ELSE 0.0 END) AS agreement,
               (SELECT count(*) FROM predictions p WHERE {where.replace(' AND a.agent_type = ?', '')}
                   AND p.status = 'COMPLETED') AS completed
        FROM expert_analyses a JOIN predictions p ON p.prediction_id = a.prediction_id {OBSERVED}
        WHERE {where} GROUP BY a.agent_type ORDER BY a.agent_type""",
                       [*params[:len(params) - (agent is not None)], *params]).fetchall()
    keys = ("agent_type", "n", "had_data", "avg_time", "avg_confidence", "accuracy", "error_sd", "agreement",
            "completed")
    return [dict(zip(keys, r, strict=True)) for r in rows]
