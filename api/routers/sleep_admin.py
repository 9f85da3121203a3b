"""Seed 004 §5: a user's predictions for staff, archive and restore, permanent erasure (two steps)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import duckdb
import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api.cod_envelope import CodError, ok, tenant_filter
from api.deps import PublisherDep, StoreDep
from api.publish import Publisher
from api.refusals import BrokerUnavailable
from api.security import matrix
from api.wire import iso_z, prediction_public
from pipeline.broker.topics import PRIVACY_ERASURES
from pipeline.storage.queries import predictions as q
from pipeline.storage.queries import user_data
from schemas.cod_api import Archived, Envelope, Erased, Restored, UserPredictions
from schemas.predictions import ArchiveBody, EraseBody, RestoreBody
from schemas.privacy import Erasure
from schemas.strict import IsoDate, IsoDateTime

log = structlog.get_logger(__name__)
router = APIRouter(tags=["data management (seed 004)"])
UserPredictionsAuth = matrix("admin_user_predictions")
ArchiveAuth = matrix("admin_archive")
RestoreAuth = matrix("admin_restore")
DeleteAuth = matrix("admin_delete")
CODE_TTL = timedelta(minutes=10)


def _details(cur: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> dict[str, Any]:
    rounds = [{**r, "startTime": iso_z(r["startTime"]), "endTime": iso_z(r["endTime"])}
              for r in q.get_rounds(cur, row["session_id"])]
    return {**prediction_public(row), "debateRounds": rounds,
            "analyses": q.analyses_of(cur, row["prediction_id"]),
            "recommendations": q.get_recommendations(cur, row["prediction_id"])}


@router.get("/admin/users/{user_id}/predictions", response_model=Envelope[UserPredictions])
async def user_predictions(
    request: Request, principal: UserPredictionsAuth, store: StoreDep, user_id: str,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    start_date: Annotated[IsoDateTime | IsoDate | None, Query(alias="startDate")] = None,
    end_date: Annotated[IsoDateTime | IsoDate | None, Query(alias="endDate")] = None,
    include_details: Annotated[bool, Query(alias="includeDetails")] = False,
) -> JSONResponse:
    def read(cur: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        rows, s = q.list_predictions(cur, tenant_filter(principal), user_id, None, start_date, end_date, limit, 0)
        items = [_details(cur, r) if include_details else prediction_public(r) for r in rows]
        return {"userId": user_id, "predictions": items, "total": s["total"], "limit": limit,
                "includeDetails": include_details}

    return ok(request, await store.run(read))


@router.post("/admin/users/{user_id}/archive", response_model=Envelope[Archived])
async def archive_user(request: Request, principal: ArchiveAuth, store: StoreDep, user_id: str,
                       body: ArchiveBody) -> JSONResponse:
    tenant = principal.tenant_id
    try:
        moved = await store.run(user_data.archive, tenant, user_id, body.reason, body.retention_policy,
                                body.archive_date or datetime.now(UTC).date())
    except duckdb.Error as exc:
        log.error("archive_failed", user_id=user_id, error=str(exc))
        raise CodError("COD_D001", "데이터 아카이빙 실패; 아무것도 옮겨지지 않았습니다") from None
    if not sum(moved.values()):
        raise CodError("COD_004", f"아카이브할 데이터가 없습니다: {user_id}")
    return ok(request, {"userId": user_id, "status": "ARCHIVED", "reason": body.reason,
                        "retentionPolicy": body.retention_policy, "rowsArchived": moved,
                        "archivedAt": iso_z(datetime.now(UTC)), "restoreUrl": f"{_prefix(request)}/admin/users/"
                                                                          f"{user_id}/restore"})


@router.post("/admin/users/{user_id}/restore", response_model=Envelope[Restored])
async def restore_user(request: Request, principal: RestoreAuth, store: StoreDep, user_id: str,
                       body: RestoreBody) -> JSONResponse:
    """Added beside archive (docs/decisions.md): moves the user's archived rows back into the hot tables."""
    tenant = principal.tenant_id
    try:
        moved = await store.run(user_data.restore, tenant, user_id)
    except duckdb.Error as exc:
        log.error("restore_failed", user_id=user_id, error=str(exc))
        raise CodError("COD_D002", "데이터 복원 실패; 아카이브는 그대로 남아 있습니다") from None
    if moved is None:
        raise CodError("COD_004", f"아카이브된 데이터가 없습니다: {user_id}")
    return ok(request, {"userId": user_id, "status": "RESTORED", "rowsRestored": moved, "reason": body.reason})


def _prefix(request: Request) -> str:
    return request.url.path.split("/admin/")[0]


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@router.delete("/admin/users/{user_id}/data", response_model=Envelope[Erased])
async def erase_user(request: Request, principal: DeleteAuth, store: StoreDep, publisher: PublisherDep, user_id: str,
                     body: EraseBody) -> JSONResponse:
    """Two steps: without a valid confirmationCode the answer is COD_D004 carrying a new one (10 minutes)."""
    tenant = principal.tenant_id
    if not body.cascade_delete:
        raise CodError("COD_D004", "GDPR 준수 요구사항 미충족: 영구 삭제는 모든 테이블에 연쇄 적용되어야 합니다"
                                   " (cascadeDelete: true)")
    # `write`: two requests redeeming one code at once race on its row; the loser runs again and finds it gone.
    if not body.confirmation_code or not await store.write(user_data.redeem_erasure_code,
                                                           _hash(body.confirmation_code), tenant, user_id):
        code = f"DELETE_CONFIRM_{secrets.token_hex(4).upper()}"
        expires = datetime.now(UTC) + CODE_TTL
        await store.run(user_data.issue_erasure_code, _hash(code), tenant, user_id, principal.user_id, expires)
        raise CodError("COD_D004", "삭제 확인이 필요합니다: 받은 confirmationCode를 담아 같은 요청을 다시 보내세요", {
            "confirmationCode": code, "expiresAt": iso_z(expires), "invalidCodeGiven": bool(body.confirmation_code)})
    deleted = await store.run(user_data.erase, tenant, user_id, body.reason, principal.user_id)
    await _announce_erasure(publisher, tenant, user_id)
    log.info("user_erased", tenant=tenant, user_id=user_id, rows=sum(deleted.values()))
    return ok(request, {"userId": user_id, "status": "DELETED", "reason": body.reason, "rowsDeleted": deleted,
                        "deletedAt": iso_z(datetime.now(UTC))})


async def _announce_erasure(publisher: Publisher, tenant: str, user_id: str) -> None:
    """`privacy.erasures` lets every replica and a rebuild skip this user forever; best effort, the row stays."""
    value = Erasure(tenant=tenant, user_id=user_id, erased_at=datetime.now(UTC)).model_dump_json().encode()
    try:
        await publisher.send(PRIVACY_ERASURES, value, f"{tenant}/{user_id}".encode())
    except BrokerUnavailable as exc:
        log.error("erasure_not_announced", tenant=tenant, user_id=user_id, error=str(exc))
