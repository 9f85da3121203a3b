"""The tickets stream's Faust agent: `tickets.raw` -> normalized rows (+ integrated objects) or dead letters.

Thin: decode, call the pure normalizer and integrator, send one `tickets.normalized` message per source
message (JSON `{"tables": {name: [rows]}}`, keyed by tenant) and one dead letter per rejected record; a job's
end mark (pipeline/ingest/marks.py) is passed on.
"""

from __future__ import annotations

import faust
import orjson
import structlog

from pipeline.broker.agent_topics import AgentTopics
from pipeline.broker.records import Message
from pipeline.broker.topics import TICKETS_NORMALIZED, TICKETS_RAW
from pipeline.ingest.marks import marks_of
from pipeline.metrics import EVENTS
from pipeline.tickets.normalize import normalize_messages
from pipeline.tickets.threads import integrated_objects

log = structlog.get_logger(__name__)


def register_ticket_agents(app: faust.App, topics: AgentTopics) -> None:
    out = topics(TICKETS_NORMALIZED)

    @app.agent(topics(TICKETS_RAW))
    async def normalize_tickets(stream: faust.StreamT) -> None:
        async for ev in stream.events():
            m = ev.message
            tables, dead = normalize_messages(m.topic, [Message(m.partition, m.offset, int(m.timestamp * 1000),
                                                                m.value)])
            tables["integrated_objects"] = integrated_objects(tables)
            rows = sum(len(v) for v in tables.values())
            if rows:
                tenant = next(r["tenant"] for v in tables.values() for r in v)
                await out.send(key=tenant.encode(), value=orjson.dumps({"tables": tables}))
            for mark in marks_of(m.headers):  # a job's end, after its rows on the tenant's partition
                await out.send(key=mark["tenant"].encode(), value=orjson.dumps({"tables": {}, "marks": [mark]}))
            for letter in dead:
                await topics.dead_letter(letter)
            EVENTS.labels(m.topic, "out").inc(rows)
