"""A user's cancel that lands while the scheduler is triggering the same schedule stands: the scheduler's outcome
is set only on a schedule that is still active (what seed 004's DELETE /schedules/{id} promises the user)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from api.scheduler import Scheduler
from pipeline.settings import Settings
from pipeline.storage.db import connect
from pipeline.storage.queries import schedules as sq
from pipeline.storage.store import Store


class _CancelledMeanwhile:
    """A predictor whose start takes long enough for the user to cancel the schedule it was started for."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def start(self, tenant: str, user: str, *args: object, schedule_id: str, **kwargs: object) -> dict:
        await self.store.run(sq.set_status, tenant, schedule_id, "CANCELLED", reason="CANCELLED_BY_ADMIN")
        return {"predictionId": "pred_started_anyway"}


def test_a_cancel_during_the_trigger_is_not_overwritten_by_triggered(tmp_path):
    settings = Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path, _env_file=None)
    store = Store(connect(settings.db_path))
    lead = timedelta(seconds=settings.schedule_lead_s)
    bedtime = datetime.now(UTC) + lead - timedelta(seconds=5)  # its trigger time has just passed: due
    row = store.call(sq.create, "t1", "u1", bedtime, lead, "UTC", "TREATMENT_BEDTIME_GOAL")
    scheduler = Scheduler(settings, store, _CancelledMeanwhile(store))
    asyncio.run(scheduler.tick())
    after = store.call(sq.get, "t1", row["schedule_id"])
    assert scheduler.triggered == 1 and after["status"] == "CANCELLED", after
    store.close()


def test_settle_sets_an_active_schedule_and_leaves_a_cancelled_one(tmp_path):
    store = Store(connect(tmp_path / "s.duckdb"))
    bedtime = datetime.now(UTC) + timedelta(days=1)
    sid = store.call(sq.create, "t1", "u1", bedtime, timedelta(hours=1), "UTC", "R")["schedule_id"]
    assert store.call(sq.settle, "t1", sid, "RETRYING", retry_count=1)
    assert store.call(sq.get, "t1", sid)["status"] == "RETRYING"
    store.call(sq.set_status, "t1", sid, "CANCELLED")
    assert not store.call(sq.settle, "t1", sid, "TRIGGERED", last_prediction_id="p")
    assert store.call(sq.get, "t1", sid)["status"] == "CANCELLED"
    store.close()
