"""The api's trigger loop: AUTO_SCHEDULE predictions at each schedule's trigger time, retries, timeouts.

Schedules live in DuckDB, so they live in the api (docs/decisions.md "Who owns what state"). Each tick:
1. IN_PROGRESS predictions past 25 s (plus a grace for the result to be materialized) fail with COD_P002,
   once the materializer has read what was published while the api was down (`ready`);
2. users whose treatment record has a bedtime goal get a schedule;
3. due schedules trigger a prediction; a refusal (too little data, one already running, broker down) is
   retried every `schedule_retry_s` up to `schedule_max_retries` times; after success or the last failure
   the next night's schedule is created.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import duckdb
import structlog

from api.background import BackgroundTask
from api.errors import refusal
from api.predicting import Predictor
from api.refusals import Refused
from pipeline.settings import Settings
from pipeline.storage.db import atomic
from pipeline.storage.queries import predictions as pq
from pipeline.storage.queries import schedules as sq
from pipeline.storage.store import Store
from schemas.predictions import PREDICTION_TIMEOUT_S, AnalysisScope, PredictOptions, TriggerType

log = structlog.get_logger(__name__)
TIMEOUT_GRACE_S = 2.0


class Scheduler:
    def __init__(self, settings: Settings, store: Store, predictor: Predictor,
                 ready: Callable[[], bool] = lambda: True) -> None:
        self.settings = settings
        self.ready = ready
        self.store = store
        self.predictor = predictor
        self.lead = timedelta(seconds=settings.schedule_lead_s)
        self._task = BackgroundTask("prediction-scheduler")
        self.triggered = 0

    def start(self) -> None:
        self._task.start(self._run())

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - one bad tick must not stop scheduling; say so loudly
                log.exception("scheduler_tick_failed")
            await asyncio.sleep(self.settings.scheduler_tick_s)

    async def tick(self) -> None:
        await self.store.write(self._housekeeping)
        for schedule in await self.store.run(sq.due, datetime.now(UTC)):
            await self._trigger(schedule)

    def _housekeeping(self, cur: duckdb.DuckDBPyConnection) -> None:
        # Before that, a debate that completed while the api was down still reads IN_PROGRESS here, and a
        # FAILED row is final: its COMPLETED event, read a moment later, could no longer settle it.
        timed_out = pq.sweep_timed_out(cur, PREDICTION_TIMEOUT_S + TIMEOUT_GRACE_S, "COD_P002") \
            if self.ready() else []
        if timed_out:
            log.warning("predictions_timed_out", count=len(timed_out), first=timed_out[0])
        now = datetime.now(UTC)
        for tenant, user, treatment in sq.users_needing_schedule(cur):
            bedtime = sq.next_bedtime(treatment, now, self.lead)
            if bedtime is not None and sq.get(cur, tenant, sq.schedule_id(tenant, user, bedtime)) is None:
                sq.create(cur, tenant, user, bedtime, self.lead, treatment.timezone, "TREATMENT_BEDTIME_GOAL")
                log.info("schedule_created", tenant=tenant, user_id=user, bedtime=bedtime.isoformat())

    async def _trigger(self, s: dict) -> None:
        sid = s["schedule_id"]
        treatment = await self.store.run(sq.latest_treatment, s["tenant"], s["user_id"])
        if treatment is not None and treatment.paused:
            await self.store.write(sq.settle, s["tenant"], sid, "PAUSED", last_error="COD_S004")
            return
        try:
            data = await self.predictor.start(s["tenant"], s["user_id"], TriggerType.AUTO_SCHEDULE, "scheduler",
                                              AnalysisScope(), PredictOptions(), schedule_id=sid)
        except Refused as exc:  # too little data, one already running, the broker down: retried
            await self.store.run(atomic(self._failed), s, f"{refusal(exc)[2]}: {exc.message}")
            return
        self.triggered += 1
        pid = data["predictionId"]
        if not await self.store.write(sq.settle, s["tenant"], sid, "TRIGGERED", last_prediction_id=pid):
            log.info("schedule_changed_while_triggering", schedule_id=sid, prediction_id=pid)
        log.info("schedule_triggered", schedule_id=sid, prediction_id=pid)
        await self.store.run(atomic(self._next_night), s)

    def _failed(self, cur: duckdb.DuckDBPyConnection, s: dict, error: str) -> None:
        retries = s["retry_count"] + 1
        if retries > self.settings.schedule_max_retries:
            sq.settle(cur, s["tenant"], s["schedule_id"], "FAILED", retry_count=retries - 1, last_error=error)
            log.warning("schedule_failed", schedule_id=s["schedule_id"], error=error)
            self._next_night(cur, s)
            return
        retry_at = datetime.now(UTC) + timedelta(seconds=self.settings.schedule_retry_s)
        sq.settle(cur, s["tenant"], s["schedule_id"], "RETRYING", retry_count=retries, next_execution=retry_at,
                  last_error=error)
        log.info("schedule_retry", schedule_id=s["schedule_id"], retry=retries, at=retry_at.isoformat(), error=error)

    def _next_night(self, cur: duckdb.DuckDBPyConnection, s: dict) -> None:
        bedtime = s["bedtime_goal"] + timedelta(days=1)
        if sq.get(cur, s["tenant"], sq.schedule_id(s["tenant"], s["user_id"], bedtime)) is None:
            sq.create(cur, s["tenant"], s["user_id"], bedtime, self.lead, s["timezone"], "NEXT_NIGHT")
