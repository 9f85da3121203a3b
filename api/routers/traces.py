"""OTLP/HTTP traces (`POST /v1/traces`): an OpenTelemetry collector or SDK exporter sends its spans here, and
every HTTP server span becomes a call history (pipeline/calls/otlp.py says how each attribute is read).

Both OTLP/HTTP encodings: JSON (Content-Type application/json) and protobuf (application/x-protobuf); any other
type is answered 415. The answer is OTLP's `ExportTraceServiceResponse` in the request's encoding: empty when
every call span was taken, else `partialSuccess` with the number of spans that could not be read and the first
reasons (the exporter must not send those again). A span that names another tenant refuses the whole request
(403): nothing of it is published. Errors of a protobuf request carry a protobuf `google.rpc.Status`, as OTLP/HTTP
asks; a JSON request gets the platform's error shape.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from api.call_intake import admit, collector_paused
from api.deps import PublisherDep, SettingsDep
from api.errors import ApiError, clip
from api.limits import TooLarge
from api.publish import Publisher
from api.responses import UNSUPPORTED_MEDIA
from api.security import bearer
from pipeline.broker.entry_messages import Invalid
from pipeline.broker.topics import CALLS_RAW
from pipeline.calls import otlp
from pipeline.security import Principal, Role
from pipeline.settings import Settings
from schemas.platform_api import TraceExportResult

router = APIRouter(tags=["call histories"])
Writer = bearer(Role.SYSTEM_ADMIN, Role.SERVICE_ACCOUNT)
MAX_REASONS = 5


PROTOBUF = "application/x-protobuf"
_STATUS_CODES = {400: 3, 403: 7, 413: 3, 415: 3}  # google.rpc.Code: INVALID_ARGUMENT, PERMISSION_DENIED


@router.post("/v1/traces", response_model=TraceExportResult, response_model_exclude_unset=True,
             responses={**UNSUPPORTED_MEDIA, 200: {"content": {PROTOBUF: {"schema": {
                 "type": "string", "format": "binary", "description": "ExportTraceServiceResponse, protobuf"}}}}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": {"type": "object",
                                                 "description": "OTLP ExportTraceServiceRequest, JSON encoding"}},
                 PROTOBUF: {"schema": {"type": "string", "format": "binary",
                                       "description": "OTLP ExportTraceServiceRequest, protobuf encoding"}}}}})
async def export_traces(request: Request, principal: Writer, publisher: PublisherDep,
                        settings: SettingsDep) -> Any:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/json", PROTOBUF):
        raise ApiError(415, f"send OTLP/HTTP as JSON (application/json) or protobuf ({PROTOBUF}), not {kind!r}")
    try:
        partial = await _export(await request.body(), kind == PROTOBUF, principal, publisher, settings)
    except ApiError as exc:
        if kind != PROTOBUF:
            raise
        request.state.error_code = exc.code  # what the api's own call record says went wrong
        status = Status(code=_STATUS_CODES.get(exc.status, 3), message=exc.message)
        return Response(status.SerializeToString(), exc.status, media_type=PROTOBUF)
    if kind == PROTOBUF:
        answer = ExportTraceServiceResponse()
        if partial:
            answer.partial_success.rejected_spans = partial["rejectedSpans"]
            answer.partial_success.error_message = partial["errorMessage"]
        return Response(answer.SerializeToString(), media_type=PROTOBUF)
    return {"partialSuccess": partial} if partial else {}


def _calls(body: bytes, protobuf: bool, principal: Principal, settings: Settings) -> tuple[list, list[str]]:
    """The export's call spans as admitted call events, and why the others could not be read."""
    try:
        spans = list(otlp.server_spans_protobuf(body) if protobuf else otlp.server_spans(orjson.loads(body)))
    except (orjson.JSONDecodeError, Invalid, ValueError) as exc:
        encoding = "protobuf" if protobuf else "JSON"
        raise ApiError(400, f"not an OTLP {encoding} trace export: {clip(str(exc))}") from None
    names = otlp.Names(tenant=settings.otlp_tenant_attributes, user=settings.otlp_user_attributes,
                       agent=settings.otlp_agent_attributes, source=settings.otlp_source_attributes)
    events, unreadable = [], []
    for attrs, span in spans:
        if not otlp.is_http_server(attrs, span):
            continue  # not a call: a client, internal or database span
        try:
            events.append(otlp.to_event(attrs, span, names))
        except (Invalid, ValueError) as exc:
            unreadable.append(f"span {span.get('spanId')}: {exc}")
    admitted, errors = admit(events, principal)
    foreign = [e for e in errors if e.get("foreign")]
    if foreign:
        raise ApiError(403, f"{len(foreign)} spans name a tenant that is not yours; none were accepted")
    unreadable += [f"span {events[e['index']].get('api_call_history_id')}: {e['error']}" for e in errors]
    return admitted, unreadable


async def _export(body: bytes, protobuf: bool, principal: Principal, publisher: Publisher,
                  settings: Settings) -> dict[str, Any] | None:
    """Publish the export's call spans; the partial success to report, if any (None: every span was taken)."""
    with collector_paused():
        admitted, unreadable = _calls(body, protobuf, principal, settings)
    if admitted:
        try:
            await publisher.send_json_batches(CALLS_RAW, admitted, principal.tenant_id.encode())
        except TooLarge as exc:
            raise ApiError(413, str(exc)) from None
    if not unreadable:
        return None
    return {"rejectedSpans": len(unreadable), "errorMessage": "; ".join(clip(r) for r in unreadable[:MAX_REASONS])}
