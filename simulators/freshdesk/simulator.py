"""A Freshdesk API v2 simulator (not Freshdesk): tickets, conversations, knowledge base and attachments on loopback.

Accounts are told apart by the Host header, as Freshdesk's own virtual hosting does: a client whose base URL is
overridden to `http://127.0.0.1:PORT` sends `Host: acme.freshdesk.com` and gets acme's data, rate budget and
counters; a request whose Host is an address (plain curl) is for `config.default_domain`. Every API request passes
a gate before its route: injected faults (delay, dropped connection, 5xx, 429 burst), the account's existence,
Basic auth (only the account's keys, `config.keys`: by default the seed's `your_api_key`; any other key gets
Freshdesk's 401 body), then the account's sliding credit window, whose headers (`X-RateLimit-Total`, `-Remaining`,
`-Used-CurrentRequest`) go on every answer. The gate also counts requests in flight (received, last byte not yet
sent) and keeps each endpoint's peak, so a test can see how many calls a client really had open at once.
`/_simulator/...` is the admin side: faults, stats, updates, files.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from pipeline.ingest.freshdesk.api import credits_for, endpoint_label
from simulators.freshdesk.routes import ApiError, admin_router, api_error_handler, api_router
from simulators.freshdesk.state import SimulatorConfig, SimulatorState

UNAUTHORIZED = {"code": "invalid_credentials", "message": "You have to be logged in to perform this action."}
NO_ACCOUNT = {"code": "account_not_found", "message": "There is no helpdesk here."}
OVER_BUDGET = {"message": "You have exceeded the limit of requests per minute"}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _api_key(scope: Scope) -> str:
    auth = _header(scope, b"authorization") or ""
    if not auth.lower().startswith("basic "):
        return ""
    try:
        return base64.b64decode(auth[6:]).decode().split(":", 1)[0]
    except (ValueError, UnicodeDecodeError):
        return ""


async def _answer(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    payload = orjson.dumps(body)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


async def _drop(send: Send) -> None:
    """Close the socket without a byte of response: what a reset connection looks like to a client."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)  # uvicorn's request cycle
    if transport is None:
        raise ConnectionAbortedError("simulated dropped connection")  # not under uvicorn (e.g. ASGITransport)
    transport.abort()
    await asyncio.sleep(0)  # let uvicorn see the disconnect, so it does not try to answer 500


class SimulatorApp(FastAPI):
    """FastAPI with the gate in front of /api/v2 (pure ASGI, so it can drop the raw connection)."""

    sim: SimulatorState

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/v2/"):
            await super().__call__(scope, receive, send)
            return
        await self._gate(scope, receive, send)

    async def _gate(self, scope: Scope, receive: Receive, send: Send) -> None:
        label, stats = endpoint_label(scope["method"], scope["path"]), self.sim.stats
        answered = False

        async def tracked(message: Message) -> None:
            nonlocal answered  # the last byte leaves: no longer in flight (before the client can see it)
            if message["type"] == "http.response.body" and not message.get("more_body") and not answered:
                answered = True
                stats.ended(label)
            await send(message)

        stats.began(label)
        try:
            await self._admit(scope, receive, tracked, send, label)
        finally:
            if not answered:
                stats.ended(label)

    async def _admit(self, scope: Scope, receive: Receive, send: Send, raw_send: Send, label: str) -> None:
        sim, domain = self.sim, self.sim.domain_of(_header(scope, b"host"))
        if await self._faulted(send, raw_send, domain, label):
            return
        if not sim.exists(domain):
            sim.stats.record(label, domain, "404")
            await _answer(send, 404, NO_ACCOUNT)
            return
        if not sim.key_ok(domain, _api_key(scope)):
            sim.stats.record(label, domain, "401")
            await _answer(send, 401, UNAUTHORIZED)
            return
        cost = credits_for(scope["path"], _include(scope))
        accepted, remaining, retry_after = sim.window(domain).take(cost, time.monotonic())
        limits = {"X-RateLimit-Total": str(sim.config.plan), "X-RateLimit-Remaining": str(remaining),
                  "X-RateLimit-Used-CurrentRequest": str(cost if accepted else 0)}
        if not accepted:
            sim.stats.record(label, domain, "429")
            sim.stats.domains[domain]["throttled"] += 1
            await _answer(send, 429, OVER_BUDGET, limits | {"Retry-After": str(retry_after)})
            return
        sim.stats.domains[domain]["credits"] += cost
        await super().__call__({**scope, "simulator.domain": domain}, receive, _with_headers(send, limits, sim,
                                                                                             label, domain))

    async def _faulted(self, send: Send, raw_send: Send, domain: str, label: str) -> bool:
        sim = self.sim
        delay, action = sim.injector.draw()
        if delay:
            sim.stats.faults["delayed"] += 1
            await asyncio.sleep(delay)
        if action is None:
            return False
        sim.stats.faults[action] += 1
        if action == "drop":
            sim.stats.record(label, domain, "dropped")
            await _drop(raw_send)  # needs uvicorn's own send, to reach its transport
        elif action == "error":
            status = sim.injector.faults.error_status
            sim.stats.record(label, domain, str(status))
            await _answer(send, status, {"code": "service_unavailable", "message": "Simulated server error"})
        else:
            sim.stats.record(label, domain, "429")
            sim.stats.domains[domain]["throttled_injected"] += 1
            retry = str(sim.injector.faults.throttle_retry_after_s)
            await _answer(send, 429, OVER_BUDGET, {"Retry-After": retry, "X-RateLimit-Total": str(sim.config.plan),
                                                   "X-RateLimit-Remaining": "0",
                                                   "X-RateLimit-Used-CurrentRequest": "0"})
        return True


def _include(scope: Scope) -> str | None:
    return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))).get("include")


def _with_headers(send: Send, headers: dict[str, str], sim: SimulatorState, label: str, domain: str) -> Send:
    extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
            sim.stats.record(label, domain, str(message["status"]))
        await send(message)

    return wrapped


def create_simulator(config: SimulatorConfig | None = None) -> SimulatorApp:
    """The simulator as an ASGI app; serve it with uvicorn (see `SimulatorServer` for tests)."""
    app = SimulatorApp(title="Freshdesk simulator (not Freshdesk)", docs_url=None, redoc_url=None,
                       openapi_url=None)
    app.sim = SimulatorState(config or SimulatorConfig())
    app.include_router(api_router)
    app.include_router(admin_router)
    app.add_exception_handler(ApiError, api_error_handler)
    return app
