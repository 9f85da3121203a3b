"""The tickets stream's Faust agent: `tickets.raw` -> normalized rows (+ integrated objects) or dead letters.

Thin: decode, call the pure normalizer and integrator, send one `tickets.normalized` message per source
message (JSON `{"tables": {name: [rows]}}`, keyed by tenant) and one dead letter per rejected record; a job's
end mark (pipeline/ingest/marks.py) is passed on. The work on one message is `normalize_ticket_message`, importable
and testable without a worker.
"""

from __future__ import annotations

from typing import Any

import faust
import orjson
import structlog

from pipeline.broker.agent_topics import AgentTopics
from pipeline.broker.records import Message, Sender
from pipeline.broker.topics import TICKETS_NORMALIZED, TICKETS_RAW
from pipeline.dlq import SendLetter
from pipeline.ingest.marks import marks_of
from pipeline.metrics import EVENTS
from pipeline.tickets.normalize import normalize_messages
from pipeline.tickets.threads import integrated_objects

log = structlog.get_logger(__name__)


async def normalize_ticket_message(topic: str, m: Message, headers: Any, out: Sender,
                                   dead_letter: SendLetter) -> None:
    """One `tickets.raw` message: its tables (and integrated objects) as one `tickets.normalized` message keyed by
    tenant, a job's end mark after them, each rejected record dead-lettered."""
    tables, dead = normalize_messages(topic, [m])
    tables["integrated_objects"] = integrated_objects(tables)
    rows = sum(len(v) for v in tables.values())
    if rows:
        tenant = next(r["tenant"] for v in tables.values() for r in v)
        await out.send(key=tenant.encode(), value=orjson.dumps({"tables": tables}))
    for mark in marks_of(headers):  # a job's end, after its rows on the tenant's partition
        await out.send(key=mark["tenant"].encode(), value=orjson.dumps({"tables": {}, "marks": [mark]}))
    for letter in dead:
        await dead_letter(letter)
    EVENTS.labels(topic, "out").inc(rows)


def register_ticket_agents(app: faust.App, topics: AgentTopics) -> None:
    """Bind the handler to this worker's topics (names carry the settings' prefix)."""
    out = topics(TICKETS_NORMALIZED)

    @app.agent(topics(TICKETS_RAW))
    async def normalize_tickets(stream: faust.StreamT) -> None:
        async for ev in stream.events():
            m = ev.message
            await normalize_ticket_message(m.topic, Message(m.partition, m.offset, int(m.timestamp * 1000), m.value),
                                           m.headers, out, topics.dead_letter)
