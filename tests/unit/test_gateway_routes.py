"""The HTTP doors for gateways' own formats, without a broker (a publisher that records what it is given):
Kong's http-log and seed 003's DTO at POST /v1/call-histories, OTLP/HTTP JSON at POST /v1/traces, and CORS."""

from __future__ import annotations

import base64
import gc
import gzip
import json
import zlib

import orjson
import pyarrow as pa
import pytest
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from api.main import create_app
from api.routers.traces import PROTOBUF
from pipeline.calls.arrow import CALLS_SCHEMA
from pipeline.security import Role
from tests.helpers import call_event, checked_client
from tests.unit.test_gateway_formats import fixture, seed_dto, semconv_server_span
from tests.unit.test_routes_without_a_broker import api  # noqa: F401 - the fixture

SA = Role.SERVICE_ACCOUNT


def test_kong_http_log_batch_is_published_native_under_the_callers_tenant(api):  # noqa: F811
    log = fixture("kong_http_log.json")
    log["request"]["headers"]["authorization"] = "Basic c2VjcmV0"
    r = api.post("/v1/call-histories", json=[log, seed_dto(tenantId=None)], headers=api.as_tenant("1", SA))
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 2 and r.json()["ids"][0] == "2f6946328ffc4946b8c9120704a4a155"
    ((topic, items, key),) = api.publisher.sent
    assert topic.endswith("calls.raw") and key == b"1"
    assert [e["tenant_id"] for e in items] == ["1", "1"]
    assert items[0]["status_code"] == 200 and items[0]["path"] == "/example-route"
    assert b"c2VjcmV0" not in orjson.dumps(items)  # the credential header never reaches the topic
    assert items[1]["agent_id"] == "agent_test_123" and "agentId" not in items[1]


def test_a_kong_header_naming_another_tenant_refuses_the_whole_post(api):  # noqa: F811
    log = fixture("kong_http_log.json")
    log["request"]["headers"]["X-Tenant-ID"] = "2"
    r = api.post("/v1/call-histories", json=[fixture("kong_http_log.json"), log], headers=api.as_tenant("1", SA))
    assert r.status_code == 422 and r.json()["error"]["details"] == [
        {"index": 1, "error": "tenant_id 2 is not your tenant"}]
    assert api.publisher.sent == []


def test_a_bad_kong_event_is_refused_naming_the_format(api):  # noqa: F811
    r = api.post("/v1/call-histories", json={**fixture("kong_http_log.json"), "response": {"status": "OK"}},
                 headers=api.as_tenant("1", SA))
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["error"].startswith("Kong log event: status_code")


