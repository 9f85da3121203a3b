"""OpenTelemetry HTTP server spans, as OTLP/HTTP sends them in JSON, -> native call events.

Read as the OTLP 1.x JSON encoding of `ExportTraceServiceRequest` (opentelemetry-proto):
`resourceSpans[].scopeSpans[].spans[]`, trace and span ids as hex, 64-bit integers as strings or numbers, enums
as numbers or names. The protobuf encoding (`server_spans_protobuf`) is read into the same shapes, so both go
through `is_http_server` and `to_event` alike. A span is a call when it is a SERVER span with an HTTP method;
every other span (clients, internals, a database's) is not a call and is left out.

Attributes follow the stable HTTP semantic conventions (1.23 on): `http.request.method`, `url.path`,
`url.query`, `http.response.status_code`, `http.request.body.size`, `http.response.body.size`,
`client.address`, `user_agent.original`, `error.type`; the names before them (`http.method`, `http.target`,
`http.status_code`, `http.request_content_length`, `http.client_ip`, `http.user_agent`, ...) are read too, as
older instrumentations still send them. Latency is end - start; the time is the start. Tenant, user, agent and
source come from the attributes named in `Names` (settings), else from captured request headers
(`http.request.header.x-tenant-id`, ...), span attributes before resource ones. A span's id is its trace id and
span id, so spans an exporter sends again are stored once.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from pipeline.broker.entry_messages import Invalid
from pipeline.calls.normalize import iso_micros

SERVER = 2  # SpanKind.SPAN_KIND_SERVER
_KINDS = {"SPAN_KIND_SERVER": SERVER}
MAX_DEPTH = 16  # nested array / kvlist attribute values (a hostile body could nest far deeper)
MAX_NANOS = 253402300800 * 1_000_000_000  # the year 10000
_NO_TEXT = object()


@dataclass(frozen=True, slots=True)
class Names:
    """Where a span says whose call it was (first attribute found wins)."""

    tenant: tuple[str, ...] = ("tenant.id",)
    user: tuple[str, ...] = ("user.id", "enduser.id")
    agent: tuple[str, ...] = ("gen_ai.agent.id",)
    source: tuple[str, ...] = ()


def server_spans(payload: Any) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(attributes, span) of every span, resource attributes under the span's own; Invalid if not OTLP."""
    if not isinstance(payload, dict):
        raise Invalid("not an OTLP ExportTraceServiceRequest: the body must be an object")
    for rs in _array(payload.get("resourceSpans"), "resourceSpans"):
        resource = attributes(_object(_object(rs, "resourceSpans[]").get("resource"), "resource").get("attributes"))
        scopes = rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans")
        for ss in _array(scopes, "scopeSpans"):
            for span in _array(_object(ss, "scopeSpans[]").get("spans"), "spans"):
                yield resource | attributes(_object(span, "spans[]").get("attributes")), span


def server_spans_protobuf(body: bytes) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The same (attributes, span) pairs as `server_spans`, from the protobuf encoding. Ids become hex and
    bytes values base64 text, as the JSON encoding writes them; an unset (zero) time is a missing one."""
    try:
        request = ExportTraceServiceRequest.FromString(body)
    except (DecodeError, RecursionError) as exc:
        raise Invalid(f"the protobuf ExportTraceServiceRequest cannot be decoded: {exc}") from None
    for rs in request.resource_spans:
        resource = _pb_attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for span in ss.spans:
                yield resource | _pb_attributes(span.attributes), {
                    "kind": span.kind, "traceId": span.trace_id.hex() or None, "spanId": span.span_id.hex() or None,
                    "startTimeUnixNano": span.start_time_unix_nano or None,
                    "endTimeUnixNano": span.end_time_unix_nano or None,
                }


def _pb_attributes(values: Any, depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        kv: KeyValue = item
        out[kv.key] = _pb_value(kv.value, depth)
    return out


def _pb_value(value: AnyValue, depth: int) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if depth > MAX_DEPTH:
        raise Invalid(f"an attribute value nests more than {MAX_DEPTH} arrays or lists")
    if kind == "array_value":
        return [_pb_value(x, depth + 1) for x in value.array_value.values]
    if kind == "kvlist_value":
        return _pb_attributes(value.kvlist_value.values, depth + 1)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)  # string_value, bool_value, int_value, double_value


def attributes(values: Any, depth: int = 0) -> dict[str, Any]:
    """OTLP's `[{"key": k, "value": {"stringValue": ...}}]` as a plain dict."""
    out: dict[str, Any] = {}
    for item in _array(values, "attributes"):
        if not isinstance(item, dict):
            continue
        key = item.get("key")
        if type(key) is not str:
            continue
        value = item.get("value")
        if type(value) is dict and len(value) == 1:  # most attributes: one hop, a string or an integer's text
            text = value.get("stringValue", _NO_TEXT)
            if text is not _NO_TEXT:
                out[key] = text
                continue
            number = value.get("intValue")
            if type(number) is str and number.isascii() and number.isdigit():
                out[key] = int(number)
                continue
        out[key] = any_value(value, depth)
    return out


