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
from starlette.concurrency import run_in_threadpool

from api.background import BackgroundTask
from api.cod import CodError
from api.predicting import Predictor
from pipeline.settings import Settings
from pipeline.storage.db import run_on_cursor
from pipeline.storage.queries import predictions as pq
from pipeline.storage.queries import schedules as sq
from schemas.predictions import PREDICTION_TIMEOUT_S, AnalysisScope, PredictOptions, TriggerType

log = structlog.get_logger(__name__)
TIMEOUT_GRACE_S = 2.0


class Scheduler:
    def __init__(self, settings: Settings, db: duckdb.DuckDBPyConnection, predictor: Predictor,
                 ready: Callable[[], bool] = lambda: True) -> None:
        self.settings = settings
        self.ready = ready
        self.db = db
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
        await run_in_threadpool(self._housekeeping)
        for schedule in await run_in_threadpool(self._in_db, sq.due, datetime.now(UTC)):
            await self._trigger(schedule)

    def _in_db(self, fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        return run_on_cursor(self.db, fn, *args, **kwargs)

    def _housekeeping(self) -> None:
        # Before that, a debate that completed while the api was down still reads IN_PROGRESS here, and a
        # FAILED row is final: its COMPLETED event, read a moment later, could no longer settle it.
        timed_out = self._in_db(pq.sweep_timed_out, PREDICTION_TIMEOUT_S + TIMEOUT_GRACE_S, "COD_P002") \
            if self.ready() else []
        if timed_out:
            log.warning("predictions_timed_out", count=len(timed_out), first=timed_out[0])
        now = datetime.now(UTC)
        for tenant, user, treatment in self._in_db(sq.users_needing_schedule):
            bedtime = sq.next_bedtime(treatment, now, self.lead)
            if bedtime is not None and self._in_db(sq.get, tenant, sq.schedule_id(tenant, user, bedtime)) is None:
                self._in_db(sq.create, tenant, user, bedtime, self.lead, treatment.timezone, "TREATMENT_BEDTIME_GOAL")
                log.info("schedule_created", tenant=tenant, user_id=user, bedtime=bedtime.isoformat())

    async def _trigger(self, s: dict) -> None:
        sid = s["schedule_id"]
        treatment = await run_in_threadpool(self._in_db, sq.latest_treatment, s["tenant"], s["user_id"])
        if treatment is not None and treatment.paused:
            await run_in_threadpool(lambda: self._in_db(sq.set_status, s["tenant"], sid, "PAUSED",
                                                        last_error="COD_S004"))
            return
        try:
            data = await self.predictor.start(s["tenant"], s["user_id"], TriggerType.AUTO_SCHEDULE, "scheduler",
                                              AnalysisScope(), PredictOptions(), schedule_id=sid)
        except CodError as exc:
            await run_in_threadpool(self._failed, s, f"{exc.code}: {exc.message}")
            return
        self.triggered += 1
        await run_in_threadpool(lambda: self._in_db(sq.set_status, s["tenant"], sid, "TRIGGERED",
                                                    last_prediction_id=data["predictionId"]))
        log.info("schedule_triggered", schedule_id=sid, prediction_id=data["predictionId"])
        await run_in_threadpool(self._next_night, s)

    def _failed(self, s: dict, error: str) -> None:
        retries = s["retry_count"] + 1
        if retries > self.settings.schedule_max_retries:
            self._in_db(sq.set_status, s["tenant"], s["schedule_id"], "FAILED", retry_count=retries - 1,
                        last_error=error)
            log.warning("schedule_failed", schedule_id=s["schedule_id"], error=error)
            self._next_night(s)
            return
        retry_at = datetime.now(UTC) + timedelta(seconds=self.settings.schedule_retry_s)
        self._in_db(sq.set_status, s["tenant"], s["schedule_id"], "RETRYING", retry_count=retries,
                    next_execution=retry_at, last_error=error)
        log.info("schedule_retry", schedule_id=s["schedule_id"], retry=retries, at=retry_at.isoformat(), error=error)

    def _next_night(self, s: dict) -> None:
        bedtime = s["bedtime_goal"] + timedelta(days=1)
        if self._in_db(sq.get, s["tenant"], sq.schedule_id(s["tenant"], s["user_id"], bedtime)) is None:
            self._in_db(sq.create, s["tenant"], s["user_id"], bedtime, self.lead, s["timezone"], "NEXT_NIGHT")
