"""Tickets with their conversations at the fewest API calls: the ingest strategy for Freshdesk.

Freshdesk's ticket list carries no conversation count, and `GET /tickets/{id}?include=conversations` costs more
than `/conversations` while returning at most ten. What the list does carry is faithful to how Freshdesk works:
adding a reply or note moves the ticket's `updated_at`, so a ticket whose `updated_at` still equals its
`created_at` has no conversation, and its `/conversations` call is skipped. Everything else costs one call per
100 conversations, fetched `concurrency` at a time while tickets keep streaming, in ticket order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import structlog

from pipeline.ingest.freshdesk import timestamps
from pipeline.ingest.freshdesk.client import FreshdeskClient
from pipeline.ingest.freshdesk.errors import FreshdeskNotFound
from pipeline.ingest.freshdesk.records import TicketCursor, TicketThread

log = structlog.get_logger(__name__)
Pending = tuple[dict[str, Any], TicketCursor, "asyncio.Task[list[dict[str, Any]]] | None"]


def may_have_conversations(ticket: dict[str, Any]) -> bool:
    """False only when the ticket was never touched after creation (so nobody replied or added a note)."""
    return timestamps.parse(ticket["updated_at"]) != timestamps.parse(ticket["created_at"])


async def _conversations(client: FreshdeskClient, ticket_id: int) -> list[dict[str, Any]]:
    try:
        return [c async for c in client.iter_conversations(ticket_id)]
    except FreshdeskNotFound:
        client.stats.vanished += 1
        log.info("freshdesk_ticket_vanished", domain=client.domain, ticket_id=ticket_id)
        return []


async def iter_threads(client: FreshdeskClient, updated_since: datetime | None = None, *,
                       cursor: TicketCursor | None = None, per_page: int | None = None,
                       concurrency: int = 4) -> AsyncIterator[TicketThread]:
    """Every ticket of `client.iter_tickets` with its conversations, in listing order, each with a resume cursor."""
    pending: deque[Pending] = deque()
    position = cursor or TicketCursor(updated_since or timestamps.EPOCH)
    try:
        async for ticket in client.iter_tickets(updated_since, per_page, cursor=cursor):
            position = position.advance(ticket["id"], timestamps.parse(ticket["updated_at"]))
            task = None
            if may_have_conversations(ticket):
                task = asyncio.create_task(_conversations(client, ticket["id"]))
            else:
                client.stats.skipped_conversation_calls += 1
            pending.append((ticket, position, task))
            while pending and (_ready(pending[0]) or _running(pending) >= concurrency):
                yield await _thread(pending.popleft())
        while pending:
            yield await _thread(pending.popleft())
    finally:
        for _, _, task in pending:
            if task is not None:
                task.cancel()


def _ready(item: Pending) -> bool:
    return item[2] is None or item[2].done()


def _running(pending: deque[Pending]) -> int:
    return sum(1 for _, _, task in pending if task is not None and not task.done())


async def _thread(item: Pending) -> TicketThread:
    ticket, position, task = item
    return TicketThread(ticket, await task if task is not None else [], position)
