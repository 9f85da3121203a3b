"""Seed 000 §6: `GET /ingest/metrics`, the seed's four blocks computed from real counters for the company."""

from __future__ import annotations

import os
import resource
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter

from api.deps import SearchDep, StoreDep
from api.security import CompanyReader as Company
from pipeline.metrics import MATERIALIZER_SECONDS
from pipeline.storage.queries import ingest as q
from schemas.platform_api import IngestMetrics

router = APIRouter(tags=["ingest (seed 000)"])
_cpu_mark: list[float] = [time.monotonic(), sum(os.times()[:2])]


def _cpu_percent() -> float:
    """This api process's CPU since the previous call (first call: since start-up)."""
    now, cpu = time.monotonic(), sum(os.times()[:2])
    wall, used = now - _cpu_mark[0], cpu - _cpu_mark[1]
    _cpu_mark[:] = [now, cpu]
    return round(100 * used / wall, 1) if wall > 0 else 0.0


def _histogram_mean_ms(histogram: Any) -> float | None:
    total = count = 0.0
    for metric in histogram.collect():
        for sample in metric.samples:
            if sample.name.endswith("_sum"):
                total += sample.value
            elif sample.name.endswith("_count"):
                count += sample.value
    return round(1000 * total / count, 1) if count else None


def _rate(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def metrics_for(jobs: list[dict[str, Any]], quality: dict[str, float | None]) -> dict[str, Any]:
    finished = [j for j in jobs if j["status"] in ("completed", "failed", "cancelled")]
    durations = [(j["completed_at"] - j["started_at"]).total_seconds() for j in finished
                 if j["completed_at"] and j["started_at"]]
    stats = [j["statistics"] or {} for j in jobs]
    calls = sum(s.get("api_calls", 0) for s in stats)
    errors = sum(s.get("errors_encountered", 0) for s in stats)
    running = [j for j in jobs if j["status"] == "running"]
    usage = [s["rate_limit_usage"] for j, s in zip(jobs, stats, strict=True)
             if j["status"] == "running" and s.get("rate_limit_usage") is not None]
    mean_avg = round(sum(durations) / len(durations) / 60, 1) if durations else None
    api_ms = round(sum(s.get("api_time_ms", 0.0) for s in stats) / calls, 1) if calls else None
    return {
        "system_metrics": {
            "active_jobs": len(running), "queued_jobs": sum(j["status"] == "queued" for j in jobs),
            "total_jobs_today": len(jobs),
            "success_rate": _rate(sum(j["status"] == "completed" for j in finished), len(finished)),
            "average_job_duration": f"{mean_avg} minutes" if mean_avg is not None else None},
        "performance_metrics": {
            "items_per_second": round(sum(j["items_per_second"] or 0 for j in running), 2),
            "api_response_time_avg": api_ms, "database_write_time_avg": _histogram_mean_ms(MATERIALIZER_SECONDS),
            "memory_usage_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "cpu_usage_percent": _cpu_percent()},
        "platform_metrics": {"freshdesk": {
            "rate_limit_usage": max(usage) if usage else None, "api_errors_today": errors,
            "successful_requests": calls - errors, "average_response_time": api_ms}},
        "data_quality": quality,
    }


def data_quality(counts: dict[str, int] | None) -> dict[str, float | None]:
    """Duplicates dropped, records refused, tickets missing a subject or description — once tickets exist."""
    if counts is None:
        return {"duplicate_rate": None, "validation_error_rate": None, "missing_fields_rate": None}
    seen = counts["tickets"] + counts["duplicates"] + counts["refused"]
    return {"duplicate_rate": _rate(counts["duplicates"], seen) or 0.0,
            "validation_error_rate": _rate(counts["refused"], seen) or 0.0,
            "missing_fields_rate": _rate(counts["missing_fields"], counts["tickets"]) or 0.0}


@router.get("/ingest/metrics", response_model=IngestMetrics)
async def ingest_metrics(company: Company, store: StoreDep, search: SearchDep) -> dict[str, Any]:
    since = datetime.now(UTC) - timedelta(days=1)
    jobs = [j for j in await store.run(q.jobs_since, since) if j["tenant"] == company]
    quality = data_quality(await store.run(q.quality_counts, company))
    objects, embedded = await store.run(q.vector_coverage, company)
    index = search.index
    tenant_index = index.tenant(company) if index is not None else None
    # Beyond the seed's four blocks: how far search is behind what was collected.
    return metrics_for(jobs, quality) | {"search_metrics": {
        "integrated_objects": objects, "embedded": embedded, "pending_embedding": objects - embedded,
        "indexed": len(tenant_index) if tenant_index is not None else 0}}
