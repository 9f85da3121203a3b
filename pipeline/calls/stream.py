"""The calls stream's worker side: a batch consumer (getmany) on `calls.raw`, hosted in the Faust worker.

A per-event Faust agent stops near 4k events/s on this machine (docs/architecture.md "Speed"); this loop reads
thousands of messages a call (librdkafka's consumer, see broker/batch_consumer.py), normalizes them in one
vectorised pass, and sends Arrow batches per source partition.
Fetching and normalizing the next batch overlaps with the acks of the previous ones: up to MAX_IN_FLIGHT
batches are sent but not yet committed. At-least-once: a committer task commits offsets in batch order, and
only once every output of a batch (and of all before it) is acknowledged; a failed send rewinds the consumer
to the committed offsets. A replay sends the same rows with the same source ranges (see arrow.py), and the
materializer drops every row of a range it has already stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from pipeline.broker.batch_consumer import BatchConsumer
from pipeline.broker.kafka import cluster_id, make_producer
from pipeline.broker.offset_gaps import reorders_batches
from pipeline.broker.records import Batch
from pipeline.broker.topics import CALLS_NORMALIZED, CALLS_RAW, dlq
from pipeline.calls.arrow import CONTENT_TYPE, SEQ_LAST, Source, seq, table_to_ipc
from pipeline.calls.vectorised import Normalized, normalize_batches
from pipeline.ids import SourceIds
from pipeline.metrics import EVENTS
from pipeline.settings import Settings

log = structlog.get_logger(__name__)

CHUNK = 2000  # records per calls.normalized message (~500 KB of Arrow)
MAX_RECORDS = 5000  # per getmany: bigger batches wait longer for their first record to be sent
MAX_IN_FLIGHT = 4  # batches sent but not yet committed; bounds what a failure replays
_HEADERS = [("content-type", CONTENT_TYPE)]


# (source partition, its records and dead letters, first offset, last offset, oldest produce time in ms)
Sendable = tuple[TopicPartition, Normalized, int, int, int | None]


@dataclass(slots=True)
class _Sent:
    """One consumed batch whose outputs are on their way: commit `offsets` once `acks` has succeeded."""

    acks: asyncio.Future
    offsets: dict[TopicPartition, int]
    epoch: int  # a failure starts a new epoch; batches of an older one are never committed


class CallsNormalizer:
    """Consumes calls.raw, produces calls.normalized and calls.raw.dlq."""

    rewind_backoff_s = 1.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.raw = settings.topic(CALLS_RAW)
        self.out = settings.topic(CALLS_NORMALIZED)
        self.dlq = settings.topic(dlq(CALLS_RAW))
        self.consumer: BatchConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self._inflight: deque[_Sent] = deque()
        self._has_work = asyncio.Event()
        self._pushed = self._popped = 0
        self._permits = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._epoch = 0
        self._failed: BaseException | None = None
        self._acked: dict[TopicPartition, int] = {}  # next offsets of everything acknowledged, in batch order

    async def run(self) -> None:
        cluster = await cluster_id(self.settings.bootstrap())
        self.make_id = SourceIds(cluster, self.raw)
        # Hand partitions over with their offsets committed, so the next owner replays as little as possible.
        self.consumer = BatchConsumer(self.settings, self.raw, self.settings.group("calls-normalizer"),
                                      on_revoked=self._finished_before_revoke, hold_gaps=reorders_batches(cluster))
        self.producer = make_producer(self.settings)
        await self.producer.start()
        await self.consumer.start()
        self.out_partitions = len(await self.producer.partitions_for(self.out))
        log.info("calls_normalizer_started", topic=self.raw, cluster_id=cluster)
        loops = [asyncio.create_task(self._consume()), asyncio.create_task(self._commit_in_order())]
        try:
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # either loop ending means a bug: raise it rather than stall the other
        except BaseException as exc:
            stopped = isinstance(exc, asyncio.CancelledError)  # the worker stopping, not a failure
            log.log(logging.INFO if stopped else logging.ERROR, "calls_normalizer_stopping", reason=repr(exc),
                    exc_info=not stopped)
            raise
        finally:
            loops[0].cancel()
            await self.drain(2.0)
            loops[1].cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self.consumer.stop()
            await self.producer.stop()

    async def _consume(self) -> None:
        ahead: tuple[int, dict] | None = None  # a batch fetched while the one before it was being normalized
        while True:
            if self._failed is not None:
                await self._rewind()
                ahead = None  # fetched before the rewind: the rewind reads it again
            if ahead is None:
                epoch = self._epoch  # taken before the fetch: a failure from here on makes this batch stale
                batches = await self.consumer.getmany(timeout_ms=200, max_records=MAX_RECORDS)
            else:
                (epoch, batches), ahead = ahead, None
            if not batches:
                continue
            await self._permits.acquire()
            if epoch != self._epoch:
                self._permits.release()
                continue
            # Arrow parses and checks without the GIL: while it works on this batch in a thread, the loop
            # decodes the records already fetched for the next one (aiokafka's share of the work, in Python).
            work = asyncio.ensure_future(asyncio.to_thread(self.normalize, batches))
            next_epoch = self._epoch
            try:
                fetched = await self.consumer.getmany(timeout_ms=0, max_records=MAX_RECORDS)
            finally:
                normalized = await work
            ahead = (next_epoch, fetched) if fetched else None
            try:
                acks = await self.send(normalized)
            except KafkaError as exc:
                self._fail(exc)
                self._permits.release()
                continue
            offsets = {tp: batch.offsets[-1] + 1 for tp, batch in batches.items()}
            self._inflight.append(_Sent(asyncio.gather(*acks, return_exceptions=True), offsets, epoch))
            self._pushed += 1
            self._has_work.set()

    def normalize(self, batches: dict[TopicPartition, Batch]) -> list[Sendable]:
        """One getmany's worth, parsed together, handed back partition by partition: (partition, records and dead
        letters, first, last offset, the oldest produce time among its messages)."""
        outs = normalize_batches(self.raw, list(batches.values()), self.make_id)
        return [(tp, out, batch.offsets[0], batch.offsets[-1], min(batch.timestamps_ms, default=None))
                for (tp, batch), out in zip(batches.items(), outs, strict=True)]

    async def send(self, normalized: list[Sendable]) -> list[asyncio.Future]:
        """Send what `normalize` made, in order; returns the futures of every send.

        Each output message carries the oldest produce time of its source messages as its Kafka timestamp, so
        the materializer's freshness figure is produce on calls.raw -> queryable, not normalized -> queryable.
        """
        acks = []
        for tp, out, first, last, stamp in normalized:
            part = tp.partition % self.out_partitions
            when = stamp if stamp and stamp > 0 else None
            for value, source in outputs(out, tp.partition, first, last):
                headers = [*_HEADERS, ("source", source.header())]
                acks.append(await self.producer.send(self.out, value, partition=part, headers=headers,
                                                     timestamp_ms=when))
            for letter in out.dead:
                acks.append(await self.producer.send(self.dlq, letter.to_json(), partition=0))
            EVENTS.labels(self.raw, "in").inc(out.table.num_rows + len(out.dead))
            EVENTS.labels(self.raw, "out").inc(out.table.num_rows)
            EVENTS.labels(self.raw, "dlq").inc(len(out.dead))
        return acks

    async def _commit_in_order(self) -> None:
        """The oldest batch's acks, then one commit for it and every batch behind it already acknowledged."""
        while True:
            if not self._inflight:
                self._has_work.clear()
                await self._has_work.wait()
                continue
            head = self._inflight[0]
            if head.epoch == self._epoch:
                await head.acks
            offsets: dict[TopicPartition, int] = {}
            error = None
            while self._inflight and (self._inflight[0].acks.done() or self._inflight[0].epoch != self._epoch):
                sent = self._inflight.popleft()
                self._popped += 1
                self._permits.release()
                if sent.epoch != self._epoch:
                    continue  # fetched before a failure: dropped, the rewind consumes it again
                error = _first_error(sent.acks.result())
                if error is not None:
                    break
                offsets |= sent.offsets
                self._acked |= sent.offsets
            if offsets:
                await self._commit(offsets)
            if error is not None:
                self._fail(error)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        # A partition revoked meanwhile is left out by the consumer: it is its new owner's to commit.
        try:
            await self.consumer.commit(offsets)
        except CommitFailedError as exc:
            log.warning("calls_commit_failed_rebalance", error=str(exc))  # new owner replays; ids dedupe
        except KafkaError as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self._failed is None:
            log.error("calls_batch_failed_will_replay", error=str(exc))
        self._failed = exc
        self._epoch += 1

    async def _rewind(self) -> None:
        """Back to the committed offsets: everything after them is consumed again (same ids, dropped)."""
        await asyncio.sleep(self.rewind_backoff_s)
        self._failed = None
        for tp in await self.consumer.assignment():
            committed = await self.consumer.committed(tp)
            if committed is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                await self.consumer.seek(tp, committed)

    async def _finished_before_revoke(self, revoked: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Partitions are about to move: wait (briefly) for what was sent to be acknowledged, and say what may
        be committed: the consumer commits it before they go, so the next owner replays as little as possible.
        Only acks are awaited, not the committer: its commit waits behind this revocation on the consumer."""
        pending = [sent.acks for sent in self._inflight if sent.epoch == self._epoch]
        if pending:
            await asyncio.wait(pending, timeout=self.settings.session_timeout_s / 2)
        finished = dict(self._acked)
        for sent in self._inflight:  # batch order: stop at the first one not (or not well) acknowledged
            if sent.epoch != self._epoch or not sent.acks.done() or _first_error(sent.acks.result()) is not None:
                break
            finished |= sent.offsets
        for tp in revoked:  # if they come back, they start from what is committed now, not from this
            self._acked.pop(tp, None)
        return {tp: o for tp, o in finished.items() if tp in revoked}

    async def drain(self, timeout_s: float) -> None:
        """Wait until every batch sent so far is committed (or dropped after a failure)."""
        target = self._pushed
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._popped < target:
            if loop.time() > deadline:
                log.warning("calls_drain_timed_out", in_flight=len(self._inflight))
                return
            await asyncio.sleep(0.01)


def outputs(out: Normalized, partition: int, first: int, last: int) -> Iterator[tuple[bytes, Source]]:
    """calls.normalized messages for the calls.raw offsets first..last: CHUNK rows each, with the source range
    each accounts for. The ranges tile the whole batch (dead letters included), so the materializer's record of
    what it stored stays one range per partition; a batch of dead letters only still sends one empty message."""
    table = out.table.append_column("source_seq", out.seqs).append_column("id_supplied", out.supplied)
    n, seqs = table.num_rows, out.seqs
    for start in range(0, max(n, 1), CHUNK):
        lo = seq(first) if start == 0 else seqs[start].as_py()
        hi = seq(last, SEQ_LAST) if start + CHUNK >= n else seqs[start + CHUNK].as_py() - 1
        yield table_to_ipc(table.slice(start, CHUNK)), Source(partition, lo, hi)


def _first_error(results: list) -> BaseException | None:
    return next((r for r in results if isinstance(r, BaseException)), None)
