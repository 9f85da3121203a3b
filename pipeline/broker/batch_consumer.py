"""A group consumer for entry topics where each message is one event: librdkafka (confluent-kafka) under an
asyncio face.

aiokafka decodes each record in Python and builds a ConsumerRecord for it (~3.4 us a message on this machine,
on the event loop's thread); librdkafka fetches and decodes in its own C threads, and what is left in Python is
reading three fields off each message (~2.5 us in all, measured on 200,000 ~500 B messages from the embedded
broker). `getmany` hands back each partition's messages column-wise (`records.Batch`), which is what the calls
normalizer reads, so no per-message object is kept.

Every librdkafka call runs on one thread of its own, in the order the loop asks for them: librdkafka blocks a
commit made from another thread while a revocation is being handled inside `consume()` (measured: it never
returns), and one thread also means a commit sees the assignment as it is when it runs. Partition revocation is
reported from inside `consume()`: the owner's async `on_revoked` runs on its event loop while the revocation
waits, and returns the offsets it has finished, which are committed right there, before the partitions move.
On the embedded broker a fetch can skip a batch still being stored; with `hold_gaps` a partition's messages are
handed over only up to such a gap and the consumer fetches from it again (broker/offset_gaps.py).
Errors are raised as aiokafka's types (`CommitFailedError` when a rebalance took the partitions, `KafkaError`
otherwise), the ones the rest of the pipeline already handles.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import confluent_kafka as ck
import structlog
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from pipeline.broker.offset_gaps import HOLDS, first_gap
from pipeline.broker.records import Batch
from pipeline.settings import Settings

log = structlog.get_logger(__name__)

T = TypeVar("T")
# Given the partitions about to be revoked, the next offsets to commit for those of them that are finished.
Revoked = Callable[[list[TopicPartition]], Awaitable[dict[TopicPartition, int]]]

# librdkafka's error codes that mean "the group moved on": the commit is the new owner's to make.
_REBALANCED = {ck.KafkaError.REBALANCE_IN_PROGRESS, ck.KafkaError.ILLEGAL_GENERATION,
               ck.KafkaError.UNKNOWN_MEMBER_ID, ck.KafkaError._ASSIGNMENT_LOST}


class BatchConsumer:
    """Subscribe to one topic in a consumer group; `getmany` returns {partition: Batch} in offset order."""

    def __init__(self, settings: Settings, topic: str, group: str, on_revoked: Revoked | None = None,
                 revoke_timeout_s: float | None = None, hold_gaps: bool = False) -> None:
        self.topic = topic
        self.hold_gaps = hold_gaps
        self._expected: dict[int, int] = {}  # per partition, the next offset to hand over (with hold_gaps)
        self.on_revoked = on_revoked
        self.revoke_timeout_s = revoke_timeout_s or settings.session_timeout_s
        self.config = {
            "bootstrap.servers": settings.bootstrap(),
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": int(settings.session_timeout_s * 1000),
            "heartbeat.interval.ms": int(settings.heartbeat_interval_s * 1000),
            # librdkafka's rebalance timeout: how long the group waits for members to rejoin. Longer than the
            # session (a worker blocked on a slow send must not be thrown out), far below the 5-minute default.
            "max.poll.interval.ms": int(max(30.0, settings.session_timeout_s) * 1000),
            "max.partition.fetch.bytes": settings.max_transport_bytes,
            "fetch.max.bytes": 16 * 1024 * 1024,
            # The embedded broker answers an idle fetch when the wait runs out, not when data arrives.
            "fetch.wait.max.ms": 100,
            "logger": logging.getLogger("librdkafka"),
        }
        self._consumer: ck.Consumer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-consumer")

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, partial(fn, *args, **kwargs))

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._consumer = ck.Consumer(self.config)
        await self._call(self._consumer.subscribe, [self.topic], on_assign=self._assigned, on_revoke=self._revoked,
                         on_lost=self._lost)

    async def stop(self) -> None:
        """Leave the group (its partitions move at once); the revoke handler runs first and may still commit."""
        if self._consumer is not None:
            try:
                await self._call(self._consumer.close)
            finally:
                self._consumer = None
                self._thread.shutdown(wait=False)

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Batch]:
        """What is fetched, up to max_records; waits up to timeout_ms for the first message only."""
        consumer = self._require()
        msgs = await self._call(self._consume, consumer, timeout_ms / 1000, max_records)
        offsets: dict[int, list[int]] = {}
        stamps: dict[int, list[int]] = {}
        values: dict[int, list[bytes | None]] = {}
        for m in msgs:
            if m.error() is not None:
                self._error(m.error())
                continue
            p = m.partition()
            if p not in offsets:
                offsets[p], stamps[p], values[p] = [], [], []
            offsets[p].append(m.offset())
            stamps[p].append(m.timestamp()[1])
            values[p].append(m.value())
        if self.hold_gaps and offsets:
            for p, keep in (await self._up_to_gaps(offsets)).items():
                del offsets[p][keep:], stamps[p][keep:], values[p][keep:]
                if not keep:
                    del offsets[p]
        return {TopicPartition(self.topic, p): Batch(p, offsets[p], stamps[p], values[p]) for p in offsets}

    async def _up_to_gaps(self, offsets: dict[int, list[int]]) -> dict[int, int]:
        """Partitions whose messages skip offsets not yet seen, and how many of their messages to keep; each
        is sought back to its first missing offset, so the next fetch asks for it again."""
        unknown = [p for p in offsets if p not in self._expected]
        if unknown:
            self._expected |= await self._call(self._committed, self._require(), unknown)
        cut: dict[int, int] = {}
        for p, offs in offsets.items():
            expected, start = self._expected.get(p, offs[0]), 0
            while (i := first_gap(offs, expected, start)) is not None:
                missing, found = expected + i - start, offs[i]
                if found > missing and HOLDS.wait(self.topic, p, missing, found):
                    cut[p], expected = i, missing
                    break
                start, expected = i, found  # stepped over (or earlier than expected): go on from there
            else:
                expected = offs[-1] + 1
            self._expected[p] = expected
        for p in cut:
            await self.seek(TopicPartition(self.topic, p), self._expected[p])
        return cut

    def _committed(self, consumer: ck.Consumer, partitions: list[int]) -> dict[int, int]:
        """Where the group left these partitions (those it never committed are taken as they come)."""
        got = consumer.committed([ck.TopicPartition(self.topic, p) for p in partitions], 10.0)
        return {tp.partition: tp.offset for tp in got if tp.offset >= 0}

    @staticmethod
    def _consume(consumer: ck.Consumer, timeout_s: float, max_records: int) -> list[ck.Message]:
        # consume(n, t) waits until it has n messages or t ran out: what is queued now, or else the first
        # message to come and whatever arrived with it, so a quiet topic is not held back by the batch size.
        msgs = consumer.consume(max_records, 0)
        if not msgs and timeout_s > 0:
            msgs = consumer.consume(1, timeout_s)
            if msgs and max_records > 1:
                msgs += consumer.consume(max_records - 1, 0)
        return msgs

    async def assignment(self) -> set[TopicPartition]:
        got = await self._call(self._require().assignment)
        return {TopicPartition(tp.topic, tp.partition) for tp in got}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit the next offsets to read, for the partitions still assigned when the commit runs (one revoked
        meanwhile is its new owner's to commit); synchronous, so a failure is known before anything moves on."""
        await self._call(self._commit, self._require(), offsets)

    @staticmethod
    def _commit(consumer: ck.Consumer, offsets: dict[TopicPartition, int]) -> None:
        assigned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        parts = [ck.TopicPartition(tp.topic, tp.partition, offset) for tp, offset in offsets.items()
                 if (tp.topic, tp.partition) in assigned]
        if not parts:
            return
        try:
            consumer.commit(offsets=parts, asynchronous=False)
        except ck.KafkaException as exc:
            raise _translated(exc) from exc

    async def committed(self, tp: TopicPartition) -> int | None:
        consumer = self._require()
        try:
            (got,) = await self._call(consumer.committed, [ck.TopicPartition(tp.topic, tp.partition)], 10.0)
        except ck.KafkaException as exc:
            raise _translated(exc) from exc
        return got.offset if got.offset >= 0 else None

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        """Read this partition from `offset` on (or from its beginning: `ck.OFFSET_BEGINNING`)."""
        try:
            await self._call(self._require().seek, ck.TopicPartition(tp.topic, tp.partition, offset))
        except ck.KafkaException as exc:
            raise _translated(exc) from exc
        if offset >= 0:
            self._expected[tp.partition] = offset
        else:
            self._expected.pop(tp.partition, None)  # whatever comes first

    async def seek_to_beginning(self, tp: TopicPartition) -> None:
        await self.seek(tp, ck.OFFSET_BEGINNING)

    def _require(self) -> ck.Consumer:
        if self._consumer is None:
            raise KafkaError("the consumer is not started")
        return self._consumer

    def _revoked(self, consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        """Inside consume(), on the consumer's thread: let the owner finish these partitions on its loop, then
        commit what it finished, before they go. Whatever is not committed, their new owner reads again."""
        self._forget(partitions)
        if self.on_revoked is None or self._loop is None or not partitions:
            return
        revoked = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
        future = asyncio.run_coroutine_threadsafe(self.on_revoked(revoked), self._loop)
        try:
            finished = future.result(self.revoke_timeout_s)
            self._commit(consumer, {tp: o for tp, o in finished.items() if tp in revoked})
        except Exception as exc:
            future.cancel()
            log.warning("batch_consumer_revoke_handler_failed", topic=self.topic, error=repr(exc))

    def _forget(self, partitions: list[ck.TopicPartition]) -> None:
        """These partitions start again from where the group left them: no offset is expected of them yet."""
        for tp in partitions:
            self._expected.pop(tp.partition, None)

    def _assigned(self, consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        self._forget(partitions)
        log.info("batch_consumer_assigned", topic=self.topic, partitions=[tp.partition for tp in partitions])

    def _lost(self, consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        self._forget(partitions)
        log.warning("batch_consumer_partitions_lost", topic=self.topic,
                    partitions=[tp.partition for tp in partitions])

    def _error(self, error: ck.KafkaError) -> None:
        if error.fatal():
            raise KafkaError(f"fatal consumer error: {error.str()}")
        log.warning("batch_consumer_error", topic=self.topic, error=error.str())


def _translated(exc: ck.KafkaException) -> KafkaError:
    error = exc.args[0] if exc.args and isinstance(exc.args[0], ck.KafkaError) else None
    if error is not None and error.code() in _REBALANCED:
        return CommitFailedError(error.str())
    return KafkaError(error.str() if error is not None else str(exc))
