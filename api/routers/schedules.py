"""Seed 004 §2: the current schedule, reschedule, cancel. Schedules come from the user's treatment record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api.cod_envelope import CodError, ok, subject_user, tenant_filter, visible
from api.deps import SettingsDep, StoreDep
from api.security import matrix
from api.wire import iso_z
from pipeline.storage.db import atomic, retry_conflicts
from pipeline.storage.queries import schedules as sq
from schemas.cod_api import Envelope, Schedule, ScheduleUpdated
from schemas.predictions import ScheduleUpdateBody

router = APIRouter(tags=["schedules (seed 004)"])
CurrentAuth = matrix("schedule_current")
UpdateAuth = matrix("schedule_update")
DeleteAuth = matrix("schedule_delete")


def public(s: dict[str, Any]) -> dict[str, Any]:
    return {"scheduleId": s["schedule_id"], "userId": s["user_id"], "bedtimeGoal": iso_z(s["bedtime_goal"]),
            "scheduledTriggerTime": iso_z(s["scheduled_trigger_time"]), "status": s["status"],
            "retryCount": s["retry_count"], "nextExecution": iso_z(s["next_execution"]) if s["status"] in sq.ACTIVE
            else None, "timezone": s["timezone"], "lastPredictionId": s["last_prediction_id"]}


@retry_conflicts  # the scheduler may create the same schedule at the same moment: then it is read back
def _current(cur, tenant: str, user: str, lead: timedelta) -> dict[str, Any]:  # noqa: ANN001
    active = sq.active_for(cur, tenant, user)
    if active is not None:
        return active
    treatment = sq.latest_treatment(cur, tenant, user)
    if treatment is None or treatment.bedtime_goal is None:
        raise CodError("COD_S001", "취침목표시간 조회 실패: 치료 데이터에 취침 목표가 없습니다", {"userId": user})
    if treatment.paused:
        raise CodError("COD_S004", "사용자 치료 일시정지 상태입니다: 예측 스케줄이 없습니다", {"userId": user})
    bedtime = sq.next_bedtime(treatment, datetime.now(UTC), lead)
    return sq.create(cur, tenant, user, bedtime, lead, treatment.timezone, "TREATMENT_BEDTIME_GOAL")


@router.get("/schedules/current", response_model=Envelope[Schedule])
async def current_schedule(
    request: Request, principal: CurrentAuth, store: StoreDep, settings: SettingsDep,
    user_id: Annotated[str | None, Query(alias="userId", description="staff only; default: yourself")] = None,
) -> JSONResponse:
    lead = timedelta(seconds=settings.schedule_lead_s)
    user = subject_user(principal, user_id)
    return ok(request, public(await store.run(_current, principal.tenant_id, user, lead)))


@atomic  # the scheduler or a second request may change the same schedules at once
def _reschedule(cur, tenant: str, body: ScheduleUpdateBody, lead: timedelta) -> dict[str, Any]:  # noqa: ANN001
    treatment = sq.latest_treatment(cur, tenant, body.user_id)
    if treatment is not None and treatment.paused:
        raise CodError("COD_S004", "사용자 치료 일시정지 상태: 스케줄을 변경할 수 없습니다", {"userId": body.user_id})
    bedtime = body.new_bedtime_goal.astimezone(UTC)
    if bedtime - lead <= datetime.now(UTC):
        raise CodError("COD_001", f"newBedtimeGoal은 트리거 시간({lead.total_seconds() / 60:.0f}분 전)이 "
                                  "미래가 되어야 합니다")
    active = sq.active_for(cur, tenant, body.user_id)
    duplicate = sq.get(cur, tenant, sq.schedule_id(tenant, body.user_id, bedtime))
    if (active or duplicate) and not body.force_reschedule:
        existing = (active or duplicate)["schedule_id"]
        raise CodError("COD_S003", "중복 스케줄 생성 시도: 기존 스케줄이 있습니다 (forceReschedule: true로 교체)",
                       {"existingScheduleId": existing})
    for old in {s["schedule_id"] for s in (active, duplicate) if s}:
        sq.set_status(cur, tenant, old, "CANCELLED", reason=f"REPLACED: {body.reason}")
    if duplicate:
        sq.delete(cur, tenant, duplicate["schedule_id"])
    timezone = treatment.timezone if treatment else "UTC"
    return {**sq.create(cur, tenant, body.user_id, bedtime, lead, timezone, body.reason),
            "previous": active["schedule_id"] if active else None}


@router.put("/schedules/update", response_model=Envelope[ScheduleUpdated])
async def update_schedule(request: Request, principal: UpdateAuth, store: StoreDep, settings: SettingsDep,
                          body: ScheduleUpdateBody) -> JSONResponse:
    lead = timedelta(seconds=settings.schedule_lead_s)
    row = await store.run(_reschedule, principal.tenant_id, body, lead)
    return ok(request, {**public(row), "previousScheduleId": row["previous"], "reason": body.reason})


@retry_conflicts  # two cancels, or a cancel and the scheduler, updating one row at once: one of them waits a turn
def _cancel(cur, principal, sid: str) -> dict[str, Any]:  # noqa: ANN001
    s = sq.get(cur, tenant_filter(principal), sid)
    if s is None or not visible(principal, s["tenant"], s["user_id"]):
        raise CodError("COD_004", f"스케줄을 찾을 수 없습니다: {sid}")
    if s["status"] in sq.ACTIVE:
        sq.set_status(cur, s["tenant"], sid, "CANCELLED", reason="CANCELLED_BY_ADMIN")
    return sq.get(cur, s["tenant"], sid)


@router.delete("/schedules/{schedule_id}", response_model=Envelope[Schedule])
async def cancel_schedule(request: Request, principal: DeleteAuth, store: StoreDep, schedule_id: str) -> JSONResponse:
    return ok(request, public(await store.run(_cancel, principal, schedule_id)))
