"""Seed 000's control options do what their names say, on a real job against the simulator (no broker):
`graceful_shutdown` publishes the open batch before pausing, or drops it and lists those tickets again on
resume (nothing lost); `save_progress` makes the paused position the resume point, or not."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from pipeline.ingest.freshdesk.ratelimit import budget_for
from pipeline.ingest.jobs import IngestJob, JobControl
from schemas.ingest import JobCommand, JobOptions, JobProgress
from simulators.freshdesk.server import SimulatorServer
from simulators.freshdesk.state import SimulatorConfig
from tests.helpers import until
from tests.unit.test_freshdesk_ingest_job import END

TICKETS = 120


@pytest.fixture(scope="module")
def simulator():
    with SimulatorServer(SimulatorConfig(tickets=TICKETS, seed=4, end=END, plan=100_000, kb_articles=0)) as server:
        yield server


def _pause_once(server: SimulatorServer, domain: str, *, graceful: bool, save_progress: bool
                ) -> tuple[list[list[dict]], list[JobProgress], dict[str, Any]]:
    """Run a job of batches of 10 records; once two batches are out and threads are in hand, pause it (with
    the options), look at what was published, then resume and let it finish."""
    budget_for(domain, per_window=server.config.plan)
    cmd = JobCommand(action="run", job_id=f"job-{domain}", tenant="acme", domain=domain, at=datetime.now(UTC),
                     options=JobOptions.model_validate({"include_kb": False, "batch_size": 10}),
                     api_key_token="unused")
    control = JobControl()
    batches: list[list[dict]] = []
    progress: list[JobProgress] = []
    at_pause: dict[str, Any] = {}
    in_hand: dict[str, set[int]] = {}

    async def emit(batch: list[dict]) -> None:
        batches.append(batch)

    async def report(p: JobProgress) -> None:
        progress.append(p)
        if p.status == "paused":
            at_pause.update(published=set(_tickets(batches)), held=len(job.batch), cursor=p.cursor,
                            collected=p.statistics.tickets_collected)

    async def run() -> None:
        nonlocal job
        job = IngestJob(cmd, SecretStr("your_api_key"), server.base_url, emit, report, control, "test")
        task = asyncio.create_task(job.run())
        # Two batches out and threads in hand: the pause arrives.
        await until(lambda: len(batches) >= 2 and job.batch, 30, "two batches out and more in hand")
        in_hand["ids"] = {r["record"]["id"] for r in job.batch if r["kind"] == "ticket"}
        control.graceful, control.save_progress = graceful, save_progress
        control.running.clear()
        await until(lambda: at_pause, 30, "the job to pause")
        control.graceful = control.save_progress = True  # what the worker does on resume
        control.running.set()
        assert await task == "completed"

    job: IngestJob | None = None
    asyncio.run(run())
    return batches, progress, at_pause | in_hand


def _tickets(batches: list[list[dict]]) -> list[int]:
    return [r["record"]["id"] for batch in batches for r in batch if r["kind"] == "ticket"]


def test_a_graceful_pause_publishes_the_threads_in_hand_first(simulator):
    batches, progress, at_pause = _pause_once(simulator, "graceful.freshdesk.com", graceful=True, save_progress=True)
    assert at_pause["ids"] and at_pause["held"] == 0
    assert at_pause["ids"] <= at_pause["published"]  # the threads in hand went out before the pause
    assert at_pause["cursor"] is not None
    tickets = _tickets(batches)
    assert sorted(tickets) == sorted(set(tickets)) and len(tickets) == TICKETS  # each once, none lost


def test_an_abrupt_pause_drops_the_open_batch_and_lists_it_again_on_resume(simulator):
    batches, progress, at_pause = _pause_once(simulator, "abrupt.freshdesk.com", graceful=False, save_progress=True)
    assert at_pause["ids"] and not at_pause["ids"] & at_pause["published"]  # the threads in hand were dropped
    assert at_pause["collected"] == len(at_pause["published"])  # counts and cursor stop at what was published
    tickets = _tickets(batches)
    assert len(set(tickets)) == TICKETS  # the dropped threads came again after the resume: none lost
    assert progress[-1].statistics.tickets_collected == TICKETS
    assert any(line.message.startswith("Job paused") and line.details["graceful"] is False
               for p in progress for line in p.logs)


def test_a_pause_without_save_progress_reports_the_runs_start_as_its_position(simulator):
    _, progress, at_pause = _pause_once(simulator, "nosave.freshdesk.com", graceful=True, save_progress=False)
    assert at_pause["cursor"] is None  # this run began with no cursor: a restart would begin there too
    assert at_pause["collected"] == 0  # ...and the counts go with that position (a restart recounts, not doubles)
    paused = next(p for p in progress if p.status == "paused")
    assert any("without saving progress" in line.message for line in paused.logs)
    later = [p for p in progress if p.seq > paused.seq]
    assert later[-1].status == "completed" and later[-1].cursor is not None  # resumed, it saves its position again
