"""The facade records its own calls: pure ASGI middleware -> a bounded buffer -> JSON-array batches on calls.raw.

A row's tenant and user come from the verified token, or from X-Tenant-ID/X-User-ID when a TRUSTED_PROXIES
peer sends them; otherwise they are NULL.

Recording never fails or slows a request: the middleware only appends a dict; a background task sends
batches. When the broker is unreachable the events are counted as dropped and requests are served as usual.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import time
from collections import defaultdict, deque
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.background import BackgroundTask
from api.limits import send_batches
from api.security.bearer import bearer_token
from pipeline.broker.kafka import make_producer
from pipeline.broker.topics import CALLS_RAW
from pipeline.calls.normalize import MAX_AGENT_ID, redact_cached, trace_id_from_headers
from pipeline.ids import random_id
from pipeline.metrics import CALL_EVENTS_DROPPED, HTTP_REQUESTS, HTTP_SECONDS
from pipeline.security import TokenError, verify_token
from pipeline.settings import BrokerNotConfigured, Settings

log = structlog.get_logger(__name__)
SOURCE = "STREAMDESK"
_WANTED = {b"x-tenant-id", b"x-user-id", b"x-agent-id", b"x-dwp-source", b"content-length", b"transfer-encoding",
           b"user-agent", b"traceparent", b"x-trace-id", b"x-forwarded-for", b"authorization"}


class CallBuffer:
    """Bounded buffer of call events plus the task that ships them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topic(CALLS_RAW)
        self.events: deque[dict[str, Any]] = deque()
        self.producer: AIOKafkaProducer | None = None
        self._task = BackgroundTask("call-recorder")
        self.sent = 0

    def add(self, event: dict[str, Any]) -> None:
        if len(self.events) >= self.settings.recorder_buffer_max:
            CALL_EVENTS_DROPPED.labels("buffer_full").inc()
            return
        self.events.append(event)

    async def start(self) -> None:
        self._task.start(self._run())

    async def stop(self) -> None:
        await self._task.stop()
        if self.events and self.producer:
            await self._flush()
        if self.producer:
            await self.producer.stop()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.recorder_flush_s)
            if not self.events:
                continue
            if self.producer is None and not await self._connect():
                self._drop_all("broker_unavailable")
                await asyncio.sleep(2.0)
                continue
            await self._flush()

    async def _connect(self) -> bool:
        try:
            producer = make_producer(self.settings, request_timeout_ms=5000)
            await asyncio.wait_for(producer.start(), 5.0)
        except (TimeoutError, BrokerNotConfigured, OSError, Exception) as exc:  # noqa: BLE001
            log.warning("call_recorder_broker_unavailable", error=str(exc))
            return False
        self.producer = producer
        return True

    async def _flush(self) -> None:
        batch = [self.events.popleft() for _ in range(min(len(self.events), 5000))]
        by_tenant: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
        for e in batch:
            by_tenant[e["tenant_id"]].append(e)
        limit = self.settings.max_message_bytes  # 5,000 events can be several MiB: split, never dead-lettered
        try:
            acks = [ack for t, evs in by_tenant.items()
                    for ack in await send_batches(self.producer, self.topic, evs, (t or "").encode(), limit)]
            await asyncio.gather(*acks)
            self.sent += len(batch)
        except Exception as exc:  # noqa: BLE001 - any send failure means these events are lost: count them
            CALL_EVENTS_DROPPED.labels("broker_unavailable").inc(len(batch))
            log.warning("call_events_dropped", count=len(batch), error=str(exc))

    def _drop_all(self, reason: str) -> None:
        CALL_EVENTS_DROPPED.labels(reason).inc(len(self.events))
        self.events.clear()


