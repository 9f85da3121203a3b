"""An ingest job itself (no broker) against the simulator: `parallel_workers` bounds the Freshdesk calls it has
open at once (the simulator counts requests in flight while each answer is slowed down), and what it publishes
to `tickets.raw` is what the tickets normalizer accepts, attachment content included."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from pipeline.broker.entry_messages import MAX_VALUE_BYTES
from pipeline.broker.records import Message
from pipeline.ingest.freshdesk.ratelimit import budget_for
from pipeline.ingest.jobs import MAX_CONTENT_IN_TOPIC, IngestJob, JobControl
from pipeline.tickets.normalize import normalize_messages
from schemas.ingest import JobCommand, JobOptions, JobProgress
from simulators.freshdesk.server import SimulatorServer
from simulators.freshdesk.state import Faults, SimulatorConfig

END = datetime(2026, 1, 1, tzinfo=UTC)
CONVERSATIONS = "GET /api/v2/tickets/{id}/conversations"


def run_job(server: SimulatorServer, options: dict[str, Any],
            domain: str) -> tuple[str, list[list[dict]], list[JobProgress]]:
    budget_for(domain, per_window=server.config.plan)  # each test its own account (data, rate budget)
    cmd = JobCommand(action="run", job_id=f"job-{domain}", tenant="acme", domain=domain, at=datetime.now(UTC),
                     options=JobOptions.model_validate({"include_kb": False} | options), api_key_token="unused")
    batches: list[list[dict]] = []
    progress: list[JobProgress] = []

    async def emit(batch: list[dict]) -> None:
        batches.append(batch)

    async def report(p: JobProgress) -> None:
        progress.append(p)

    async def run() -> str:
        job = IngestJob(cmd, SecretStr("your_api_key"), server.base_url, emit, report, JobControl(), "test",
                        per_page=100)
        return await job.run()

    return asyncio.run(run()), batches, progress


@pytest.fixture(scope="module")
def slow_simulator():
    # Every API answer waits 50 ms in the server: calls a job has open together overlap there for certain.
    config = SimulatorConfig(tickets=24, end=END, plan=100_000, kb_articles=0, faults=Faults(delay_s=0.05))
    with SimulatorServer(config) as server:
        yield server


@pytest.mark.parametrize(("options", "bound"), [({"parallel_workers": 1}, 1), ({"parallel_workers": 3}, 3),
                                                 ({}, 4)], ids=["one", "three", "default-four"])
def test_parallel_workers_bounds_the_conversation_calls_in_flight(slow_simulator, options, bound):
    server = slow_simulator
    server.reset_stats()
    status, batches, progress = run_job(server, options, f"workers-{bound}.freshdesk.com")
    records = [r for batch in batches for r in batch]
    stats = server.stats()
    data = server.app.sim.dataset(progress[-1].domain)
    expected_convs = sum(len(t.conversations) for t in data.tickets.values())
    # The whole account came over: the bound is not met by leaving calls out.
    assert status == "completed" and progress[-1].statistics.tickets_collected == 24
    assert sum(r["kind"] == "conversation" for r in records) == expected_convs > 0
    calls = sum(stats["by_endpoint"][CONVERSATIONS].values())
    assert calls == sum(1 for t in data.tickets.values() if t.updated != t.created) > 2 * bound
    # ...and with calls enough to run `bound` at once, it ran exactly that many at once, never more.
    assert stats["peak_in_flight"][CONVERSATIONS] == bound, stats["peak_in_flight"]


def test_what_a_job_publishes_fits_the_normalizer_and_keeps_each_thread_in_one_message_when_it_can():
    domain = "publish-5.freshdesk.com"  # an account with one ticket whose files, fetched, outgrow a message
    with SimulatorServer(SimulatorConfig(tickets=60, seed=5, end=END, plan=100_000, kb_articles=0)) as server:
        status, batches, progress = run_job(server, {"process_attachments": True, "batch_size": 200}, domain)
        files = server.app.sim.dataset(domain).attachments
    assert status == "completed" and progress[-1].statistics.attachments_processed == len(files)
    values = [orjson.dumps(batch) for batch in batches]
    assert len(values) > 1 and all(len(v) <= MAX_VALUE_BYTES for v in values)  # split by bytes, not only count
    tables, dead = normalize_messages("tickets.raw", [Message(0, n, 0, v) for n, v in enumerate(values)])
    assert dead == []  # nothing the worker publishes is refused downstream
    assert len(tables["tickets"]) == 60 and {int(r["source_id"]) for r in tables["attachments"]} == set(files)
    fetched = {r["source_id"] for r in tables["attachments"] if r["content_sha256"] or r["content_skipped"]}
    assert fetched == {str(i) for i in files} and any(a.size <= MAX_CONTENT_IN_TOPIC for a in files.values())
    # A ticket's conversations and fetched files come in its message (its searchable text is built from them),
    # unless together they outgrow any message: then only files go on to the next one.
    home = {r["record"]["id"]: n for n, batch in enumerate(batches) for r in batch if r["kind"] == "ticket"}
    thread_bytes: Counter[int] = Counter()
    for batch in batches:
        for r in batch:
            thread_bytes[r["record"]["id"] if r["kind"] == "ticket" else r["record"]["ticket_id"]] += (
                len(orjson.dumps(r)) + 1)
    away = {(r["kind"], r["record"]["ticket_id"]) for n, batch in enumerate(batches) for r in batch
            if r["kind"] != "ticket" and home[r["record"]["ticket_id"]] != n}
    assert away and all(kind == "attachment" and thread_bytes[t] + 2 > MAX_VALUE_BYTES for kind, t in away)
