"""The guard against fetches that skip offsets (broker/offset_gaps.py), on aiokafka's own record reader.

The embedded broker's skipping answer is a race (a few in a million messages under load; bench/offset_gaps.py
counts it): the answers here are built byte for byte as it sends them, so each case runs every time."""

from __future__ import annotations

import struct

from aiokafka import TopicPartition
from aiokafka.consumer import fetcher as aiokafka_fetcher
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from pipeline.broker import offset_gaps
from pipeline.broker.offset_gaps import GuardedPartitionRecords, Holds, first_gap, reorders_batches
from pipeline.metrics import OFFSET_GAPS

TP = TopicPartition("gaps.topic", 3)


def _batch(base: int, n: int) -> bytes:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for i in range(n):
        builder.append(i, timestamp=None, key=None, value=f"m{base + i}".encode(), headers=[])
    data = builder.build()
    data[0:8] = struct.pack(">q", base)  # the base offset the broker gives it (outside the CRC)
    return bytes(data)


def _read(batches: list[tuple[int, int]], fetch_offset: int) -> tuple[list[int], int]:
    """The offsets aiokafka hands over from one fetch answer, and the position it moves to."""
    records = MemoryRecords(b"".join(_batch(base, n) for base, n in batches))
    reader = aiokafka_fetcher.PartitionRecords(TP, records, [], fetch_offset, None, None, True, 0)
    return [r.offset for r in reader], reader.next_fetch_offset


def test_install_makes_aiokafka_read_with_the_guard():
    offset_gaps.install()
    assert aiokafka_fetcher.PartitionRecords is GuardedPartitionRecords


def test_an_answer_without_gaps_is_read_whole_from_the_fetch_offset(monkeypatch):
    offset_gaps.install()
    # the batch holding the fetch offset starts before it: its earlier records are skipped, as Kafka does
    assert _read([(0, 5), (5, 5), (10, 5)], 3) == (list(range(3, 15)), 15)


def test_an_answer_that_skips_a_batch_stops_before_it_and_keeps_the_position(monkeypatch):
    offset_gaps.install()
    monkeypatch.setattr(offset_gaps, "HOLDS", Holds(hold_s=60))
    held = OFFSET_GAPS.labels(TP.topic, "held")._value.get()
    # 10..14 is still being stored: the broker answers with the batch before it and the one after
    assert _read([(0, 5), (5, 5), (15, 5)], 5) == ([5, 6, 7, 8, 9], 10)
    # asked again from 10 while it is still missing: the preceding batch only, and nothing moves
    assert _read([(5, 5), (15, 5)], 10) == ([], 10)
    assert OFFSET_GAPS.labels(TP.topic, "held")._value.get() == held + 1  # one gap, however often asked
    # once stored, it comes in order
    assert _read([(5, 5), (10, 5), (15, 5)], 10) == (list(range(10, 20)), 20)


def test_offsets_that_never_come_are_stepped_over_after_the_hold():
    now = [100.0]
    holds = Holds(hold_s=5, clock=lambda: now[0])
    assert holds.wait("t", 0, 10, 15)
    now[0] += 4.9
    assert holds.wait("t", 0, 10, 15)
    skipped = OFFSET_GAPS.labels("t", "skipped")._value.get()
    now[0] += 0.2
    assert not holds.wait("t", 0, 10, 15)
    assert OFFSET_GAPS.labels("t", "skipped")._value.get() == skipped + 1
    assert holds.wait("t", 0, 10, 15)  # a new gap at the same place is waited for again


def test_aiokafka_steps_over_a_gap_once_it_was_held_long_enough(monkeypatch):
    offset_gaps.install()
    now = [0.0]
    monkeypatch.setattr(offset_gaps, "HOLDS", Holds(hold_s=5, clock=lambda: now[0]))
    assert _read([(5, 5), (15, 5)], 10) == ([], 10)
    now[0] = 6.0
    assert _read([(5, 5), (15, 5)], 10) == (list(range(15, 20)), 20)


def test_first_gap_finds_the_first_offset_that_does_not_follow_on():
    assert first_gap([5, 6, 7], 5) is None
    assert first_gap([8, 9], 5) == 0
    assert first_gap([5, 6, 9, 10], 5) == 2
    assert first_gap([5, 6, 9, 10, 12], 9, start=2) == 4
    assert first_gap([3, 4], 5) == 0  # earlier than expected is not a gap; the caller tells them apart


def test_only_the_embedded_broker_is_taken_to_reorder_batches():
    assert reorders_batches("streamdesk-0123456789ab")
    assert not reorders_batches("MkU3OEVBNTcwNTJENDM2Qk")  # a Kafka cluster id
