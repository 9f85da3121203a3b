"""Creating and steering ingest jobs from the api: the row first (read your own write), then the command.

Also the watchdog: a running job whose progress stopped (its worker died) is re-issued from its last
cursor; records published twice are dropped by dedupe, so the job finishes without duplicates.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from cryptography.fernet import Fernet

from api.background import BackgroundTask
from api.errors import ApiError
from api.publish import Publisher
from api.security.company_identity import CompanyIdentity, ProvenCredentials
from api.wire import iso_z
from pipeline.broker.topics import INGEST_COMMANDS
from pipeline.ingest.freshdesk.ratelimit import budget_for
from pipeline.settings import Settings
from pipeline.storage.queries import ingest as q
from pipeline.storage.store import Store
from schemas.ingest import ALLOWED_FROM, RESULT, TERMINAL, ControlBody, JobCommand, JobOptions, JobStatistics

log = structlog.get_logger(__name__)
CONTROL_WAIT_S = 2.0


def new_job_id(company: str, now: datetime) -> str:
    safe = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in company.lower())[:30]
    return f"ingest-job-{safe}-{now:%Y%m%d}-{secrets.token_hex(6)}"  # unguessable: ids are not credentials


class Jobs:
    def __init__(self, settings: Settings, store: Store, publisher: Publisher) -> None:
        self.settings, self.store, self.publisher = settings, store, publisher
        self.fernet = Fernet(settings.fernet_key().encode())
        self._task = BackgroundTask("ingest-watchdog")
        self.on_purge: Callable[[str], None] | None = None  # the search index forgets the company's documents
        self.identity = CompanyIdentity(settings, store)

    async def create(self, proven: ProvenCredentials, opts: JobOptions, ignored: dict[str, str]) -> dict[str, Any]:
        """A job for credentials the platform confirmed (`identity.prove`): only then may it purge."""
        creds = proven.creds
        now = datetime.now(UTC)
        job_id = new_job_id(creds.company, now)
        token = self.fernet.encrypt(creds.api_key.get_secret_value().encode()).decode()
        cursor = None
        if opts.purge or opts.force_rebuild:
            # Rebuilt from the full history whatever `incremental` says: an incremental run after a purge would
            # leave only what changed since the last job.
            purged = await self.store.run(q.purge_company, creds.company)
            log.info("ingest_purged", tenant=creds.company, rows=purged)
            if self.on_purge is not None:
                self.on_purge(creds.company)
        elif opts.incremental:
            cursor = await self.store.run(q.last_cursor, creds.company, creds.domain)
        await self.store.run(q.insert_job, {
            "job_id": job_id, "tenant": creds.company, "platform": creds.platform, "domain": creds.domain,
            "status": "queued", "priority": opts.priority.value, "options": opts.model_dump(mode="json"),
            "api_key_token": token, "created_at": now, "current_step": "queued", "completed_items": 0,
            "cursor": cursor, "phase": "collecting_tickets", "seq": 0, "ignored_query": ignored or None})
        if opts.auto_start:
            await self.send(JobCommand(action="run", job_id=job_id, tenant=creds.company, domain=creds.domain,
                                       options=opts, api_key_token=token, cursor=cursor, at=now))
        return await self.store.run(q.get_job, job_id, creds.company)

    async def send(self, cmd: JobCommand) -> None:
        await self.publisher.send(INGEST_COMMANDS, cmd.model_dump_json().encode(), cmd.domain.encode())

    async def resume_command(self, job: dict[str, Any], action: str, reason: str | None = None) -> JobCommand:
        """A command that can (re)start the job anywhere: its options, encrypted key and last cursor."""
        token = await self.store.run(q.job_token, job["job_id"])
        return JobCommand(action=action, job_id=job["job_id"], tenant=job["tenant"], domain=job["domain"],
                          options=JobOptions.model_validate(job["options"]), api_key_token=token,
                          priority=job["priority"],  # a priority_change made since creation goes with it
                          cursor=job["cursor"], phase=job["phase"], reason=reason, at=datetime.now(UTC),
                          statistics=JobStatistics.model_validate(job["statistics"]) if job["statistics"] else None)

    async def control(self, company: str, job_id: str, body: ControlBody) -> dict[str, Any]:
        """pause / resume / cancel / priority_change / start a company's job; answers once the worker confirmed
        (or after CONTROL_WAIT_S), with the job's real status. 404 for a job of another company, 409 when the
        action does not apply to the job's status."""
        store = self.store
        job = await find_job(store, company, job_id)
        before = job["status"]
        if before not in ALLOWED_FROM[body.action]:
            raise ApiError(409, f"cannot {body.action} a {before} job", details={"status": before})
        if body.action == "priority_change":
            if body.options.priority is None:
                raise ApiError(422, "priority_change needs options.priority: low, normal, high or urgent")
            await store.write(q.set_fields, job_id, priority=body.options.priority.value)
        command = await self.resume_command(job, "run" if body.action == "start" else body.action, body.reason)
        command = command.model_copy(update={"graceful": body.options.graceful_shutdown,
                                             "save_progress": body.options.save_progress})
        if body.options.priority is not None:
            command = command.model_copy(update={"priority": body.options.priority})
        await self.send(command)
        after = await _settle(store, company, job_id, RESULT.get(body.action))
        done, total = after["completed_items"] or 0, after["total_items"]
        return {"job_id": job_id, "action_performed": body.action, "previous_status": before,
                "current_status": after["status"], "timestamp": iso_z(datetime.now(UTC)),
                "progress_saved": body.action == "pause" and body.options.save_progress and after["cursor"] is not None,
                "resume_capability": after["status"] == "paused", "priority": after["priority"],
                "message": _message(body.action, after["status"], done, total)}

    async def estimate(self, job: dict[str, Any], opts: JobOptions) -> tuple[int | None, str | None]:
        """(estimated_items, estimated_duration) for a new job, the seed's "2500" and "15-30 minutes".

        Items: the limits when both are set; else what this domain's last completed full (not incremental) run
        collected (an incremental run from a cursor has no such guide). Duration: that run's duration scaled to
        the items, as a range from 0.8x to 1.25x; with no earlier run, the limits at the account's pace
        (credits per minute, a ticket and its conversations about two credits); null when neither is known.
        """
        resuming = opts.incremental and job.get("cursor") is not None  # only what changed since: not a full run
        previous = None if resuming else await self.store.run(q.last_full_run, job["tenant"], job["domain"])
        limited = opts.max_tickets is not None and (not opts.include_kb or opts.max_articles is not None)
        items = (opts.max_tickets + (opts.max_articles or 0 if opts.include_kb else 0)) if limited else None
        if previous is not None:
            ran_items, ran_s = previous
            items = items if items is not None else ran_items
            if ran_items and ran_s:
                return items, _minutes_range(ran_s * min(1.0, items / ran_items) if items else ran_s)
            return items, None
        if items:
            pace = budget_for(job["domain"]).rate * 60 / 2  # tickets a minute, at about two credits each
            return items, _minutes_range(60 * items / pace) if pace else None
        return items, None

    def start_watchdog(self) -> None:
        self._task.start(self._watch())

    async def stop(self) -> None:
        await self._task.stop()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            try:
                for job_id in await self.store.run(q.stale_running, self.settings.ingest_stale_after_s):
                    tenant = await self.store.run(q.job_tenant, job_id)
                    job = await self.store.run(q.get_job, job_id, tenant)
                    log.warning("ingest_job_stale_reissued", job_id=job_id, cursor=job["cursor"])
                    await self.store.write(q.set_fields, job_id, last_activity=datetime.now(UTC))
                    await self.send(await self.resume_command(job, "run", "worker went quiet; taken over"))
            except Exception:  # noqa: BLE001 - the watchdog must outlive one bad pass
                log.exception("ingest_watchdog_failed")


