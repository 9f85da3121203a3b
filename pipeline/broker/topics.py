"""Every topic the pipeline uses, created explicitly at start-up (the embedded broker would auto-create
unknown topics with 4 partitions, and no configs)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.settings import Settings

# Entry topics: anyone may produce UTF-8 JSON (an object, or an array of objects as a batch).
CALLS_RAW = "calls.raw"
# Internal topics, written by the pipeline itself.
CALLS_NORMALIZED = "calls.normalized"  # Arrow IPC batches of seed-003 records (pipeline/calls/arrow.py)
HEARTBEATS = "streamdesk.heartbeats"  # worker liveness and counters, one JSON object per beat

ENTRY_TOPICS = (CALLS_RAW,)


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int


def pipeline_topics(settings: Settings) -> list[TopicSpec]:
    n = settings.partitions
    specs = [TopicSpec(settings.topic(t), n) for t in ENTRY_TOPICS]
    specs += [TopicSpec(settings.topic(dlq(t)), 1) for t in ENTRY_TOPICS]
    specs += [TopicSpec(settings.topic(CALLS_NORMALIZED), n), TopicSpec(settings.topic(HEARTBEATS), 1)]
    return specs
