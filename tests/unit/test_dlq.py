"""Dead-letter records keep what an operator needs to find and replay the message (docs/architecture.md)."""

from __future__ import annotations

import base64
import hashlib
import time

import orjson

from pipeline.dlq import MAX_KEPT_BYTES, DeadLetter


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
