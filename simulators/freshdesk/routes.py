"""The simulator's routes: Freshdesk's list endpoints (pagination, Link, the page cap) and the admin side."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response, StreamingResponse

from pipeline.ingest.freshdesk import timestamps
from simulators.freshdesk.fixtures import Attachment, Dataset, SimTicket, domain_seed
from simulators.freshdesk.state import Faults, SimulatorState, Stats

ORDER_BY = ("created_at", "due_by", "updated_at", "status")
LIST_PARAMS = {"page", "per_page", "updated_since", "order_by", "order_type", "include"}


class ApiError(Exception):
    """A Freshdesk-shaped error answer, raised by a route and rendered as JSON."""

    def __init__(self, status: int, body: dict[str, Any] | None = None) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def invalid(field: str, message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, {"description": "Validation failed",
                          "errors": [{"field": field, "message": message, "code": code}]})


def _sim(request: Request) -> SimulatorState:
    return request.app.sim


SimDep = Annotated[SimulatorState, Depends(_sim)]
api_router = APIRouter()
admin_router = APIRouter(prefix="/_simulator")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


async def api_error_handler(request: Request, exc: Exception) -> Response:
    """Freshdesk answers a missing record with an empty 404 and a bad parameter with its validation shape."""
    assert isinstance(exc, ApiError)
    return Response(orjson.dumps(exc.body) if exc.body else b"", exc.status, media_type="application/json")


def _check_params(request: Request, allowed: set[str]) -> None:
    for name in request.query_params:
        if name not in allowed:
            raise invalid(name, "Unexpected/invalid field in request", "invalid_field")


def _paging(request: Request, sim: SimulatorState) -> tuple[int, int]:
    q, c = request.query_params, sim.config
    default = str(min(c.per_page_default, c.per_page_max))
    page, per_page = _number(q.get("page", "1"), "page"), _number(q.get("per_page", default), "per_page")
    if per_page < 1 or per_page > c.per_page_max:
        raise invalid("per_page", f"It should be a Positive Number less than or equal to {c.per_page_max}")
    if page < 1:
        raise invalid("page", "It should be a Positive Number")
    if page > c.max_page:
        raise invalid("page", f"You cannot access beyond {c.max_page} pages")
    return page, per_page


def _number(raw: str, field: str) -> int:
    if not raw.strip().lstrip("-").isdigit():
        raise invalid(field, "It should be a Positive Number")
    return int(raw)


def _page(request: Request, sim: SimulatorState, items: list[Any], render: Any) -> Response:
    """One page of `items`, with `Link: <next>; rel="next"` while more remain (absolute, on the request's host)."""
    page, per_page = _paging(request, sim)
    chunk = items[(page - 1) * per_page: page * per_page]
    headers = {}
    if page * per_page < len(items):
        headers["Link"] = f'<{request.url.include_query_params(page=page + 1)}>; rel="next"'
    return _json([render(item) for item in chunk], headers=headers)


def _account(request: Request, sim: SimulatorState) -> tuple[str, Dataset]:
    domain = request.scope["simulator.domain"]
    return domain, sim.dataset(domain)


def _attachments(request: Request, sim: SimulatorState, domain: str, items: list[Attachment]) -> list[dict]:
    """Metadata with a signed, expiring URL, as Freshdesk hands out pre-signed storage links."""
    if not items:
        return []
    server = request.scope.get("server") or ("127.0.0.1", 80)
    base = sim.config.files_base_url or f"{request.url.scheme}://{server[0]}:{server[1]}"
    expires = math.ceil(time.time() + sim.config.attachment_url_ttl_s)  # valid at least the ttl (int() cut it)
    return [a.record(f"{base.rstrip('/')}/_simulator/files/{domain}/{a.id}/{quote(a.name)}?expires={expires}"
                     f"&signature={sim.sign(domain, a.id, expires)}") for a in items]


def _ticket(request: Request, sim: SimulatorState, domain: str, t: SimTicket, description: bool) -> dict:
    record = dict(t.record) if description else {k: v for k, v in t.record.items()
                                                 if k not in ("description", "description_text")}
    record["attachments"] = _attachments(request, sim, domain, t.attachments)
    return record


def _includes(request: Request, allowed: set[str]) -> set[str]:
    values = {v.strip() for v in request.query_params.get("include", "").split(",") if v.strip()}
    if values - allowed:
        raise invalid("include", f"It should be one of these values: '{','.join(sorted(allowed))}'")
    return values


def _since(request: Request) -> datetime | None:
    raw = request.query_params.get("updated_since")
    if raw is None:
        return None
    try:
        return timestamps.parse(raw)
    except ValueError:
        raise invalid("updated_since", "It should be in the 'valid date time' format") from None


@api_router.get("/api/v2/tickets")
async def list_tickets(request: Request, sim: SimDep) -> Response:
    _check_params(request, LIST_PARAMS)
    order_by = request.query_params.get("order_by", "created_at")
    order_type = request.query_params.get("order_type", "desc")
    if order_by not in ORDER_BY:
        raise invalid("order_by", f"It should be one of these values: '{','.join(ORDER_BY)}'")
    if order_type not in ("asc", "desc"):
        raise invalid("order_type", "It should be one of these values: 'asc,desc'")
    description = "description" in _includes(request, {"description"})
    domain, data = _account(request, sim)
    since = _since(request)
    if since is None:  # Freshdesk's default view: tickets created in the last 30 days
        floor = (datetime.now(UTC) - timedelta(days=30)).timestamp()
        tickets = [t for t in data.ordered(order_by, order_type == "desc") if t.created >= floor]
    else:
        tickets = [t for t in data.ordered(order_by, order_type == "desc") if t.updated >= since.timestamp()]
    return _page(request, sim, tickets, lambda t: _ticket(request, sim, domain, t, description))


def _found(data: Dataset, ticket_id: int) -> SimTicket:
    ticket = data.tickets.get(ticket_id)
    if ticket is None:
        raise ApiError(404)
    return ticket


@api_router.get("/api/v2/tickets/{ticket_id}")
async def view_ticket(request: Request, sim: SimDep, ticket_id: int) -> Response:
    _check_params(request, {"include"})
    include = _includes(request, {"conversations"})
    domain, data = _account(request, sim)
    ticket = _found(data, ticket_id)
    body = _ticket(request, sim, domain, ticket, True)
    if "conversations" in include:  # Freshdesk embeds at most ten, oldest first
        body["conversations"] = [_conversation(request, sim, domain, c) for c in ticket.conversations[:10]]
    return _json(body)


def _conversation(request: Request, sim: SimulatorState, domain: str, c: Any) -> dict:
    return c.record | {"attachments": _attachments(request, sim, domain, c.attachments)}


@api_router.get("/api/v2/tickets/{ticket_id}/conversations")
async def list_conversations(request: Request, sim: SimDep, ticket_id: int) -> Response:
    _check_params(request, {"page", "per_page"})
    domain, data = _account(request, sim)
    ticket = _found(data, ticket_id)
    return _page(request, sim, ticket.conversations, lambda c: _conversation(request, sim, domain, c))


@api_router.get("/api/v2/solutions/categories")
async def list_categories(request: Request, sim: SimDep) -> Response:
    _check_params(request, {"page", "per_page"})
    return _page(request, sim, _account(request, sim)[1].kb.categories, lambda c: c)


@api_router.get("/api/v2/solutions/categories/{category_id}/folders")
async def list_folders(request: Request, sim: SimDep, category_id: int) -> Response:
    _check_params(request, {"page", "per_page"})
    folders = _account(request, sim)[1].kb.folders.get(category_id)
    if folders is None:
        raise ApiError(404)
    return _page(request, sim, folders, lambda f: f)


@api_router.get("/api/v2/solutions/folders/{folder_id}/articles")
async def list_articles(request: Request, sim: SimDep, folder_id: int) -> Response:
    _check_params(request, {"page", "per_page"})
    articles = _account(request, sim)[1].kb.articles.get(folder_id)
    if articles is None:
        raise ApiError(404)
    return _page(request, sim, articles, lambda a: a)


@api_router.get("/api/v2/agents/me")
async def agent_me(request: Request, sim: SimDep) -> Response:
    """The agent whose key authenticated the request: the cheap call that proves a key works for an account."""
    _check_params(request, set())
    domain, data = _account(request, sim)
    agent_id = 19_000_000_000 + domain_seed(sim.config.seed, domain) % 1_000_000_000
    since = timestamps.to_iso(datetime.fromtimestamp(data.end, UTC) - timedelta(days=400))
    return _json({"available": True, "occasional": False, "id": agent_id, "ticket_scope": 1, "signature": None,
                  "group_ids": [], "role_ids": [agent_id + 1], "skill_ids": [], "available_since": None,
                  "type": "support_agent", "created_at": since, "updated_at": since,
                  "contact": {"active": True, "email": f"support@{domain}", "job_title": "Support Agent",
                              "language": "en", "last_login_at": since, "mobile": None,
                              "name": "Simulated Agent", "phone": None, "time_zone": "Seoul",
                              "created_at": since, "updated_at": since}})


@admin_router.get("/files/{domain}/{attachment_id}/{name}")
async def attachment_file(sim: SimDep, domain: str, attachment_id: int, name: str, expires: int = 0,
                          signature: str = "") -> Response:
    """An attachment's bytes; like a pre-signed storage URL it needs no API key and expires."""
    attachment = sim.dataset(domain).attachments.get(attachment_id)
    if (attachment is None or signature != sim.sign(domain, attachment_id, expires) or expires < time.time()):
        sim.stats.files["denied"] += 1
        return Response(b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", 403,
                        media_type="application/xml")
    sim.stats.files["downloads"] += 1
    return StreamingResponse(sim.dataset(domain).attachment_chunks(attachment), media_type=attachment.content_type,
                             headers={"Content-Length": str(attachment.size)})


@admin_router.get("/stats")
async def stats(sim: SimDep) -> Response:
    return _json(sim.stats.snapshot(sim.windows))


@admin_router.delete("/stats")
async def reset_stats(sim: SimDep) -> Response:
    sim.stats = Stats()
    for window in sim.windows.values():
        window.peak = window.used
    return _json(sim.stats.snapshot(sim.windows))


@admin_router.get("/faults")
async def get_faults(sim: SimDep) -> Response:
    return _json(sim.injector.faults.model_dump())


@admin_router.post("/faults")
async def set_faults(sim: SimDep, changes: Annotated[dict[str, Any], Body()]) -> Response:
    """Merge the given fields into the current faults (`{}` changes nothing; DELETE clears them all)."""
    sim.injector.faults = Faults.model_validate(sim.injector.faults.model_dump() | changes)
    return _json(sim.injector.faults.model_dump())


@admin_router.delete("/faults")
async def clear_faults(sim: SimDep) -> Response:
    sim.injector.faults = Faults()
    return _json(sim.injector.faults.model_dump())


@admin_router.post("/updates")
async def apply_updates(sim: SimDep, count: Annotated[int, Body(ge=0, le=100_000)] = 10,
                        domain: Annotated[str | None, Body()] = None,
                        new_conversation_rate: Annotated[float, Body(ge=0, le=1)] = 0.5) -> Response:
    """Modify `count` tickets of an account (new updated_at, some with a new reply) so an incremental run has work."""
    domain = (domain or sim.config.default_domain).lower()
    ids = sim.dataset(domain).apply_updates(count, new_conversation_rate=new_conversation_rate)
    return _json({"domain": domain, "updated_ids": ids})


@admin_router.get("/info")
async def info(sim: SimDep) -> Response:
    c = sim.config
    return _json({"simulator": "Freshdesk API v2 simulator (not Freshdesk)", "plan": c.plan,
                  "window_seconds": c.window_seconds, "tickets": c.tickets, "per_page_max": c.per_page_max,
                  "max_page": c.max_page, "default_domain": c.default_domain,
                  "auth": {domain: f"{len(keys)} valid key(s)" for domain, keys in c.keys.items()}})
