"""Seed 004 §5.4: my-data export, asynchronous. The seed gives only the request; the status and download
routes beside it are added (a user obviously needs them): poll `…/data-export/{exportId}`, then download."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import duckdb
import orjson
import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from api.cod_envelope import CodError, ok
from api.deps import ServicesDep, StoreDep
from api.security import matrix
from api.wire import iso_z, prediction_public
from pipeline.storage.queries import exports
from pipeline.storage.queries import predictions as q
from schemas.cod_api import Envelope, Export

log = structlog.get_logger(__name__)
router = APIRouter(tags=["data export (seed 004)"])
ExportAuth = matrix("data_export")
TTL = timedelta(hours=24)
Format = Literal["JSON", "CSV"]


def collect(cur: duckdb.DuckDBPyConnection, tenant: str, user_id: str, raw: bool) -> dict[str, Any]:
    """Everything held about the user: predictions with their recommendations, schedules, and raw records."""
    rows, _ = q.list_predictions(cur, tenant, user_id, None, None, None, 10_000, 0)
    doc: dict[str, Any] = {
        "userId": user_id, "tenant": tenant, "exportedAt": iso_z(datetime.now(UTC)),
        "predictions": [{**prediction_public(r), "recommendations": q.get_recommendations(cur, r["prediction_id"])}
                        for r in rows],
        "schedules": [{"scheduleId": s, "bedtimeGoal": iso_z(b), "scheduledTriggerTime": iso_z(t), "status": st}
                      for s, b, t, st in exports.schedules_of(cur, tenant, user_id)],
    }
    if raw:
        records = exports.sleep_records_of(cur, tenant, user_id)
        doc["sleepRecords"] = [{"kind": k, "date": d.isoformat(), "data": orjson.loads(data)} for k, d, data in records]
    return doc


def render(doc: dict[str, Any], fmt: Format) -> bytes:
    if fmt == "JSON":
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["section", "id", "date", "status", "sol_score", "confidence", "detail"])
    for p in doc["predictions"]:
        res = p.get("result") or {}
        w.writerow(["prediction", p["predictionId"], p["predictionDate"], p["status"], res.get("solScore"),
                    res.get("confidenceScore"), "; ".join(res.get("keyFindings") or [])])
    for s in doc["schedules"]:
        w.writerow(["schedule", s["scheduleId"], s["bedtimeGoal"], s["status"], "", "", s["scheduledTriggerTime"]])
    for r in doc.get("sleepRecords", []):
        w.writerow([f"sleep_{r['kind']}", "", r["date"], "", "", "", orjson.dumps(r["data"]).decode()])
    return buf.getvalue().encode()


def _build(cur: duckdb.DuckDBPyConnection, export_id: str, tenant: str, user_id: str, fmt: Format, raw: bool) -> None:
    try:
        exports.complete(cur, tenant, export_id, render(collect(cur, tenant, user_id, raw), fmt),
                         datetime.now(UTC) + TTL)
    except Exception as exc:  # noqa: BLE001 - the export fails visibly, never silently
        log.exception("export_failed", export_id=export_id)
        exports.fail(cur, tenant, export_id, str(exc))


def public(row: tuple, prefix: str) -> dict[str, Any]:
    export_id, status, fmt, created, expires = row
    done = status == "COMPLETED"
    return {"exportId": export_id, "status": status, "format": fmt, "requestedAt": iso_z(created),
            "estimatedCompletionTime": iso_z(created + timedelta(seconds=5)),
            "downloadUrl": f"{prefix}/users/me/data-export/{export_id}/download" if done else None,
            "expiresAt": iso_z(expires) if done else None}


def _prefix(request: Request) -> str:
    return request.url.path.split("/users/me/")[0]


@router.get("/users/me/data-export", status_code=202, response_model=Envelope[Export])
async def request_export(
    request: Request, principal: ExportAuth, services: ServicesDep,
    format: Annotated[Format, Query(description="JSON or CSV")] = "JSON",  # noqa: A002 - the seed's name
    include_raw: Annotated[bool, Query(alias="includeRawData")] = False,
) -> JSONResponse:
    now = datetime.now(UTC)
    export_id = f"export_{now:%Y%m%d%H%M}_{principal.user_id[:40]}_{secrets.token_hex(4)}"
    store = services.store
    await store.run(exports.create, export_id, principal.tenant_id, principal.user_id, format, include_raw, now)
    services.run_in_background(store.run(_build, export_id, principal.tenant_id, principal.user_id, format,
                                         include_raw))
    return ok(request, public((export_id, "IN_PROGRESS", format, now, None), _prefix(request)), 202)


@router.get("/users/me/data-export/{export_id}", response_model=Envelope[Export])
async def export_status(request: Request, principal: ExportAuth, store: StoreDep, export_id: str) -> JSONResponse:
    row = await store.run(exports.own, export_id, principal.tenant_id, principal.user_id)
    if row is None:
        raise CodError("COD_004", f"데이터 추출 요청을 찾을 수 없습니다: {export_id}")
    return ok(request, public(row[:5], _prefix(request)))


@router.get("/users/me/data-export/{export_id}/download", response_model=None)
async def export_download(principal: ExportAuth, store: StoreDep, export_id: str) -> Response:
    row = await store.run(exports.own, export_id, principal.tenant_id, principal.user_id)
    if row is None or row[1] != "COMPLETED" or row[4] < datetime.now(UTC):
        raise CodError("COD_004", f"다운로드할 추출 파일이 없습니다 (진행 중이거나 만료됨): {export_id}")
    media = "application/json" if row[2] == "JSON" else "text/csv"
    name = f"{export_id}.{row[2].lower()}"
    return Response(row[5], media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})
