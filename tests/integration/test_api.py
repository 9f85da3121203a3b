"""The facade against the real broker: auth on call histories, reads, POST, stats, SQL, self-recording."""

from __future__ import annotations

import orjson
import pytest
from kafka import KafkaProducer

from pipeline.broker.topics import CALLS_RAW
from pipeline.security import Role, mint_token
from tests.helpers import call_event, wait_for
from tests.integration.conftest import api_on
from tests.unit.test_gateway_formats import fixture, seed_dto, semconv_server_span

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(broker, tmp_path_factory):
    with api_on(broker.bootstrap, tmp_path_factory.mktemp("api"), "api") as client:
        yield client


def _auth(client, role: Role, tenant: str = "1", user: str = "u1") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(client.settings.jwt_key(), user, tenant, [role])}"}


@pytest.fixture(scope="module")
def seeded(api):
    """Events for three tenants posted through the REST route, then visible."""
    events = [call_event(i) for i in range(60)]
    admin = _auth(api, Role.SYSTEM_ADMIN, tenant="ops")
    r = api.post("/v1/call-histories", json=events, headers=admin)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 60 and len(set(r.json()["ids"])) == 60
    wait_for(lambda: len(api.get("/v1/call-histories?source=TEST&limit=1000", headers=admin)
                         .json()["items"]) >= 60, 60, "posted events materialized")
    return events


def test_reads_need_a_token_and_a_reader_role(api):
    r = api.get("/v1/call-histories")
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
    assert api.get("/v1/call-histories", headers={"Authorization": "Bearer nope"}).status_code == 401
    r = api.get("/v1/call-histories", headers=_auth(api, Role.REGULAR_USER))
    assert r.status_code == 403 and "system_admin" in r.json()["error"]["message"]
    assert api.get("/v1/call-histories", headers=_auth(api, Role.MEDICAL_PROFESSIONAL)).status_code == 403


def test_tenant_scoping_and_cursor_pagination(api, seeded):
    iam = _auth(api, Role.IAM_ADMIN, tenant="1")
    items, cursor, pages = [], None, 0
    while True:
        r = api.get("/v1/call-histories", params={"limit": 7, **({"cursor": cursor} if cursor else {})}, headers=iam)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor, pages = r.json()["next_cursor"], pages + 1
        if not cursor:
            break
    assert pages > 1
    ids = [i["api_call_history_id"] for i in items]
    assert len(ids) == len(set(ids)), "pages overlap"
    assert {i["tenant_id"] for i in items} == {"1"}
    assert len([i for i in items if i["source"] == "TEST"]) == 20  # tenant 1 is every third event
    assert api.get("/v1/call-histories?tenant_id=2", headers=iam).status_code == 403
    other = api.get("/v1/call-histories?tenant_id=2&source=TEST", headers=_auth(api, Role.SYSTEM_ADMIN)).json()
    assert {i["tenant_id"] for i in other["items"]} == {"2"}
    one = items[0]["api_call_history_id"]
    assert api.get(f"/v1/call-histories/{one}", headers=iam).json()["api_call_history_id"] == one
    assert api.get(f"/v1/call-histories/{one}", headers=_auth(api, Role.IAM_ADMIN, tenant="2")).status_code == 404
    bad = api.get("/v1/call-histories?cursor=garbage", headers=iam)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_ERROR"


def test_filters_and_stats(api, seeded):
    admin = _auth(api, Role.SYSTEM_ADMIN, tenant="ops")
    r = api.get("/v1/call-histories", params={"status_min": 500, "agent_id": "agent_0"}, headers=admin).json()
    expected = [e for e in seeded if e["status_code"] >= 500 and e["agent_id"] == "agent_0"]
    assert len(r["items"]) == len(expected) > 0
    stats = api.get("/v1/call-histories/stats", params={"bucket": "minute", "tenant_id": "1", "source": "TEST"},
                    headers=admin).json()
    tenant1 = [e for e in seeded if e["tenant_id"] == "1"]
    assert stats["total"]["count"] == len(tenant1)
    assert stats["total"]["error_rate"] == pytest.approx(sum(e["status_code"] >= 400 for e in tenant1) / len(tenant1))
    route = stats["routes"][0]
    assert route["p50_ms"] <= route["p95_ms"] <= route["p99_ms"]
    assert stats["series"][0]["bucket"].startswith("2026-11-25T10:00")
    assert stats["top_agents"][0]["count"] >= stats["top_agents"][-1]["count"]


def test_post_validates_everything_or_publishes_nothing(api):
    sa = _auth(api, Role.SERVICE_ACCOUNT, tenant="1")
    r = api.post("/v1/call-histories", json=[call_event(1, tenant_id="1"), {"method": "GET"}], headers=sa)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["index"] == 1
    r = api.post("/v1/call-histories", json=call_event(1, tenant_id="2"), headers=sa)
    assert r.status_code == 422 and "not your tenant" in r.text
    assert api.post("/v1/call-histories", json=call_event(1), headers=_auth(api, Role.IAM_ADMIN)).status_code == 403
    assert api.post("/v1/call-histories", content=b"{oops", headers=sa | {"content-type": "application/json"}
                    ).status_code == 422


