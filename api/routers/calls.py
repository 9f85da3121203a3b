"""Call histories (seed 003): filtered reads, one record, stats, and a POST for gateways without Kafka."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query

from api.call_intake import IntakeRoute, admit, collector_paused
from api.deps import PublisherDep, SettingsDep, StoreDep
from api.errors import MAX_ERRORS, ApiError, clip
from api.limits import TooLarge
from api.security import bearer
from pipeline.broker.topics import CALLS_RAW
from pipeline.security import Principal, Role
from pipeline.storage.queries.calls import BadCursor, Bucket, CallFilters, call_stats, get_call, list_calls
from schemas.calls import Accepted, CallHistoriesPublic, CallHistoryPublic
from schemas.platform_api import CallStats
from schemas.strict import IsoDateTime

router = APIRouter(prefix="/v1/call-histories", tags=["call histories"], route_class=IntakeRoute)

Reader = bearer(Role.SYSTEM_ADMIN, Role.IAM_ADMIN, Role.SERVICE_ACCOUNT)
Writer = bearer(Role.SYSTEM_ADMIN, Role.SERVICE_ACCOUNT)
MAX_POST_EVENTS = 10_000


def _tenant_scope(principal: Principal, requested: str | None) -> str | None:
    """system_admin reads every tenant (or the one asked for); everyone else reads only their own."""
    if principal.has(Role.SYSTEM_ADMIN):
        return requested
    if requested is not None and requested != principal.tenant_id:
        raise ApiError(403, f"you may read tenant {principal.tenant_id} only")
    return principal.tenant_id


def _filters(
    principal: Reader,
    tenant_id: Annotated[str | None, Query(description="system_admin only: one tenant")] = None,
    agent_id: str | None = None,
    user_id: str | None = None,
    path: str | None = None,
    source: Annotated[str | None, Query(description="X-DWP-Source, e.g. AURA")] = None,
    method: str | None = None,
    status_min: Annotated[int | None, Query(ge=100, le=599)] = None,
    status_max: Annotated[int | None, Query(ge=100, le=599)] = None,
    since: Annotated[IsoDateTime | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[IsoDateTime | None, Query(description="ISO 8601, exclusive")] = None,
    route: Annotated[str | None, Query(description="a route as /stats names it, ids as {id}: "
                                                   "/api/v1/tickets/{id}")] = None,
) -> CallFilters:
    if status_min is not None and status_max is not None and status_min > status_max:
        raise ApiError(422, "status_min must not be greater than status_max")
    return CallFilters(_tenant_scope(principal, tenant_id), agent_id, user_id, path, source, method, status_min,
                       status_max, since, until, route)


Filters = Annotated[CallFilters, Depends(_filters)]


@router.get("", response_model=CallHistoriesPublic)
async def list_call_histories(
    filters: Filters, store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Newest first, keyset-paginated: pass `next_cursor` back as `cursor`."""
    try:
        items, nxt = await store.run(list_calls, filters, limit, cursor)
    except BadCursor as exc:
        raise ApiError(422, str(exc)) from None
    return {"items": items, "next_cursor": nxt}


@router.get("/stats", response_model=CallStats)
async def call_history_stats(
    filters: Filters, store: StoreDep, settings: SettingsDep,
    bucket: Bucket = "hour",
    top: Annotated[int, Query(ge=1, le=100)] = 10,
    large_body_bytes: Annotated[int | None, Query(ge=1, le=1 << 40, description=(
        "a body at or over this many bytes is large; default STREAMDESK_LARGE_BODY_BYTES (1 MiB)"))] = None,
) -> dict[str, Any]:
    """Latency percentiles and error rate per route, top agents/users/tenants, counts per minute/hour/day, and
    seed 003's size monitoring: request/response size percentiles, latency per request-size class, and the
    large requests and responses."""
    return await store.run(call_stats, filters, bucket, top, large_body_bytes or settings.large_body_bytes)


@router.get("/{call_id}", response_model=CallHistoryPublic)
async def get_call_history(
    call_id: str, principal: Reader, store: StoreDep,
    tenant_id: Annotated[str | None, Query(description="system_admin only: ids are unique per tenant")] = None,
) -> dict[str, Any]:
    row = await store.run(get_call, call_id, _tenant_scope(principal, tenant_id))
    if row is None:
        raise ApiError(404, f"no call history {call_id}")  # another tenant's record does not exist for you
    return row


@router.post("", status_code=202, response_model=Accepted)
async def post_call_histories(
    principal: Writer, publisher: PublisherDep, settings: SettingsDep,
    body: Annotated[dict[str, Any] | list[dict[str, Any]], Body(description="one event or an array of events")],
) -> dict[str, Any]:
    """For gateways that cannot speak Kafka: validated here, published to calls.raw, materialized as usual.

    Each event may be in the native shape, seed 003's ApiCallHistoryRequest (camelCase) or a Kong log object
    (point Kong's http-log plugin here with a service account's token); it is published in the native shape.

    The body may be up to STREAMDESK_MAX_MESSAGE_BYTES (413 above); the events are published as as many
    messages as it takes to keep each within that limit, all acknowledged before the answer: `accepted: N`
    means N rows will be stored. On 503 some messages may have been published: resend the same ids.
    """
    events = body if isinstance(body, list) else [body]
    if not events or len(events) > MAX_POST_EVENTS:
        raise ApiError(422, f"send between 1 and {MAX_POST_EVENTS} events")
    with collector_paused():
        admitted, errors = admit(events, principal)
    if errors:
        raise ApiError(422, f"{len(errors)} of {len(events)} events are invalid; none were accepted",
                       details=[{"index": e["index"], "error": clip(e["error"])} for e in errors[:MAX_ERRORS]])
    try:
        await publisher.send_json_batches(CALLS_RAW, admitted, principal.tenant_id.encode())
    except TooLarge as exc:
        raise ApiError(413, str(exc)) from None
    return {"accepted": len(admitted), "topic": settings.topic(CALLS_RAW),
            "ids": [e["api_call_history_id"] for e in admitted]}
