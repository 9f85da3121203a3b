"""The gateway formats on calls.raw (pipeline/calls/formats.py, otlp.py), read from the formats' own documents.

Fixtures in tests/fixtures/gateway_formats/ are copied from Kong's and OpenTelemetry's documentation and
specification (SOURCES.md there names each source and version). The seed DTO event is seed 003's own
`ApiCallHistoryRequest`, as Jackson writes it, for the seed's own test request (its `curl` with X-Tenant-ID 1,
X-User-ID 1, X-Agent-ID agent_test_123, X-DWP-Source AURA and a 17-byte body)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import orjson
import pytest

from pipeline.broker.entry_messages import Invalid
from pipeline.broker.records import Message
from pipeline.calls import formats, otlp, vectorised
from pipeline.calls.normalize import normalize_any, normalize_messages
from tests.unit.test_normalize_vectorised import base_event, both_paths, make_id

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "gateway_formats"
KAFKA_TS_MS = 1_764_000_000_000


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def seed_dto(**overrides) -> dict:
    """Jackson's default output for the seed's DTO: every property, in declaration order, nulls included."""
    event = {"tenantId": 1, "userId": 1, "agentId": "agent_test_123", "method": "POST",
             "path": "/api/aura/test/stream", "queryString": None, "statusCode": 200, "latencyMs": 1532,
             "requestSizeBytes": 17, "responseSizeBytes": None, "ipAddress": "127.0.0.1",
             "userAgent": "curl/8.4.0", "traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "errorCode": None,
             "source": "AURA"}
    return event | overrides


def semconv_server_span() -> dict:
    """OTLP's documented trace export with its one server span carrying the semantic conventions' documented
    HTTP server attributes (http-spans.md, "HTTP client-server example")."""
    export = fixture("otlp_trace.json")
    span = export["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    attrs = {"http.request.method": "GET", "network.protocol.version": "1.1", "url.path": "/webshop/articles/4",
             "url.query": "s=1&t=2", "server.address": "example.com", "server.port": 8080, "url.scheme": "https",
             "http.route": "/webshop/articles/:article_id", "http.response.status_code": 200,
             "client.address": "192.0.2.4", "network.peer.address": "192.0.2.5",
             "user_agent.original": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:72.0) Gecko/20100101 Firefox/72.0"}
    span["attributes"] = [{"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
                          for k, v in attrs.items()]
    return export


def test_kong_38_documented_log_object_becomes_a_row():
    rec = normalize_any(fixture("kong_http_log.json"), KAFKA_TS_MS)
    assert rec["method"] == "GET" and rec["path"] == "/example-route" and rec["query_string"] is None
    assert rec["status_code"] == 200 and rec["latency_ms"] == 173  # latencies.request: the whole call
    assert rec["request_size_bytes"] == 139 and rec["response_size_bytes"] == 9982
    assert rec["ip_address"] == "192.168.65.1" and rec["user_agent"] == "HTTPie/3.2.3"
    assert rec["created_at"] == 1726783839538 * 1000  # started_at, epoch ms
    assert rec["api_call_history_id"] == "2f6946328ffc4946b8c9120704a4a155"  # request.id: a resend is one row
    assert rec["tenant_id"] is None  # no X-Tenant-ID: stored under '' on the topic, the caller's over HTTP


def test_kong_consumer_is_the_user_when_no_user_header_says_otherwise():
    log = fixture("kong_http_log_consumer.json")
    rec = normalize_any(log, KAFKA_TS_MS)
    assert rec["user_id"] == "foo" and rec["path"] == "/log" and rec["latency_ms"] == 515
    assert rec["api_call_history_id"] is None  # 2.x logs have no request id: derived from the offset
    log["request"]["headers"] |= {"X-User-ID": "42", "x-tenant-id": "7", "X-Agent-ID": "agent_9"}
    rec = normalize_any(log, KAFKA_TS_MS)
    assert (rec["tenant_id"], rec["user_id"], rec["agent_id"]) == ("7", "42", "agent_9")


def test_kong_query_secrets_and_credentials_never_reach_the_record():
    log = fixture("kong_http_log.json")
    log["request"]["uri"] = "/example-route?access_token=abc123&page=2"
    log["request"]["headers"] |= {"authorization": "Bearer eyJ.secret", "cookie": "session=s3cr3t"}
    native = formats.to_native(log, formats.KONG)
    assert "authorization" not in native["request_headers"] and "cookie" not in native["request_headers"]
    rec = normalize_any(log, KAFKA_TS_MS)
    assert rec["path"] == "/example-route" and "abc123" not in rec["query_string"]
    assert "page=2" in rec["query_string"]
    log["request"]["uri"] = "/example-route"
    log["request"]["querystring"] = {"api_key": "k-123", "flag": True, "ids": ["1", "2"]}
    query = normalize_any(log, KAFKA_TS_MS)["query_string"]
    assert "k-123" not in query and "ids=1&ids=2" in query and "flag=" in query


def test_seed_dto_as_jackson_writes_it_is_the_same_row_as_the_native_event():
    rec = normalize_any(seed_dto(), KAFKA_TS_MS)
    native = normalize_any({"tenant_id": 1, "user_id": 1, "agent_id": "agent_test_123", "method": "POST",
                            "path": "/api/aura/test/stream", "status_code": 200, "latency_ms": 1532,
                            "request_size_bytes": 17, "ip_address": "127.0.0.1", "user_agent": "curl/8.4.0",
                            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "source": "AURA"}, KAFKA_TS_MS)
    assert rec == native
    assert rec["tenant_id"] == "1" and rec["response_size_bytes"] is None
    assert rec["created_at"] == KAFKA_TS_MS * 1000  # the DTO has no time: the record's


@pytest.mark.parametrize(("event", "reason"), [
    (seed_dto(statusCode="OK"), "seed 003 ApiCallHistoryRequest event: status_code is missing or not an integer"),
    (seed_dto(status_code=200), "seed 003 ApiCallHistoryRequest event: status_code is given twice"),
    ({**fixture("kong_http_log.json"), "latencies": "fast"}, "Kong log event: latencies must be an object"),
    ({**fixture("kong_http_log.json"), "response": {"status": 700}}, "Kong log event: status_code 700 is outside"),
])
def test_a_bad_event_of_each_format_is_a_dead_letter_naming_the_format(event, reason):
    _, dead = normalize_messages("calls.raw", [Message(0, 5, KAFKA_TS_MS, orjson.dumps(event))], make_id)
    assert len(dead) == 1 and dead[0].error.startswith(reason), dead[0].error


def test_one_message_may_mix_formats_and_each_element_is_read_as_its_own():
    batch = [base_event(random.Random(1)), seed_dto(), fixture("kong_http_log.json"), seed_dto(statusCode=None)]
    records, dead = normalize_messages("calls.raw", [Message(2, 9, KAFKA_TS_MS, orjson.dumps(batch))], make_id)
    assert [r["path"] for r in records] == [batch[0]["path"], "/api/aura/test/stream", "/example-route"]
    assert len(dead) == 1 and dead[0].index == 3 and "ApiCallHistoryRequest" in dead[0].error


def read_exactly(values: list[bytes], monkeypatch) -> set[bytes]:
    """Both paths agree on these messages (both_paths); returns those the vectorised path sent the exact way."""
    seen: list[Message] = []
    real = vectorised.normalize_messages
    monkeypatch.setattr(vectorised, "normalize_messages", lambda t, m, f: (seen.extend(m), real(t, m, f))[1])
    both_paths(values)
    return {m.value for m in seen}


def test_the_vectorised_path_reads_other_formats_exactly_as_the_exact_path(monkeypatch):
    rng = random.Random(5)
    values = [orjson.dumps(base_event(rng)) for _ in range(50)]
    values += [orjson.dumps(seed_dto(userId=i, tenantId=rng.choice([1, "1", None]))) for i in range(40)]
    values += [orjson.dumps(fixture("kong_http_log.json"))]
    odd = [
        {**base_event(rng), "latencyMs": 3},  # both spellings of one field: refused
        {**base_event(rng), "statusCode": None, "userAgent": "x"},  # no DTO mark given: native, userAgent unread
        {**seed_dto(), "status_code": None, "query_string": "a=1"},  # the snake spelling null: the DTO's wins
        {**seed_dto(), "user_agent": "twice"},
        {**seed_dto(), "requestHeaders": {"X-Agent-ID": "a9"}},
        {**seed_dto(), "queryString": "?token=s3cr3t&x=1", "createdAt": "2026-11-25T10:00:00+09:00"},
        seed_dto(statusCode=None, tenantId=None, latencyMs=None),
        seed_dto(tenantId=2.5),
    ]
    values += [orjson.dumps(e) for e in odd]
    rng.shuffle(values)
    exact_values = read_exactly(values, monkeypatch)
    assert all(orjson.dumps(seed_dto(userId=i)) not in exact_values for i in range(40))  # plain DTOs: vectorised


def test_otlp_documented_export_has_one_span_and_it_is_not_a_call():
    spans = list(otlp.server_spans(fixture("otlp_trace.json")))
    assert len(spans) == 1
    attrs, span = spans[0]
    assert attrs == {"service.name": "my.service", "my.span.attr": "some value"}
    assert not otlp.is_http_server(attrs, span)  # a server span without HTTP attributes


def test_otlp_http_server_span_with_the_conventions_example_becomes_a_row():
    ((attrs, span),) = otlp.server_spans(semconv_server_span())
    assert otlp.is_http_server(attrs, span)
    rec = normalize_any(otlp.to_event(attrs, span, otlp.Names()), KAFKA_TS_MS)
    assert (rec["method"], rec["path"], rec["query_string"], rec["status_code"]) == (
        "GET", "/webshop/articles/4", "s=1&t=2", 200)
    assert rec["ip_address"] == "192.0.2.4" and rec["user_agent"].startswith("Mozilla/5.0")
    assert rec["latency_ms"] == 1000  # 1544712660 s to 1544712661 s
    assert rec["created_at"] == 1544712660 * 1_000_000
    assert rec["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert rec["api_call_history_id"] == "5b8efff798038103d269b633813fc60ceee19b7ec3c1b174"


def test_otlp_tenant_user_agent_come_from_configured_attributes_or_captured_headers():
    export = semconv_server_span()
    export["resourceSpans"][0]["resource"]["attributes"].append({"key": "tenant.id", "value": {"stringValue": "9"}})
    span = export["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"] += [
        {"key": "app.user", "value": {"stringValue": "u-7"}},
        {"key": "http.request.header.x-agent-id", "value": {"arrayValue": {"values": [{"stringValue": "a-1"}]}}},
    ]
    ((attrs, s),) = otlp.server_spans(export)
    event = otlp.to_event(attrs, s, otlp.Names(user=("app.user",)))
    assert (event["tenant_id"], event["user_id"], event["agent_id"]) == ("9", "u-7", "a-1")


def test_otlp_older_conventions_are_read_too():
    attrs = {"http.method": "POST", "http.target": "/v2/orders?id=3", "http.status_code": 201,
             "http.user_agent": "okhttp", "http.client_ip": "10.1.2.3", "http.request_content_length": 88}
    span = {"kind": "SPAN_KIND_SERVER", "traceId": "ab" * 16, "spanId": "cd" * 8,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000250000000"}
    assert otlp.is_http_server(attrs, span)
    rec = normalize_any(otlp.to_event(attrs, span, otlp.Names()), KAFKA_TS_MS)
    assert (rec["path"], rec["query_string"], rec["status_code"], rec["latency_ms"]) == ("/v2/orders", "id=3", 201, 250)
    assert rec["request_size_bytes"] == 88 and rec["ip_address"] == "10.1.2.3"


@pytest.mark.parametrize("payload", [[], {"resourceSpans": {}}, {"resourceSpans": ["x"]}])
def test_what_is_not_an_otlp_export_is_refused(payload):
    with pytest.raises(Invalid):
        list(otlp.server_spans(payload))


def kong_events(n: int, seed: int = 7) -> list[dict]:
    """Kong log objects as bench/eventgen.py writes them (the documented sample's shape), seed-003 calls."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from eventgen import SHAPES, EventFactory

    factory = EventFactory(seed=seed, variants=SHAPES["seed"], fmt="kong")
    return [orjson.loads(factory.make("abcd1234", i)[1]) for i in range(n)]


def test_kong_objects_are_read_on_the_vectorised_path_exactly_as_the_exact_path(monkeypatch):
    rng = random.Random(11)
    plain = kong_events(60)
    odd = [dict(e) for e in kong_events(14, seed=8)]
    odd[0]["request"]["headers"]["X-Tenant-ID"] = "5"  # a header name not lower-cased
    odd[1]["request"]["headers"]["x-agent-id"] = ["a1", "a2"]  # a repeated header
    odd[2]["consumer"] = {"username": "foo", "custom_id": "c-9"}
    odd[3]["request"]["uri"] = "/plain"
    odd[3]["request"]["querystring"] = {"token": "s3cr3t", "page": "2"}
    odd[4]["request"]["size"] = "120"  # Kong 0.x wrote sizes as text
    del odd[5]["response"]["size"]
    odd[6]["request"]["headers"]["traceparent"] = "00-" + "0" * 32 + "-00f067aa0ba902b7-01"
    odd[7]["request"]["headers"] |= {"traceparent": "garbage", "x-trace-id": "t-77"}
    odd[8]["latencies"] = 5
    odd[9]["started_at"] = 1_726_783_839  # seconds
    odd[10]["request"]["id"] = ""
    odd[11] |= {"status_code": 500, "tenant_id": "other"}  # native keys beside a Kong object: Kong's win
    odd[12]["response"]["status"] = 999
    odd[13]["request"]["headers"]["x-agent-id"] = "a" * 101
    values = [orjson.dumps(e) for e in plain + odd] + [orjson.dumps(base_event(rng)) for _ in range(30)]
    values += [orjson.dumps(seed_dto(userId=i)) for i in range(10)]
    rng.shuffle(values)
    exact_values = read_exactly(values, monkeypatch)
    assert not exact_values & {orjson.dumps(e) for e in plain}  # every plain Kong object: vectorised
    assert len(exact_values) <= len(odd)


def test_a_kong_chunk_read_with_unused_fields_ignored_still_agrees_on_what_hides_in_them(monkeypatch):
    """Kong chunks are parsed with only the read fields declared (vectorised._PARSE_KONG). What the ignored
    fields hold must still send a message the exact way whenever the exact path would see it differently."""
    plain = kong_events(40, seed=21)
    traps: list[bytes] = []

    def raw(event: dict, old: bytes, new: bytes) -> bytes:
        out = orjson.dumps(event).replace(old, new, 1)
        assert out != orjson.dumps(event)
        return out

    e = kong_events(12, seed=22)
    e[0]["route"] = {"id": "r1", "weight": 1.5}
    traps.append(raw(e[0], b'"weight":1.5', b'"weight":NaN'))  # orjson refuses NaN; Arrow would skip it
    e[1]["tries"] = [{"balancer_latency": 2}]
    traps.append(raw(e[1], b'"balancer_latency":2', b'"balancer_latency":-Infinity'))
    e[2]["request"]["headers"]["X-Tenant-ID"] = "7"  # a read header in another case (and the lower one beside it)
    traps.append(orjson.dumps(e[2]))
    del e[3]["request"]["headers"]["x-user-id"]
    e[3]["request"]["headers"]["X-User-Id"] = "u-77"  # only the odd case: the exact path reads it
    traps.append(orjson.dumps(e[3]))
    e[4]["request"]["uri"] = "/no-question-mark"
    e[4]["request"]["querystring"] = {"token": "s3cr3t"}  # the parsed query is all there is: redacted, kept
    traps.append(orjson.dumps(e[4]))
    e[5]["request"]["uri"] = "/no-question-mark"
    traps.append(raw(e[5], b'"querystring":{', b'"querystring": {'))  # spaced: only the shortcut is lost
    traps.append(orjson.dumps(e[6] | {"service": {"name": "Infinity War"}}))  # the word inside a string
    traps.append(raw(e[7], b'"route":{', b'"route":{"a":1,"a":2,'))  # a repeated key in an ignored object
    traps.append(raw(e[8] | {"tries": 7}, b'"tries":7', b'"tries":123456789012345678901234567890'))  # > 64 bits
    e[10]["request"]["headers"]["x-agent-id"] = 5  # a read field of another type: that row alone goes exact
    traps.append(orjson.dumps(e[10]))
    # found in review: each of these once came out of the fast path unlike the exact one
    more = kong_events(9, seed=25)
    traps.append(raw(more[0] | {"tries": 7}, b'"tries":7', b'"tries":Inf'))  # Arrow's other spelling
    traps.append(raw(more[1] | {"tries": 7}, b'"tries":7', b'"tries":-Inf'))
    traps.append(raw(more[2], b'"x-tenant-id"', b'"\\u0058-Tenant-ID"'))  # an escaped key: decoded, then read
    more[3]["request"]["headers"]["zz"] = "B"
    traps.append(raw(more[3], b'"zz"', b'"X-Tenant-I\\u0044"'))
    more[4]["response"]["headers"] = "x"  # the exact path refuses response headers that are not an object
    traps.append(orjson.dumps(more[4]))
    more[5]["request"] |= {"uri": "/a", "querystring": {"token": "s"}}
    traps.append(orjson.dumps(more[5] | {"extra": {"querystring": {}}}))  # `{}` elsewhere must not hide it
    for event in more[6:9]:  # no traceparent: one bad status, one bad method, one fine
        event["request"]["headers"].pop("traceparent", None)
    more[6]["response"]["status"] = 999
    more[7]["request"]["method"] = "G3T"
    traps += [orjson.dumps(more[6]), orjson.dumps(more[7]), orjson.dumps(more[8])]
    values = [orjson.dumps(plain[0])] + traps + [orjson.dumps(x) for x in plain[1:]]
    exact_values = read_exactly(values, monkeypatch)
    assert not exact_values & {orjson.dumps(x) for x in plain}  # the plain objects around them stay vectorised
    assert traps[0] in exact_values and traps[1] in exact_values and traps[2] in exact_values


def test_kong_chunks_are_parsed_with_the_unread_fields_ignored():
    values = [orjson.dumps(e) for e in kong_events(20, seed=23)]
    raw, pos = vectorised._parse(vectorised.Batch(0, list(range(20)), [KAFKA_TS_MS] * 20, values), list(range(20)))
    assert raw is not None and pos == list(range(20))
    assert "route" not in raw.schema.names and "service" not in raw.schema.names  # never converted
    assert raw.schema.field("request").type.get_field_index("headers") >= 0


def test_numeric_ids_beside_kong_objects_send_the_chunk_back_to_inferred_types_and_still_agree(monkeypatch):
    kong = [orjson.dumps(e) for e in kong_events(20, seed=24)]
    native = [orjson.dumps({**base_event(random.Random(i)), "tenant_id": 40 + i}) for i in range(5)]
    exact_values = read_exactly(kong[:1] + native + kong[1:], monkeypatch)
    assert not exact_values  # Arrow infers the ids as numbers, which the fast path reads as text


@pytest.mark.parametrize("export", [fixture("otlp_trace.json"), semconv_server_span()], ids=["documented", "semconv"])
def test_otlp_protobuf_reads_to_the_same_attributes_spans_and_events_as_json(export):
    from tests.unit.test_gateway_routes import as_protobuf

    span = export["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"] = [*span.get("attributes", []),
                          {"key": "nested", "value": {"kvlistValue": {"values": [
                              {"key": "list", "value": {"arrayValue": {"values": [{"intValue": "7"},
                                                                                 {"boolValue": True}]}}},
                              {"key": "raw", "value": {"bytesValue": "AQID"}}]}}}]
    from_json = list(otlp.server_spans(export))
    from_protobuf = list(otlp.server_spans_protobuf(as_protobuf(export)))
    assert [a for a, _ in from_protobuf] == [a for a, _ in from_json]
    names = otlp.Names()
    for (attrs, s_json), (_, s_pb) in zip(from_json, from_protobuf, strict=True):
        assert otlp.is_http_server(attrs, s_pb) == otlp.is_http_server(attrs, s_json)
        assert otlp.to_event(attrs, s_pb, names) == otlp.to_event(attrs, s_json, names)
    with pytest.raises(Invalid, match="protobuf"):
        list(otlp.server_spans_protobuf(b"\xff\xff\xff"))


def test_the_nonfinite_screen_finds_each_literal_and_not_words_that_start_alike():
    data = b'{"a":"Information"}\n{"b":NaN}\n{"c":"Infra","d":-Infinity}\n{"e":"Na","f":"Infinit"}'
    at = sorted(vectorised._nonfinite_at(data).tolist())
    assert [data[i:i + 3] for i in at] == [b"NaN", b"Inf"] and data[at[1]:at[1] + 8] == b"Infinity"
    assert len(vectorised._nonfinite_at(b'{"via":"1.1 kong","x":"Info"}')) == 0
    assert vectorised._nonfinite_at(b'{"a":Inf}\n{"b":-Inf,"c":1}').tolist() == [5, 16]  # Arrow's short spelling


def test_otlp_json_and_protobuf_agree_on_what_review_found_them_to_differ_on():
    from tests.unit.test_gateway_routes import as_protobuf

    export = semconv_server_span()
    span = export["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    status = next(a for a in span["attributes"] if a["key"] == "http.response.status_code")
    status["value"] = {"doubleValue": 200}  # a whole number sent as a double: a double either way
    pairs = [list(otlp.server_spans(export)), list(otlp.server_spans_protobuf(as_protobuf(export)))]
    assert pairs[0][0][0] == pairs[1][0][0] and pairs[0][0][0]["http.response.status_code"] == 200.0
    for start in ("0", "--5", "²"):  # unset, and digits int() refuses: unreadable, never a crash
        with pytest.raises(Invalid, match="startTimeUnixNano"):
            otlp.to_event(pairs[0][0][0], {**span, "startTimeUnixNano": start}, otlp.Names())
    assert otlp.any_value({"intValue": "--5"}) == "--5" and otlp.any_value({"intValue": "-5"}) == -5
    no_trace = otlp.to_event(pairs[0][0][0], {**span, "traceId": ""}, otlp.Names())
    assert no_trace["api_call_history_id"] is None  # as protobuf's empty bytes: the id is derived, not "" + span
