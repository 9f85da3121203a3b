"""Call events that arrive over HTTP (`POST /v1/call-histories`, `POST /v1/traces`): read in any gateway's format,
checked against the caller's tenant, and made ready to publish to calls.raw in the native shape.

A caller may write only its own tenant's calls (a `system_admin`, any tenant's); an event that names no tenant
is the caller's. The tenant an event names is the one it would be stored under (its field, else its
X-Tenant-ID header), so a header cannot carry a call into another tenant either.
"""

from __future__ import annotations

import uuid
from typing import Any

from pipeline.calls import formats
from pipeline.calls.arrow import CALLS_SCHEMA
from pipeline.calls.normalize import Invalid, normalize_event
from pipeline.calls.redact import redact_json
from pipeline.security import Principal, Role

READ = tuple(CALLS_SCHEMA.names)  # the fields normalize_event reads (and the header maps, kept apart)


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
            tenant = normalize_event(native, 0)["tenant_id"]
        except Invalid as exc:
            errors.append({"index": i, "error": formats.LABELS[fmt] + str(exc)})
            continue
        if tenant is None:
            native["tenant_id"] = principal.tenant_id
        elif tenant != principal.tenant_id and not principal.has(Role.SYSTEM_ADMIN):
            errors.append({"index": i, "error": f"tenant_id {tenant} is not your tenant", "foreign": True})
            continue
        if native.get("api_call_history_id") in (None, ""):
            native["api_call_history_id"] = uuid.uuid4().hex
        # Only what the rules read, redacted, leaves the api: calls.raw never holds a secret these routes were
        # given, nor fields nobody reads (a body nested 500 deep used to take the redaction walk down with it).
        kept = {k: native[k] for k in READ if k in native}
        for name in ("request_headers", "response_headers"):
            if name in native:
                kept[name] = formats.kept_headers(native[name], name)
        admitted.append(redact_json(kept))
    return admitted, errors
