"""What each console page shows, read from the same places as the REST routes (so the figures agree).

Every function takes the api's `Services` and the session's scope (a tenant, or None for a system_admin) and
returns plain data for a template. Nothing here writes (the job buttons call `Jobs.control` directly).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from api.alerts import HOST
from api.console.rates import TopicRates
from api.ingest.jobs import job_detail, job_summary
from api.ingest.schedules import schedule_public
from api.services import Services
from pipeline.calls.redact import redact_bytes
from pipeline.metrics import CONSUMER_LAG, MATERIALIZED_ROWS
from pipeline.storage.queries import ingest as iq
from pipeline.storage.queries import ingest_schedules as sq
from pipeline.storage.queries import operations as ops
from pipeline.storage.queries import predictions as pq
from pipeline.storage.queries.calls import CallFilters, call_stats

# The Calls page's windows: (label, minutes, bucket). A column per bucket.
WINDOWS = {"15m": (15, "minute"), "1h": (60, "minute"), "24h": (24 * 60, "hour"), "7d": (7 * 24 * 60, "hour"),
           "30d": (30 * 24 * 60, "day")}


def _gauge(metric: Any) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for m in metric.collect() for s in m.samples if not s.name.endswith("_created")]


async def pipeline_view(services: Services, rates: TopicRates, admin: bool) -> dict[str, Any]:
    workers = await services.workers()
    totals: dict[tuple[str, str], float] = {}
    for w in workers:
        for c in w["counters"]:
            key = (c["topic"], c["outcome"])
            totals[key] = totals.get(key, 0.0) + float(c["value"])
    per_s = rates.add(totals)
    topics: dict[str, dict[str, Any]] = {}
    for (topic, outcome), value in sorted(totals.items()):
        row = topics.setdefault(topic, {"topic": topic})
        row[outcome] = int(value)
        row[f"{outcome}_per_s"] = per_s.get((topic, outcome))
    m = services.materializer
    lag = [{"topic": labels["topic"], "partition": labels["partition"], "lag": int(v)}
           for labels, v in _gauge(CONSUMER_LAG)]
    written = {labels["table"]: int(v) for labels, v in _gauge(MATERIALIZED_ROWS) if "table" in labels}
    counts = await services.store.run(ops.dead_letter_counts, 3600)
    groups = await services.group_lags() if services.group_lags is not None else []
    return {
        "workers": workers, "topics": list(topics.values()), "lag": sorted(lag, key=lambda r: (r["topic"],
                                                                                               r["partition"])),
        "group_lags": groups if isinstance(groups, list) else [], "group_lag_error": None if isinstance(
            groups, list) else groups,
        "materializer": {"alive": m.alive and m.error is None, "error": m.error, "rows_written": m.rows_written,
                         "seconds_since_last_batch": None if m.last_batch_at is None
                         else round(time.time() - m.last_batch_at, 1), "tables": written},
        "freshness": m.freshness.figures(300),
        "dead_letter_counts": [{"topic": t, "last_hour": h, "kept": k} for t, h, k in counts],
        "dead_letters": await services.store.run(ops.latest_dead_letters, 15) if admin else None,
    }


async def dead_letter_view(services: Services, dead_letter_id: str) -> dict[str, Any] | None:
    """One dead letter; its bytes as text with secrets masked (the same redaction as call rows)."""
    row = await services.store.run(ops.dead_letter, dead_letter_id)
    if row is None:
        return None
    clean = redact_bytes(row.pop("value") or b"") or b""
    return {**row, "text": clean[:64 << 10].decode("utf-8", errors="replace"), "truncated": len(clean) > 64 << 10}


async def calls_view(services: Services, scope: str | None, window: str, tenant: str | None) -> dict[str, Any]:
    minutes, bucket = WINDOWS[window]
    since = datetime.now(UTC) - timedelta(minutes=minutes)
    tenant_id = scope if scope is not None else tenant
    filters = CallFilters(tenant_id=tenant_id, since=since)
    stats = await services.store.run(call_stats, filters, bucket, 10, services.settings.large_body_bytes)
    points = _every_bucket(stats["series"], since, datetime.now(UTC), bucket)
    return {"window": window, "windows": list(WINDOWS), "since": since, "tenant": tenant_id, "points": points,
            **stats}


STEP_S = {"minute": 60, "hour": 3600, "day": 86400}


def _every_bucket(series: list[dict[str, Any]], since: datetime, until: datetime, bucket: str
                  ) -> list[tuple[str, int, int]]:
    """(label, calls, errors) for every bucket of the window, empty ones as zeros: the x axis is time."""
    step = STEP_S[bucket]
    have = {s["bucket"]: (s["count"], s["errors"]) for s in series}
    at = int(since.timestamp()) // step * step
    out = []
    while at <= until.timestamp():
        key = datetime.fromtimestamp(at, UTC).replace(tzinfo=None).isoformat() + "Z"
        count, errors = have.get(key, (0, 0))
        out.append((key[:16].replace("T", " ") + (" UTC" if bucket != "day" else ""), count, errors))
        at += step
    return out


async def ingest_view(services: Services, scope: str | None, status: str | None) -> dict[str, Any]:
    rows, total, counts = await services.store.run(iq.list_jobs, scope, status, None, 50, 1)
    schedules = [schedule_public(r) for r in await services.store.run(sq.list_schedules, scope)]
    return {"jobs": [job_summary(j) for j in rows], "total": total, "counts": counts, "status": status,
            "schedules": schedules}


async def job_view(services: Services, scope: str | None, job_id: str) -> dict[str, Any] | None:
    tenant = scope if scope is not None else await services.store.run(iq.job_tenant, job_id)
    if tenant is None:
        return None
    job = await services.store.run(iq.get_job, job_id, tenant)
    if job is None:
        return None
    return job_detail(job, await services.store.run(iq.logs, job_id, 50))


def alerts_view(services: Services, scope: str | None) -> dict[str, Any]:
    states = services.alerts.visible(scope)
    if scope is not None:  # the machine's memory is the operator's concern, not a tenant's
        states = [a for a in states if a.tenant != HOST]
    return {"alerts": states, "on": sum(a.firing for a in states)}


async def predictions_view(services: Services, scope: str | None) -> dict[str, Any]:
    return {"predictions": await services.store.run(pq.recent_predictions, scope, 50)}


async def debate_view(services: Services, scope: str | None, prediction_id: str) -> dict[str, Any] | None:
    row = await services.store.run(pq.get_prediction, prediction_id)
    if row is None or (scope is not None and row["tenant"] != scope):
        return None  # another tenant's prediction does not exist for this reader
    rounds = await services.store.run(pq.get_rounds, row["session_id"]) if row["session_id"] else []
    experts: dict[str, list[float | None]] = {}
    confidence: dict[str, list[float | None]] = {}
    for i, r in enumerate(rounds):
        for o in r["expertOpinions"]:
            name = str(o.get("agentType"))
            experts.setdefault(name, [None] * len(rounds))[i] = o.get("solScore")
            confidence.setdefault(name, [None] * len(rounds))[i] = o.get("confidence")
    outcome = row["outcome"] or {}
    recs = await services.store.run(pq.get_recommendations, prediction_id) or {}
    return {"prediction": row, "rounds": rounds, "experts": experts, "confidence": confidence,
            "consensus": [r["consensusScore"] for r in rounds], "outcome": outcome,
            "recommendations": recs.get("recommendations", []) if isinstance(recs, dict) else []}
