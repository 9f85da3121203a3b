"""`/console`: server-rendered pages over the api's own data, live parts pushed as server-sent events.

| page | what it shows |
|---|---|
| `/console/pipeline` | topic rates, consumer lag, worker heartbeats, produce -> queryable freshness, dead letters |
| `/console/calls` | seed 003: volume per bucket, route percentiles, errors, top agents/tenants, sizes, large requests |
| `/console/ingest` | seed 000's jobs: progress, phase, ETA, log lines, pause / resume / cancel / priority |
| `/console/alerts` | seed 000's four alerts, since when, and what to do |
| `/console/predictions` | seed 004's recent predictions; one debate replayed round by round |

Every page's live part (`<main data-live=…>`) is re-rendered by `GET /console/live/<page>` every
`CONSOLE_LIVE_INTERVAL_S` and sent when it changed; console.js swaps it in. Responses carry a strict
Content-Security-Policy (scripts and styles from this origin only, no inline code), no caching, no framing.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import ValidationError

from api import alerts as alert_rules
from api.console import charts, views
from api.console.session import (
    COOKIE,
    ConsoleRefusal,
    ConsoleSession,
    Session,
    check_csrf,
    open_session,
    read_session,
    revoke,
)
from api.deps import ServicesDep
from api.errors import ApiError
from api.security import public
from api.services import Services
from schemas.ingest import ControlBody

router = APIRouter(prefix="/console", include_in_schema=False)
STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
MAX_FORM_BYTES = 16 << 10
MAX_STREAMS_PER_SESSION = 8  # live pages one session may hold open (tabs); more is a 429, not a DuckDB load
_streams: dict[str, int] = {}  # session id -> live streams open


def _bytes(v: float | None) -> str:
    if not isinstance(v, int | float):  # None, or a figure the page does not have (jinja's Undefined)
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(v) < 1024 or unit == "GiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    return f"{v:.1f} GiB"


def _num(v: float | None, digits: int = 0, unit: str = "") -> str:
    if not isinstance(v, int | float):
        return "–"
    text = f"{v:,.{digits}f}"
    return f"{text} {unit}".rstrip()


def _pct(v: float | None) -> str:
    return f"{100 * v:.1f} %" if isinstance(v, int | float) else "–"


def _when(v: datetime | str | None) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        v = datetime.fromisoformat(v.replace("Z", "+00:00"))
    return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


ENV = Environment(loader=PackageLoader("api.console", "templates"), autoescape=select_autoescape(default=True),
                  trim_blocks=True, lstrip_blocks=True)
ENV.globals.update(charts=charts, bytes=_bytes, num=_num, pct=_pct, when=_when, age=alert_rules.age,
                   rules=alert_rules.RULES)


def _static(name: str) -> str:
    return resources.files("api.console").joinpath("static", name).read_text(encoding="utf-8")


def _asset_version() -> str:
    digest = hashlib.sha256("".join(_static(n) for n in sorted(STATIC)).encode()).hexdigest()
    return digest[:10]


ENV.globals["asset_version"] = _asset_version()


def page(name: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    return HTMLResponse(ENV.get_template(name).render(**ctx), status_code=status_code, headers=HEADERS)


def refusal_page(request: Request, exc: ConsoleRefusal) -> HTMLResponse:
    """401: the sign-in form (with where to go back to); 403/404/409/422: a page saying why."""
    if exc.status == 401:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return page("login.html", 401, message=exc.message, next=back if request.method == "GET" else "")
    return page("refused.html", exc.status, message=exc.message, status=exc.status)


def _https(request: Request) -> bool:
    """Served over https, directly or behind a TLS proxy (X-Forwarded-Proto: believing it can only make the
    cookie stricter, never looser)."""
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def _safe_next(target: str | None) -> str:
    """Only a console path: never another site (an open redirect), never a scheme or `//host`."""
    if target and target.startswith("/console/") and "//" not in target and "\\" not in target:
        return target
    return "/console/pipeline"


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ConsoleRefusal(413, "That form is too large.")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise ConsoleRefusal(400, "That form could not be read.") from None
    return {k: v[0] for k, v in fields.items()}


async def _action(request: Request, session: ConsoleSession) -> tuple[Session, dict[str, str]]:
    """A state-changing console request: a session, and the session's CSRF token in the form."""
    form = await _form(request)
    check_csrf(session, form.get("csrf"))
    return session, form


Action = Annotated[tuple[Session, dict[str, str]], Depends(_action)]


# --- signing in and out --------------------------------------------------------------------------------------


@router.get("", dependencies=[public("the console's entry: sends you to a page or to sign in")])
async def console_home() -> Response:
    return RedirectResponse("/console/pipeline", 303, headers=HEADERS)


@router.get("/login", dependencies=[public("the console's sign-in form")])
async def login_form(next: str | None = None) -> HTMLResponse:
    return page("login.html", next=_safe_next(next), message=None)