def progress(job: dict[str, Any]) -> dict[str, Any]:
    done, total = job["completed_items"] or 0, job["total_items"]
    return {"current_step": job["current_step"], "step_details": job["step_details"] or "", "completed_items": done,
            "total_items": total, "total_is_estimate": bool((job["statistics"] or {}).get("total_is_estimate")),
            "percentage": min(100.0, round(100 * done / total, 1)) if total else None,
            "items_per_second": job["items_per_second"] or 0.0}


def estimated_completion(job: dict[str, Any]) -> str | None:
    total, done, rate = job["total_items"], job["completed_items"] or 0, job["items_per_second"] or 0
    if job["status"] != "running" or not total or not rate:
        return None
    return iso_z(datetime.now(UTC) + timedelta(seconds=(total - done) / rate))


def job_summary(job: dict[str, Any]) -> dict[str, Any]:
    return {"job_id": job["job_id"], "company_id": job["tenant"], "platform": job["platform"],
            "domain": job["domain"], "status": job["status"], "priority": job["priority"],
            "progress": progress(job), "created_at": iso_z(job["created_at"]), "started_at": iso_z(job["started_at"]),
            "estimated_completion": estimated_completion(job)}


async def find_job(store: Store, company: str, job_id: str) -> dict[str, Any]:
    job = await store.run(q.get_job, job_id, company)
    if job is None:
        raise ApiError(404, f"no job {job_id} for company {company}")  # another company's job does not exist
    return job


