"""Call events that arrive over HTTP (`POST /v1/call-histories`, `POST /v1/traces`): read in any gateway's format
(the body by orjson, as calls.raw's messages are: `IntakeRoute`), checked against the caller's tenant, and made
ready to publish to calls.raw in the native shape.

A caller may write only its own tenant's calls (a `system_admin`, any tenant's); an event that names no tenant
is the caller's. The tenant an event names is the one it would be stored under (its field, else its
X-Tenant-ID header), so a header cannot carry a call into another tenant either.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

from pipeline.calls import formats
from pipeline.calls.arrow import CALLS_SCHEMA
from pipeline.calls.normalize import Invalid, iso_micros, normalize_event
from pipeline.calls.redact import is_sensitive_key, redact_values
from pipeline.ids import random_id
from pipeline.security import Principal, Role

READ = tuple(CALLS_SCHEMA.names)  # the fields normalize_event reads (besides the header maps)
if any(map(is_sensitive_key, READ)):  # redact_values takes the names as not secret
    raise RuntimeError("a native call field's name reads as a secret's")
# The fields normalize_event may take from request or response headers when the event leaves them out.
DECIDED_BY_HEADERS = ("tenant_id", "user_id", "agent_id", "request_size_bytes", "response_size_bytes", "user_agent",
                      "trace_id", "source")


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off while a body of events is read and admitted (no await inside, so no other
    request runs meanwhile). A 1,000-span OTLP export allocates ~60,000 containers, and each young collection
    they trigger walked them: `orjson.loads` took 17-22 µs a span with the collector on and 5 µs off; admitting
    500 Kong log objects, 41 against 34 µs each. JSON leaves no cycles, so nothing waits for the collector; the
    api keeps the default thresholds, which bound its memory (pipeline/cli.py)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _OrjsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            with collector_paused():
                self._json = orjson.loads(body)  # its JSONDecodeError is json's: FastAPI answers 422 as before
        return self._json


class IntakeRoute(APIRoute):
    """A route whose JSON body is read by orjson, as calls.raw's messages are, not the standard library: 3.9
    against 8.7 µs a Kong log object (1.1 against 3.2 a native event). So a body is JSON by the same rules on
    both ways in: NaN, Infinity and lone surrogates are refused whole, with FastAPI's 422."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def read_by_orjson(request: Request) -> Response:
            return await handler(_OrjsonRequest(request.scope, request.receive))

        return read_by_orjson


def admit(events: list[Any], principal: Principal) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(native events, redacted and each with an id, ready to publish; what is wrong with which event)."""
    admitted, errors = [], []
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            errors.append({"index": i, "error": f"event is a JSON {type(event).__name__}, not an object"})
            continue
        fmt = formats.detect(event)
        try:
            native = formats.to_native(event, fmt)
            record = normalize_event(native, 0)
        except Invalid as exc:
            errors.append({"index": i, "error": formats.LABELS[fmt] + str(exc)})
            continue
        tenant = record["tenant_id"]
        if tenant is None:
            native["tenant_id"] = principal.tenant_id
        elif tenant != principal.tenant_id and not principal.has(Role.SYSTEM_ADMIN):
            errors.append({"index": i, "error": f"tenant_id {tenant} is not your tenant", "foreign": True})
            continue
        if native.get("api_call_history_id") in (None, ""):
            native["api_call_history_id"] = random_id()
        # Only what the rules read, redacted, leaves the api: calls.raw never holds a secret these routes were
        # given, nor fields nobody reads (a body nested 500 deep used to take the redaction walk down with it).
        kept = {k: native[k] for k in READ if k in native}
        if "request_headers" in native or "response_headers" in native:
            # What the header maps decided is published as the fields themselves, and the maps are left out: the
            # worker stores the same row, on its vectorised path (it reads an event with header maps the exact,
            # per-event way, which made a Kong log object posted here cost it ~3x a native event).
            kept |= {name: record[name] for name in DECIDED_BY_HEADERS if record[name] is not None}
        if type(kept.get("created_at")) in (int, float):  # epoch seconds or ms (Kong's started_at): the same
            kept["created_at"] = iso_micros(record["created_at"])  # time, spelled as the vectorised path reads it
        admitted.append(redact_values(kept))
    return admitted, errors
