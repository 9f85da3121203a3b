"""The shapes gateways already send, read into the project's own (native) call event.

Each event on `calls.raw` (and each one posted to `POST /v1/call-histories`) is recognised by its keys, put
into the native shape here, and then normalised by `normalize.normalize_event` like any other: the same
redaction, NULL rules and columns, whatever the gateway. A message or a posted batch may mix formats.

* `native`: the project's snake_case event (docs/contract.md).
* `seed-dto`: seed 003's `ApiCallHistoryRequest` as its Java gateway serialises it with Jackson: camelCase
  properties, `Long` ids as JSON numbers, absent values as `null`. It has no time: the record's Kafka
  timestamp is taken, as for a native event without `created_at`.
* `kong`: the log object of Kong Gateway's logging plugins (http-log, file-log, tcp-log, udp-log, kafka-log;
  Kong 3.x, as documented for 3.8: `request`, `response`, `latencies`, `client_ip`, `started_at`, ...).
  Tenant, user and agent come from the seed's request headers (`X-Tenant-ID`, `X-User-ID`, `X-Agent-ID`), the
  user else from the Kong consumer (`custom_id`, else `username`); Kong's request id (`request.id`, 3.5+) is
  the event's id, so a log that http-log's queue sends again is stored once.

OpenTelemetry spans arrive at `POST /v1/traces` instead (`pipeline/calls/otlp.py`), and are published native.
Only the headers the rules read are kept from a gateway's header maps: the rest (cookies, authorization)
never reaches a topic.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from pipeline.broker.entry_messages import Invalid

NATIVE, SEED_DTO, KONG = "native", "seed-dto", "kong"
LABELS = {NATIVE: "", SEED_DTO: "seed 003 ApiCallHistoryRequest event: ", KONG: "Kong log event: "}

# Jackson's names for the seed DTO's properties (and for the native columns a gateway may add in its style).
CAMEL = {
    "apiCallHistoryId": "api_call_history_id", "tenantId": "tenant_id", "userId": "user_id",
    "agentId": "agent_id", "queryString": "query_string", "statusCode": "status_code", "latencyMs": "latency_ms",
    "requestSizeBytes": "request_size_bytes", "responseSizeBytes": "response_size_bytes",
    "ipAddress": "ip_address", "userAgent": "user_agent", "traceId": "trace_id", "errorCode": "error_code",
    "createdAt": "created_at", "requestHeaders": "request_headers", "responseHeaders": "response_headers",
}
DTO_MARKS = frozenset({"statusCode", "tenantId", "latencyMs"})  # any of these not null: a seed-dto event
# What normalize_event reads from header maps; every other header is dropped.
KEPT_HEADERS = frozenset({
    "x-tenant-id", "x-user-id", "x-agent-id", "x-dwp-source", "user-agent", "traceparent", "x-trace-id",
    "x-b3-traceid", "x-request-id", "content-length", "content-type", "transfer-encoding",
})


def detect(obj: dict[str, Any]) -> str:
    """Which gateway wrote this event object."""
    if isinstance(obj.get("request"), dict) and isinstance(obj.get("response"), dict):
        return KONG
    if any(obj.get(k) is not None for k in DTO_MARKS):
        return SEED_DTO
    return NATIVE


def to_native(obj: dict[str, Any], fmt: str) -> dict[str, Any]:
    """The event in the native shape (the same object when it already is); Invalid if it cannot be read."""
    if fmt == SEED_DTO:
        return from_seed_dto(obj)
    if fmt == KONG:
        return from_kong(obj)
    return obj


def from_seed_dto(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    for key, name in CAMEL.items():
        value = out.pop(key, None)
        if value is None:
            continue
        if out.get(name) is not None:
            raise Invalid(f"{name} is given twice ({key} and {name})")
        out[name] = value
    return out


def from_kong(obj: dict[str, Any]) -> dict[str, Any]:
    request, response = obj["request"], obj["response"]
    req_h, resp_h = kept_headers(request.get("headers"), "request.headers"), kept_headers(
        response.get("headers"), "response.headers")
    latencies = obj.get("latencies")
    if latencies is not None and not isinstance(latencies, dict):
        raise Invalid("latencies must be an object")
    path = request.get("uri")
    query = None
    if not isinstance(path, str) or not path:
        path = request.get("url")  # the whole URL; normalize_event keeps its path and query
    if isinstance(path, str) and "?" not in path:
        query = _querystring(request.get("querystring"))
    consumer = obj.get("consumer") if isinstance(obj.get("consumer"), dict) else {}
    return {
        "api_call_history_id": request.get("id"),
        "user_id": req_h.pop("x-user-id", None) or consumer.get("custom_id") or consumer.get("username"),
        "method": request.get("method"),
        "path": path,
        "query_string": query,
        "status_code": response.get("status"),
        "latency_ms": (latencies or {}).get("request"),
        "request_size_bytes": _kong_size(request.get("size"), "request.size"),
        "response_size_bytes": _kong_size(response.get("size"), "response.size"),
        "ip_address": obj.get("client_ip"),
        "created_at": obj.get("started_at"),
        "request_headers": req_h,
        "response_headers": resp_h,
    }


def kept_headers(value: Any, name: str) -> dict[str, Any]:
    """The headers the rules read, lower-cased; a repeated header (a JSON array) joined as HTTP joins it."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"{name} must be an object of header names to values")
    out = {}
    for key, v in value.items():
        k = key
        if k not in KEPT_HEADERS:
            if type(k) is str and k.islower():  # Kong writes names lower-case: most names are decided here
                continue
            k = str(key).lower()
            if k not in KEPT_HEADERS:
                continue
        out[k] = ", ".join(map(str, v)) if isinstance(v, list) else v
    return out


def lower_case_names(headers: dict[Any, Any]) -> bool:
    """Whether every name is a string without an upper-case letter (one join and one compare, not one per name)."""
    try:
        names = "".join(headers)
    except TypeError:  # a name that is not a string (not from JSON)
        return False
    return names == names.lower()


def _querystring(value: Any) -> str | None:
    """Kong's parsed query (`{"a": "1", "flag": true, "b": ["1", "2"]}`) back into a query string."""
    if not value:
        return None
    if not isinstance(value, dict):
        raise Invalid("request.querystring must be an object")
    pairs = []
    for key, v in value.items():
        for item in v if isinstance(v, list) else [v]:
            if item is not None:  # a null argument carries nothing
                pairs.append((key, "") if item is True else (key, str(item)))
    return urlencode(pairs) or None


def _kong_size(value: Any, name: str) -> Any:
    """Kong 0.x wrote sizes as strings of digits; 1.0 on, as numbers."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            raise Invalid(f"{name} {value[:32]!r} is not a number of bytes")
        return int(value)
    return value