class CallRecorderMiddleware:
    """Turns every HTTP request (any path, any status) into a calls.raw event."""

    def __init__(self, app: ASGIApp, buffer: CallBuffer, settings: Settings) -> None:
        self.app = app
        self.buffer = buffer
        self.settings = settings
        self.trusted = [ipaddress.ip_network(c, strict=False) for c in settings.trusted_proxies]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        created = datetime.now(UTC)
        headers = {k: v.decode("latin-1") for k, v in scope["headers"] if k in _WANTED}
        h = {k.decode(): v for k, v in headers.items()}
        trace_id = trace_id_from_headers(h) or secrets.token_hex(16)
        state = scope.setdefault("state", {})
        state["trace_id"] = trace_id
        resp: dict[str, Any] = {"status": 500, "length": None, "streamed": False, "sent": 0}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                resp["status"] = message["status"]
                out_headers = list(message.get("headers", []))
                out_headers.append((b"x-trace-id", trace_id.encode()))
                message["headers"] = out_headers
                resp["length"] = _header(out_headers, b"content-length")
                ctype = (_header(out_headers, b"content-type") or "").lower()
                resp["streamed"] = resp["length"] is None or ctype.startswith("text/event-stream")
            elif message["type"] == "http.response.body":
                resp["sent"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            self._record(scope, h, state, trace_id, created, elapsed, resp)

    def _record(self, scope: Scope, h: dict[str, str], state: dict[str, Any], trace_id: str, created: datetime,
                elapsed: float, resp: dict[str, Any]) -> None:
        route = scope.get("route")
        route_path = getattr(route, "path", None) or "unmatched"
        HTTP_REQUESTS.labels(scope["method"], route_path, str(resp["status"])).inc()
        HTTP_SECONDS.labels(scope["method"], route_path).observe(elapsed)
        tenant, user = self._identity(scope, state, h)
        chunked = "chunked" in h.get("transfer-encoding", "").lower()
        req_len = h.get("content-length")
        agent = h.get("x-agent-id") or None
        self.buffer.add({
            "api_call_history_id": random_id(),
            "tenant_id": tenant,
            "user_id": user,
            "agent_id": agent[:MAX_AGENT_ID] if agent else None,
            "method": scope["method"],
            "path": scope["path"],
            "query_string": redact_cached(scope.get("query_string", b"").decode("latin-1")) or None,
            "status_code": resp["status"],
            "latency_ms": round(elapsed * 1000),
            "request_size_bytes": None if chunked or not (req_len or "").isdigit() else int(req_len),
            "response_size_bytes": None if resp["streamed"] else resp["sent"],
            "ip_address": self._client_ip(scope, h),
            "user_agent": h.get("user-agent"),
            "trace_id": trace_id,
            "error_code": state.get("error_code"),
            "source": h.get("x-dwp-source") or SOURCE,
            "created_at": created.isoformat(),
        })

    def _identity(self, scope: Scope, state: dict[str, Any], h: dict[str, str]) -> tuple[str | None, str | None]:
        """Verified claims, else the identity headers of a trusted proxy; anyone else's headers are not believed."""
        principal = state.get("principal")
        if principal is None:
            try:
                token = bearer_token(h.get("authorization"))
                principal = verify_token(self.settings.jwt_key(), token) if token else None
            except TokenError:
                principal = None
        if principal is not None:
            return principal.tenant_id, principal.user_id
        peer = scope["client"][0] if scope.get("client") else None
        if not self._is_trusted(peer or ""):
            return None, None  # still recorded, under no tenant: an unauthenticated caller names no one
        return h.get("x-tenant-id") or None, h.get("x-user-id") or None

    def _client_ip(self, scope: Scope, h: dict[str, str]) -> str | None:
        """The peer, unless it is a trusted proxy: then the right-most X-Forwarded-For hop we do not trust."""
        peer = scope["client"][0] if scope.get("client") else None
        if not _is_ip(peer):
            return None  # a unix socket or a test transport: no address, rather than a value the DLQ rejects
        if not self.trusted or not self._is_trusted(peer):
            return peer
        for hop in reversed([x.strip() for x in h.get("x-forwarded-for", "").split(",") if x.strip()]):
            if not _is_ip(hop):
                return peer  # a forged or garbled hop: stop believing the chain here
            if not self._is_trusted(hop):
                return hop
        return peer

    def _is_trusted(self, addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)


def _is_ip(value: str | None) -> bool:
    try:
        ipaddress.ip_address(value or "")
    except ValueError:
        return False
    return True


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            return v.decode("latin-1")
    return None
