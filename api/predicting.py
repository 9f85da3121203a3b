"""Starting a prediction: completeness check, one at a time per user, the IN_PROGRESS row, the request event.

Used by `POST …/predict` and by the schedule trigger loop. Read your own write (docs/decisions.md): the row is
written before the request is published, so the caller's next GET finds it.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import structlog

from api.publish import Publisher
from api.refusals import AlreadyRunning, BrokerUnavailable, NotEnoughData
from api.wire import iso_z
from pipeline.broker.topics import PREDICTIONS_REQUESTS
from pipeline.predictions.features import build_snapshot, completeness
from pipeline.settings import Settings
from pipeline.storage.queries import predictions as q
from pipeline.storage.store import Store
from schemas.debate import AgentType
from schemas.predictions import (
    PREDICTION_TIMEOUT_S,
    AnalysisScope,
    PredictionRequest,
    PredictOptions,
    TriggerType,
)

log = structlog.get_logger(__name__)
MIN_SLEEP_DAYS = 3
DEFAULT_WINDOW_DAYS = 30  # without a date range: the user's most recent 30 days of data
EXPECTED_S = 2.0  # what `estimatedCompletionTime` promises; bench/predictions.py measures the real p95


def new_ids(user_id: str, now: datetime) -> tuple[str, str]:
    """Seed-shaped ids (`pred_202508311400_user123`) with a random tail: unguessable, unique per request."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", user_id)[:40]
    stamp = now.strftime("%Y%m%d%H%M")
    return f"pred_{stamp}_{safe}_{secrets.token_hex(4)}", f"debate_{stamp}_{secrets.token_hex(6)}"


class Predictor:
    """One per api process; serializes the check-then-insert per user so two requests cannot both pass."""

    def __init__(self, settings: Settings, store: Store, publisher: Publisher) -> None:
        self.settings = settings
        self.store = store
        self.publisher = publisher
        self._locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)

    async def start(self, tenant: str, user_id: str, trigger: TriggerType, requested_by: str,
                    scope: AnalysisScope, options: PredictOptions, schedule_id: str | None = None) -> dict[str, Any]:
        async with self._locks[(tenant, user_id)]:
            request = await self.store.run(self._admit, tenant, user_id, trigger, requested_by, scope, options,
                                           schedule_id)
        await self._publish(request)
        c = request.completeness
        return {"predictionId": request.prediction_id, "status": "IN_PROGRESS",
                "estimatedCompletionTime": iso_z(request.requested_at + timedelta(seconds=EXPECTED_S)),
                "participatingAgents": len(AgentType),
                "dataCompleteness": {"sleepDays": c.sleep_days, "questionnaireAvailable": c.questionnaire_available,
                                     "mobileDataAvailable": c.mobile_data_available, "totalScore": c.total_score}}

    @staticmethod
    def _admit(cur: duckdb.DuckDBPyConnection, tenant: str, user_id: str, trigger: TriggerType, requested_by: str,
               scope: AnalysisScope, options: PredictOptions, schedule_id: str | None) -> PredictionRequest:
        records = q.load_sleep_records(cur, tenant, user_id)
        start, end = _window(scope, records)
        snapshot = build_snapshot(tenant, user_id, records, start, end, scope.include_treatment_cycle_data,
                                  scope.include_questionnaire_data)
        comp = completeness(snapshot)
        if comp.sleep_days < MIN_SLEEP_DAYS:
            raise NotEnoughData("최소 데이터 요구사항을 충족하지 않습니다", {
                "required": f"최소 {MIN_SLEEP_DAYS}일간의 수면 기록",
                "current": f"{comp.sleep_days}일간의 수면 기록",
                "suggestion": "더 많은 수면 데이터 수집 후 재시도하세요"})
        active = q.active_prediction(cur, tenant, user_id, PREDICTION_TIMEOUT_S + 5)
        if active and not options.force_execution:
            raise AlreadyRunning("이 사용자의 예측이 이미 진행 중입니다 (options.forceExecution으로 강제 실행)",
                                 {"activePredictionId": active})
        now = datetime.now(UTC)
        pid, session = new_ids(user_id, now)
        request = PredictionRequest(
            prediction_id=pid, session_id=session, tenant=tenant, user_id=user_id, trigger_type=trigger,
            priority=options.priority, requested_by=requested_by, requested_at=now,
            deadline=now + timedelta(seconds=PREDICTION_TIMEOUT_S), schedule_id=schedule_id,
            completeness=comp, snapshot=snapshot)
        q.insert_in_progress(cur, {
            "prediction_id": pid, "tenant": tenant, "user_id": user_id, "trigger_type": trigger.value,
            "priority": options.priority.value, "status": "IN_PROGRESS", "requested_by": requested_by,
            "schedule_id": schedule_id, "session_id": session, "created_at": now,
            "target_date": snapshot.diary[-1].date + timedelta(days=1),
            "data_completeness": comp.model_dump(mode="json", by_alias=True)})
        return request

    async def _publish(self, request: PredictionRequest) -> None:
        try:
            await self.publisher.send(PREDICTIONS_REQUESTS, request.model_dump_json().encode(),
                                      request.user_id.encode())
        except BrokerUnavailable as exc:  # no broker: the prediction cannot run; say so (503), keep the row honest
            await self.store.run(q.mark_failed, request.prediction_id, "COD_005", exc.message)
            raise
        log.info("prediction_requested", prediction_id=request.prediction_id, user_id=request.user_id,
                 trigger=request.trigger_type.value, sleep_days=request.completeness.sleep_days)


def _window(scope: AnalysisScope, records: list) -> tuple[Any, Any]:
    if scope.custom_date_range is not None:
        return scope.custom_date_range.start_date, scope.custom_date_range.end_date
    diary = [r.date for r in records if r.kind == "diary"]
    if not diary:
        return None, None
    end = max(diary)
    return end - timedelta(days=DEFAULT_WINDOW_DAYS - 1), end
