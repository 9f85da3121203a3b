"""Which result topic becomes which table. Tickets and predictions add their sinks here."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from aiokafka.structs import ConsumerRecord

from pipeline.broker.topics import (
    CALLS_NORMALIZED,
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
from pipeline.calls.arrow import CALLS_SCHEMA, ipc_to_table
from pipeline.settings import Settings
from pipeline.storage.dead_letters import dlq_rows
from pipeline.storage.ingest_sinks import build_job_progress
from pipeline.storage.materializer import Built, Context, Sink
from pipeline.storage.prediction_sinks import build_erasures, build_prediction_events, build_sleep_records
from pipeline.storage.ticket_sinks import build_tickets, build_vectors


def build_calls(msgs: Sequence[ConsumerRecord], ctx: Context) -> Built:
    tables, rejected = [], []
    for m in msgs:
        try:
            tables.append(ipc_to_table(m.value))
        except (pa.ArrowInvalid, TypeError) as exc:
            rejected.append((m, f"not an Arrow batch of call records: {exc}"))
    table = pa.concat_tables(tables) if tables else CALLS_SCHEMA.empty_table()
    return Built(keyed_by_tenant(table), rejected)


def keyed_by_tenant(table: pa.Table) -> pa.Table:
    """An event without a tenant is stored under '' (the key is (tenant_id, id), and key columns are not NULL)."""
    i = table.schema.get_field_index("tenant_id")
    tenants = table.column(i)
    if not tenants.null_count:
        return table
    return table.set_column(i, table.schema.field(i), pc.fill_null(tenants, ""))


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
        Sink(t(CALLS_NORMALIZED), "sys_api_call_histories", build_calls),
        *(Sink(t(dlq(name)), "dead_letters", build_dead_letters) for name in DLQ_TOPICS),
        Sink(t(HEARTBEATS), "worker_heartbeats", build_heartbeats, conflict="REPLACE"),
        Sink(t(SLEEP_NORMALIZED), "sleep_records", build_sleep_records),
        Sink(t(PREDICTIONS_RESULTS), "predictions", build_prediction_events),
        Sink(t(PRIVACY_ERASURES), "erasures", build_erasures),
        Sink(t(INGEST_PROGRESS), "ingest_jobs", build_job_progress),
        Sink(t(TICKETS_NORMALIZED), "tickets", build_tickets),
        Sink(t(TICKETS_VECTORS), "ticket_vectors", build_vectors),
    ]
