"""Creating and steering ingest jobs from the api: the row first (read your own write), then the command.

Also the watchdog: a running job whose progress stopped (its worker died) is re-issued from its last
cursor; records published twice are dropped by dedupe, so the job finishes without duplicates.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from cryptography.fernet import Fernet

from api.background import BackgroundTask
from api.publish import Publisher
from api.security.company_identity import CompanyIdentity, ProvenCredentials
from pipeline.broker.topics import INGEST_COMMANDS
from pipeline.settings import Settings
from pipeline.storage.queries import ingest as q
from pipeline.storage.store import Store
from schemas.ingest import JobCommand, JobOptions, JobStatistics

log = structlog.get_logger(__name__)


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
                          cursor=job["cursor"], phase=job["phase"], reason=reason, at=datetime.now(UTC),
                          statistics=JobStatistics.model_validate(job["statistics"]) if job["statistics"] else None)

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
                    await self.store.run(q.set_fields, job_id, last_activity=datetime.now(UTC))
                    await self.send(await self.resume_command(job, "run", "worker went quiet; taken over"))
            except Exception:  # noqa: BLE001 - the watchdog must outlive one bad pass
                log.exception("ingest_watchdog_failed")