@router.post("/login", dependencies=[public("exchanges an API token for a console session cookie")])
async def login(request: Request) -> Response:
    form = await _form(request)
    target = _safe_next(form.get("next"))
    try:
        cookie, session = open_session(request.app.state.settings, form.get("token", ""))
    except ConsoleRefusal as exc:
        return page("login.html", exc.status, message=exc.message, next=target)
    response = RedirectResponse(target, 303, headers=HEADERS)
    response.set_cookie(COOKIE, cookie, max_age=max(1, session.expires_at - int(datetime.now(UTC).timestamp())),
                        path="/console", httponly=True, samesite="strict", secure=_https(request))
    return response


@router.post("/logout")
async def logout(action: Action) -> Response:
    session, _ = action
    revoke(session)
    response = RedirectResponse("/console/login", 303, headers=HEADERS)
    response.delete_cookie(COOKIE, path="/console", httponly=True, samesite="strict")
    return response


@router.get("/static/{name}", dependencies=[public("the console's own stylesheet and script")])
async def static(name: str) -> Response:
    if name not in STATIC:
        raise ConsoleRefusal(404, "No such file.")
    return Response(_static(name), media_type=STATIC[name],
                    headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})


# --- pages ---------------------------------------------------------------------------------------------------


def _common(session: Session, services: Services, active: str) -> dict[str, Any]:
    firing = sum(a.firing for a in views.alerts_view(services, session.scope)["alerts"])
    return {"session": session, "active": active, "firing": firing}


async def _pipeline(services: Services, session: Session, q: dict[str, str]) -> dict[str, Any]:
    return await views.pipeline_view(services, services.topic_rates, session.scope is None)


async def _calls(services: Services, session: Session, q: dict[str, str]) -> dict[str, Any]:
    window = q.get("window") or "1h"
    if window not in views.WINDOWS:
        raise ConsoleRefusal(422, f"window must be one of {', '.join(views.WINDOWS)}")
    tenant = q.get("tenant") or None
    if tenant is not None and session.scope is not None and tenant != session.scope:
        raise ConsoleRefusal(403, f"You may read tenant {session.scope} only.")
    return await views.calls_view(services, session.scope, window, tenant)


async def _ingest(services: Services, session: Session, q: dict[str, str]) -> dict[str, Any]:
    status = q.get("status") or None
    if status is not None and status not in ("queued", "running", "paused", "completed", "failed", "cancelled"):
        raise ConsoleRefusal(422, "status must be queued, running, paused, completed, failed or cancelled")
    return await views.ingest_view(services, session.scope, status)


async def _job(services: Services, session: Session, q: dict[str, str]) -> dict[str, Any]:
    job = await views.job_view(services, session.scope, q.get("job_id", ""))
    if job is None:
        raise ConsoleRefusal(404, "No such job.")  # another tenant's job does not exist for this reader
    return {"job": job, "may_control": job["company_id"] == session.principal.tenant_id}


async def _alerts(services: Services, session: Session, q: dict[str, str]) -> dict[str, Any]:
    return views.alerts_view(services, session.scope)


async def _predictions(services: Services, session: Session, q: dict[str, str]) -> dict[str, Any]:
    return await views.predictions_view(services, session.scope)


async def _debate(services: Services, session: Session, q: dict[str, str]) -> dict[str, Any]:
    found = await views.debate_view(services, session.scope, q.get("prediction_id", ""))
    if found is None:
        raise ConsoleRefusal(404, "No such prediction.")
    return found


View = Callable[[Services, Session, dict[str, str]], Awaitable[dict[str, Any]]]
PAGES: dict[str, tuple[str, str, View]] = {  # live name -> (template, nav entry, data)
    "pipeline": ("pipeline.html", "pipeline", _pipeline),
    "calls": ("calls.html", "calls", _calls),
    "ingest": ("ingest.html", "ingest", _ingest),
    "job": ("job.html", "ingest", _job),
    "alerts": ("alerts.html", "alerts", _alerts),
    "predictions": ("predictions.html", "predictions", _predictions),
    "debate": ("debate.html", "predictions", _debate),
}


async def _render(name: str, services: Services, session: Session, q: dict[str, str]) -> HTMLResponse:
    template, nav, view = PAGES[name]
    data = await view(services, session, q)
    live = f"/console/live/{name}?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in sorted(q.items()))
    return page(template, **_common(session, services, nav), **data, q=q, live=live)


@router.get("/pipeline")
async def pipeline_page(session: ConsoleSession, services: ServicesDep) -> HTMLResponse:
    return await _render("pipeline", services, session, {})


@router.get("/calls")
async def calls_page(session: ConsoleSession, services: ServicesDep,
                     window: Annotated[str, Query(max_length=8)] = "1h",
                     tenant: Annotated[str | None, Query(max_length=256)] = None) -> HTMLResponse:
    return await _render("calls", services, session, {"window": window, **({"tenant": tenant} if tenant else {})})


@router.get("/ingest")
async def ingest_page(session: ConsoleSession, services: ServicesDep,
                      status: Annotated[str | None, Query(max_length=16)] = None) -> HTMLResponse:
    return await _render("ingest", services, session, {"status": status} if status else {})


