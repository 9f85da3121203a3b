"""Where a call-history event becomes a row: raw `calls.raw` bytes -> seed-003 records or dead letters.

Pure functions, no broker. This is the exact per-event path, where every rule is written: a hand-written check
per event (no model objects, no uuid4); pydantic (`schemas.calls.CallEvent`) is only asked to explain the events
it rejects. The worker's common case goes through `pipeline/calls/vectorised.py` in batches, which sends here every
message it cannot prove valid.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from pipeline.broker.entry_messages import Invalid, decode_json, element_bytes
from pipeline.broker.records import Message
from pipeline.calls import formats
from pipeline.calls.redact import redact_query
from pipeline.dlq import DeadLetter
from schemas.calls import CallEvent

MAX_AGENT_ID = 100
_EPOCH_MS_THRESHOLD = 100_000_000_000  # numbers at or above this are epoch milliseconds, below are seconds
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NAIVE_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - iso_micros spells the zone itself
_MAX_MICROS = 253402300800 * 1_000_000  # year 10000
_BIGINT_MAX = (1 << 63) - 1
_TRACE_ID = re.compile(r"[0-9a-f]{32}", re.IGNORECASE)


IdFn = Callable[[int, int, int | None], str]  # (partition, offset, index) -> id


def normalize_messages(
    topic: str, messages: Iterable[Message], make_id: IdFn
) -> tuple[list[dict[str, Any]], list[DeadLetter]]:
    """Turn one topic's messages into normalized records and dead letters; never raises for bad input."""
    records: list[dict[str, Any]] = []
    dead: list[DeadLetter] = []
    for msg in messages:
        value = msg.value
        try:
            events = decode_json(value, "an event object")
        except Invalid as exc:
            dead.append(DeadLetter.of(str(exc), topic, msg.partition, msg.offset, None, value))
            continue
        batch = isinstance(events, list)
        for i, obj in enumerate(events if batch else (events,)):
            index = i if batch else None
            try:
                rec = normalize_any(obj, msg.timestamp_ms)
            except Invalid as exc:
                raw = value if not batch else element_bytes(obj)
                dead.append(DeadLetter.of(str(exc), topic, msg.partition, msg.offset, index, raw))
                continue
            if rec["api_call_history_id"] is None:
                rec["api_call_history_id"] = make_id(msg.partition, msg.offset, index)
            records.append(rec)
    return records, dead


def normalize_any(obj: Any, timestamp_ms: int) -> dict[str, Any]:
    """An event in any gateway's format (formats.py) -> one record; Invalid names the format and the reason."""
    if not isinstance(obj, dict):
        raise Invalid(f"batch element is a JSON {type(obj).__name__}, not an object")
    fmt = formats.detect(obj)
    try:
        native = formats.to_native(obj, fmt)
        return normalize_event(native, timestamp_ms)
    except Invalid as exc:
        reason = _explain(native, str(exc)) if fmt == formats.NATIVE else str(exc)
        raise Invalid(formats.LABELS[fmt] + reason) from None


def normalize_event(obj: Any, timestamp_ms: int) -> dict[str, Any]:
    """One event object -> one record in column order, or Invalid with the first reason found."""
    if not isinstance(obj, dict):
        raise Invalid(f"batch element is a JSON {type(obj).__name__}, not an object")
    get = obj.get
    req_h = _headers(get("request_headers"), "request_headers")
    resp_h = _headers(get("response_headers"), "response_headers")

    method = get("method")
    if not isinstance(method, str) or not (method.isascii() and method.isalpha()) or len(method) > 16:
        raise Invalid("method is missing or not an HTTP method token")
    path, query = _path_and_query(get("path"), get("query_string"))
    status = get("status_code")
    if type(status) is not int:
        raise Invalid("status_code is missing or not an integer")
    if not 100 <= status <= 599:
        raise Invalid(f"status_code {status} is outside 100-599")

    agent_id = _text(get("agent_id"), "agent_id") or _text(req_h.get("x-agent-id"), "X-Agent-ID")
    if agent_id is not None and len(agent_id) > MAX_AGENT_ID:
        raise Invalid(f"agent_id is {len(agent_id)} characters, over {MAX_AGENT_ID}")
    return {
        "api_call_history_id": _text(get("api_call_history_id"), "api_call_history_id"),
        "tenant_id": _ident(get("tenant_id"), "tenant_id") or _ident(req_h.get("x-tenant-id"), "X-Tenant-ID"),
        "user_id": _ident(get("user_id"), "user_id") or _ident(req_h.get("x-user-id"), "X-User-ID"),
        "agent_id": agent_id,
        "method": method.upper(),
        "path": path,
        "query_string": query,
        "status_code": status,
        "latency_ms": _latency(get("latency_ms")),
        "request_size_bytes": _size(get("request_size_bytes"), "request_size_bytes", req_h, streamed=False),
        "response_size_bytes": _size(get("response_size_bytes"), "response_size_bytes", resp_h,
                                     streamed=_is_sse(resp_h)),
        "ip_address": _ip(get("ip_address")),
        "user_agent": _text(get("user_agent"), "user_agent") or _text(req_h.get("user-agent"), "User-Agent"),
        "trace_id": _text(get("trace_id"), "trace_id") or trace_id_from_headers(req_h),
        "error_code": _text(get("error_code"), "error_code"),
        "source": _text(get("source"), "source") or _text(req_h.get("x-dwp-source"), "X-DWP-Source"),
        "created_at": _created_at(get("created_at"), timestamp_ms),
    }


