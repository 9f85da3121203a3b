"""The materializer's write of calls.normalized, without a broker: an append into a table without a key, where
the pipeline's own replays are dropped exactly by their source ranges (in any order, at any age, across a
restart) and ids a producer supplies are dropped per tenant within the dedupe window; rows, ranges and offsets
are one transaction."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import UTC, datetime, timedelta

import orjson
import pyarrow as pa
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from pipeline.broker.embedded import free_port
from pipeline.calls.arrow import CALLS_SCHEMA, Source, table_to_ipc
from pipeline.metrics import DUPLICATES_DROPPED
from pipeline.settings import Settings
from pipeline.storage import materializer as materializer_module
from pipeline.storage.db import connect
from pipeline.storage.materializer import Context, Materializer
from pipeline.storage.sinks import platform_sinks
from tests.helpers import call_event, normalized

NORMALIZED = "calls.normalized"
TP = TopicPartition(NORMALIZED, 0)
def rows(m: Materializer, where: str = "true") -> int:
    return m.con.cursor().execute(f"SELECT count(*) FROM sys_api_call_histories WHERE {where}").fetchone()[0]


def dropped() -> float:
    return DUPLICATES_DROPPED.labels("sys_api_call_histories")._value.get()


def test_the_table_has_no_key_to_pay_for(materializer):
    assert materializer.con.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = "
                                    "'sys_api_call_histories' AND constraint_type = 'PRIMARY KEY'").fetchone() == (0,)


def test_a_replay_is_dropped_exactly_and_a_half_old_half_new_batch_keeps_its_new_half(materializer):
    m = materializer
    m._write({TP: normalized(0, 100) + normalized(100, 50)})
    assert rows(m) == 150
    before = dropped()
    m._write({TP: normalized(0, 100)})  # the same rows again, as after a worker rewind
    assert rows(m) == 150 and dropped() - before == 100
    m._write({TP: normalized(120, 60)})  # 30 stored, 30 new
    assert rows(m) == 180 and rows(m, "trace_id = '" + f"{179:032x}" + "'") == 1
    assert m.con.execute("SELECT count(DISTINCT api_call_history_id) FROM sys_api_call_histories").fetchone() == (180,)


def test_batches_arriving_out_of_order_are_all_stored_and_their_replays_dropped(materializer):
    """Not a high-water mark: a late batch below one already stored is new, not a duplicate."""
    m = materializer
    m._write({TP: normalized(300, 100)})
    m._write({TP: normalized(0, 100)})
    m._write({TP: normalized(100, 200) + normalized(250, 100) + normalized(0, 400)})  # and a replay of all
    assert rows(m) == 400
    # One range per partition once the gaps are filled.
    ranges = m.con.execute("SELECT ranges FROM calls_source_ranges WHERE \"partition\" = 0").fetchone()[0]
    assert ranges == [{"lo": 0, "hi": (399 << 20) | ((1 << 20) - 1)}]


def test_each_calls_raw_partition_has_its_own_ranges(materializer):
    m = materializer
    m._write({TP: normalized(0, 50, partition=0) + normalized(0, 50, partition=1)})
    assert rows(m) == 100  # the same offsets in two partitions are different events


def test_a_batch_of_dead_letters_only_still_closes_its_range(materializer):
    m = materializer
    m._write({TP: normalized(0, 10)})
    m._write({TP: normalized(10, 5, status_code=999)})  # all five dead-lettered by the worker: one empty message
    m._write({TP: normalized(15, 10)})
    assert rows(m) == 20
    assert len(m.con.execute("SELECT ranges FROM calls_source_ranges").fetchone()[0]) == 1


def test_ranges_survive_a_restart(materializer):
    m = materializer
    m._write({TP: normalized(0, 100)})
    again = Materializer(m.settings, m.con, list(m.sinks.values()))  # a restarted api: state from the file
    for sink in again.sinks.values():
        if sink.start:
            sink.start(m.con.cursor(), Context("cluster-a"))
    again.cluster_id = "cluster-a"
    again._write({TP: normalized(50, 100)})
    assert rows(again) == 150


def test_a_failed_transaction_leaves_neither_rows_nor_ranges(materializer, monkeypatch):
    m = materializer
    m._write({TP: normalized(0, 10)})
    real = materializer_module.write_arrow

    def failing(cur, table, *a, **k):
        if table == "materializer_offsets":
            raise OSError("disk full")
        return real(cur, table, *a, **k)

    monkeypatch.setattr(materializer_module, "write_arrow", failing)
    with pytest.raises(OSError):
        m._write({TP: normalized(10, 10)})
    monkeypatch.setattr(materializer_module, "write_arrow", real)
    assert rows(m) == 10
    m._write({TP: normalized(10, 10)})  # not mistaken for a replay: the failed attempt recorded nothing
    assert rows(m) == 20


def test_supplied_ids_are_dropped_per_tenant_within_the_window(materializer):
    m = materializer
    m._write({TP: normalized(0, 1, api_call_history_id="gw-1", tenant_id="A")})
    m._write({TP: normalized(1, 1, api_call_history_id="gw-1", tenant_id="A")})  # resent: another offset
    m._write({TP: normalized(2, 1, api_call_history_id="gw-1", tenant_id="B")})  # another tenant's id
    m._write({TP: normalized(3, 3, api_call_history_id="gw-2", tenant_id="A")})  # three times in one batch
    assert rows(m, "api_call_history_id = 'gw-1'") == 2 and rows(m, "api_call_history_id = 'gw-2'") == 1
    assert rows(m, "tenant_id = 'B'") == 1
    # Past the window the id is forgotten (the prune runs with the next write that carries supplied ids).
    m.con.execute("UPDATE calls_recent_ids SET seen_at = seen_at - INTERVAL 2 DAY")
    sink = m.sinks[NORMALIZED].build.__self__
    sink.pruned_at = datetime.now(UTC) - timedelta(days=1)
    m._write({TP: normalized(6, 1, api_call_history_id="gw-1", tenant_id="A")})
    assert rows(m, "api_call_history_id = 'gw-1'") == 3
    assert m.con.execute("SELECT count(*) FROM calls_recent_ids").fetchone() == (1,)


@pytest.mark.parametrize(("forged", "why"), [
    (lambda s: s._replace(hi=s.lo + (200_000 << 20)), "spans more than"),  # would hide 200k events to come
    (lambda s: s._replace(lo=s.lo + (5 << 20)), "rows outside it"),
])
def test_a_forged_source_range_is_dead_lettered_and_hides_nothing(materializer, forged, why):
    m = materializer
    [msg] = normalized(0, 10)
    source = Source.parse(dict(msg.headers)["source"])
    bad = dataclasses.replace(msg, headers=[("source", forged(source).header())])
    m._write({TP: [bad]})
    assert rows(m) == 0
    error = m.con.execute("SELECT error FROM dead_letters").fetchone()[0]
    assert "bad source range" in error and why in error
    m._write({TP: normalized(0, 10) + normalized(10, 190)})  # the real events are stored
    assert rows(m) == 200


def test_a_message_from_an_older_worker_is_stored_with_its_ids_checked_by_key(materializer):
    m = materializer
    events = [call_event(i, api_call_history_id=f"old-{i}") for i in range(5)]
    table = pa.Table.from_pylist([{**e, "created_at": datetime(2026, 11, 25, tzinfo=UTC)} for e in events],
                                 schema=CALLS_SCHEMA)
    old = ConsumerRecord(NORMALIZED, 0, 900, 0, 0, None, table_to_ipc(table), None, 0, 0, [])
    m._write({TP: [old]})
    m._write({TP: [dataclasses.replace(old, offset=901)]})
    assert rows(m, "api_call_history_id LIKE 'old-%'") == 5


def test_a_batch_duckdb_refuses_is_dead_lettered_and_the_other_streams_go_on(materializer):
    """A message no write can store (here: text in a BIGINT column) must not stall materialization forever."""
    m = materializer
    bad_row = {"key": "t:freshdesk:attachment:1", "tenant": "t", "platform": "freshdesk", "domain": "d",
               "source_id": "1", "updated_at": "2026-11-01T00:00:00+00:00", "name": "a.txt", "size": "huge"}
    poison = ConsumerRecord("tickets.normalized", 0, 7, 0, 0, None,
                            orjson.dumps({"tables": {"attachments": [bad_row]}}), None, 0, 0, [])
    m._write({TP: normalized(0, 20), TopicPartition("tickets.normalized", 0): [poison]})
    assert rows(m) == 20  # the calls beside it were stored
    cur = m.con.cursor()
    letter = cur.execute("SELECT topic, \"offset\", error FROM dead_letters").fetchone()
    assert letter[:2] == ("tickets.normalized", 7) and "could not store" in letter[2]
    moved = cur.execute("SELECT next_offset FROM materializer_offsets WHERE topic = 'tickets.normalized'").fetchone()
    assert moved == (8,)  # past the poison: a restart does not meet it again


def test_stop_is_heard_while_the_broker_is_away(tmp_path, monkeypatch):
    """An api shutting down with its broker gone must not leave a materializer thread behind (it used to wait
    up to an hour for the broker, past the 10 s join, logging into whatever came next)."""
    waiting = threading.Event()
    real_wait = materializer_module.wait_for_broker

    def wait_for_broker(*args, **kwargs):
        waiting.set()
        return real_wait(*args, **kwargs)

    monkeypatch.setattr(materializer_module, "wait_for_broker", wait_for_broker)
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}", data_dir=tmp_path)  # nobody listens there
    con = connect(settings.db_path)
    m = Materializer(settings, con, platform_sinks(settings))
    m.start()
    assert waiting.wait(5.0), "the materializer never started waiting for its broker"
    started = time.monotonic()
    m.stop(timeout_s=10.0)
    assert not m.alive and time.monotonic() - started < 3.0
    con.close()
