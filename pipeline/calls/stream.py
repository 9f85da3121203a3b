"""The calls stream's worker side: a batch consumer (getmany) on `calls.raw`, hosted in the Faust worker.

A per-event Faust agent stops near 4k events/s on this machine (DESIGN.md); this loop reads thousands of
messages a call, normalizes them in one pass, and sends one Arrow batch per source partition.
At-least-once: offsets are committed only after every output is acknowledged; replays produce the same
derived ids, which the materializer drops.
"""

from __future__ import annotations

import asyncio
from functools import partial

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import CommitFailedError, KafkaError

from pipeline.broker.kafka import cluster_id, make_consumer, make_producer
from pipeline.broker.topics import CALLS_NORMALIZED, CALLS_RAW, dlq
from pipeline.calls.arrow import CONTENT_TYPE, records_to_ipc
from pipeline.calls.normalize import Message, normalize_messages
from pipeline.ids import derived_id
from pipeline.metrics import EVENTS
from pipeline.settings import Settings

log = structlog.get_logger(__name__)

CHUNK = 2000  # records per calls.normalized message (~500 KB of Arrow)


class CallsNormalizer:
    """Consumes calls.raw, produces calls.normalized and calls.raw.dlq."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.raw = settings.topic(CALLS_RAW)
        self.out = settings.topic(CALLS_NORMALIZED)
        self.dlq = settings.topic(dlq(CALLS_RAW))
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None

    async def run(self) -> None:
        cluster = await cluster_id(self.settings.bootstrap())
        self.make_id = partial(derived_id, cluster, self.raw)
        self.consumer = make_consumer(self.settings, self.raw, group=self.settings.group("calls-normalizer"))
        self.producer = make_producer(self.settings)
        await self.producer.start()
        await self.consumer.start()
        self.out_partitions = len(await self.producer.partitions_for(self.out))
        log.info("calls_normalizer_started", topic=self.raw, cluster_id=cluster)
        try:
            while True:
                batches = await self.consumer.getmany(timeout_ms=200, max_records=5000)
                if batches:
                    await self._process_safely(batches)
        finally:
            await self.consumer.stop()
            await self.producer.stop()

    async def _process_safely(self, batches: dict) -> None:
        try:
            await self.process(batches)
            await self.consumer.commit()
        except CommitFailedError as exc:
            log.warning("calls_commit_failed_rebalance", error=str(exc))  # new owner replays; ids dedupe
        except KafkaError as exc:
            log.error("calls_batch_failed_will_replay", error=str(exc))
            await asyncio.sleep(1.0)
            for tp in self.consumer.assignment():
                committed = await self.consumer.committed(tp)
                if committed is None:
                    await self.consumer.seek_to_beginning(tp)
                else:
                    self.consumer.seek(tp, committed)

    async def process(self, batches: dict) -> None:
        acks = []
        for tp, msgs in batches.items():
            records, dead = normalize_messages(
                tp.topic, (Message(m.partition, m.offset, m.timestamp, m.value) for m in msgs),
                self.make_id,
            )
            part = tp.partition % self.out_partitions
            for start in range(0, len(records), CHUNK):
                value = records_to_ipc(records[start:start + CHUNK])
                acks.append(await self.producer.send(self.out, value, partition=part,
                                                     headers=[("content-type", CONTENT_TYPE)]))
            for letter in dead:
                acks.append(await self.producer.send(self.dlq, letter.to_json(), partition=0))
            EVENTS.labels(self.raw, "in").inc(len(records) + len(dead))
            EVENTS.labels(self.raw, "out").inc(len(records))
            EVENTS.labels(self.raw, "dlq").inc(len(dead))
        await asyncio.gather(*acks)
