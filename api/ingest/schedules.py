"""Recurring collection (seed 000 "정기 수집 작업 설정 (예: 매일 새벽 2시)"): schedules the api fires on time.

A `POST /ingest/jobs` whose body carries `schedule: {"cron": "0 2 * * *", "timezone": "Asia/Seoul"}` creates the
job as usual and a schedule beside it: the same options (incremental from then on), the company's key kept
Fernet-encrypted as a job keeps it. Every `INGEST_SCHEDULE_INTERVAL_S` the api looks for schedules that are due:

- if a job of that company and domain is running, paused, or queued in the last 10 minutes, this occurrence is
  skipped (and recorded as such): one collection at a time per domain, whichever started it;
- else an incremental job is created from the domain's last cursor and started, as `POST /ingest/jobs` does;
- either way the next time is computed from now, so an api that was down fires a missed schedule once on its
  return, not once per missed occurrence.

`GET /ingest/schedules` lists a company's schedules, `DELETE /ingest/schedules/{id}` cancels one.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from api.background import BackgroundTask, every
from api.errors import ApiError
from api.ingest.jobs import Jobs, new_job_id
from api.wire import iso_z
from pipeline.settings import Settings
from pipeline.storage.queries import ingest as jq
from pipeline.storage.queries import ingest_schedules as q
from pipeline.storage.store import Store
from schemas.ingest import JobCommand, JobOptions, ScheduleSpec

log = structlog.get_logger(__name__)
MAX_ACTIVE_PER_COMPANY = 20
QUEUED_BLOCKS_S = 600  # a job queued this long and never started (auto_start false) no longer holds the domain


def schedule_public(row: dict[str, Any]) -> dict[str, Any]:
    return {"schedule_id": row["schedule_id"], "company_id": row["tenant"], "platform": row["platform"],
            "domain": row["domain"], "cron": row["cron"], "timezone": row["timezone"], "status": row["status"],
            "next_run_at": iso_z(row["next_run_at"]), "last_run_at": iso_z(row["last_run_at"]),
            "last_job_id": row["last_job_id"], "last_skipped_at": iso_z(row["last_skipped_at"]),
            "last_skip_reason": row["last_skip_reason"], "runs": row["runs"], "skipped": row["skipped"],
            "created_at": iso_z(row["created_at"]), "options": row["options"]}


class IngestSchedules:
    def __init__(self, settings: Settings, store: Store, jobs: Jobs) -> None:
        self.settings, self.store, self.jobs = settings, store, jobs
        self._task = BackgroundTask("ingest-schedules")

    def start(self) -> None:
        if self.settings.ingest_schedule_interval_s > 0:
            self._task.start(every(self.settings.ingest_schedule_interval_s, self.fire_due, "ingest-schedules",
                                   first_now=True))

    async def stop(self) -> None:
        await self._task.stop()

    async def check_room(self, company: str) -> None:
        """409 when the company already keeps MAX_ACTIVE_PER_COMPANY schedules (checked before the job is made)."""
        active = [r for r in await self.store.run(q.list_schedules, company) if r["status"] == "active"]
        if len(active) >= MAX_ACTIVE_PER_COMPANY:
            raise ApiError(409, f"company {company} already has {len(active)} active schedules (at most "
                                f"{MAX_ACTIVE_PER_COMPANY}); cancel one with DELETE /ingest/schedules/{{id}}",
                           details={"active": len(active)})

    async def create(self, job: dict[str, Any], opts: JobOptions, spec: ScheduleSpec,
                     now: datetime | None = None) -> dict[str, Any]:
        """A schedule for the company and domain of `job` (just created from proven credentials), with its key."""
        now = now or datetime.now(UTC)
        schedule_id = f"ingest-schedule-{secrets.token_hex(8)}"
        await self.store.run(q.insert_schedule, {
            "schedule_id": schedule_id, "tenant": job["tenant"], "platform": job["platform"], "domain": job["domain"],
            "cron": spec.cron, "timezone": spec.timezone,
            "options": opts.model_copy(update={"incremental": True, "purge": False, "force_rebuild": False,
                                               "auto_start": True}).model_dump(mode="json"),
            "api_key_token": await self.store.run(jq.job_token, job["job_id"]), "status": "active",
            "created_at": now, "next_run_at": spec.next_after(now), "runs": 0, "skipped": 0})
        log.info("ingest_schedule_created", schedule_id=schedule_id, tenant=job["tenant"], domain=job["domain"],
                 cron=spec.cron, timezone=spec.timezone)
        return await self.store.run(q.get_schedule, schedule_id, job["tenant"])

    async def cancel(self, company: str, schedule_id: str) -> dict[str, Any]:
        row = await self.store.run(q.get_schedule, schedule_id, company)
        if row is None:
            raise ApiError(404, f"no schedule {schedule_id} for company {company}")
        await self.store.write(q.cancel_schedule, schedule_id, company, datetime.now(UTC))
        return await self.store.run(q.get_schedule, schedule_id, company)

    async def fire_due(self, now: datetime | None = None) -> list[tuple[str, str]]:
        """Start (or skip) every schedule that is due; returns (schedule id, job id or 'skipped: why')."""
        now = now or datetime.now(UTC)
        done = []
        for row in await self.store.run(q.due_schedules, now):
            spec = ScheduleSpec(cron=row["cron"], timezone=row["timezone"])
            following = spec.next_after(now)
            busy = await self.store.run(q.active_job, row["tenant"], row["domain"],
                                        now - timedelta(seconds=QUEUED_BLOCKS_S))
            if busy is not None:
                reason = f"job {busy} of this domain was still queued, running or paused"
                await self.store.write(q.mark_skipped, row["schedule_id"], now, reason, following)
                log.info("ingest_schedule_skipped", schedule_id=row["schedule_id"], busy=busy)
                done.append((row["schedule_id"], f"skipped: {reason}"))
                continue
            try:
                job_id = await self._start(row, now)
            except Exception as exc:  # noqa: BLE001 - the broker away: recorded, tried again at the next time
                reason = f"the run could not be started: {type(exc).__name__}: {exc}"
                await self.store.write(q.mark_skipped, row["schedule_id"], now, reason, following)
                log.warning("ingest_schedule_start_failed", schedule_id=row["schedule_id"], error=str(exc))
                done.append((row["schedule_id"], f"skipped: {reason}"))
                continue
            await self.store.write(q.mark_fired, row["schedule_id"], now, job_id, following)
            log.info("ingest_schedule_fired", schedule_id=row["schedule_id"], job_id=job_id)
            done.append((row["schedule_id"], job_id))
        return done

    async def _start(self, row: dict[str, Any], now: datetime) -> str:
        """An incremental job from the domain's last cursor, created and started as POST /ingest/jobs does."""
        opts = JobOptions.model_validate(row["options"])
        token = await self.store.run(q.schedule_token, row["schedule_id"])
        cursor = await self.store.run(jq.last_cursor, row["tenant"], row["domain"])
        job_id = new_job_id(row["tenant"], now)
        await self.store.run(jq.insert_job, {
            "job_id": job_id, "tenant": row["tenant"], "platform": row["platform"], "domain": row["domain"],
            "status": "queued", "priority": opts.priority.value, "options": opts.model_dump(mode="json"),
            "api_key_token": token, "created_at": now, "current_step": "queued", "completed_items": 0,
            "cursor": cursor, "phase": "collecting_tickets", "seq": 0})
        try:
            await self.jobs.send(JobCommand(action="run", job_id=job_id, tenant=row["tenant"], domain=row["domain"],
                                            options=opts, api_key_token=token, cursor=cursor, at=now))
        except Exception as exc:
            await self.store.write(jq.set_fields, job_id, status="failed", completed_at=now,
                                 error=f"the scheduled run could not be started: {type(exc).__name__}: {exc}")
            raise
        return job_id
