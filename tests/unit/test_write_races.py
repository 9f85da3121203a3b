"""Writers of one DuckDB file race: its concurrency is optimistic, so when two cursors update one column of one row,
the one that comes second is told "Conflict on update" at once. The materializer upserts a job's progress while its
control route sets the job's priority (and the watchdog its heartbeat); the loser must run again and land, not fail
(a route's 500) or restart (the materializer's 2 s stall). Each test holds the row in an open transaction, waits
until the other writer has lost to it, then lets go: no timing, one lost race each time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition

from pipeline.broker.topics import INGEST_PROGRESS
from pipeline.storage import db
from pipeline.storage.queries import ingest as q
from pipeline.storage.store import Store
from schemas.ingest import JobProgress


def _progress(seq: int) -> ConsumerRecord:
    p = JobProgress(job_id="job-race", tenant="acme", domain="acme.freshdesk.com", seq=seq, status="running",
                    current_step="collecting", completed_items=seq, at=datetime.now(UTC))
    value = p.model_dump_json().encode()
    return ConsumerRecord(INGEST_PROGRESS, 0, seq, 0, 0, None, value, None, 0, len(value), [])


@pytest.fixture
def lost(monkeypatch) -> threading.Event:
    """Set when a writer is told it lost a race (what `retry_conflicts` asks before running it again)."""
    event, judge = threading.Event(), db._lost_a_race

    def watched(message: str) -> bool:
        raced = judge(message)
        if raced:
            event.set()
        return raced

    monkeypatch.setattr(db, "_lost_a_race", watched)
    return event


def _while_held(con, lost: threading.Event, write: Callable[[], None]) -> list[BaseException]:  # noqa: ANN001
    """Run `write` in a thread while another cursor holds the job's heartbeat uncommitted; let go once `write`
    has lost to it. The errors `write` raised."""
    holder = con.cursor()
    holder.begin()
    q.set_fields(holder, "job-race", last_activity=datetime.now(UTC))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            write()
        except BaseException as exc:  # noqa: BLE001 - collected: the assertion names it
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert lost.wait(10), "the writer never met the held row"
    finally:
        holder.commit()
        thread.join(30)
    assert not thread.is_alive(), "the writer never finished"
    return errors


def test_the_materializer_runs_a_progress_upsert_that_lost_to_a_route_again(materializer, lost):
    m, tp = materializer, TopicPartition(INGEST_PROGRESS, 0)
    m._write({tp: [_progress(1)]})
    assert _while_held(m.con, lost, lambda: m._write({tp: [_progress(2)]})) == []
    done = m.con.cursor().execute("SELECT completed_items FROM ingest_jobs WHERE job_id = 'job-race'").fetchone()
    assert done == (2,)


def test_a_routes_write_that_lost_to_the_materializer_runs_again(materializer, lost):
    m, tp = materializer, TopicPartition(INGEST_PROGRESS, 0)
    m._write({tp: [_progress(1)]})
    store = Store(m.con)

    def priority_change() -> None:  # what `POST .../control` with priority_change does
        asyncio.run(store.write(q.set_fields, "job-race", priority="urgent", last_activity=datetime.now(UTC)))

    assert _while_held(m.con, lost, priority_change) == []
    got = m.con.cursor().execute("SELECT priority FROM ingest_jobs WHERE job_id = 'job-race'").fetchone()
    assert got == ("urgent",)
