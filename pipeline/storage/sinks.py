"""Which result topic becomes which table. Tickets and predictions add their sinks here."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pyarrow as pa
from aiokafka.structs import ConsumerRecord

from pipeline.broker.topics import (
    DLQ_TOPICS,
    HEARTBEATS,
    INGEST_PROGRESS,
    PREDICTIONS_RESULTS,
    PRIVACY_ERASURES,
    SLEEP_NORMALIZED,
    TICKETS_NORMALIZED,
    TICKETS_VECTORS,
    dlq,
)
from pipeline.settings import Settings
from pipeline.storage.call_sinks import calls_sink
from pipeline.storage.dead_letters import dlq_rows
from pipeline.storage.ingest_sinks import build_job_progress
from pipeline.storage.materializer import Built, Context, Sink
from pipeline.storage.prediction_sinks import build_erasures, build_prediction_events, build_sleep_records
from pipeline.storage.ticket_sinks import build_tickets, build_vectors


def build_dead_letters(msgs: Sequence[ConsumerRecord], ctx: Context) -> Built:
    table, bad = dlq_rows(msgs, ctx.cluster_id)
    return Built(table, bad)


HEARTBEAT_SCHEMA = pa.schema([
    ("worker_id", pa.string()), ("host", pa.string()), ("pid", pa.int64()),
    ("started_at", pa.timestamp("us", tz="UTC")), ("last_seen", pa.timestamp("us", tz="UTC")),
    ("counters", pa.string()),
])


def build_heartbeats(msgs: Sequence[ConsumerRecord], ctx: Context) -> Built:
    latest: dict[str, dict] = {}
    rejected = []
    for m in msgs:
        try:
            b = orjson.loads(m.value)
            latest[b["worker_id"]] = {
                "worker_id": b["worker_id"], "host": b.get("host"), "pid": b.get("pid"),
                "started_at": int(b["started_at"] * 1e6), "last_seen": int(b["ts"] * 1e6),
                "counters": orjson.dumps(b.get("counters", [])).decode(),
            }
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            rejected.append((m, f"not a heartbeat: {exc}"))
    return Built(pa.Table.from_pylist(list(latest.values()), schema=HEARTBEAT_SCHEMA), rejected)


def platform_sinks(settings: Settings) -> list[Sink]:
    t = settings.topic
    return [
        calls_sink(settings),
        *(Sink(t(dlq(name)), "dead_letters", build_dead_letters) for name in DLQ_TOPICS),
        Sink(t(HEARTBEATS), "worker_heartbeats", build_heartbeats, conflict="REPLACE"),
        Sink(t(SLEEP_NORMALIZED), "sleep_records", build_sleep_records),
        Sink(t(PREDICTIONS_RESULTS), "predictions", build_prediction_events),
        Sink(t(PRIVACY_ERASURES), "erasures", build_erasures),
        Sink(t(INGEST_PROGRESS), "ingest_jobs", build_job_progress),
        Sink(t(TICKETS_NORMALIZED), "tickets", build_tickets),
        Sink(t(TICKETS_VECTORS), "ticket_vectors", build_vectors),
    ]
