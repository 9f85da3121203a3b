"""The worker's batch loop without a broker: batches overlap their acks, yet offsets are committed in order, only
after every output of a batch (and of all batches before it) is acknowledged; a failed send rewinds."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError

from pipeline.broker.records import Batch
from pipeline.calls import stream
from pipeline.calls.arrow import ipc_to_table
from pipeline.calls.stream import CallsNormalizer
from pipeline.ids import SourceIds
from pipeline.settings import Settings
from tests.helpers import call_event, until

RAW = "calls.raw"
TP = TopicPartition(RAW, 0)


@dataclass
class Record:
    offset: int
    timestamp: int
    value: bytes | None


class FakeConsumer:
    """One partition of `values`, read `per_fetch` at a time from a position that `seek` moves."""

    def __init__(self, values: list[bytes | None], per_fetch: int) -> None:
        self.records = [Record(i, 1_764_064_800_000 + i, v) for i, v in enumerate(values)]
        self.per_fetch = per_fetch
        self.position = 0
        self.empty_fetches = 0
        self.commits: list[int] = []
        self.seeks: list[int] = []
        self.committed_at_seek: list[int | None] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Batch]:
        got = self.records[self.position:self.position + self.per_fetch]
        if not got:
            self.empty_fetches += 1
            await asyncio.sleep(0.001)  # a fetch that finds nothing waits out its timeout, as a broker's does
            return {}
        self.position += len(got)
        return {TP: Batch(TP.partition, [r.offset for r in got], [r.timestamp for r in got], [r.value for r in got])}

    async def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets[TP])

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.commits[-1] if self.commits else None

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append(offset)
        self.committed_at_seek.append(self.commits[-1] if self.commits else None)
        self.position = offset

    async def seek_to_beginning(self, tp: TopicPartition) -> None:
        await self.seek(tp, 0)


class FakeProducer:
    """Every send returns a future the test settles (or `settle` does, as sends arrive)."""

    def __init__(self, settle: Callable[[int, asyncio.Future], None] | None = None) -> None:
        self.sent: list[tuple[str, bytes, asyncio.Future]] = []
        self.settle = settle

    async def send(self, topic: str, value: bytes, partition: int | None = None, headers=None,
                   timestamp_ms: int | None = None) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.sent.append((topic, value, fut))
        if self.settle:
            self.settle(len(self.sent) - 1, fut)
        return fut

    def pending(self) -> list[asyncio.Future]:
        return [f for _, _, f in self.sent if not f.done()]

    def ids(self) -> list[str]:
        return [i for t, v, f in self.sent if t.endswith("normalized") and f.done() and not f.exception()
                for i in ipc_to_table(v).column("api_call_history_id").to_pylist()]


def values(n: int, bad_every: int = 0) -> list[bytes]:
    return [b"{not json" if bad_every and i % bad_every == bad_every - 1
            else orjson.dumps(call_event(i, api_call_history_id=None)) for i in range(n)]


def normalizer(consumer: FakeConsumer, producer: FakeProducer) -> CallsNormalizer:
    n = CallsNormalizer(Settings(kafka_bootstrap="127.0.0.1:1", topic_prefix=""))
    n.consumer, n.producer, n.out_partitions = consumer, producer, 1
    n.make_id = SourceIds("cluster-a", RAW)
    n.rewind_backoff_s = 0.0
    return n


async def running(n: CallsNormalizer, body) -> None:
    tasks = [asyncio.create_task(n._consume()), asyncio.create_task(n._commit_in_order())]
    try:
        await body()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_commits_follow_batch_order_whatever_order_the_acks_come_in():
    consumer, producer = FakeConsumer(values(30), per_fetch=5), FakeProducer()
    n = normalizer(consumer, producer)

    async def body():
        await until(lambda: len(producer.pending()) == stream.MAX_IN_FLIGHT)
        await until(n._permits.locked)  # the 5th batch waits for room: no permit is left for it
        assert len(producer.sent) == stream.MAX_IN_FLIGHT and consumer.commits == []
        for i in (3, 2, 1):  # later batches acknowledged first: nothing may be committed yet
            producer.sent[i][2].set_result(None)
        await until(lambda: all(s.acks.done() for s in list(n._inflight)[1:]))  # their acks are in
        assert consumer.commits == []  # (and the `== [20]` below shows nothing was committed before batch 0)
        producer.sent[0][2].set_result(None)  # now batches 0-3 are all acknowledged: one commit covers them
        await until(lambda: consumer.commits == [20])
        await until(lambda: len(producer.sent) == 6)
        for _, _, f in producer.sent[4:]:
            f.set_result(None)
        await until(lambda: consumer.commits[-1] == 30)

    asyncio.run(running(n, body))
    assert consumer.commits == sorted(consumer.commits)


def test_dead_letters_must_be_acknowledged_before_their_offsets_are_committed():
    consumer = FakeConsumer(values(10, bad_every=5), per_fetch=10)
    producer = FakeProducer(lambda i, f: None if i == 2 else f.set_result(None))  # holds the second DLQ send
    n = normalizer(consumer, producer)

    async def body():
        await until(lambda: len(producer.sent) == 3)  # one Arrow batch, two dead letters
        idle_at = consumer.empty_fetches
        await until(lambda: consumer.empty_fetches >= idle_at + 2)  # the loop went round twice: a commit could be due
        assert [t for t, _, _ in producer.sent] == ["calls.normalized", "calls.raw.dlq", "calls.raw.dlq"]
        assert consumer.commits == []
        producer.sent[2][2].set_result(None)
        await until(lambda: consumer.commits == [10])

    asyncio.run(running(n, body))


@pytest.mark.parametrize("failing_send", [1, 4])
def test_a_failed_send_rewinds_to_the_committed_offset_and_replays_the_same_ids(failing_send):
    def settle(i: int, fut: asyncio.Future) -> None:
        if i == failing_send:
            fut.set_exception(KafkaTimeoutError())
        else:
            asyncio.get_running_loop().call_later(0.002 * (i % 3), fut.set_result, None)

    consumer, producer = FakeConsumer(values(40), per_fetch=5), FakeProducer(settle)
    n = normalizer(consumer, producer)

    async def body():
        await until(lambda: consumer.commits and consumer.commits[-1] == 40)

    asyncio.run(running(n, body))
    # One send per 5-message batch: batch `failing_send` (offsets 5k..5k+4) never got out, so nothing at or past
    # its first offset was committed before the rewind, which went back to the last commit.
    assert consumer.seeks[0] == (consumer.committed_at_seek[0] or 0) <= 5 * failing_send
    ids = producer.ids()
    fresh = [SourceIds("cluster-a", RAW)(0, o, None) for o in range(40)]
    assert set(ids) == set(fresh)  # every event delivered, replays carry the same ids
    assert len(ids) > 40  # and some were indeed sent twice


def test_no_commit_ever_passes_an_unacknowledged_batch():
    """Random ack order and random failures: each commit only covers batches whose outputs all succeeded."""
    rng = random.Random(4)
    acked: set[int] = set()  # offsets whose output was acknowledged
    outputs: dict[int, list[int]] = {}

    def settle(i: int, fut: asyncio.Future) -> None:
        fail = rng.random() < 0.1
        fut.add_done_callback(lambda f, i=i: acked.update(outputs.get(i, [])) if not f.exception() else None)
        delay = rng.random() * 0.005
        if fail:
            asyncio.get_running_loop().call_later(delay, fut.set_exception, KafkaTimeoutError())
        else:
            asyncio.get_running_loop().call_later(delay, fut.set_result, None)

    consumer, producer = FakeConsumer(values(200), per_fetch=7), FakeProducer(settle)
    real_send = producer.send

    async def send(topic, value, partition=None, headers=None, timestamp_ms=None):
        table = ipc_to_table(value)
        offsets = [int(t, 16) for t in table.column("trace_id").to_pylist()]  # call_event's trace id is its index
        outputs[len(producer.sent)] = offsets
        return await real_send(topic, value, partition, headers)

    producer.send = send
    n = normalizer(consumer, producer)
    checked = []
    real_commit = consumer.commit

    async def commit(offsets):
        assert set(range(offsets[TP])) <= acked, "committed past an unacknowledged output"
        checked.append(offsets[TP])
        await real_commit(offsets)

    consumer.commit = commit

    async def body():
        await until(lambda: consumer.commits and consumer.commits[-1] == 200, timeout_s=20)

    asyncio.run(running(n, body))
    assert len(checked) > 3 and consumer.seeks
    assert set(producer.ids()) == {SourceIds("cluster-a", RAW)(0, o, None) for o in range(200)}