@pytest.mark.parametrize("spelling", [b'"latency_ms":NaN', b'"retries":-Infinity', b'"note":"\\ud800"'])
def test_a_body_is_json_by_the_rules_calls_raw_reads_messages_by(api, spelling):  # noqa: F811
    """NaN, Infinity, a lone surrogate: the standard library reads them, orjson (calls.raw's reader) refuses
    them. Posted, such a body is refused whole with the platform's 422, as the same bytes on
    calls.raw are a dead letter, and the collector is back on."""
    from tests.unit.test_normalize_vectorised import both_paths

    event = orjson.dumps(call_event(1, tenant_id="1")).replace(b'"latency_ms":', spelling + b',"x":', 1)
    json.loads(event)  # the standard library takes it
    r = api.post("/v1/call-histories", content=b"[" + event + b"]",
                 headers={**api.as_tenant("1", SA), "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION_ERROR", r.text
    assert api.publisher.sent == [] and gc.isenabled()
    assert r.json()["error"]["details"][0]["msg"] == "JSON decode error"
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(event)
    both_paths([event])  # and on calls.raw: a dead letter, on the fast path as on the exact one


def test_posted_kong_logs_are_published_as_the_rows_they_are_and_read_on_the_vectorised_path(api, monkeypatch):  # noqa: F811
    """The api publishes what the header maps decided (tenant, user, agent, user agent, trace id, source) as
    fields: the worker stores the same rows as from the Kong objects themselves, without its exact path."""
    from pipeline.broker.records import Message
    from pipeline.calls import vectorised
    from pipeline.calls.normalize import normalize_messages
    from tests.unit.test_gateway_formats import kong_events, read_exactly

    logs = kong_events(40, seed=31)
    for i, log in enumerate(logs):
        log["request"]["id"] = f"kong-{i}"  # Kong's request id is the event's id, on both ways in
    r = api.post("/v1/call-histories", json=logs, headers=api.as_tenant("1", Role.SYSTEM_ADMIN))
    assert r.status_code == 202, r.text
    published = [item for _, items, _ in api.publisher.sent for item in items]
    assert all("request_headers" not in e and "response_headers" not in e for e in published)
    values = [orjson.dumps(e) for e in published]
    assert not read_exactly(values, monkeypatch)  # the worker's vectorised path reads every one
    monkeypatch.undo()
    direct, _ = normalize_messages("calls.raw", [Message(0, i, 0, orjson.dumps(log)) for i, log in enumerate(logs)],
                                   lambda *a: "derived")
    stored = vectorised.normalize_batch("calls.raw", vectorised.Batch(0, list(range(len(values))), [0] * len(values),
                                                                      values), lambda *a: "derived").table
    assert stored.equals(pa.Table.from_pylist(direct, schema=CALLS_SCHEMA))
    assert set(stored.column("tenant_id").to_pylist()) != {"1"}  # the headers' tenants, not the caller's


def two_span_export() -> dict:
    """The conventions' HTTP server span and, beside it, the documented export's span (a server span without
    HTTP attributes: not a call)."""
    export = semconv_server_span()
    spans = export["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**fixture("otlp_trace.json")["resourceSpans"][0]["scopeSpans"][0]["spans"][0], "spanId": "01" * 8})
    return export


def test_otlp_export_publishes_each_http_server_span_and_answers_otlps_response(api):  # noqa: F811
    export = two_span_export()
    r = api.post("/v1/traces", content=orjson.dumps(export), headers={**api.as_tenant("1", SA),
                                                                        "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json() == {}
    assert gc.isenabled()
    ((_, items, _),) = api.publisher.sent
    assert len(items) == 1  # the second span is a server span without HTTP attributes: not a call
    assert items[0]["path"] == "/webshop/articles/4" and items[0]["tenant_id"] == "1"


def test_otlp_unreadable_call_spans_are_a_partial_success(api):  # noqa: F811
    export = semconv_server_span()
    span = export["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    bad = {**span, "spanId": "02" * 8, "attributes": [*span["attributes"][:8],
           {"key": "http.response.status_code", "value": {"intValue": "999"}}]}
    export["resourceSpans"][0]["scopeSpans"][0]["spans"].append(bad)
    r = api.post("/v1/traces", json=export, headers=api.as_tenant("1", SA))
    assert r.status_code == 200
    assert r.json()["partialSuccess"]["rejectedSpans"] == 1
    assert "status_code 999 is outside 100-599" in r.json()["partialSuccess"]["errorMessage"]
    assert len(api.publisher.sent[0][1]) == 1


def test_otlp_span_of_another_tenant_refuses_the_export(api):  # noqa: F811
    export = semconv_server_span()
    export["resourceSpans"][0]["resource"]["attributes"].append({"key": "tenant.id", "value": {"stringValue": "2"}})
    r = api.post("/v1/traces", json=export, headers=api.as_tenant("1", SA))
    assert r.status_code == 403 and "not yours" in r.json()["error"]["message"]
    assert api.publisher.sent == []
    assert gc.isenabled()  # the collector, paused while the export was read, is back on after a refusal too
    assert api.post("/v1/traces", json=export, headers=api.as_tenant("1", Role.SYSTEM_ADMIN)).status_code == 200


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"\x0a\x02", "text/plain", 415),
    (b"{not json", "application/json", 400),
    (b'{"resourceSpans": 5}', "application/json", 400),
])
def test_otlp_what_cannot_be_read_is_a_clear_4xx(api, body, content_type, status):  # noqa: F811
    r = api.post("/v1/traces", content=body, headers={**api.as_tenant("1", SA), "Content-Type": content_type})
    assert r.status_code == status and r.json()["error"]["message"]
    assert r.json()["error"]["code"] == {415: "UNSUPPORTED_MEDIA_TYPE", 400: "BAD_REQUEST"}[status]
    assert api.publisher.sent == []


def test_otlp_needs_a_writer(api):  # noqa: F811
    assert api.post("/v1/traces", json=semconv_server_span()).status_code == 401
    r = api.post("/v1/traces", json=semconv_server_span(), headers=api.as_tenant("1", Role.IAM_ADMIN))
    assert r.status_code == 403


def test_cors_is_off_unless_origins_are_set(materializer):
    closed = checked_client(create_app(materializer.settings))
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "x-agent-id,authorization"}
    assert "access-control-allow-origin" not in closed.options("/v1/call-histories", headers=preflight).headers
    settings = materializer.settings.model_copy(update={"cors_origins": ["https://app.example.com"]})
    client = checked_client(create_app(settings))
    r = client.options("/v1/call-histories", headers=preflight)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "x-agent-id" in r.headers["access-control-allow-headers"].lower()
    other = client.options("/v1/call-histories", headers={**preflight, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    r = client.get("/health", headers={"Origin": "https://app.example.com"})
    assert "x-trace-id" in r.headers["access-control-expose-headers"].lower()


def _hostile_exports() -> list[dict]:
    span = semconv_server_span()["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    # 300 nested arrays: 900 levels of JSON, within what the api's parser reads, far past Python's recursion
    deep = orjson.loads(b'{"arrayValue":{"values":[' * 300 + b'{"stringValue":"x"}' + b"]}}" * 300)

    def with_span(**changes) -> dict:
        return {"resourceSpans": [{"scopeSpans": [{"spans": [{**span, **changes}]}]}]}

    return [
        {"resourceSpans": [{"resource": "x"}]},
        {"resourceSpans": [{"resource": {"attributes": 5}}]},
        {"resourceSpans": [{"scopeSpans": {"spans": []}}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": "abc"}]}]},
        with_span(attributes=[*span["attributes"], {"key": "a", "value": {"arrayValue": 5}}]),
        with_span(attributes=[*span["attributes"], {"key": "a", "value": {"kvlistValue": "s"}}]),
        with_span(attributes=[*span["attributes"], {"key": "a", "value": deep}]),
    ]


@pytest.mark.parametrize("export", _hostile_exports())
def test_a_hostile_otlp_body_is_a_400_and_publishes_nothing(api, export):  # noqa: F811
    body = json.dumps(export).encode()  # orjson refuses to write what it reads this deep
    r = api.post("/v1/traces", content=body, headers={**api.as_tenant("1", SA), "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "BAD_REQUEST"
    assert api.publisher.sent == []


@pytest.mark.parametrize("changes", [{"kind": []}, {"startTimeUnixNano": "9" * 30, "endTimeUnixNano": "9" * 31}])
def test_a_hostile_span_is_rejected_alone(api, changes):  # noqa: F811
    export = semconv_server_span()
    spans = export["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**spans[0], "spanId": "03" * 8, **changes})
    r = api.post("/v1/traces", json=export, headers=api.as_tenant("1", SA))
    assert r.status_code == 200
    assert len(api.publisher.sent[0][1]) == 1  # the good span; the hostile one is not a call or not readable


def test_a_native_event_nested_900_deep_is_published_with_only_the_fields_the_rules_read(api):  # noqa: F811
    """A field nobody reads, nested 900 levels: it used to take the redaction walk past Python's recursion
    limit (a 500). Only the columns leave the api, with what the headers decided (the agent, here) as fields."""
    deep = '{"x":' * 900 + "1" + "}" * 900
    event = json.dumps(call_event(1, tenant_id="1", agent_id=None))[:-1] + f', "extra": {deep}, ' \
        '"request_headers": {"Authorization": "Bearer s3cr3t", "X-Agent-ID": "a7"}}'
    r = api.post("/v1/call-histories", content=event.encode(),
                 headers={**api.as_tenant("1", SA), "Content-Type": "application/json"})
    assert r.status_code == 202, r.text
    ((_, (published,), _),) = api.publisher.sent
    assert "extra" not in published and "request_headers" not in published and published["agent_id"] == "a7"
    assert "s3cr3t" not in json.dumps(published)


def as_protobuf(export: dict) -> bytes:
    """An OTLP JSON export in its protobuf encoding: ids are hex in OTLP's JSON, base64 in protobuf's JSON mapping."""
    doc = json.loads(json.dumps(export))
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
                for link in span.get("links", []):
                    for key in ("traceId", "spanId"):
                        if link.get(key):
                            link[key] = base64.b64encode(bytes.fromhex(link[key])).decode()
    return json_format.ParseDict(doc, ExportTraceServiceRequest()).SerializeToString()


def test_otlp_protobuf_export_publishes_the_same_calls_as_its_json_twin(api):  # noqa: F811
    export = two_span_export()
    spans = export["resourceSpans"][0]["scopeSpans"][0]["spans"]
    r = api.post("/v1/traces", content=orjson.dumps(export), headers={**api.as_tenant("1", SA),
                                                                        "Content-Type": "application/json"})
    assert r.status_code == 200
    r = api.post("/v1/traces", content=as_protobuf(export), headers={**api.as_tenant("1", SA),
                                                                       "Content-Type": PROTOBUF})
    assert r.status_code == 200 and r.headers["content-type"] == PROTOBUF
    answer = ExportTraceServiceResponse.FromString(r.content)
    assert not answer.HasField("partial_success")
    (_, from_json, _), (_, from_protobuf, _) = api.publisher.sent
    assert from_protobuf == from_json and len(from_json) == 1
    assert from_json[0]["api_call_history_id"] == (spans[0]["traceId"] + spans[0]["spanId"]).lower()


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_compressed_exports_and_batches_publish_what_their_plain_twins_do(api, coding):  # noqa: F811
    # The OpenTelemetry Collector's otlphttp exporter sends gzip unless told otherwise.
    pack = gzip.compress if coding == "gzip" else zlib.compress
    export, kong = two_span_export(), [fixture("kong_http_log.json")]
    sends = [("/v1/traces", orjson.dumps(export), "application/json"),
             ("/v1/traces", as_protobuf(export), PROTOBUF),
             ("/v1/call-histories", orjson.dumps(kong), "application/json")]
    for path, body, kind in sends:
        for headers in ({}, {"Content-Encoding": coding}):
            r = api.post(path, content=pack(body) if headers else body,
                         headers={**api.as_tenant("1", SA), "Content-Type": kind, **headers})
            assert r.status_code in (200, 202), r.text
    sent = [items for _, items, _ in api.publisher.sent]
    assert len(sent) == 6 and sent[0] == sent[1] == sent[2] == sent[3] and sent[4] == sent[5]
    assert len(sent[0]) == 1 and sent[4][0]["path"] == "/example-route"


def test_otlp_protobuf_partial_success_and_errors_answer_in_protobuf(api):  # noqa: F811
    export = semconv_server_span()
    span = export["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["endTimeUnixNano"] = str(int(span["startTimeUnixNano"]) - 1)  # ends before it starts: unreadable
    r = api.post("/v1/traces", content=as_protobuf(export), headers={**api.as_tenant("1", SA),
                                                                       "Content-Type": PROTOBUF})
    answer = ExportTraceServiceResponse.FromString(r.content)
    assert r.status_code == 200 and answer.partial_success.rejected_spans == 1
    assert "endTimeUnixNano" in answer.partial_success.error_message
    r = api.post("/v1/traces", content=b"\x0a\x02garbage", headers={**api.as_tenant("1", SA),
                                                                      "Content-Type": PROTOBUF})
    assert r.status_code == 400 and r.headers["content-type"] == PROTOBUF
    assert "not an OTLP protobuf trace export" in Status.FromString(r.content).message
    foreign = semconv_server_span()
    foreign["resourceSpans"][0]["resource"] = {"attributes": [{"key": "tenant.id", "value": {"stringValue": "2"}}]}
    r = api.post("/v1/traces", content=as_protobuf(foreign), headers={**api.as_tenant("1", SA),
                                                                        "Content-Type": PROTOBUF})
    assert r.status_code == 403 and Status.FromString(r.content).code == 7  # PERMISSION_DENIED
    assert api.publisher.sent == []


@pytest.mark.parametrize("start", ["²", "--5", "0"])
def test_an_otlp_time_int_cannot_read_is_a_rejected_span_not_a_server_error(api, start):  # noqa: F811
    export = semconv_server_span()
    export["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["startTimeUnixNano"] = start
    r = api.post("/v1/traces", json=export, headers=api.as_tenant("1", SA))
    assert r.status_code == 200 and r.json()["partialSuccess"]["rejectedSpans"] == 1
    assert api.publisher.sent == []
