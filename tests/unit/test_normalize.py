"""calls.raw -> seed-003 records: every collection rule of seed 003, and every bad input of issue 3 dead-lettered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
import pytest

from pipeline.broker.records import Message
from pipeline.calls.normalize import normalize_event, normalize_messages
from pipeline.ids import derived_id
from schemas.calls import COLUMNS

TOPIC = "calls.raw"
KAFKA_TS_MS = 1_764_064_800_000  # 2025-11-25T10:00:00Z, the broker's record timestamp
make_id = partial(derived_id, "cluster-a", TOPIC)

# Seed 003's curl examples as a gateway reports them.
AGENT_CALL = {
    "method": "POST",
    "path": "/api/aura/test/stream",
    "status_code": 200,
    "latency_ms": 35,
    "request_headers": {
        "Authorization": "Bearer x",
        "X-Tenant-ID": "1",
        "X-User-ID": "1",
        "X-Agent-ID": "agent_test_123",
        "X-DWP-Source": "AURA",
        "Content-Type": "application/json",
        "Content-Length": "18",
    },
    "response_headers": {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"},
}
LOGIN_BODY = b'{"username": "admin", "password": "admin1234!", "tenantId": 1}'


def event(**fields: Any) -> dict[str, Any]:
    return {"method": "GET", "path": "/api/admin/users", "status_code": 200, **fields}


def norm(**fields: Any) -> dict[str, Any]:
    return normalize_event(event(**fields), KAFKA_TS_MS)


def micros(dt: datetime) -> int:
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def run(*values: bytes | None) -> tuple[list[dict[str, Any]], list]:
    """The values as consecutive offsets of partition 0."""
    msgs = [Message(0, offset, KAFKA_TS_MS, v) for offset, v in enumerate(values)]
    return normalize_messages(TOPIC, msgs, make_id)


GOOD = orjson.dumps(event())


# --- the seed's examples ---------------------------------------------------------------------------------------

def test_seed_agent_call_fills_identity_from_the_gateway_headers():
    rec = normalize_event(AGENT_CALL, KAFKA_TS_MS)
    assert tuple(rec) == COLUMNS
    assert rec["tenant_id"] == "1"
    assert rec["user_id"] == "1"
    assert rec["agent_id"] == "agent_test_123"
    assert rec["source"] == "AURA"
    assert rec["request_size_bytes"] == 18
    assert rec["response_size_bytes"] is None  # streamed answer: no size, never a guess
    assert rec["query_string"] is None


def test_seed_query_string_example_is_split_off_the_path():
    rec = norm(path="/api/admin/users?page=1&size=10")
    assert rec["path"] == "/api/admin/users"
    assert rec["query_string"] == "page=1&size=10"


def test_seed_login_request_size_is_the_body_content_length():
    rec = normalize_event(
        {"method": "POST", "path": "/api/auth/login", "status_code": 200,
         "request_headers": {"Content-Type": "application/json", "X-Tenant-ID": "1",
                             "Content-Length": str(len(LOGIN_BODY))}},
        KAFKA_TS_MS,
    )
    assert rec["request_size_bytes"] == len(LOGIN_BODY)
    assert rec["tenant_id"] == "1"
    assert rec["user_id"] is None and rec["agent_id"] is None  # no X-User-ID / X-Agent-ID: NULL


# --- identity --------------------------------------------------------------------------------------------------

def test_identity_header_names_are_case_insensitive():
    rec = norm(request_headers={"x-tenant-id": "t1", "X-USER-ID": "u1", "x-Agent-Id": "a1", "x-dwp-source": "WEB"})
    assert (rec["tenant_id"], rec["user_id"], rec["agent_id"], rec["source"]) == ("t1", "u1", "a1", "WEB")


def test_explicit_fields_win_over_headers():
    headers = {"X-Tenant-ID": "1", "X-User-ID": "1", "X-Agent-ID": "from_header", "X-DWP-Source": "AURA",
               "User-Agent": "header-ua"}
    rec = norm(tenant_id="7", user_id="8", agent_id="from_field", source="FRONTEND", user_agent="field-ua",
               request_headers=headers)
    assert (rec["tenant_id"], rec["user_id"], rec["agent_id"], rec["source"], rec["user_agent"]) == (
        "7", "8", "from_field", "FRONTEND", "field-ua")


def test_numeric_tenant_and_user_ids_are_stored_as_text():
    rec = norm(tenant_id=1, user_id=42)
    assert (rec["tenant_id"], rec["user_id"]) == ("1", "42")
    rec = norm(request_headers={"X-Tenant-ID": 3, "X-User-ID": 4})
    assert (rec["tenant_id"], rec["user_id"]) == ("3", "4")


def test_absent_identity_is_null():
    rec = norm()
    assert rec["tenant_id"] is rec["user_id"] is rec["agent_id"] is rec["source"] is None


def test_user_agent_comes_from_the_header_when_not_given():
    assert norm(request_headers={"User-Agent": "curl/8.5"})["user_agent"] == "curl/8.5"


def test_agent_id_of_exactly_100_characters_is_kept():
    assert norm(agent_id="a" * 100)["agent_id"] == "a" * 100


# --- method, path and query string -----------------------------------------------------------------------------

def test_method_is_upper_cased():
    assert norm(method="post")["method"] == "POST"


@pytest.mark.parametrize("fields", [{}, {"query_string": None}, {"query_string": ""}, {"path": "/api/admin/users?"}])
def test_no_query_string_is_null_never_empty(fields):
    assert norm(**fields)["query_string"] is None


def test_explicit_query_string_is_kept_and_a_leading_question_mark_dropped():
    assert norm(query_string="from=2026-01-01&to=2026-01-31")["query_string"] == "from=2026-01-01&to=2026-01-31"
    assert norm(query_string="?page=1")["query_string"] == "page=1"


def test_absolute_url_path_keeps_only_path_and_query():
    rec = norm(path="https://gw.example.com:8080/api/admin/users?page=1&size=10")
    assert (rec["path"], rec["query_string"]) == ("/api/admin/users", "page=1&size=10")
    assert norm(path="http://gw.example.com")["path"] == "/"


def test_secrets_in_the_query_string_are_redacted():
    assert norm(path="/api/x?page=1&api_key=s3cr3t")["query_string"] == "page=1&api_key=REDACTED"
    assert norm(query_string="token=abc&size=10")["query_string"] == "token=REDACTED&size=10"


def test_valid_ip_is_stored_in_canonical_form():
    assert norm(ip_address="10.0.0.7")["ip_address"] == "10.0.0.7"
    assert norm(ip_address="2001:DB8:0:0::1")["ip_address"] == "2001:db8::1"


# --- sizes -----------------------------------------------------------------------------------------------------

def test_sizes_come_from_content_length_of_request_and_response():
    rec = norm(request_headers={"content-length": "50"}, response_headers={"Content-Length": 500})
    assert (rec["request_size_bytes"], rec["response_size_bytes"]) == (50, 500)


def test_no_content_length_is_null():
    rec = norm(request_headers={"X-Tenant-ID": "1"})
    assert rec["request_size_bytes"] is None and rec["response_size_bytes"] is None


@pytest.mark.parametrize("side", ["request_headers", "response_headers"])
def test_chunked_body_has_no_size_even_with_content_length(side):
    rec = norm(**{side: {"Transfer-Encoding": "gzip, Chunked", "Content-Length": "99"}})
    assert rec["request_size_bytes"] is None and rec["response_size_bytes"] is None


def test_server_sent_events_response_has_no_size():
    rec = norm(response_headers={"Content-Type": "text/event-stream; charset=utf-8", "Content-Length": "99"})
    assert rec["response_size_bytes"] is None


def test_compressed_response_size_is_its_content_length():
    rec = norm(response_headers={"Content-Encoding": "gzip", "Content-Length": "120"})
    assert rec["response_size_bytes"] == 120


@pytest.mark.parametrize("length", ["abc", "", "12.5", "-4"])
def test_unparseable_content_length_records_nothing(length):
    assert norm(request_headers={"Content-Length": length})["request_size_bytes"] is None


def test_explicit_size_wins_over_headers_and_streaming():
    rec = norm(request_size_bytes=7, response_size_bytes=0,
               request_headers={"Content-Length": "99"},
               response_headers={"Content-Type": "text/event-stream"})
    assert (rec["request_size_bytes"], rec["response_size_bytes"]) == (7, 0)


# --- created_at and trace id -----------------------------------------------------------------------------------

def test_iso_timestamp_with_offset_becomes_utc():
    assert norm(created_at="2026-11-25T19:00:00+09:00")["created_at"] == micros(datetime(2026, 11, 25, 10, tzinfo=UTC))
    assert norm(created_at="2026-11-25T10:00:00Z")["created_at"] == micros(datetime(2026, 11, 25, 10, tzinfo=UTC))


def test_naive_iso_timestamp_is_taken_as_utc():
    assert norm(created_at="2026-11-25T10:00:00.250")["created_at"] == micros(
        datetime(2026, 11, 25, 10, 0, 0, 250_000, tzinfo=UTC))


def test_epoch_seconds_and_milliseconds_give_the_same_instant():
    expected = micros(datetime(2026, 11, 25, 10, tzinfo=UTC))
    seconds = expected // 1_000_000
    assert norm(created_at=seconds)["created_at"] == expected
    assert norm(created_at=seconds * 1000)["created_at"] == expected
    assert norm(created_at=seconds + 0.5)["created_at"] == expected + 500_000


def test_missing_created_at_is_the_kafka_record_timestamp():
    assert norm()["created_at"] == KAFKA_TS_MS * 1000


def test_trace_id_from_w3c_traceparent():
    tp = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
    assert norm(request_headers={"Traceparent": tp})["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_explicit_trace_id_wins_and_invalid_traceparent_is_ignored():
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert norm(trace_id="mine", request_headers={"traceparent": tp})["trace_id"] == "mine"
    zeros = "00-" + "0" * 32 + "-00f067aa0ba902b7-01"
    assert norm(request_headers={"traceparent": zeros})["trace_id"] is None
    assert norm(request_headers={"traceparent": "00-" + "z" * 32 + "-00f067aa0ba902b7-01"})["trace_id"] is None


def test_traceparent_trace_id_must_be_only_hex_digits():
    for bad in ("0x" + "4bf92f3577b34da6a3ce929d0e0e47", "4bf92f3577b34da6_3ce929d0e0e4736"):
        assert norm(request_headers={"traceparent": f"00-{bad}-00f067aa0ba902b7-01"})["trace_id"] is None


# --- bad input goes to dead letters, good events around it are kept ----------------------------------------------

BIG_AGENT = "a" * 101

BAD_VALUES = {
    "not JSON": (b"{not json", "not JSON"),
    "not UTF-8": (b"\xff\xfe\x00garbage", "not UTF-8"),
    "not UTF-8 inside a JSON string": (b'{"method": "GET", "path": "/\xff", "status_code": 200}', "not UTF-8"),
    "JSON number": (b"42", "not an event object"),
    "JSON string": (b'"GET /api"', "not an event object"),
    "JSON null": (b"null", "not an event object"),
    "null value (tombstone)": (None, "null value"),
    "missing method": (orjson.dumps({"path": "/a", "status_code": 200}), "method"),
    "missing path": (orjson.dumps({"method": "GET", "status_code": 200}), "path"),
    "missing status_code": (orjson.dumps({"method": "GET", "path": "/a"}), "status_code"),
    "status as string": (orjson.dumps(event(status_code="200")), "status_code"),
    "status as boolean": (orjson.dumps(event(status_code=True)), "status_code"),
    "latency as word": (orjson.dumps(event(latency_ms="fast")), "latency_ms"),
    "tenant as float": (orjson.dumps(event(tenant_id=1.5)), "tenant_id"),
    "headers not an object": (orjson.dumps(event(request_headers=["X-Tenant-ID: 1"])), "request_headers"),
    "status 99": (orjson.dumps(event(status_code=99)), "outside 100-599"),
    "status 600": (orjson.dumps(event(status_code=600)), "outside 100-599"),
    "negative latency": (orjson.dumps(event(latency_ms=-1)), "latency_ms"),
    "negative request size": (orjson.dumps(event(request_size_bytes=-1)), "request_size_bytes"),
    "negative response size": (orjson.dumps(event(response_size_bytes=-5)), "response_size_bytes"),
    "unparseable timestamp": (orjson.dumps(event(created_at="yesterday")), "created_at"),
    "impossible date": (orjson.dumps(event(created_at="2026-13-45T00:00:00Z")), "created_at"),
    "negative epoch": (orjson.dumps(event(created_at=-1)), "created_at"),
    "timestamp as boolean": (orjson.dumps(event(created_at=True)), "created_at"),
    "agent_id over 100": (orjson.dumps(event(agent_id=BIG_AGENT)), "agent_id"),
    "X-Agent-ID over 100": (orjson.dumps(event(request_headers={"X-Agent-ID": BIG_AGENT})), "agent_id"),
    "invalid ip": (orjson.dumps(event(ip_address="999.0.0.1")), "ip_address"),
    "path without slash": (orjson.dumps(event(path="api/x")), "path"),
    "over 1 MiB": (orjson.dumps(event(user_agent="x" * (1 << 20))), "1 MiB"),
}


@pytest.mark.parametrize(("value", "reason"), list(BAD_VALUES.values()), ids=list(BAD_VALUES))
def test_bad_message_is_dead_lettered_with_reason_and_neighbours_kept(value, reason):
    records, dead = run(GOOD, value, GOOD)
    assert [r["api_call_history_id"] for r in records] == [make_id(0, 0, None), make_id(0, 2, None)]
    assert len(dead) == 1
    letter = dead[0]
    assert reason in letter.error
    assert (letter.topic, letter.partition, letter.offset, letter.index) == (TOPIC, 0, 1, None)
    assert letter.value == value  # the original bytes, untouched


def test_dlq_reason_names_the_bad_field_in_pydantic_words():
    _, [letter] = run(orjson.dumps(event(status_code="200", latency_ms="fast")))
    assert "status_code" in letter.error and "latency_ms" in letter.error


def test_value_of_exactly_1_mib_is_accepted():
    padding = (1 << 20) - len(orjson.dumps(event(user_agent="")))
    value = orjson.dumps(event(user_agent="x" * padding))
    assert len(value) == 1 << 20
    records, dead = run(value)
    assert len(records) == 1 and not dead


def test_batch_with_one_bad_element_keeps_the_others_and_records_its_index():
    bad = event(status_code="200")
    batch = orjson.dumps([event(path="/a"), bad, event(path="/c"), 7])
    records, dead = run(batch)
    assert [r["path"] for r in records] == ["/a", "/c"]
    assert [r["api_call_history_id"] for r in records] == [make_id(0, 0, 0), make_id(0, 0, 2)]
    assert [(d.offset, d.index) for d in dead] == [(0, 1), (0, 3)]
    assert orjson.loads(dead[0].value) == bad  # the element alone, not the whole batch
    assert "status_code" in dead[0].error
    assert "not an object" in dead[1].error


def test_malformed_absolute_url_is_dead_lettered_not_raised():
    records, dead = run(GOOD, orjson.dumps(event(path="http://[::1/api")), GOOD)
    assert len(records) == 2
    assert len(dead) == 1 and "path" in dead[0].error


@pytest.mark.parametrize("field", ["latency_ms", "request_size_bytes", "response_size_bytes"])
def test_number_too_big_for_bigint_is_dead_lettered(field):
    records, dead = run(GOOD, orjson.dumps(event(**{field: 2**64 - 1})), GOOD)
    assert len(records) == 2
    assert len(dead) == 1 and field in dead[0].error


@pytest.mark.parametrize("length", ["1_000", str(2**63)])
def test_content_length_the_seed_gateway_cannot_parse_records_nothing(length):
    assert norm(request_headers={"Content-Length": length})["request_size_bytes"] is None


# --- deterministic ids -----------------------------------------------------------------------------------------

def test_same_source_coordinates_give_the_same_id_on_replay():
    batch = orjson.dumps([event(), event()])
    first, _ = run(GOOD, batch)
    again, _ = run(GOOD, batch)
    ids = [r["api_call_history_id"] for r in first]
    assert ids == [r["api_call_history_id"] for r in again]
    assert len(set(ids)) == 3  # offset 0; offset 1 index 0; offset 1 index 1


def test_producer_given_id_wins():
    records, _ = run(orjson.dumps(event(api_call_history_id="gw-123")), GOOD)
    assert records[0]["api_call_history_id"] == "gw-123"
    assert records[1]["api_call_history_id"] == make_id(0, 1, None)


def test_derived_id_differs_between_broker_runs():
    assert derived_id("cluster-a", TOPIC, 0, 0, None) != derived_id("cluster-b", TOPIC, 0, 0, None)
    assert derived_id("cluster-a", TOPIC, 0, 0, None) != derived_id("cluster-a", TOPIC, 0, 0, 0)
