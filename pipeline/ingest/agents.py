"""The worker's side of ingest jobs: one agent reads `ingest.commands` and starts or steers job tasks.

Commands are keyed by domain, so a job and every command about it reach the same worker, in order; control
takes effect at the job's next record (well under a second). A command for a job this worker does not run
(it died elsewhere, or this worker restarted) is handled from what the command carries: `run`/`resume`
start it from the command's cursor; `cancel` reports it cancelled.
"""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import UTC, datetime

import faust
import orjson
import structlog
from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from pipeline.broker.agent_topics import AgentTopics
from pipeline.broker.topics import INGEST_COMMANDS, INGEST_PROGRESS, TICKETS_RAW
from pipeline.ingest.jobs import IngestJob, JobControl
from pipeline.ingest.marks import mark_headers
from pipeline.settings import Settings
from schemas.ingest import JobCommand, JobProgress

log = structlog.get_logger(__name__)


def register_ingest_agents(app: faust.App, settings: Settings, topics: AgentTopics) -> None:
    progress, raw = topics(INGEST_PROGRESS), topics(TICKETS_RAW)
    fernet = Fernet(settings.fernet_key().encode())
    worker = f"{socket.gethostname()}:{os.getpid()}"
    running: dict[str, tuple[asyncio.Task, JobControl]] = {}

    async def report(p: JobProgress) -> None:
        await progress.send(key=p.job_id.encode(), value=p.model_dump_json().encode())

    def start(cmd: JobCommand) -> None:
        try:
            key = SecretStr(fernet.decrypt(cmd.api_key_token.encode()).decode())
        except (InvalidToken, AttributeError):
            asyncio.ensure_future(report(_settled(cmd, "failed", worker, "the job's API key could not be "
                                                  "decrypted (STREAMDESK_SECRET_KEY differs between api and worker)")))
            return
        control = JobControl(priority=(cmd.priority or cmd.options.priority).value)

        async def emit(batch: list[dict]) -> None:
            await raw.send(key=cmd.domain.encode(), value=orjson.dumps(batch))

        job = IngestJob(cmd, key, settings.freshdesk_base_url, emit, report, control, worker,
                        per_page=settings.freshdesk_per_page, backoff_s=settings.freshdesk_backoff_s)
        async def run_and_mark() -> None:
            await job.run()
            # After every record the job sent, on its key: the api waits for this mark to reach DuckDB.
            await raw.send(key=cmd.domain.encode(), value=b"[]", headers=mark_headers(cmd.job_id, cmd.tenant))

        task = asyncio.create_task(run_and_mark(), name=f"ingest-{cmd.job_id}")
        running[cmd.job_id] = (task, control)
        task.add_done_callback(lambda _t, jid=cmd.job_id: running.pop(jid, None))

    @app.agent(topics(INGEST_COMMANDS))
    async def steer_ingest_jobs(stream: faust.StreamT) -> None:
        async for _, cmd in topics.decoded(INGEST_COMMANDS, stream):
            await _apply(cmd, running, start, report, worker)


async def _apply(cmd: JobCommand, running: dict, start, report, worker: str) -> None:  # noqa: ANN001
    job = running.get(cmd.job_id)
    log.info("ingest_command", job_id=cmd.job_id, action=cmd.action, here=job is not None)
    if cmd.action in ("run", "resume") and job is None:
        if cmd.options is not None and cmd.api_key_token:
            start(cmd)
        return
    if job is None:
        if cmd.action == "cancel":
            await report(_settled(cmd, "cancelled", worker, None))
        return
    _, control = job
    if cmd.action in ("pause", "cancel"):
        control.graceful, control.save_progress = cmd.graceful, cmd.save_progress
    if cmd.action == "pause":
        control.reason = cmd.reason
        control.running.clear()
    elif cmd.action == "resume":
        control.graceful = control.save_progress = True  # they were the pause's options, not the job's
        control.running.set()
    elif cmd.action == "cancel":
        control.cancelled, control.reason = True, cmd.reason or "cancelled"
        control.running.set()
    elif cmd.action == "priority_change" and cmd.priority is not None:
        control.priority = cmd.priority.value


def _settled(cmd: JobCommand, status: str, worker: str, error: str | None) -> JobProgress:
    now = datetime.now(UTC)
    return JobProgress(job_id=cmd.job_id, tenant=cmd.tenant, domain=cmd.domain, seq=int(now.timestamp() * 1e6),
                       status=status, current_step=status, cursor=cmd.cursor, phase=cmd.phase, at=now, error=error,
                       worker=worker)
