"""Liveness of every part: broker, DuckDB, worker(s), materializer. 200 when all are up, else 503."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ServicesDep
from api.security import public
from pipeline.metrics import WORKER_EVENTS
from pipeline.storage.queries import operations as ops
from schemas.platform_api import Health

router = APIRouter(tags=["operations"])


DEGRADED = {503: {"description": "some part is down: the same report, `status: degraded`", "model": Health}}


@router.get("/health", dependencies=[public("liveness, for load balancers and `streamdesk up`")], responses=DEGRADED,
            response_model=Health, response_model_exclude_unset=True)
async def health(services: ServicesDep, response: Response) -> dict[str, Any]:
    # Unauthenticated: no cluster id, which seeds every derived call id (pipeline/ids.py).
    broker = {k: v for k, v in (await services.broker_health()).items() if k != "cluster_id"}
    try:
        await services.store.run(ops.ping)
        duck = {"ok": True, "path": str(services.settings.db_path)}
    except Exception as exc:  # noqa: BLE001
        duck = {"ok": False, "error": str(exc)}
    workers = await services.workers()
    m = services.materializer
    materializer = {"ok": m.alive and m.error is None, "rows_written": m.rows_written, "error": m.error,
                    "seconds_since_last_batch": None if m.last_batch_at is None
                    else round(time.time() - m.last_batch_at, 1)}
    worker = {"ok": any(w["alive"] for w in workers), "workers": [
        {k: w[k] for k in ("worker_id", "host", "pid", "seconds_since_heartbeat", "alive")} for w in workers]}
    ok = broker["ok"] and duck["ok"] and worker["ok"] and materializer["ok"]
    response.status_code = 200 if ok else 503
    return {"status": "ok" if ok else "degraded", "broker": broker, "duckdb": duck, "worker": worker,
            "materializer": materializer,
            "recorder": {"sent": services.calls.sent, "buffered": len(services.calls.events)}}


@router.get("/metrics", include_in_schema=False,
            dependencies=[public("Prometheus scrapes it; counters only, no tenant data")])
async def metrics(services: ServicesDep) -> Response:
    for w in await services.workers():
        for c in w["counters"]:
            WORKER_EVENTS.labels(w["worker_id"], c["topic"], c["outcome"]).set(c["value"])
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
