"""Dead-letter records keep what an operator needs to find and replay the message (docs/architecture.md), and never
a credential in clear: not in the `.dlq` topic, not in the `dead_letters` table."""

from __future__ import annotations

import base64
import hashlib
import time

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from pipeline.broker.records import Message
from pipeline.calls.normalize import normalize_messages
from pipeline.dlq import MAX_KEPT_BYTES, DeadLetter
from pipeline.ids import SourceIds
from pipeline.predictions.records import validate_messages
from pipeline.storage.dead_letters import dlq_rows, rejected_rows


def test_record_has_the_design_fields_and_the_original_bytes():
    before = int(time.time() * 1000)
    letter = DeadLetter.of("status_code 700 is outside 100-599", "calls.raw", 3, 42, 1, b'{"status_code": 700}')
    doc = orjson.loads(letter.to_json())
    assert doc == {
        "error": "status_code 700 is outside 100-599",
        "topic": "calls.raw",
        "partition": 3,
        "offset": 42,
        "index": 1,
        "timestamp": doc["timestamp"],
        "value_b64": base64.b64encode(b'{"status_code": 700}').decode(),
    }
    assert before <= doc["timestamp"] <= int(time.time() * 1000)


def test_single_message_has_null_index_and_null_value_stays_null():
    doc = orjson.loads(DeadLetter.of("empty message (null value)", "calls.raw", 0, 7, None, None).to_json())
    assert doc["index"] is None
    assert doc["value_b64"] is None


def test_non_utf8_bytes_survive_the_round_trip():
    raw = b"\xff\xfe\x00\x01garbage"
    doc = orjson.loads(DeadLetter.of("not UTF-8", "calls.raw", 0, 0, None, raw).to_json())
    assert base64.b64decode(doc["value_b64"]) == raw


def test_value_of_exactly_64_kib_is_kept_whole():
    raw = b"x" * MAX_KEPT_BYTES
    doc = orjson.loads(DeadLetter.of("e", "calls.raw", 0, 0, None, raw).to_json())
    assert base64.b64decode(doc["value_b64"]) == raw
    assert "size" not in doc and "sha256" not in doc


def test_value_over_64_kib_keeps_its_head_size_and_sha256():
    raw = bytes(range(256)) * 1024 + b"tail"  # 256 KiB + 4 bytes
    doc = orjson.loads(DeadLetter.of("message is too big", "calls.raw", 0, 0, None, raw).to_json())
    assert MAX_KEPT_BYTES == 64 * 1024
    assert base64.b64decode(doc["value_b64"]) == raw[:64 * 1024]
    assert doc["size"] == len(raw)
    assert doc["sha256"] == hashlib.sha256(raw).hexdigest()


# --- Secrets never sit in a .dlq topic or in the dead_letters table in clear ---------------------------------

SECRETS = (b"tok-SECRET-1", b"key-SECRET-2", b"Bearer SECRET-3", b"hunter2", b"sess-SECRET-5")


def _rejected_call() -> bytes:
    return orjson.dumps({
        "method": "GET", "path": "/api/v1/tickets?page=1&token=tok-SECRET-1", "status_code": 700,
        "query_string": "a=1;X-API-Key=key-SECRET-2", "tenant_id": "7", "user_id": "u1",
        "request_headers": {"Authorization": "Bearer SECRET-3", "X-Tenant-ID": "7"},
    })


def _record(topic: str, value: bytes, offset: int = 0) -> ConsumerRecord:
    return ConsumerRecord(topic, 0, offset, 1_764_000_000_000, 0, None, value, None, 0, len(value), [])


def _stored_values(materializer, letters: list[DeadLetter]) -> list[bytes]:
    dlq_topic = materializer.settings.topic("calls.raw.dlq")
    materializer._write({TopicPartition(dlq_topic, 0): [_record(dlq_topic, d.to_json(), i)
                                                        for i, d in enumerate(letters)]})
    return [bytes(v) for (v,) in materializer.con.cursor().execute(
        'SELECT value FROM dead_letters ORDER BY "offset", "index"').fetchall()]


