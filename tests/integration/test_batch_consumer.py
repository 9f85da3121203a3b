"""The librdkafka batch consumer (calls.raw's) against the real embedded broker: what it hands over, what it
commits, and how it hands partitions to a second member without losing or repeating what was committed."""

from __future__ import annotations

import asyncio

import confluent_kafka as ck
import pytest
from aiokafka import TopicPartition
from kafka import KafkaProducer

from pipeline.broker.batch_consumer import BatchConsumer
from pipeline.broker.topics import CALLS_RAW
from pipeline.metrics import OFFSET_GAPS

pytestmark = pytest.mark.integration


def _produce(settings, n: int, prefix: str = "v") -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    for i in range(n):
        producer.send(settings.topic(CALLS_RAW), f"{prefix}{i}".encode(), key=f"k{i % 7}".encode())
    producer.flush()
    producer.close()


async def _read(consumer: BatchConsumer, n: int, timeout_s: float = 30.0) -> dict[int, list]:
    """Every batch until n messages came, by partition: (offsets, values, timestamps) in arrival order."""
    got: dict[int, list] = {}
    deadline = asyncio.get_running_loop().time() + timeout_s
    while sum(len(v) for v in got.values()) < n:
        assert asyncio.get_running_loop().time() < deadline, f"only {got} of {n} arrived"
        for tp, batch in (await consumer.getmany(timeout_ms=200, max_records=1000)).items():
            assert tp.partition == batch.partition
            got.setdefault(tp.partition, []).extend(zip(batch.offsets, batch.values, batch.timestamps_ms,
                                                        strict=True))
    return got


def test_each_partitions_messages_come_column_wise_in_offset_order_and_commits_are_read_back(settings):
    _produce(settings, 200)
    topic = settings.topic(CALLS_RAW)

    async def run() -> None:
        consumer = BatchConsumer(settings, topic, settings.group("batch-a"))
        await consumer.start()
        try:
            got = await _read(consumer, 200)
            assert {v for rows in got.values() for _, v, _ in rows} == {f"v{i}".encode() for i in range(200)}
            for rows in got.values():
                offsets = [o for o, _, _ in rows]
                assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))  # no gap, no repeat
                assert all(ts > 1_700_000_000_000 for _, _, ts in rows)  # the broker's timestamps, in ms
            ends = {TopicPartition(topic, p): rows[-1][0] + 1 for p, rows in got.items()}
            await consumer.commit(ends)
            for tp, end in ends.items():
                assert await consumer.committed(tp) == end
            first = min(got)
            await consumer.seek(TopicPartition(topic, first), 0)  # a rewind reads the partition again
            again = await _read(consumer, len(got[first]))
            assert [o for o, _, _ in again[first]] == [o for o, _, _ in got[first]]
        finally:
            await consumer.stop()

    asyncio.run(run())


def test_a_member_that_joins_gets_partitions_only_after_the_owner_committed_them(settings):
    """The revoke handler runs on the owner's loop while its partitions wait: what it says is finished is
    committed before they move, so the new member reads nothing twice and skips nothing after it."""
    topic = settings.topic(CALLS_RAW)
    _produce(settings, 300)

    async def run() -> None:
        handed_over: list[list[TopicPartition]] = []
        first = BatchConsumer(settings, topic, settings.group("batch-b"))
        progress: dict[TopicPartition, int] = {}

        async def commit_before_revoke(revoked: list[TopicPartition]) -> dict[TopicPartition, int]:
            handed_over.append(revoked)
            return {tp: progress[tp] for tp in revoked if tp in progress}

        first.on_revoked = commit_before_revoke
        await first.start()
        second = BatchConsumer(settings, topic, settings.group("batch-b"))
        try:
            got = await _read(first, 300)
            progress.update({TopicPartition(topic, p): rows[-1][0] + 1 for p, rows in got.items()})
            await second.start()
            seen: list[bytes] = []
            deadline = asyncio.get_running_loop().time() + 60
            while not await second.assignment():  # both poll (a rebalance happens inside consume), nothing new is sent
                assert asyncio.get_running_loop().time() < deadline, "the second member never got a partition"
                for consumer in (first, second):
                    for batch in (await consumer.getmany(timeout_ms=100, max_records=1000)).values():
                        seen += batch.values
            assert handed_over, "the owner was never asked to hand partitions over"
            _produce(settings, 100, prefix="new")
            while len(seen) < 100:
                assert asyncio.get_running_loop().time() < deadline, f"{len(seen)} of the 100 new messages"
                for consumer in (first, second):
                    for batch in (await consumer.getmany(timeout_ms=100, max_records=1000)).values():
                        seen += batch.values
                        ends = {TopicPartition(topic, batch.partition): batch.offsets[-1] + 1}
                        progress.update(ends)
                        await consumer.commit(ends)
            assert sorted(seen) == sorted(f"new{i}".encode() for i in range(100))  # new ones once each, no old ones
        finally:
            await second.stop()
            await first.stop()

    asyncio.run(run())


@pytest.mark.parametrize("hold_gaps", [True, False])
def test_a_fetch_that_skips_offsets_is_held_and_read_again_from_the_first_missing_one(settings, hold_gaps):
    """The embedded broker can answer a fetch with a batch after one it is still storing (broker/offset_gaps.py).
    Here the consumer is moved past offsets behind its back, as such an answer moves it: with `hold_gaps` it
    hands over nothing past the gap and reads the missing offsets next; without, they are gone (the control)."""
    topic = settings.topic(CALLS_RAW)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    for i in range(100):
        producer.send(topic, f"g{i}".encode(), partition=0)
    producer.flush()
    producer.close()
    held_before = OFFSET_GAPS.labels(topic, "held")._value.get()

    async def run() -> list[int]:
        consumer = BatchConsumer(settings, topic, settings.group(f"gaps-{hold_gaps}"), hold_gaps=hold_gaps)
        await consumer.start()
        seen: list[int] = []
        try:
            while len(seen) < 50:
                got = await consumer.getmany(timeout_ms=200, max_records=50 - len(seen))
                seen += [o for tp, batch in got.items() if tp.partition == 0 for o in batch.offsets]
            raw = consumer._require()  # the broker's answer skips 50..79: the consumer's position jumps to 80
            await consumer._call(raw.seek, ck.TopicPartition(topic, 0, 80))
            deadline = asyncio.get_running_loop().time() + 15
            while seen[-1] < 99 and asyncio.get_running_loop().time() < deadline:
                got = await consumer.getmany(timeout_ms=200, max_records=1000)
                seen += [o for tp, batch in got.items() if tp.partition == 0 for o in batch.offsets]
        finally:
            await consumer.stop()
        return seen

    seen = asyncio.run(run())
    held = OFFSET_GAPS.labels(topic, "held")._value.get() - held_before
    if hold_gaps:
        assert seen == list(range(100)) and held == 1
    else:
        assert seen == list(range(50)) + list(range(80, 100)) and held == 0
