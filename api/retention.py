"""The retention loop the api hosts (it owns the DuckDB writer): every `retention_interval_s`, each family's
rows older than its setting are deleted, `RETENTION_CHUNK` rows a transaction, and seed 004 archives whose
`retentionPolicy` has run out are deleted (`EXPIRED`). A setting of 0 days keeps that family for ever.

| family | setting (days) | dated by |
|---|---|---|
| call histories | `retention_calls_days` | `created_at` |
| dead letters | `retention_dead_letters_days` | `rejected_at` |
| ingest job logs | `retention_job_logs_days` | `timestamp` |
| archived prediction data | the archive's `retentionPolicy` (5 or 10 years, or `LEGAL_HOLD`: never) | `archive_date` |
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from api.background import BackgroundTask, every
from pipeline.metrics import ROWS_EXPIRED
from pipeline.settings import Settings
from pipeline.storage.queries import retention
from pipeline.storage.store import Store

log = structlog.get_logger(__name__)
RETENTION_CHUNK = 5000


class Retention:
    def __init__(self, settings: Settings, store: Store, chunk: int = RETENTION_CHUNK) -> None:
        self.settings = settings
        self.store = store
        self.chunk = chunk
        self._task = BackgroundTask("retention")

    def days(self) -> dict[str, float]:
        s = self.settings
        return {"sys_api_call_histories": s.retention_calls_days, "dead_letters": s.retention_dead_letters_days,
                "ingest_job_logs": s.retention_job_logs_days}

    async def run_once(self, now: datetime | None = None) -> dict[str, int]:
        """One sweep; returns rows deleted per table (archives under `archives`)."""
        now = now or datetime.now(UTC)
        deleted: dict[str, int] = {}
        for table, days in self.days().items():
            if days <= 0:
                continue
            cutoff, total = now - timedelta(days=days), 0
            while (n := await self.store.run(retention.expire_rows, table, cutoff, self.chunk)) > 0:
                total += n
                ROWS_EXPIRED.labels(table).inc(n)
                if n < self.chunk:
                    break
            deleted[table] = total
        archives = 0
        for tenant, user, policy in await self.store.run(retention.expired_archives, now.date()):
            n = await self.store.run(retention.expire_archive, tenant, user)
            ROWS_EXPIRED.labels("archives").inc(n)
            archives += n
            log.info("archive_expired", tenant=tenant, user_id=user, policy=policy, rows=n)
        deleted["archives"] = archives
        if any(deleted.values()):
            log.info("retention_swept", **deleted)
        return deleted

    def start(self) -> None:
        if self.settings.retention_interval_s > 0:
            self._task.start(every(self.settings.retention_interval_s, self.run_once, "retention", first_now=True))

    async def stop(self) -> None:
        await self._task.stop()
