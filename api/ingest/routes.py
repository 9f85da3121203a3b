"""Seed 000: `/ingest` (run and wait), `/ingest/jobs` (create, list, read), control, and the live stream.

Credentials travel only in headers, and a job is created only for a key the platform confirmed (api/security/);
options only in the JSON body; query parameters on the POST routes are ignored and the response lists them under
`ignored_query_parameters`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Body, Query, Request, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from api.deps import JobsDep, SchedulesDep, ServicesDep, StoreDep
from api.errors import ApiError
from api.ingest.jobs import find_job, job_detail, job_summary
from api.ingest.schedules import schedule_public
from api.security import CompanyReader, CompanyStream, ProvenCompany, public
from api.security.company_keys import refuse_body_credentials
from api.services import Services
from api.wire import iso_z
from pipeline.storage.queries import ingest as q
from pipeline.storage.queries import ingest_schedules as sq
from pipeline.storage.store import Store
from schemas.ingest import TERMINAL, ControlBody, IngestOptions, JobOptions, ScheduleSpec
from schemas.platform_api import (
    ControlResult,
    IngestResult,
    IngestSchedule,
    JobCreated,
    JobDetail,
    JobList,
    ScheduleList,
)

router = APIRouter(tags=["ingest (seed 000)"])
Company = CompanyReader
RawBody = Annotated[dict[str, Any], Body(default_factory=dict, description="collection options only")]
SYNC_TIMEOUT_S = 900.0
MARK_TIMEOUT_S = 60.0  # a completed run waits this long for its records to be stored and embedded
MAX_PAGE = 100_000  # 10 million jobs at the largest page size; bigger numbers would overflow DuckDB's BIGINT


def _options(model: type[IngestOptions], body: dict[str, Any]) -> Any:
    refuse_body_credentials(body)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        details = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False)]
        raise ApiError(422, "invalid options: " + "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}"
                                                            for d in details), details=details) from None


def _ignored(request: Request) -> dict[str, str]:
    return dict(request.query_params)


@router.post("/ingest/jobs", status_code=202, response_model=JobCreated, response_model_exclude_unset=True)
async def create_job(request: Request, proven: ProvenCompany, jobs: JobsDep, schedules: SchedulesDep,
                     body: RawBody) -> dict[str, Any]:
    """Creates a job (`queued`) for a company whose key the platform confirmed; with `auto_start` a worker picks
    it up at once. With `schedule: {"cron": "0 2 * * *", "timezone": "Asia/Seoul"}` the collection also recurs:
    an incremental run at each cron time (see GET /ingest/schedules)."""
    spec = _schedule(body.pop("schedule", None))
    opts = _options(JobOptions, body)
    if spec is not None:
        await schedules.check_room(proven.creds.company)
    job = await jobs.create(proven, opts, _ignored(request))
    url = f"/ingest/jobs/{job['job_id']}"
    host = request.headers.get("host", f"{request.url.hostname}:{request.url.port}")
    items, duration = await jobs.estimate(job, opts)
    out = {"job_id": job["job_id"], "status": job["status"], "priority": job["priority"],
           "estimated_duration": duration, "estimated_items": items, "created_at": iso_z(job["created_at"]),
           "progress_url": url, "progress_tracking": {"status_url": url, "websocket_url": f"ws://{host}{url}/stream"},
           "control": {"pause_url": f"{url}/control", "cancel_url": f"{url}/control"}}
    if spec is not None:
        out["schedule"] = schedule_public(await schedules.create(job, opts, spec))
    return _with_ignored(out, request)


def _schedule(raw: Any) -> ScheduleSpec | None:
    if raw is None:
        return None
    try:
        return ScheduleSpec.model_validate(raw)
    except ValidationError as exc:
        details = [{"loc": ["schedule", *e["loc"]], "msg": e["msg"]} for e in exc.errors(include_url=False)]
        raise ApiError(422, "invalid schedule: " + "; ".join(d["msg"] for d in details), details=details) from None


@router.get("/ingest/schedules", response_model=ScheduleList)
async def list_schedules(company: Company, store: StoreDep) -> dict[str, Any]:
    """The company's recurring collections, newest first, cancelled ones included."""
    return {"schedules": [schedule_public(r) for r in await store.run(sq.list_schedules, company)]}


@router.delete("/ingest/schedules/{schedule_id}", response_model=IngestSchedule)
async def cancel_schedule(company: Company, schedules: SchedulesDep, schedule_id: str) -> dict[str, Any]:
    """Stops a recurring collection (a run it already started goes on; cancel that job to stop it)."""
    return schedule_public(await schedules.cancel(company, schedule_id))


def _with_ignored(out: dict[str, Any], request: Request) -> dict[str, Any]:
    if request.query_params:
        out["ignored_query_parameters"] = sorted(request.query_params)
        out["warning"] = "query parameters are ignored on POST routes: send options in the JSON body"
    return out


