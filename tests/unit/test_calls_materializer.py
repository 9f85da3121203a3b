"""The materializer's write of calls.normalized batches, without a broker: new keys are inserted without an
ON CONFLICT clause (cheaper), a replay falls back to INSERT OR IGNORE, and rows + offsets stay one transaction."""

from __future__ import annotations

import orjson
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from pipeline.calls.arrow import table_to_ipc
from pipeline.calls.fast import Batch, normalize_batch
from pipeline.ids import SourceIds
from pipeline.metrics import DUPLICATES_DROPPED
from pipeline.storage.materializer import Materializer
from tests.helpers import call_event

NORMALIZED = "calls.normalized"
TP = TopicPartition(NORMALIZED, 0)


def ipc_message(offset: int, first: int, n: int) -> ConsumerRecord:
    """One calls.normalized message holding events first..first+n-1 of calls.raw partition 0."""
    values = [orjson.dumps(call_event(i, api_call_history_id=None)) for i in range(first, first + n)]
    table, _ = normalize_batch("calls.raw", Batch(0, list(range(first, first + n)), [0] * n, values),
                               SourceIds("cluster-a", "calls.raw"))
    return ConsumerRecord(NORMALIZED, 0, offset, 0, 0, None, table_to_ipc(table), None, 0, len(values), [])


def rows(m: Materializer) -> int:
    return m.con.cursor().execute("SELECT count(*) FROM sys_api_call_histories").fetchone()[0]


def stored_offset(m: Materializer) -> int:
    return m.con.cursor().execute(
        "SELECT next_offset FROM materializer_offsets WHERE topic = ?", [NORMALIZED]).fetchone()[0]


def test_new_keys_then_a_replay_then_a_batch_half_old_half_new(materializer):
    m = materializer
    m._write({TP: [ipc_message(0, 0, 100), ipc_message(1, 100, 50)]})
    assert (rows(m), stored_offset(m), m._keyed_until) == (150, 2, 0.0)  # no conflict: optimistic write held

    dropped = DUPLICATES_DROPPED.labels("sys_api_call_histories")._value.get()
    m._write({TP: [ipc_message(0, 0, 100)]})  # the same message again, as after a worker rewind
    assert rows(m) == 150 and stored_offset(m) == 1
    assert DUPLICATES_DROPPED.labels("sys_api_call_histories")._value.get() - dropped == 100
    assert m._keyed_until > 0  # ON CONFLICT for a while: replays come in runs

    m._write({TP: [ipc_message(2, 120, 60)]})  # 30 stored, 30 new
    assert rows(m) == 180 and stored_offset(m) == 3


def test_a_failed_optimistic_write_leaves_nothing_of_its_transaction(materializer):
    m = materializer
    m._write({TP: [ipc_message(0, 0, 10)]})
    m._write({TP: [ipc_message(5, 5, 10)]})  # overlaps 5..9: the optimistic attempt fails and is rolled back
    count, distinct = m.con.cursor().execute(
        "SELECT count(*), count(DISTINCT api_call_history_id) FROM sys_api_call_histories").fetchone()
    assert (count, distinct, stored_offset(m)) == (15, 15, 6)


def test_a_batch_duckdb_refuses_is_dead_lettered_and_the_other_streams_go_on(materializer):
    """A message no write can store (here: text in a BIGINT column) must not stall materialization forever."""
    m = materializer
    bad_row = {"key": "t:freshdesk:attachment:1", "tenant": "t", "platform": "freshdesk", "domain": "d",
               "source_id": "1", "updated_at": "2026-11-01T00:00:00+00:00", "name": "a.txt", "size": "huge"}
    poison = ConsumerRecord("tickets.normalized", 0, 7, 0, 0, None,
                            orjson.dumps({"tables": {"attachments": [bad_row]}}), None, 0, 0, [])
    m._write({TP: [ipc_message(0, 0, 20)], TopicPartition("tickets.normalized", 0): [poison]})
    assert rows(m) == 20  # the calls beside it were stored
    cur = m.con.cursor()
    letter = cur.execute("SELECT topic, \"offset\", error FROM dead_letters").fetchone()
    assert letter[:2] == ("tickets.normalized", 7) and "could not store" in letter[2]
    moved = cur.execute("SELECT next_offset FROM materializer_offsets WHERE topic = 'tickets.normalized'").fetchone()
    assert moved == (8,)  # past the poison: a restart does not meet it again
