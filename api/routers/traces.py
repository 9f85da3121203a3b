"""OTLP/HTTP traces (`POST /v1/traces`): an OpenTelemetry collector or SDK exporter sends its spans here, and
every HTTP server span becomes a call history (pipeline/calls/otlp.py says how each attribute is read).

The OTLP JSON encoding only (Content-Type application/json); protobuf is answered 415. The answer is OTLP's
`ExportTraceServiceResponse`: `{}` when every call span was taken, else `partialSuccess` with the number of
spans that could not be read and the first reasons (the exporter must not send those again). A span that names
another tenant refuses the whole request (403): nothing of it is published.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request

from api.call_intake import admit
from api.deps import PublisherDep, SettingsDep
from api.errors import ApiError, clip
from api.limits import TooLarge
from api.responses import UNSUPPORTED_MEDIA
from api.security import bearer
from pipeline.broker.entry_messages import Invalid
from pipeline.broker.topics import CALLS_RAW
from pipeline.calls import otlp
from pipeline.security import Role
from schemas.platform_api import TraceExportResult

router = APIRouter(tags=["call histories"])
Writer = bearer(Role.SYSTEM_ADMIN, Role.SERVICE_ACCOUNT)
MAX_REASONS = 5


@router.post("/v1/traces", response_model=TraceExportResult, response_model_exclude_unset=True,
             responses=UNSUPPORTED_MEDIA,
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                 "type": "object", "description": "OTLP ExportTraceServiceRequest, JSON encoding"}}}}})
async def export_traces(request: Request, principal: Writer, publisher: PublisherDep,
                        settings: SettingsDep) -> dict[str, Any]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise ApiError(415, f"send OTLP/HTTP in its JSON encoding (Content-Type: application/json), not {kind!r}")
    try:
        payload = orjson.loads(await request.body())
        spans = list(otlp.server_spans(payload))
    except (orjson.JSONDecodeError, Invalid) as exc:
        raise ApiError(400, f"not an OTLP JSON trace export: {clip(str(exc))}") from None
    names = otlp.Names(tenant=settings.otlp_tenant_attributes, user=settings.otlp_user_attributes,
                       agent=settings.otlp_agent_attributes, source=settings.otlp_source_attributes)
    events, unreadable = [], []
    for attrs, span in spans:
        if not otlp.is_http_server(attrs, span):
            continue  # not a call: a client, internal or database span
        try:
            events.append(otlp.to_event(attrs, span, names))
        except Invalid as exc:
            unreadable.append(f"span {span.get('spanId')}: {exc}")
    admitted, errors = admit(events, principal)
    foreign = [e for e in errors if e.get("foreign")]
    if foreign:
        raise ApiError(403, f"{len(foreign)} spans name a tenant that is not yours; none were accepted")
    unreadable += [f"span {events[e['index']].get('api_call_history_id')}: {e['error']}" for e in errors]
    if admitted:
        try:
            await publisher.send_json_batches(CALLS_RAW, admitted, principal.tenant_id.encode())
        except TooLarge as exc:
            raise ApiError(413, str(exc)) from None
    if not unreadable:
        return {}
    return {"partialSuccess": {"rejectedSpans": len(unreadable),
                               "errorMessage": "; ".join(clip(r) for r in unreadable[:MAX_REASONS])}}
