"""Every topic the pipeline uses, declared once (`TOPICS`), and created explicitly at start-up (the embedded broker
would auto-create unknown topics with 4 partitions, and no configs).

Names here are unprefixed: `settings.topic(name)` adds STREAMDESK_TOPIC_PREFIX. Agents bind them to Faust through
pipeline/broker/agent_topics.py, which decodes `carries` and dead-letters what does not decode, the same way
for every agent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel

from pipeline.settings import Settings
from schemas.calls import CallEvent
from schemas.ingest import JobCommand, JobProgress
from schemas.predictions import PredictionEvent, PredictionRequest, RoundMessage
from schemas.privacy import Erasure
from schemas.search import EmbedRequest
from schemas.sleep import SleepRecord
from schemas.tickets import RawRecord

CALLS_RAW = "calls.raw"
SLEEP_RECORDS = "sleep.records"
TICKETS_RAW = "tickets.raw"
CALLS_NORMALIZED = "calls.normalized"
SLEEP_NORMALIZED = "sleep.normalized"
PREDICTIONS_REQUESTS = "predictions.requests"
PREDICTIONS_ROUNDS = "predictions.rounds"
PREDICTIONS_RESULTS = "predictions.results"
TICKETS_NORMALIZED = "tickets.normalized"
TICKETS_VECTORS = "tickets.vectors"
EMBED_REQUESTS = "tickets.embed_requests"
INGEST_COMMANDS = "ingest.commands"
INGEST_PROGRESS = "ingest.progress"
HEARTBEATS = "streamdesk.heartbeats"
PRIVACY_ERASURES = "privacy.erasures"


@dataclass(frozen=True, slots=True)
class Topic:
    """One topic's contract: who writes it, what one message carries, what its key is, where its rejects go.

    `carries` is the model of one message (for an entry topic: of one event, sent alone or in a JSON array), or,
    for messages with no model, their format and the module that writes them. A topic with `dead_letters` has a
    `<name>.dlq` where its consumers put what they cannot read, with the reason and the source offset.
    """

    name: str
    role: Literal["entry", "internal", "platform"]
    carries: type[BaseModel] | str
    key: str
    writers: str
    dead_letters: bool = False

    @property
    def model(self) -> type[BaseModel] | None:
        return self.carries if isinstance(self.carries, type) else None


TOPICS: tuple[Topic, ...] = (
    # Entry topics: anyone may produce UTF-8 JSON, an object or an array of objects as a batch.
    Topic(CALLS_RAW, "entry", CallEvent, "any (the api and the recorder use the tenant)",
          "gateways, POST /v1/call-histories, POST /v1/traces, the api's call recorder", dead_letters=True),
    Topic(SLEEP_RECORDS, "entry", SleepRecord, "user", "apps, POST …/sleep-records", dead_letters=True),
    Topic(TICKETS_RAW, "entry", RawRecord, "Freshdesk domain", "ingest jobs (worker), anyone", dead_letters=True),
    # Internal topics, written by the pipeline itself.
    Topic(CALLS_NORMALIZED, "internal", "Arrow IPC batch of seed-003 rows with its calls.raw source range "
          "(pipeline/calls/arrow.py)", "none: the calls.raw partition", "worker (calls normalizer)"),
    Topic(SLEEP_NORMALIZED, "internal", "one validated sleep record as a JSON row (pipeline/predictions/records.py)",
          "tenant/user", "worker"),
    Topic(PREDICTIONS_REQUESTS, "internal", PredictionRequest, "user", "api", dead_letters=True),
    Topic(PREDICTIONS_ROUNDS, "internal", RoundMessage, "debate session", "worker", dead_letters=True),
    Topic(PREDICTIONS_RESULTS, "internal", PredictionEvent, "prediction", "worker"),
    Topic(TICKETS_NORMALIZED, "internal", '{"tables": {table: [rows]}, "marks": [...]} JSON '
          "(pipeline/tickets/agents.py)", "tenant", "worker"),
    Topic(TICKETS_VECTORS, "internal", '{"vectors": [rows], "marks": [...]} JSON (pipeline/search/vectors.py)',
          "tenant", "worker"),
    Topic(EMBED_REQUESTS, "internal", EmbedRequest, "tenant", "api (POST /ingest/sync-summaries)", dead_letters=True),
    Topic(INGEST_COMMANDS, "internal", JobCommand, "Freshdesk domain", "api", dead_letters=True),
    Topic(INGEST_PROGRESS, "internal", JobProgress, "job", "worker"),
    # Platform topics: one partition each.
    Topic(HEARTBEATS, "platform", "JSON: worker id, host, pid, times and counters (pipeline/worker.py)", "worker id",
          "worker"),
    Topic(PRIVACY_ERASURES, "platform", Erasure, "tenant/user", "api (erasure)"),
)
SPECS: dict[str, Topic] = {t.name: t for t in TOPICS}

ENTRY_TOPICS = tuple(t.name for t in TOPICS if t.role == "entry")
DLQ_TOPICS = tuple(t.name for t in TOPICS if t.dead_letters)
INTERNAL_TOPICS = tuple(t.name for t in TOPICS if t.role == "internal")
PLATFORM_TOPICS = tuple(t.name for t in TOPICS if t.role == "platform")


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    max_message_bytes: int | None = None  # the topic's `max.message.bytes`; None: the broker's default
    replication: int = 1
    configs: tuple[tuple[str, str], ...] = ()  # further topic configs (min.insync.replicas, retention.ms)


# Room for a record batch's own framing (header, key, timestamps) around the largest value.
RECORD_OVERHEAD_BYTES = 16 << 10


def pipeline_topics(settings: Settings) -> list[TopicSpec]:
    n = settings.partitions
    entry, internal = settings.max_message_bytes + RECORD_OVERHEAD_BYTES, settings.max_transport_bytes
    specs = [TopicSpec(settings.topic(t), n, entry) for t in ENTRY_TOPICS]
    specs += [TopicSpec(settings.topic(dlq(t)), 1, internal) for t in DLQ_TOPICS]
    specs += [TopicSpec(settings.topic(t), n, internal) for t in INTERNAL_TOPICS]
    specs += [TopicSpec(settings.topic(t), 1) for t in PLATFORM_TOPICS]
    configs: list[tuple[str, str]] = []
    if settings.min_insync_replicas is not None:
        configs.append(("min.insync.replicas", str(settings.min_insync_replicas)))
    if settings.topic_retention_days is not None:
        days = settings.topic_retention_days
        configs.append(("retention.ms", "-1" if days < 0 else str(int(days * 86_400_000))))
    return [replace(s, replication=settings.replication_factor, configs=tuple(configs)) for s in specs]
