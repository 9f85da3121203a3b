"""Every topic the pipeline uses, created explicitly at start-up (the embedded broker would auto-create
unknown topics with 4 partitions, and no configs)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.settings import Settings

# Entry topics: anyone may produce UTF-8 JSON (an object, or an array of objects as a batch).
CALLS_RAW = "calls.raw"
SLEEP_RECORDS = "sleep.records"  # diary, questionnaire, mobile and treatment records per user (schemas/sleep.py)
TICKETS_RAW = "tickets.raw"  # helpdesk records as the platform returns them, in an envelope (schemas/tickets.py)
# Internal topics, written by the pipeline itself.
CALLS_NORMALIZED = "calls.normalized"  # Arrow IPC batches of seed-003 records (pipeline/calls/arrow.py)
HEARTBEATS = "streamdesk.heartbeats"  # worker liveness and counters, one JSON object per beat
SLEEP_NORMALIZED = "sleep.normalized"  # validated sleep records, one JSON row each (pipeline/predictions/records.py)
PREDICTIONS_REQUESTS = "predictions.requests"  # api -> worker: a request with the user's data snapshot
PREDICTIONS_ROUNDS = "predictions.rounds"  # worker -> worker: one debate round, carrying the transcript so far
PREDICTIONS_RESULTS = "predictions.results"  # worker -> api: rounds recorded, predictions completed or failed
TICKETS_NORMALIZED = "tickets.normalized"  # normalized rows per table + integrated objects (pipeline/tickets)
TICKETS_VECTORS = "tickets.vectors"  # worker -> api: embeddings of integrated objects (pipeline/search/vectors.py)
EMBED_REQUESTS = "tickets.embed_requests"  # api -> worker: objects to (re)embed, from POST /ingest/sync-summaries
INGEST_COMMANDS = "ingest.commands"  # api -> worker: run or steer an ingest job (key: Freshdesk domain)
INGEST_PROGRESS = "ingest.progress"  # worker -> api: job progress events (schemas/ingest.py)
PRIVACY_ERASURES = "privacy.erasures"  # erased (tenant, user) ids: the materializer and rebuild skip them forever

ENTRY_TOPICS = (CALLS_RAW, SLEEP_RECORDS, TICKETS_RAW)
# Internal JSON topics a worker decodes; what it cannot read goes to their `.dlq` too.
DLQ_TOPICS = (*ENTRY_TOPICS, PREDICTIONS_REQUESTS, PREDICTIONS_ROUNDS, INGEST_COMMANDS, EMBED_REQUESTS)
INTERNAL_TOPICS = (CALLS_NORMALIZED, SLEEP_NORMALIZED, PREDICTIONS_REQUESTS, PREDICTIONS_ROUNDS, PREDICTIONS_RESULTS,
                   INGEST_COMMANDS, INGEST_PROGRESS, TICKETS_NORMALIZED, TICKETS_VECTORS, EMBED_REQUESTS)


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    max_message_bytes: int | None = None  # the topic's `max.message.bytes`; None: the broker's default


# Room for a record batch's own framing (header, key, timestamps) around the largest value.
RECORD_OVERHEAD_BYTES = 16 << 10


def pipeline_topics(settings: Settings) -> list[TopicSpec]:
    n = settings.partitions
    entry, internal = settings.max_message_bytes + RECORD_OVERHEAD_BYTES, settings.max_transport_bytes
    specs = [TopicSpec(settings.topic(t), n, entry) for t in ENTRY_TOPICS]
    specs += [TopicSpec(settings.topic(dlq(t)), 1, internal) for t in DLQ_TOPICS]
    specs += [TopicSpec(settings.topic(t), n, internal) for t in INTERNAL_TOPICS]
    specs += [TopicSpec(settings.topic(HEARTBEATS), 1), TopicSpec(settings.topic(PRIVACY_ERASURES), 1)]
    return specs