def _headers(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"{name} must be an object of header names to values")
    if formats.lower_case_names(value):  # read only: the map as it is (a Kong log's, or one already lowered)
        return value
    return {str(k).lower(): v for k, v in value.items()}


def _text(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string")
    return value


def _ident(value: Any, name: str) -> str | None:
    """Tenant and user ids: text, or numbers as the seed's gateway sent them (stored as text)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if type(value) is int:
        return str(value)
    raise Invalid(f"{name} must be a string or an integer")


def _path_and_query(path: Any, query: Any) -> tuple[str, str | None]:
    if not isinstance(path, str) or not path:
        raise Invalid("path is missing or not a string")
    if query is not None and not isinstance(query, str):
        raise Invalid("query_string must be a string or null")
    if path.startswith(("http://", "https://")):
        try:
            parts = urlsplit(path)
        except ValueError as exc:
            raise Invalid(f"path is not a valid URL: {exc}") from None
        path, embedded = parts.path or "/", parts.query
    else:
        path, _, embedded = path.partition("?")
    if not path.startswith("/"):
        raise Invalid("path must start with '/' (or be an absolute http(s) URL)")
    query = query if query is not None else embedded
    if query and query[0] == "?":
        query = query[1:]
    # Seed 003: no query string is NULL, never ''.
    return path, (redact_cached(query) if query else None)


redact_cached = lru_cache(maxsize=65536)(redact_query)  # query strings repeat too


def _latency(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is int:
        ms = value
    elif type(value) is float:
        ms = round(value)
    else:
        raise Invalid("latency_ms must be a number")
    if ms < 0:
        raise Invalid(f"latency_ms {value} is negative")
    if ms > _BIGINT_MAX:
        raise Invalid(f"latency_ms {value} does not fit a BIGINT")
    return ms


def _size(value: Any, name: str, headers: dict[str, Any], streamed: bool) -> int | None:
    """An explicit size wins; else Content-Length; chunked or SSE bodies have no size (NULL, never a guess)."""
    if value is not None:
        if type(value) is not int:
            raise Invalid(f"{name} must be an integer")
        if value < 0:
            raise Invalid(f"{name} {value} is negative")
        if value > _BIGINT_MAX:
            raise Invalid(f"{name} {value} does not fit a BIGINT")
        return value
    if streamed or "chunked" in str(headers.get("transfer-encoding", "")).lower():
        return None
    length = str(headers.get("content-length", "")).strip()
    # As the seed's gateway (Long.parseLong): anything but plain digits that fit a BIGINT records nothing.
    if not (length.isascii() and length.isdigit()) or int(length) > _BIGINT_MAX:
        return None
    return int(length)


def _is_sse(headers: dict[str, Any]) -> bool:
    return str(headers.get("content-type", "")).lower().startswith("text/event-stream")


def _ip(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Invalid("ip_address must be a string")
    ip = canonical_ip(value)
    if ip is None:
        raise Invalid(f"ip_address {value[:64]!r} is not an IP address")
    return ip


@lru_cache(maxsize=65536)
def canonical_ip(value: str) -> str | None:
    """Client addresses repeat heavily; parsing one costs ~8 us, a cache hit ~0.1 us."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def trace_id_from_headers(headers: dict[str, Any]) -> str | None:
    """W3C traceparent (`00-<32 hex trace id>-<16 hex span>-<flags>`), else X-Trace-ID / X-B3-TraceId."""
    tp = headers.get("traceparent")
    if isinstance(tp, str):
        parts = tp.strip().split("-")
        if len(parts) >= 4 and _TRACE_ID.fullmatch(parts[1]) and parts[1] != "0" * 32:
            return parts[1].lower()
    for name in ("x-trace-id", "x-b3-traceid", "x-request-id"):
        value = headers.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _created_at(value: Any, timestamp_ms: int) -> int:
    """UTC epoch microseconds; a missing time is the Kafka record's timestamp; a naive time is UTC."""
    if value is None:
        return timestamp_ms * 1000
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise Invalid(f"created_at {value[:64]!r} is not an ISO 8601 timestamp") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return (dt - _EPOCH) // _MICROSECOND
    if type(value) in (int, float):
        micros = value * 1000 if value >= _EPOCH_MS_THRESHOLD else value * 1_000_000
        if not 0 <= micros < _MAX_MICROS:
            raise Invalid(f"created_at {value} is out of range")
        return int(micros)
    raise Invalid("created_at must be an ISO 8601 string or epoch seconds/milliseconds")


def iso_micros(micros: int) -> str:
    """`datetime.isoformat` of UTC epoch microseconds (>= 0), the inverse of `_created_at`, the second's text
    cached: a batch's calls share their seconds (0.5 against 2.4 us). For times the api spells for calls.raw."""
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{_second(seconds)}.{fraction:06d}+00:00" if fraction else f"{_second(seconds)}+00:00"


@lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    return (_NAIVE_EPOCH + timedelta(seconds=seconds)).isoformat()


def _explain(obj: Any, reason: str) -> str:
    """Prefer pydantic's wording (it names every bad field); fall back to the fast path's reason."""
    if not isinstance(obj, dict):
        return reason
    try:
        CallEvent.model_validate(obj)
    except ValidationError as exc:
        fields = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        return f"{reason} ({fields})"
    return reason
