"""Liveness of every part: broker, DuckDB, worker(s), materializer. 200 when all are up, else 503."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from api.security import public
from pipeline.metrics import WORKER_EVENTS

router = APIRouter(tags=["operations"])


def _workers(request: Request) -> list[dict[str, Any]]:
    s = request.app.state.settings
    cur = request.app.state.db.cursor()
    try:
        rows = cur.execute(
            "SELECT worker_id, host, pid, epoch(last_seen), counters FROM worker_heartbeats "
            "WHERE last_seen > now() - to_seconds(?) ORDER BY last_seen DESC", [s.worker_stale_after_s * 6]
        ).fetchall()
    finally:
        cur.close()
    now = time.time()
    return [{"worker_id": w, "host": h, "pid": p, "seconds_since_heartbeat": round(now - ts, 1),
             "alive": now - ts <= s.worker_stale_after_s, "counters": orjson.loads(c or "[]")}
            for w, h, p, ts, c in rows]


DEGRADED = {503: {"description": "some part is down: the same report, `status: degraded`",
                  "content": {"application/json": {"schema": {"type": "object"}}}}}


@router.get("/health", dependencies=[public("liveness, for load balancers and `streamdesk up`")], responses=DEGRADED)
async def health(request: Request, response: Response) -> dict[str, Any]:
    state = request.app.state
    # Unauthenticated: no cluster id, which seeds every derived call id (pipeline/ids.py).
    broker = {k: v for k, v in (await state.broker_health()).items() if k != "cluster_id"}
    try:
        await run_in_threadpool(lambda: state.db.cursor().execute("SELECT 1").fetchone())
        duck = {"ok": True, "path": str(state.settings.db_path)}
    except Exception as exc:  # noqa: BLE001
        duck = {"ok": False, "error": str(exc)}
    workers = await run_in_threadpool(_workers, request)
    m = state.materializer
    materializer = {"ok": m.alive and m.error is None, "rows_written": m.rows_written, "error": m.error,
                    "seconds_since_last_batch": None if m.last_batch_at is None
                    else round(time.time() - m.last_batch_at, 1)}
    worker = {"ok": any(w["alive"] for w in workers), "workers": [
        {k: w[k] for k in ("worker_id", "host", "pid", "seconds_since_heartbeat", "alive")} for w in workers]}
    ok = broker["ok"] and duck["ok"] and worker["ok"] and materializer["ok"]
    response.status_code = 200 if ok else 503
    return {"status": "ok" if ok else "degraded", "broker": broker, "duckdb": duck, "worker": worker,
            "materializer": materializer, "recorder": {"sent": state.calls.sent, "buffered": len(state.calls.events)}}


@router.get("/metrics", include_in_schema=False,
            dependencies=[public("Prometheus scrapes it; counters only, no tenant data")])
async def metrics(request: Request) -> Response:
    for w in await run_in_threadpool(_workers, request):
        for c in w["counters"]:
            WORKER_EVENTS.labels(w["worker_id"], c["topic"], c["outcome"]).set(c["value"])
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