def test_gateway_formats_become_rows_over_http_and_on_calls_raw(api):
    """Kong's http-log and seed 003's DTO posted, an OTLP export at /v1/traces, and a Kafka message mixing
    formats produced straight to calls.raw: every call a row of the caller's tenant (tests/fixtures' documented
    payloads; the field-by-field mapping is in tests/unit/test_gateway_formats.py)."""
    sa = _auth(api, Role.SERVICE_ACCOUNT, tenant="kong")
    kong, dto, export = fixture("kong_http_log.json"), seed_dto(tenantId=None, source="GW"), semconv_server_span()
    assert api.post("/v1/call-histories", json=[kong, dto], headers=sa).status_code == 202
    assert api.post("/v1/traces", json=export, headers=sa).json() == {}
    mixed = [seed_dto(tenantId="kong", path="/on/kafka"), {**fixture("kong_http_log.json"), "request": {
        **kong["request"], "id": "k2", "uri": "/on/kafka/kong", "headers": {"x-tenant-id": "kong"}}}]
    producer = KafkaProducer(bootstrap_servers=api.settings.kafka_bootstrap)
    producer.send(api.settings.topic(CALLS_RAW), orjson.dumps(mixed))
    producer.flush()
    producer.close()
    paths = {"/example-route", "/api/aura/test/stream", "/webshop/articles/4", "/on/kafka", "/on/kafka/kong"}
    got: dict[str, dict] = {}

    def stored() -> bool:
        items = api.get("/v1/call-histories?limit=100", headers=_auth(api, Role.IAM_ADMIN, tenant="kong")).json()
        got.update({i["path"]: i for i in items["items"]})
        return set(got) >= paths

    wait_for(stored, 60, "every format's calls stored")
    assert {got[p]["tenant_id"] for p in paths} == {"kong"}  # (the facade's own calls are rows of it too)
    assert got["/example-route"]["api_call_history_id"] == "2f6946328ffc4946b8c9120704a4a155"
    assert got["/webshop/articles/4"]["query_string"] == "s=1&t=2" and got["/webshop/articles/4"]["latency_ms"] == 1000
    assert got["/api/aura/test/stream"]["agent_id"] == "agent_test_123"


def test_sql_is_system_admin_only_and_read_only(api, seeded):
    admin = _auth(api, Role.SYSTEM_ADMIN)
    r = api.post("/v1/sql", json={"query": "SELECT count(*) AS n FROM sys_api_call_histories WHERE source='TEST'"},
                 headers=admin)
    assert r.status_code == 200 and r.json()["rows"][0][0] >= 60
    r = api.post("/v1/sql", json={"query": "DELETE FROM sys_api_call_histories"}, headers=admin)
    assert r.status_code == 400 and r.json()["error"]["code"] == "SQL_REFUSED" and "DELETE" in r.text
    assert api.post("/v1/sql", json={"query": "SELECT 1"}, headers=_auth(api, Role.IAM_ADMIN)).status_code == 403
    csv = api.post("/v1/sql", json={"query": "SELECT 1 AS a, 'x' AS b", "format": "csv"}, headers=admin)
    assert csv.text.splitlines() == ["a,b", "1,x"]


def test_the_facade_records_its_own_calls(api):
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = api.get("/nowhere?api_key=s3cret&page=2", headers={"traceparent": traceparent, "X-Tenant-ID": "7",
                                                           "X-Agent-ID": "agent_rec", "User-Agent": "rec-test"})
    assert r.status_code == 404 and r.headers["x-trace-id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    token_user = _auth(api, Role.IAM_ADMIN, tenant="9", user="claims-win")
    r2 = api.get("/v1/call-histories?agent_id=none", headers=token_user | {"X-Tenant-ID": "spoofed"})
    generated = r2.headers["x-trace-id"]
    assert len(generated) == 32
    admin = _auth(api, Role.SYSTEM_ADMIN)

    def find(trace: str):
        items = api.get("/v1/call-histories", params={"path": "/nowhere" if trace.startswith("4bf") else
                                                      "/v1/call-histories"}, headers=admin).json()["items"]
        return [i for i in items if i["trace_id"] == trace]

    row = wait_for(lambda: find("4bf92f3577b34da6a3ce929d0e0e4736"), 30, "the 404 recorded")[0]
    assert row["status_code"] == 404 and row["agent_id"] == "agent_rec"
    # An unauthenticated caller's X-Tenant-ID is believed only from a trusted proxy: the row has no tenant ('',
    # since the tenant is part of the row's key).
    assert row["tenant_id"] == ""
    assert row["query_string"] == "api_key=REDACTED&page=2"
    assert row["user_agent"] == "rec-test" and row["source"] == "STREAMDESK"
    assert row["ip_address"] is None  # the test transport has no IP peer: NULL, not a value the DLQ would reject
    assert row["response_size_bytes"] == len(r.content)
    own = wait_for(lambda: find(generated), 30, "the authenticated call recorded")[0]
    assert own["tenant_id"] == "9" and own["user_id"] == "claims-win"  # verified claims beat headers


def test_health_and_metrics(api, seeded):
    h = wait_for(lambda: (r := api.get("/health")).status_code == 200 and r.json(), 30, "healthy")
    assert h["broker"]["ok"] and h["duckdb"]["ok"] and h["worker"]["workers"][0]["alive"]
    text = api.get("/metrics").text
    assert "streamdesk_materialized_rows_total" in text and "streamdesk_http_requests_total" in text
    # The worker's own counters arrive with its heartbeats (every 2 s).
    wait_for(lambda: 'streamdesk_worker_events{' in api.get("/metrics").text, 20, "worker counters in /metrics")
