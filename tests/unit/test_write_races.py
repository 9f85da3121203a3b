"""Writers of one DuckDB file race: its concurrency is optimistic, so when two cursors update one row, one commits
and the other is told "Conflict on update". The materializer upserts a job's progress while its control route
sets the job's priority (and the watchdog its heartbeat); the loser must run again, not fail or restart."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from aiokafka.structs import ConsumerRecord, TopicPartition

from pipeline.broker.topics import INGEST_PROGRESS
from pipeline.storage.queries import ingest as q
from pipeline.storage.store import Store
from schemas.ingest import JobProgress

ROUNDS = 60


def _progress(seq: int) -> ConsumerRecord:
    p = JobProgress(job_id="job-race", tenant="acme", domain="acme.freshdesk.com", seq=seq, status="running",
                    current_step="collecting", completed_items=seq, at=datetime.now(UTC))
    value = p.model_dump_json().encode()
    return ConsumerRecord(INGEST_PROGRESS, 0, seq, 0, 0, None, value, None, 0, len(value), [])


def test_progress_upserts_and_a_route_updating_the_same_job_at_once_both_land(materializer):
    m, tp = materializer, TopicPartition(INGEST_PROGRESS, 0)
    m._write({tp: [_progress(1)]})
    store, stop, errors = Store(m.con), threading.Event(), []

    def control_route() -> None:  # what `POST .../control` priority_change and the watchdog do, through `write`
        import asyncio

        async def go() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    await store.write(q.set_fields, "job-race", priority=("high", "low")[n % 2],
                                      last_activity=datetime.now(UTC))
                except Exception as exc:  # noqa: BLE001 - collected: the assertion below names it
                    errors.append(exc)
                await asyncio.sleep(0.02)  # ~45 updates/s: far more than priority changes and heartbeats

        asyncio.run(go())

    route = threading.Thread(target=control_route)
    route.start()
    try:
        for seq in range(2, ROUNDS + 2):
            m._write({tp: [_progress(seq)]})  # raised "Conflict on update" before writes lost no race
            time.sleep(0.005)  # a busy job's progress: a batch every few ms
    finally:
        stop.set()
        route.join()
    assert errors == []
    done, priority = m.con.cursor().execute(
        "SELECT completed_items, priority FROM ingest_jobs WHERE job_id = 'job-race'").fetchone()
    assert done == ROUNDS + 1 and priority in ("high", "low")
