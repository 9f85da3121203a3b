"""A careless client sends credentials in URLs, headers and records: none of them is stored in clear, not in the
normalized rows, not in a `.dlq` topic, not in the `dead_letters` table (real broker, worker and materializer)."""

from __future__ import annotations

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from pipeline.broker.topics import CALLS_RAW, SLEEP_RECORDS, dlq
from pipeline.storage.db import connect
from pipeline.storage.materializer import Materializer
from pipeline.storage.sinks import platform_sinks
from tests.helpers import call_event, start_cli, stop_process, wait_for
from tests.integration.conftest import env_for
from tests.unit.test_sleep_records import rec as sleep_record

pytestmark = pytest.mark.integration

SECRETS = [b"T0KEN-a1", b"K3Y-b2", b"BEARER-c3", b"P4SS-d4", b"S3SS-e5", b"HUNTER-f6"]
REJECTED_CALL = call_event(1, status_code=700, path="/api/items?page=1&token=T0KEN-a1",
                           query_string="a=1;X-API-Key=K3Y-b2", request_headers={"Authorization": "BEARER-c3"})
ACCEPTED_CALL = call_event(2, api_call_history_id="ok-2", query_string="user[password]=P4SS-d4&Session_Id=S3SS-e5")
REJECTED_SLEEP = sleep_record(date="yesterday", password="HUNTER-f6")


def _produce(settings, sends: list[tuple[str, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    for topic, value in sends:
        producer.send(settings.topic(topic), value)
    producer.flush()
    producer.close()


def _topic_bytes(settings, topic: str, n: int) -> bytes:
    consumer = KafkaConsumer(settings.topic(topic), bootstrap_servers=settings.kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=10_000)
    try:
        values = [m.value for _, m in zip(range(n), consumer, strict=False)]
    finally:
        consumer.close()
    assert len(values) == n
    return b"".join(values)


def test_credentials_sent_by_a_client_are_stored_nowhere_in_clear(settings, tmp_path):
    worker = start_cli(["worker"], env_for(settings), tmp_path / "worker.log")
    con = connect(settings.db_path)
    m = Materializer(settings, con, platform_sinks(settings))
    cur = con.cursor()
    try:
        m.start()
        _produce(settings, [(CALLS_RAW, orjson.dumps(REJECTED_CALL)), (CALLS_RAW, orjson.dumps(ACCEPTED_CALL)),
                            (SLEEP_RECORDS, orjson.dumps(REJECTED_SLEEP))])
        wait_for(lambda: cur.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 2, 60, "two letters")
        wait_for(lambda: cur.execute("SELECT count(*) FROM sys_api_call_histories").fetchone()[0] == 1, 60, "a row")
        (query,) = cur.execute("SELECT query_string FROM sys_api_call_histories").fetchone()
        assert query == "user[password]=REDACTED&Session_Id=REDACTED"
        letters = {source: orjson.loads(bytes(v)) for source in (CALLS_RAW, SLEEP_RECORDS) for (v,) in cur.execute(
            "SELECT value FROM dead_letters WHERE topic = ?", [settings.topic(source)]).fetchall()}
        assert letters["calls.raw"]["path"] == "/api/items?page=1&token=REDACTED"
        assert letters["calls.raw"]["query_string"] == "a=1;X-API-Key=REDACTED"
        assert letters["sleep.records"]["user_id"] == REJECTED_SLEEP["user_id"]  # still erasable by user
        stored = b"".join(bytes(v) for (v,) in cur.execute("SELECT value FROM dead_letters").fetchall())
        stored += _topic_bytes(settings, dlq(CALLS_RAW), 1) + _topic_bytes(settings, dlq(SLEEP_RECORDS), 1)
        stored += (tmp_path / "worker.log").read_bytes()
        for secret in SECRETS:
            assert secret not in stored
    finally:
        m.stop()
        stop_process(worker)
        con.close()