def any_value(value: Any, depth: int = 0) -> Any:
    if not isinstance(value, dict) or not value:
        return None
    if depth > MAX_DEPTH:
        raise Invalid(f"an attribute value nests more than {MAX_DEPTH} arrays or lists")
    kind, v = next(iter(value.items()))
    if kind == "intValue":
        return int(v) if type(v) is int or (isinstance(v, str) and _integer_text(v)) else v
    if kind == "doubleValue" and type(v) is int:  # a whole number in JSON is still a double, as protobuf reads it
        return float(v)
    if kind == "arrayValue":
        return [any_value(x, depth + 1) for x in _array(_object(v, kind).get("values"), "values")]
    if kind == "kvlistValue":
        return attributes(_object(v, kind).get("values"), depth + 1)
    return v  # stringValue, boolValue, doubleValue, bytesValue (base64 text)


def _array(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Invalid(f"{name} must be an array")
    return value


def _object(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"{name} must be an object")
    return value


def is_http_server(attrs: dict[str, Any], span: dict[str, Any]) -> bool:
    kind = span.get("kind")
    kind = _KINDS.get(kind, kind) if isinstance(kind, str) else kind
    return kind == SERVER and _first(attrs, "http.request.method", "http.method") is not None


def to_event(attrs: dict[str, Any], span: dict[str, Any], names: Names) -> dict[str, Any]:
    """One HTTP server span -> a native call event (normalize_event checks it like any other). Each field is the
    first of its attribute names that is set (`_first`), written out: this runs once per span of every export."""
    start, end = _nanos(span.get("startTimeUnixNano"), "startTimeUnixNano"), _nanos(
        span.get("endTimeUnixNano"), "endTimeUnixNano")
    if end < start:
        raise Invalid("endTimeUnixNano is before startTimeUnixNano")
    get = attrs.get
    path = get("url.path")
    if path is None:  # older conventions: the target (path and query), else the whole URL
        path = _first(attrs, "http.target", "url.full", "http.url")
    trace, span_id = span.get("traceId") or None, span.get("spanId") or None  # "" is unset, as in protobuf
    method = get("http.request.method")
    status = get("http.response.status_code")
    size_in = get("http.request.body.size")
    size_out = get("http.response.body.size")
    agent = get("user_agent.original")
    return {
        "api_call_history_id": (f"{trace}{span_id}".lower() if isinstance(trace, str) and isinstance(span_id, str)
                                else None),
        "tenant_id": _who(attrs, names.tenant, _CAPTURED["x-tenant-id"]),
        "user_id": _who(attrs, names.user, _CAPTURED["x-user-id"]),
        "agent_id": _who(attrs, names.agent, _CAPTURED["x-agent-id"]),
        "method": get("http.method") if method is None else method,
        "path": path,
        "query_string": get("url.query"),
        "status_code": get("http.status_code") if status is None else status,
        "latency_ms": round((end - start) / 1_000_000),
        "request_size_bytes": get("http.request_content_length") if size_in is None else size_in,
        "response_size_bytes": get("http.response_content_length") if size_out is None else size_out,
        "ip_address": _first(attrs, "client.address", "http.client_ip", "net.sock.peer.addr"),
        "user_agent": get("http.user_agent") if agent is None else agent,
        "trace_id": trace.lower() if isinstance(trace, str) and trace else None,
        "error_code": get("error.type"),
        "source": _who(attrs, names.source, _CAPTURED["x-dwp-source"]),
        "created_at": iso_micros(start // 1000),
    }


def _first(attrs: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = attrs.get(name)
        if value is not None:
            return value
    return None


# The semantic conventions' captured request headers (a string array each), by header.
_CAPTURED = {h: f"http.request.header.{h}" for h in ("x-tenant-id", "x-user-id", "x-agent-id", "x-dwp-source")}


def _who(attrs: dict[str, Any], names: tuple[str, ...], captured_name: str) -> Any:
    value = _first(attrs, *names)
    if value is None:
        captured = attrs.get(captured_name)
        value = captured[0] if isinstance(captured, list) and captured else captured
    return value


def _nanos(value: Any, name: str) -> int:
    """Nanoseconds since 1970; 0 is OTLP's unset value (protobuf cannot tell it from a missing field)."""
    nanos = int(value) if isinstance(value, str) and _integer_text(value) else value
    if type(nanos) is int and 0 < nanos < MAX_NANOS:
        return nanos
    raise Invalid(f"{name} is missing or not a number of nanoseconds since 1970 (before the year 10000)")


def _integer_text(text: str) -> bool:
    """`-?[0-9]+`: ASCII digits only (str.isdigit alone takes "²", which int() refuses)."""
    digits = text[1:] if text[:1] == "-" else text
    return digits.isascii() and digits.isdigit()
