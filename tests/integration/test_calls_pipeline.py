"""The calls stream on the real embedded broker: worker process + materializer, bad input, restarts."""

from __future__ import annotations

import random

import orjson
import pytest
from kafka import KafkaProducer

from pipeline.broker.topics import CALLS_RAW
from pipeline.storage.db import connect
from pipeline.storage.materializer import Materializer
from pipeline.storage.sinks import platform_sinks
from tests.helpers import call_event, malformed_messages, start_cli, stop_process, wait_for
from tests.integration.conftest import env_for

pytestmark = pytest.mark.integration


def _produce(settings, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=10,
                             max_request_size=4 * 1024 * 1024)
    for v in values:
        producer.send(settings.topic(CALLS_RAW), v)
    producer.flush()
    producer.close()


def _count(con, sql: str) -> int:
    return con.cursor().execute(sql).fetchone()[0]


def test_ten_thousand_events_ten_percent_malformed_survive_a_materializer_restart(settings, tmp_path):
    bad = malformed_messages()
    values, expected_reasons = [], {}
    rng = random.Random(7)
    for i in range(10_000):
        if i % 10 == 9:
            value, reason = bad[rng.randrange(len(bad))]
            values.append(value)
            expected_reasons[i] = reason
        else:
            values.append(orjson.dumps(call_event(i, api_call_history_id=None)))
    worker = start_cli(["worker"], env_for(settings), tmp_path / "worker.log")
    con = connect(settings.db_path)
    first = Materializer(settings, con, platform_sinks(settings))
    try:
        first.start()
        _produce(settings, values)
        # Stop the materializer mid-stream, then start a fresh one on the same file: it must resume from the
        # offsets it committed with the rows, so nothing is lost and nothing is written twice.
        wait_for(lambda: _count(con, "SELECT count(*) FROM sys_api_call_histories") >= 2_000, 90, "first rows")
        first.stop()
        second = Materializer(settings, con, platform_sinks(settings))
        second.start()
        wait_for(lambda: _count(con, "SELECT count(*) FROM sys_api_call_histories") >= 9_000, 90, "9,000 rows")
        wait_for(lambda: _count(con, "SELECT count(*) FROM dead_letters") >= 1_000, 60, "1,000 dead letters")
        second.caught_up.clear()
        wait_for(second.caught_up.is_set, 30, "materializer idle")
        second.stop()
        assert _count(con, "SELECT count(*) FROM sys_api_call_histories") == 9_000
        assert _count(con, "SELECT count(DISTINCT api_call_history_id) FROM sys_api_call_histories") == 9_000
        letters = con.cursor().execute(
            'SELECT "offset", error, topic, value FROM dead_letters ORDER BY "offset"').fetchall()
        assert len(letters) == 1_000
        assert {t for _, _, t, _ in letters} == {settings.topic(CALLS_RAW)}
        # Each dead letter carries its reason, and its original bytes (up to 64 KiB).
        by_value = {v: r for v, r in bad}
        for _, error, _, value in letters:
            original = next(v for v in by_value if v[:65536] == value)
            assert by_value[original].lower() in error.lower(), (error, by_value[original])
    finally:
        stop_process(worker)
        con.close()


def test_batch_messages_and_replays_never_duplicate_rows(settings, tmp_path):
    """A JSON-array batch is split into rows; a good element survives a bad neighbour; a replayed producer id
    (the same event sent twice) is one row."""
    batch = [call_event(1, api_call_history_id="dup-1"), {"method": "GET"}, call_event(2, api_call_history_id="b-2")]
    worker = start_cli(["worker"], env_for(settings), tmp_path / "worker.log")
    con = connect(settings.db_path)
    m = Materializer(settings, con, platform_sinks(settings))
    try:
        m.start()
        _produce(settings, [orjson.dumps(batch), orjson.dumps(call_event(1, api_call_history_id="dup-1"))])
        wait_for(lambda: _count(con, "SELECT count(*) FROM dead_letters") == 1, 60, "the bad element's letter")
        wait_for(lambda: _count(con, "SELECT count(*) FROM sys_api_call_histories") == 2, 60, "two rows")
        m.caught_up.clear()
        wait_for(m.caught_up.is_set, 30, "materializer idle")
        assert _count(con, "SELECT count(*) FROM sys_api_call_histories") == 2
        index, error = con.cursor().execute('SELECT "index", error FROM dead_letters').fetchone()
        assert index == 1 and "path" in error
    finally:
        m.stop()
        stop_process(worker)
        con.close()


def test_a_second_worker_joining_and_the_first_leaving_mid_stream_store_every_event_once(settings, tmp_path):
    """Partitions move twice while events flow (a worker joins, then the first one stops): each owner commits
    what it finished before handing over, the next replays the rest, and the replays are dropped."""
    values = [orjson.dumps(call_event(i, api_call_history_id=None)) for i in range(12_000)]
    first = start_cli(["worker"], env_for(settings), tmp_path / "worker1.log")
    second = None
    con = connect(settings.db_path)
    m = Materializer(settings, con, platform_sinks(settings))
    try:
        m.start()
        _produce(settings, values[:4_000])
        wait_for(lambda: _count(con, "SELECT count(*) FROM sys_api_call_histories") >= 1_000, 90, "first rows")
        second = start_cli(["worker"], env_for(settings), tmp_path / "worker2.log")
        _produce(settings, values[4_000:8_000])
        # The embedded broker never finishes a rebalance whose leader leaves in the middle of it (a rolling
        # restart waits for the new worker to be assigned its partitions before stopping the old one).
        wait_for(lambda: b"batch_consumer_assigned" in (tmp_path / "worker2.log").read_bytes(), 60, "second owns")
        stop_process(first)  # leaves the group: its partitions go to the second worker
        _produce(settings, values[8_000:])
        wait_for(lambda: _count(con, "SELECT count(*) FROM sys_api_call_histories") >= 12_000, 120, "12,000 rows")
        m.caught_up.clear()
        wait_for(m.caught_up.is_set, 30, "materializer idle")
        assert _count(con, "SELECT count(*) FROM sys_api_call_histories") == 12_000
        assert _count(con, "SELECT count(DISTINCT trace_id) FROM sys_api_call_histories") == 12_000
        assert _count(con, "SELECT count(*) FROM dead_letters") == 0
    finally:
        m.stop()
        stop_process(first)
        if second is not None:
            stop_process(second)
        con.close()