@router.get("/ingest/{job_id}")
async def job_page(session: ConsoleSession, services: ServicesDep, job_id: str) -> HTMLResponse:
    return await _render("job", services, session, {"job_id": job_id})


@router.post("/ingest/{job_id}/control")
async def job_control(action: Action, services: ServicesDep, job_id: str) -> Response:
    """The job page's buttons: the same rules as POST /ingest/jobs/{id}/control, for the session's own tenant."""
    session, form = action
    body = {"action": form.get("action", ""), "reason": f"console: {session.principal.user_id}"}
    if form.get("priority"):
        body["options"] = {"priority": form["priority"]}
    try:
        control = ControlBody.model_validate(body)
    except ValidationError:
        raise ConsoleRefusal(422, "Unknown action or priority.") from None
    try:
        await services.jobs.control(session.principal.tenant_id, job_id, control)  # 404: not this tenant's
    except ApiError as exc:  # 404 (not this tenant's job), 409 (not in a state for it), 422, 503
        raise ConsoleRefusal(exc.status, exc.message) from None
    return RedirectResponse(f"/console/ingest/{quote(job_id)}", 303, headers=HEADERS)


@router.get("/alerts")
async def alerts_page(session: ConsoleSession, services: ServicesDep) -> HTMLResponse:
    return await _render("alerts", services, session, {})


@router.get("/predictions")
async def predictions_page(session: ConsoleSession, services: ServicesDep) -> HTMLResponse:
    return await _render("predictions", services, session, {})


@router.get("/predictions/{prediction_id}")
async def debate_page(session: ConsoleSession, services: ServicesDep, prediction_id: str) -> HTMLResponse:
    return await _render("debate", services, session, {"prediction_id": prediction_id})


@router.get("/dead-letters/{dead_letter_id}")
async def dead_letter_page(session: ConsoleSession, services: ServicesDep, dead_letter_id: str) -> HTMLResponse:
    if session.scope is not None:
        raise ConsoleRefusal(403, "Dead letters are not attributed to a tenant; only a system_admin reads them.")
    letter = await views.dead_letter_view(services, dead_letter_id)
    if letter is None:
        raise ConsoleRefusal(404, "No such dead letter.")
    return page("dead_letter.html", **_common(session, services, "pipeline"), letter=letter)


# --- live ----------------------------------------------------------------------------------------------------


@router.get("/live/{name}")
async def live(request: Request, session: ConsoleSession, services: ServicesDep, name: str) -> Response:
    """Server-sent events: the page's live part, re-rendered every CONSOLE_LIVE_INTERVAL_S, sent when changed.

    The stream ends when the session does (expired or signed out) or the page is closed."""
    if name not in PAGES:
        raise ConsoleRefusal(404, "No such page.")
    template, nav, view = PAGES[name]
    q = {k: v for k, v in request.query_params.items() if k in ("window", "tenant", "status", "job_id",
                                                                "prediction_id")}
    settings = request.app.state.settings
    await view(services, session, q)  # refusals (a bad window, another tenant) answer before the stream starts
    if _streams.get(session.session_id, 0) >= MAX_STREAMS_PER_SESSION:
        raise ConsoleRefusal(429, f"At most {MAX_STREAMS_PER_SESSION} live pages per sign-in; close some tabs.")

    async def events() -> AsyncIterator[bytes]:
        # Counted only once the stream runs: a client gone before it starts never runs this, and never leaks.
        _streams[session.session_id] = _streams.get(session.session_id, 0) + 1
        try:
            async for chunk in _live(request, session, services, template, nav, view, q, settings):
                yield chunk
        finally:
            left = _streams.get(session.session_id, 1) - 1
            if left > 0:
                _streams[session.session_id] = left
            else:
                _streams.pop(session.session_id, None)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={**HEADERS, "X-Accel-Buffering": "no"})


async def _live(request: Request, session: Session, services: Services, template: str, nav: str, view: View,
                q: dict[str, str], settings: Any) -> AsyncIterator[bytes]:
    """The stream's events: the live block whenever it changed, until the page closes or the session ends."""
    last = None
    block = ENV.get_template(template).blocks["live"]
    yield b"retry: 5000\n\n"
    while not await request.is_disconnected():
        try:
            read_session(settings, request.cookies.get(COOKIE))
            data = await view(services, session, q)
        except ConsoleRefusal:
            yield b"event: ended\ndata: sign in again\n\n"
            return
        ctx = ENV.get_template(template).new_context({**_common(session, services, nav), **data, "q": q})
        html = "".join(block(ctx))
        if html != last:
            last = html
            yield ("".join(f"data: {line}\n" for line in html.splitlines() or [""]) + "\n").encode()
        await asyncio.sleep(settings.console_live_interval_s)


def install(app: Any) -> None:
    """Mount the console and answer its refusals as pages."""
    app.include_router(router)

    async def on_refusal(request: Request, exc: ConsoleRefusal) -> HTMLResponse:
        return refusal_page(request, exc)

    app.add_exception_handler(ConsoleRefusal, on_refusal)


__all__ = ["install", "router"]