def job_detail(job: dict[str, Any], logs: list[dict[str, Any]]) -> dict[str, Any]:
    started, last = job["started_at"], job["last_activity"] or job["created_at"]
    end = job["completed_at"] or (datetime.now(UTC) if job["status"] == "running" else last)
    return {**job_summary(job),
            "timing": {"created_at": iso_z(job["created_at"]), "started_at": iso_z(started),
                       "last_activity": iso_z(last), "completed_at": iso_z(job["completed_at"]),
                       "estimated_completion": estimated_completion(job),
                       "elapsed_seconds": round((end - started).total_seconds(), 1) if started else 0},
            "statistics": job["statistics"] or {}, "error": job["error"],
            "options": job["options"], "ignored_query_parameters": sorted(job["ignored_query"] or {}),
            "logs": [{**line, "timestamp": iso_z(line["timestamp"])} for line in logs]}


async def _settle(store: Store, company: str, job_id: str, want: str | None) -> dict[str, Any]:
    """Wait (briefly) for the worker to confirm, so the answer states the job's real status."""
    deadline = time.monotonic() + CONTROL_WAIT_S
    while True:
        job = await find_job(store, company, job_id)
        if want is None or job["status"] == want or job["status"] in TERMINAL or time.monotonic() > deadline:
            return job
        await asyncio.sleep(0.05)


def _message(action: str, status: str, done: int, total: int | None) -> str:
    at = f"{done}/{total}" if total else f"{done}"
    if action == "pause" and status == "paused":
        return f"Job paused successfully. Progress saved at {at} items."
    if action in ("resume", "start") and status == "running":
        return f"Job {'resumed' if action == 'resume' else 'started'} from {at} items."
    if action == "cancel" and status == "cancelled":
        return f"Job cancelled at {at} items."
    if action == "priority_change":
        return "Priority changed."
    return f"{action} requested; the job is {status} (the worker confirms shortly)."


def _minutes_range(seconds: float) -> str:
    """"15-30 minutes" the way the seed writes it: 0.8x to 1.25x, in whole minutes (at least 1)."""
    low, high = max(1, round(seconds * 0.8 / 60)), max(1, round(seconds * 1.25 / 60))
    return f"{low}-{high} minutes" if high > low else f"about {low} minute{'s' if low > 1 else ''}"