def test_a_rejected_call_event_is_redacted_in_the_topic_record_and_the_dead_letters_row(materializer):
    _, dead = normalize_messages("calls.raw", [Message(0, 5, 0, _rejected_call())], SourceIds("c", "calls.raw"))
    assert len(dead) == 1 and "700" in dead[0].error and dead[0].offset == 5
    on_topic = base64.b64decode(orjson.loads(dead[0].to_json())["value_b64"])
    (stored,) = _stored_values(materializer, dead)
    for value in (on_topic, stored):
        assert not any(s in value for s in SECRETS), value
        doc = orjson.loads(value)  # still the event, still JSON: an operator sees what was wrong with it
        assert doc["path"] == "/api/v1/tickets?page=1&token=REDACTED"
        assert doc["query_string"] == "a=1;X-API-Key=REDACTED"
        assert doc["request_headers"] == {"Authorization": "REDACTED", "X-Tenant-ID": "7"}
        assert doc["status_code"] == 700


def test_a_rejected_element_of_a_call_batch_is_redacted_too():
    batch = b"[" + _rejected_call() + b"," + _rejected_call().replace(b"700", b"200") + b"]"
    _, dead = normalize_messages("calls.raw", [Message(0, 6, 0, batch)], SourceIds("c", "calls.raw"))
    assert [d.index for d in dead] == [0]
    assert not any(s in dead[0].value for s in SECRETS)


def test_a_rejected_sleep_record_is_redacted_and_still_names_its_user():
    value = orjson.dumps({"tenant": "t1", "user_id": "u1", "kind": "diary", "date": "yesterday",
                          "password": "hunter2", "data": {"session_token": "sess-SECRET-5"}})
    _, dead = validate_messages("sleep.records", [Message(0, 3, 0, value)])
    (letter,) = dead
    assert not any(s in letter.to_json() or s in letter.value for s in SECRETS)
    # The right-to-erasure query finds a user's refused records by these two fields.
    assert orjson.loads(letter.value) | {"password": None, "data": None} == {
        "tenant": "t1", "user_id": "u1", "kind": "diary", "date": "yesterday", "password": None, "data": None}


def test_bytes_that_are_not_json_are_redacted_where_a_secret_shows_and_kept_elsewhere():
    raw = b'\xff{broken "password": "hunter2", "path": "/a?auth_token=tok-SECRET-1&page=2"'
    letter = DeadLetter.of("not UTF-8", "calls.raw", 0, 0, None, raw)
    assert letter.value == b'\xff{broken "password": "REDACTED", "path": "/a?auth_token=REDACTED&page=2"'


def test_letters_written_before_redaction_and_rejected_internal_messages_are_stored_redacted(materializer):
    legacy = orjson.dumps({"error": "e", "topic": "calls.raw", "partition": 0, "offset": 9, "index": None,
                           "timestamp": 1, "value_b64": base64.b64encode(_rejected_call()).decode()})
    dlq_topic = materializer.settings.topic("calls.raw.dlq")
    (dlq_table, _), internal = dlq_rows([_record(dlq_topic, legacy)], "c"), _record("x", b"token=tok-SECRET-1")
    assert not any(s in dlq_table.column("value")[0].as_py() for s in SECRETS)
    assert rejected_rows([(internal, "unreadable")], "c").column("value")[0].as_py() == b"token=REDACTED"


@pytest.mark.parametrize("raw", [b"x" * (1 << 20), b'\xff' + b'\\"' * (1 << 19), b"\xff" + b"a&" * (1 << 19),
                                 b'\xff"a":' * (1 << 18), b"[" * 1023 + b'"token=x"' + b"]" * 1023],
                         ids=["run-without-equals", "escaped-quotes", "ampersands", "names-without-values",
                              "json-nested-1023-deep"])
def test_redacting_a_hostile_message_takes_linear_time_and_never_raises(raw):
    # A quadratic scan over a 1 MiB rejected message would stall the stream for minutes on one message.
    started = time.perf_counter()
    letter = DeadLetter.of("e", "calls.raw", 0, 0, None, raw)
    assert time.perf_counter() - started < 3
    assert b"token=x" not in letter.value