@router.get("/ingest/jobs", response_model=JobList)
async def list_jobs(
    company: Company, store: StoreDep,
    status: Literal["queued", "running", "paused", "completed", "failed", "cancelled"] | None = None,
    platform: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    company_id: Annotated[str | None, Query(description="must be the X-Company-ID (or token tenant)")] = None,
) -> dict[str, Any]:
    if company_id is not None and company_id != company:
        raise ApiError(403, f"you may list the jobs of company {company} only")
    rows, total, counts = await store.run(q.list_jobs, company, status, platform, limit, page)
    return {"jobs": [job_summary(j) for j in rows],
            "pagination": {"page": page, "limit": limit, "total": total, "total_pages": -(-total // limit)},
            "summary": {"total_jobs": sum(counts.values()),
                        **{s: counts.get(s, 0) for s in ("queued", "running", "paused", "completed", "failed",
                                                         "cancelled")}}}


@router.get("/ingest/jobs/{job_id}", response_model=JobDetail)
async def get_job(company: Company, store: StoreDep, job_id: str) -> dict[str, Any]:
    job = await find_job(store, company, job_id)
    marks = set(await store.run(q.marks, job_id))
    # Beyond the seed: a finished job's records are all in DuckDB (materialized), and embedded (searchable).
    return job_detail(job, await store.run(q.logs, job_id)) | {
        "storage": {"materialized": "stored" in marks, "searchable": "embedded" in marks}}


@router.post("/ingest/jobs/{job_id}/control", response_model=ControlResult)
async def control_job(company: Company, jobs: JobsDep, job_id: str, body: ControlBody) -> dict[str, Any]:
    return await jobs.control(company, job_id, body)


@router.websocket("/ingest/jobs/{job_id}/stream")
async def stream_job(ws: WebSocket, job_id: str, company: CompanyStream, store: StoreDep) -> None:
    """Pushes the job's state whenever it changes, until it finishes (the seed's planned live stream)."""
    if company is None:  # the same headers (or a token) as the GET
        await ws.close(code=4401, reason="send X-Company-ID with its X-API-Key, or Authorization: Bearer <token>")
        return
    await ws.accept()
    last = None
    try:
        while True:
            job = await store.run(q.get_job, job_id, company)
            if job is None:
                await ws.send_json({"error": f"no job {job_id}"})
                break
            if job["seq"] != last:
                last = job["seq"]
                await ws.send_json(job_detail(job, await store.run(q.logs, job_id, 5)))
            if job["status"] in TERMINAL:
                break
            await asyncio.sleep(0.2)
        await ws.close()
    except WebSocketDisconnect:
        pass


@router.post("/ingest", response_model=IngestResult, response_model_exclude_unset=True)
async def ingest_now(request: Request, proven: ProvenCompany, services: ServicesDep, body: RawBody) -> dict[str, Any]:
    """Runs a collection and answers when it is done (the seed's synchronous route; small runs)."""
    creds = proven.creds
    opts = JobOptions.model_validate(_options(IngestOptions, body).model_dump())
    started = datetime.now(UTC)
    job = await services.jobs.create(proven, opts, _ignored(request))
    job = await _until_done(services.store, creds.company, job["job_id"])
    if job["status"] == "failed":
        status = 401 if "rejected the API key" in (job["error"] or "") else 502
        raise ApiError(status, job["error"] or "the collection failed", code="INGEST_FAILED",
                       details={"execution_id": job["job_id"]})
    stats, db = job["statistics"] or {}, services.settings.db_path
    stages = await _until_marked(services, job["job_id"])
    counts = await services.store.run(q.record_counts, creds.company)
    done = job["completed_at"] or datetime.now(UTC)
    out = {"status": job["status"], "execution_id": job["job_id"],
           "results": {k: stats.get(k, 0) for k in ("tickets_collected", "conversations_collected",
                                                    "kb_articles_collected", "attachments_processed")},
           "storage": {"database_path": str(db), "tables_created": list(counts), "records": counts,
                       "total_records": sum(counts.values()),
                       # Beyond the seed: whether every collected record is stored, and embedded for /search.
                       "materialized": "stored" in stages, "searchable": "embedded" in stages},
           "execution_time": f"{(done - started).total_seconds():.1f}s",
           "timing": {"started_at": iso_z(started), "completed_at": iso_z(done),
                      "duration_seconds": round((done - started).total_seconds(), 1)},
           "next_steps": ["Use /ingest/sync-summaries to enable vector search",
                          "Check data quality with /ingest/metrics"]}
    return _with_ignored(out, request)


async def _until_done(store: Store, company: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    while time.monotonic() < deadline:
        job = await find_job(store, company, job_id)
        if job["status"] in TERMINAL:
            return job
        await asyncio.sleep(0.1)
    raise ApiError(504, f"the collection is still running after {SYNC_TIMEOUT_S:.0f} s; follow it at "
                        f"/ingest/jobs/{job_id}", details={"job_id": job_id})


async def _until_marked(services: Services, job_id: str) -> set[str]:
    """Wait (a while) for the job's end mark to be stored and embedded (pipeline/ingest/marks.py)."""
    deadline = time.monotonic() + MARK_TIMEOUT_S
    stages: set[str] = set()
    while time.monotonic() < deadline:
        stages = set(await services.store.run(q.marks, job_id))
        if {"stored", "embedded"} <= stages:
            await anyio.to_thread.run_sync(services.search.refresh)  # searchable now, not a second later
            break
        await asyncio.sleep(0.05)
    return stages


@router.get("/ingest", include_in_schema=False,
            dependencies=[public("answers a GET with what to do instead; runs nothing")])
async def ingest_get(request: Request) -> None:
    """The seed's first pitfall: GET with query parameters. Nothing runs; the answer says what to do instead."""
    ignored = sorted(request.query_params)
    raise ApiError(405, "GET /ingest does nothing: POST /ingest with the headers X-Company-ID, X-Platform, "
                        "X-Domain, X-API-Key and the options as a JSON body (query parameters are ignored)",
                   code="METHOD_NOT_ALLOWED", details={"ignored_query_parameters": ignored},
                   headers={"Allow": "POST"})
