"""Where an ingest job runs: Freshdesk -> `tickets.raw` batches, with progress events and live control.

A job lives in the worker that owns its domain's partition of `ingest.commands`. It pulls threads (ticket +
conversations, `parallel_workers` at a time, on the domain's shared rate budget), then the knowledge base,
and publishes raw records in batches of at most `batch_size` records and 1 MiB (what the normalizer takes),
each thread whole in one. Between records it honours pause (keeping its cursor), cancel and priority changes,
and every progress event carries the cursor: a job re-run from it (after a worker died, or a resume on another
worker) repeats at most the last batch, which dedupe drops.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from pydantic import SecretStr

from pipeline.broker.entry_messages import MAX_VALUE_BYTES
from pipeline.ingest.estimate import estimate_total
from pipeline.ingest.freshdesk.client import FreshdeskClient
from pipeline.ingest.freshdesk.errors import FreshdeskAuthError, FreshdeskDomainError, FreshdeskError
from pipeline.ingest.freshdesk.records import TicketCursor
from pipeline.ingest.freshdesk.threads import iter_threads
from schemas.ingest import JobCommand, JobProgress, JobStatistics, JobStatus, LogLine

log = structlog.get_logger(__name__)
MAX_MESSAGE_BYTES = MAX_VALUE_BYTES  # what the tickets normalizer accepts per tickets.raw message (1 MiB)
MAX_CONTENT_IN_TOPIC = 700 * 1024  # attachment bytes carried on tickets.raw: as base64 plus metadata, < 1 MiB
PROGRESS_EVERY_S = 0.5
RATE_WARN_PERCENT = 80.0  # seed 000: "Rate limit approaching, adding delay" past this share of the budget


class Cancelled(Exception):
    """The job was cancelled by a control command."""


class Relist(Exception):
    """Resumed after a pause that dropped its open batch: list again from the last published position."""


@dataclass
class JobControl:
    """What control commands change in a running job; the job checks it between records."""

    running: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False
    reason: str | None = None
    priority: str = "normal"
    graceful: bool = True  # pause/cancel: publish the open batch first (else drop it: a resume repeats it)
    save_progress: bool = True  # pause/cancel: the position reached is the resume point (else where it began)

    def __post_init__(self) -> None:
        self.running.set()

    async def checkpoint(self, on_pause: Callable[[], Awaitable[None]]) -> None:
        if self.cancelled:
            raise Cancelled(self.reason or "cancelled")
        if not self.running.is_set():
            await on_pause()
            await self.running.wait()
        if self.cancelled:
            raise Cancelled(self.reason or "cancelled")


Emit = Callable[[list[dict[str, Any]]], Awaitable[None]]
Report = Callable[[JobProgress], Awaitable[None]]


class IngestJob:
    """One run of one job command."""

    def __init__(self, cmd: JobCommand, api_key: SecretStr, base_url: str | None, emit: Emit, report: Report,
                 control: JobControl, worker: str, per_page: int = 100, backoff_s: float = 0.5) -> None:
        self.cmd, self.opts, self.control, self.worker = cmd, cmd.options, control, worker
        self.client = FreshdeskClient(cmd.domain, api_key, base_url=base_url, max_retries=self.opts.max_retries,
                                      per_page=per_page, backoff_s=backoff_s, priority=lambda: self.control.priority,
                                      event_hooks={"request": [self._sent], "response": [self._answered]})
        self.emit, self.report = emit, report
        self.stats = cmd.statistics.model_copy() if cmd.statistics else JobStatistics()
        self.batch: list[dict[str, Any]] = []
        self._batch_bytes = 2  # the batch as one JSON array: brackets, then each record and its comma
        self.logs: list[LogLine] = []
        self.seq = int(time.time() * 1000) * 1000  # increasing across re-runs on other workers
        self.started = datetime.now(UTC)
        self.cursor: dict[str, Any] | None = cmd.cursor  # the position of the last *published* thread
        self._pending: tuple[dict[str, Any] | None, int, int] = (None, 0, 0)  # unpublished: cursor, tickets, convs
        self.phase = cmd.phase or "collecting_tickets"
        self.step_details, self._last_report = "", 0.0
        self._done_at_start = self.stats.tickets_collected + self.stats.kb_articles_collected  # a re-run's rate
        self._warned_at = float("-inf")  # the last "Rate limit approaching" line
        self._batch_t0 = time.perf_counter()
        self._relist = False
        self._walk: list[tuple[float, int]] = []  # (seconds of updated_at walked, tickets): the estimate's evidence

    async def _sent(self, request: Any) -> None:
        request.extensions["streamdesk_t0"] = time.perf_counter()

    async def _answered(self, response: Any) -> None:
        t0 = response.request.extensions.get("streamdesk_t0")
        if t0 is not None:
            self.stats.api_time_ms += (time.perf_counter() - t0) * 1000
        total, left = response.headers.get("X-RateLimit-Total"), response.headers.get("X-RateLimit-Remaining")
        if total and left and total.isdigit() and left.lstrip("-").isdigit() and int(total):
            self.stats.rate_limit_usage = round(100 * (1 - int(left) / int(total)), 1)
            if self.stats.rate_limit_usage >= RATE_WARN_PERCENT and time.monotonic() - self._warned_at > 60:
                self._warned_at = time.monotonic()  # the budget now paces requests to what the server has left
                self.note("WARN", "Rate limit approaching, adding delay", remaining_requests=int(left),
                          limit=int(total), usage_percent=self.stats.rate_limit_usage)

    def note(self, level: str, message: str, **details: Any) -> None:
        self.logs.append(LogLine(timestamp=datetime.now(UTC), level=level, message=message, details=details))
        log.info("ingest_job_log", job_id=self.cmd.job_id, level=level, message=message)

    async def progress(self, status: JobStatus, force: bool = False, error: str | None = None) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < PROGRESS_EVERY_S:
            return
        self._last_report, self.seq = now, self.seq + 1
        s, c = self.stats, self.client.stats
        s.api_calls, s.retries_performed, s.errors_encountered, s.rate_limited = (
            c.requests, c.retries, c.errors, c.throttled)
        done = s.tickets_collected + s.kb_articles_collected
        elapsed = max((datetime.now(UTC) - self.started).total_seconds(), 1e-3)
        total, s.total_is_estimate = self._total()
        rate = round((done - self._done_at_start) / elapsed, 2)
        if not self.control.save_progress:  # the position is the run's start: so are the counts it goes with
            s = self.cmd.statistics.model_copy() if self.cmd.statistics else JobStatistics()
            done = s.tickets_collected + s.kb_articles_collected
        logs, self.logs = self.logs, []
        await self.report(JobProgress(
            job_id=self.cmd.job_id, tenant=self.cmd.tenant, domain=self.cmd.domain, seq=self.seq, status=status,
            current_step=self.phase, step_details=self.step_details, completed_items=done, total_items=total,
            items_per_second=rate, statistics=s.model_copy(),
            cursor=self.cursor if self.control.save_progress else self.cmd.cursor,
            phase=self.phase if self.control.save_progress else (self.cmd.phase or "collecting_tickets"),
            started_at=self.started, at=datetime.now(UTC), error=error,
            worker=self.worker, logs=logs))

    def _total(self) -> tuple[int | None, bool]:
        """(items the job will collect, whether that is an estimate). Freshdesk has no count endpoint: without a
        limit the tickets are estimated from the listing's progress (estimate.py) until the listing ends, and
        the knowledge base counts what it has so far."""
        o, s = self.opts, self.stats
        if self.phase != "collecting_tickets":
            tickets, estimated = s.tickets_collected, False
        elif o.max_tickets is not None:
            tickets, estimated = o.max_tickets, False
        else:
            position = TicketCursor.from_dict(self.cursor).updated_at if self.cursor else None
            if position is not None and s.listing_from is not None:
                self._walk.append(((position - s.listing_from).total_seconds(), s.tickets_collected))
                if len(self._walk) > 512:  # a long job: every other sample is evidence enough
                    self._walk = self._walk[::2]
            s.estimated_total_tickets = estimate_total(s.tickets_collected, s.listing_from, position,
                                                       s.listing_to or datetime.now(UTC), walk=self._walk)
            tickets, estimated = s.estimated_total_tickets, True
        if tickets is None:
            return None, False
        if not o.include_kb or o.max_articles == 0:
            return tickets, estimated
        if o.max_articles is not None:
            return tickets + o.max_articles, estimated
        return tickets + s.kb_articles_collected, True  # articles: as many as listed so far

    async def record(self, kind: str, record: dict[str, Any], flush: bool = True) -> None:
        await self.records([(kind, record)], flush)

    async def records(self, items: list[tuple[str, dict[str, Any]]], flush: bool = True) -> None:
        """Queue records that travel in one message (a ticket with its conversations and attachments, which its
        searchable object is built from); `flush=False` leaves the batch open. No message grows past
        MAX_MESSAGE_BYTES (the normalizer dead-letters bigger ones): a batch the records would push past it is
        published first, and records too big together for any message are split between messages, in order."""
        envelopes = [{"tenant": self.cmd.tenant, "platform": "freshdesk", "domain": self.cmd.domain, "kind": kind,
                      "record": record, "job_id": self.cmd.job_id} for kind, record in items]
        sizes = [len(orjson.dumps(e)) + 1 for e in envelopes]
        if self.batch and self._batch_bytes + sum(sizes) > MAX_MESSAGE_BYTES:
            await self.flush()
        for envelope, size in zip(envelopes, sizes, strict=True):
            if self.batch and self._batch_bytes + size > MAX_MESSAGE_BYTES:
                await self.flush()
            self.batch.append(envelope)
            self._batch_bytes += size
        if flush and len(self.batch) >= self.opts.batch_size:
            await self.flush()

    async def flush(self) -> None:
        """Publish the batch; only then do the cursor and counts move past it (a re-run repeats, never skips)."""
        if self.batch:
            batch, self.batch, self._batch_bytes = self.batch, [], 2
            await self.emit(batch)
            cursor, tickets, convs = self._pending
            if cursor is not None:
                self.cursor = cursor
            self.stats.tickets_collected += tickets
            self.stats.conversations_collected += convs
            self._pending = (None, 0, 0)
            self._batch_done(batch)
            await self.progress("running")

    def _batch_done(self, batch: list[dict[str, Any]]) -> None:
        """The seed's log line per published batch: "Successfully processed ticket batch 5/12". The second
        number is the batches the job will publish: the tickets still to come (the limit, or without one the
        estimate) at the tickets-per-batch rate so far."""
        s = self.stats
        s.batches_published += 1
        number, of, estimated = s.batches_published, "", False
        kind = "ticket" if any(r["kind"] == "ticket" for r in batch) else "kb"
        if kind == "ticket" and s.tickets_collected:
            self._total()  # brings the estimate up to date
            estimated = self.opts.max_tickets is None
            expected = s.estimated_total_tickets if estimated else self.opts.max_tickets
            if expected:
                of = f"/{max(number, -(-number * expected // s.tickets_collected))}"
        self.note("INFO", f"Successfully processed {kind} batch {number}{of}", batch_size=len(batch),
                  processing_time=round(time.perf_counter() - self._batch_t0, 2), estimated=bool(of) and estimated)
        self._batch_t0 = time.perf_counter()

    async def run(self) -> JobStatus:
        try:
            await self.progress("running", force=True)
            self.note("INFO", f"Job started on {self.worker}", resume=self.cursor is not None, phase=self.phase)
            async with self.client:
                if self.phase == "collecting_tickets":
                    await self.tickets()
                    self.phase = "collecting_kb"  # the tickets cursor stays: the next incremental run starts there
                if self.phase == "collecting_kb" and self.opts.include_kb and self.opts.max_articles != 0:
                    await self.kb()
                await self.flush()
            self.phase, self.step_details = "completed", "all records published"
            self.note("INFO", "Job completed", **self.stats.model_dump())
            await self.progress("completed", force=True)
            return "completed"
        except Cancelled as exc:
            await self._stop_here()
            self.note("WARN", f"Job cancelled: {exc}", graceful=self.control.graceful,
                      progress_saved=self.control.save_progress)
            await self.progress("cancelled", force=True)
            return "cancelled"
        except (FreshdeskAuthError, FreshdeskDomainError, FreshdeskError) as exc:
            return await self.fail(self._explain(exc))

    async def fail(self, message: str) -> JobStatus:
        self.note("ERROR", f"Job failed: {message}")
        await self.progress("failed", force=True, error=message)
        return "failed"

    def _explain(self, exc: FreshdeskError) -> str:
        if isinstance(exc, FreshdeskAuthError):
            return f"Freshdesk rejected the API key for {self.cmd.domain} (check X-API-Key and that it is active)"
        if isinstance(exc, FreshdeskDomainError):
            return f"{self.cmd.domain} is not a Freshdesk account (check X-Domain)"
        return f"Freshdesk call failed after {self.opts.max_retries} retries: {exc}"

    async def paused(self) -> None:
        await self._stop_here()
        if self.control.save_progress:
            self.note("INFO", f"Job paused: progress saved at {self.stats.tickets_collected} tickets",
                      reason=self.control.reason, graceful=self.control.graceful)
        else:
            self.note("INFO", "Job paused without saving progress: a restarted run begins where this one did",
                      reason=self.control.reason, graceful=self.control.graceful)
        await self.progress("paused", force=True)

    async def _stop_here(self) -> None:
        """What seed 000's control options ask of a pause or cancel: `graceful_shutdown` publishes the open batch
        (the threads already in hand); otherwise it is dropped unpublished, and since the cursor only moves past
        what was published, a resumed run fetches those threads again. Without `save_progress` the reported
        position goes back to where this run began, so a run restarted from it (another worker, a later
        incremental run) collects everything again; what was published is deduplicated."""
        if self.control.graceful:
            await self.flush()
        elif self.batch:
            self.batch, self._batch_bytes, self._pending = [], 2, (None, 0, 0)
            self._relist = True  # resumed here, the listing starts again from the published cursor

    async def tickets(self) -> None:
        while True:
            try:
                return await self._list_tickets()
            except Relist:
                continue

    async def _list_tickets(self) -> None:
        limit = self.opts.max_tickets
        if limit == 0:
            return
        cursor = TicketCursor.from_dict(self.cursor) if self.cursor else None
        since = cursor.updated_at if cursor else None
        async for thread in iter_threads(self.client, since, cursor=cursor, concurrency=self.opts.parallel_workers):
            await self._checkpoint()
            if self.stats.listing_from is None:  # the estimate's origin: where this job's listing began
                self.stats.listing_from = thread.cursor.updated_at
                if limit is None:  # and its end: the account's newest update (one request)
                    self.stats.listing_to = await self._newest_update(thread.cursor.updated_at)
            files = await self.attachments(thread.ticket, thread.conversations)
            await self.records([("ticket", thread.ticket), *(("conversation", c) for c in thread.conversations),
                                *files], flush=False)
            _, tickets, convs = self._pending
            self._pending = (thread.cursor.to_dict(), tickets + 1, convs + len(thread.conversations))
            self.step_details = f"ticket {thread.ticket['id']}"
            if len(self.batch) >= self.opts.batch_size:
                await self.flush()
            await self.progress("running")  # a heartbeat at most every PROGRESS_EVERY_S, even inside a batch
            if limit is not None and self.stats.tickets_collected + self._pending[1] >= limit:
                break

    async def _checkpoint(self) -> None:
        """Pause, cancel or go on; after a pause that dropped its batch, start the listing again (Relist)."""
        await self.control.checkpoint(self.paused)
        if self._relist:
            self._relist = False
            raise Relist

    async def _newest_update(self, since: datetime) -> datetime | None:
        try:
            return await self.client.newest_update(since)
        except FreshdeskError as exc:  # only the estimate suffers: it measures up to now instead
            log.warning("ingest_newest_update_failed", job_id=self.cmd.job_id, error=str(exc))
            return None

    async def attachments(self, ticket: dict[str, Any],
                          conversations: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        files: list[tuple[str, dict[str, Any]]] = []
        for owner in (ticket, *conversations):
            for att in owner.get("attachments") or ():
                meta = {**att, "ticket_id": ticket["id"], "conversation_id": owner.get("id") if owner is not ticket
                        else None}
                if self.opts.process_attachments and att.get("attachment_url"):
                    meta |= await self._content(att["attachment_url"])
                    self.stats.attachments_processed += 1
                meta.pop("attachment_url", None)  # a signed, expiring link: useless later, and a credential now
                files.append(("attachment", meta))
        return files

    async def _content(self, url: str) -> dict[str, Any]:
        got = await self.client.download_attachment(url, MAX_CONTENT_IN_TOPIC)
        if got.oversize:
            return {"content_skipped": f"over {MAX_CONTENT_IN_TOPIC} bytes", "content_size": got.declared_size}
        return {"content_b64": base64.b64encode(got.content).decode(), "content_size": len(got.content),
                "content_truncated": got.truncated}

    async def kb(self) -> None:
        while True:
            try:
                return await self._list_kb()
            except Relist:  # the knowledge base has no cursor: it is listed again whole (dedupe drops repeats)
                self.stats.kb_articles_collected = 0
                continue

    async def _list_kb(self) -> None:
        self.step_details = "solution categories, folders, articles"
        async for kind, record in self.client.iter_kb():
            await self._checkpoint()
            await self.record(kind, record)
            if kind == "kb_article":
                self.stats.kb_articles_collected += 1
                await self.progress("running")
                if self.opts.max_articles is not None and self.stats.kb_articles_collected >= self.opts.max_articles:
                    break
