"""After a demo run through the system as users drive it (`streamdesk up --simulator`), no secret is anywhere in
clear: not in a log, not on any topic, not in any DuckDB column or in the file's bytes, not in a data export.

Secrets given to the api (a company's Freshdesk key, query strings and headers of call events, the api's own
request URLs) are redacted before they are published. A producer that writes straight to an entry topic owns
those bytes: its secrets stay only in that topic (until its retention ends), never past the normalizer."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipeline.settings import read_broker_file
from simulators.sleep_cohort import generate_cohort
from tests.helpers import wait_for

pytestmark = pytest.mark.integration
TENANT = "vault"
COMPANY = {"X-Company-ID": TENANT, "X-Platform": "freshdesk", "X-Domain": "vault.freshdesk.com"}


def _through_api(live, tag: str) -> dict[str, str]:
    """Drive every stream through the api with secrets in it; returns the secrets by name."""
    s = {"company_key": live.secret_key, "query_token": f"qtok{tag}", "bracket_password": f"brpw{tag}",
         "semicolon_token": f"sctok{tag}", "header_key": f"hdrkey{tag}", "auth_header": f"bearer{tag}",
         "own_url_token": f"owntok{tag}"}
    key = COMPANY | {"X-API-Key": s["company_key"]}
    r = live.request("POST", "/ingest/jobs", headers=key, json={"max_tickets": 3, "include_kb": False})
    assert r.status_code == 202, r.text
    assert live.request("GET", "/ingest/jobs", headers=key).status_code == 200
    svc = {"Authorization": f"Bearer {live.token('gw', TENANT, 'service_account')}"}
    queries = [f"page=1&token={s['query_token']}", f"user[password]={s['bracket_password']}&x=1",
               f"a=1;auth_token={s['semicolon_token']}", f"X-API-Key={s['header_key']}"]
    events = [{"tenant_id": TENANT, "method": "GET", "path": "/v1/things", "query_string": q, "status_code": 200,
               "latency_ms": 5, "request_headers": {"Authorization": f"Bearer {s['auth_header']}"}} for q in queries]
    r = live.request("POST", "/v1/call-histories", json=events, headers=svc)
    assert r.status_code == 202, r.text
    admin = {"Authorization": f"Bearer {live.token('root', TENANT, 'system_admin')}"}
    live.request("GET", f"/v1/call-histories?limit=1&token={s['own_url_token']}", headers=admin)
    return s


def _straight_to_topics(live, tag: str) -> dict[str, tuple[str, str]]:
    """A gateway and a script producing straight to entry topics, one bad message each; secret -> its topic."""
    s = {"direct_call": (f"dcall{tag}", "calls.raw"), "direct_sleep": (f"dsleep{tag}", "sleep.records")}
    bad_call = {"tenant_id": TENANT, "method": "GET", "path": f"/login?password={s['direct_call'][0]}",
                "status_code": "not a number"}
    user = generate_cohort(1, days=3, seed=3, tenant=TENANT)[0]
    bad_sleep = {**user.records[0].model_dump(mode="json"), "api_key": s["direct_sleep"][0], "kind": "nap"}
    producer = KafkaProducer(bootstrap_servers=read_broker_file(live.data)["bootstrap"])
    producer.send("calls.raw", orjson.dumps(bad_call))
    producer.send("sleep.records", orjson.dumps(bad_sleep))
    producer.flush()
    producer.close()
    return s


def _sql(live, query: str) -> list[list]:
    if not hasattr(live, "admin"):
        live.admin = {"Authorization": f"Bearer {live.token('root', TENANT, 'system_admin')}"}
    r = live.request("POST", "/v1/sql", json={"query": query}, headers=live.admin)
    assert r.status_code == 200, r.text
    return r.json()["rows"]


def _in_tables(live, secrets: dict[str, str]) -> dict[str, list[str]]:
    """secret name -> the tables holding it in some text, JSON or BLOB column (one query per table)."""
    columns: dict[str, list[str]] = {}
    for table, column in _sql(live, "SELECT table_name, column_name FROM information_schema.columns WHERE "
                                    "table_schema = 'main' AND data_type IN ('VARCHAR', 'JSON', 'BLOB')"):
        columns.setdefault(table, []).append(f'CAST("{column}" AS VARCHAR)')
    found: dict[str, list[str]] = {}
    for table, cols in columns.items():
        text = " || ' ' || ".join(f"coalesce({c}, '')" for c in cols)
        flags = ", ".join(f"bool_or(strpos(t, '{v}') > 0)" for v in secrets.values())
        row = _sql(live, f'SELECT {flags} FROM (SELECT {text} AS t FROM "{table}")')[0]
        for name, hit in zip(secrets, row, strict=True):
            if hit:
                found.setdefault(name, []).append(table)
    return found


def _topics(live) -> dict[str, bytes]:
    consumer = KafkaConsumer(bootstrap_servers=read_broker_file(live.data)["bootstrap"], enable_auto_commit=False)
    out: dict[str, bytes] = {}
    try:
        consumer.assign([TopicPartition(t, p) for t in consumer.topics()
                         for p in consumer.partitions_for_topic(t) or ()])
        consumer.seek_to_beginning()
        quiet, deadline = 0, time.monotonic() + 60
        while quiet < 3 and time.monotonic() < deadline:  # the embedded broker's end offsets are not reliable
            batch = consumer.poll(timeout_ms=500, max_records=5000)
            quiet = 0 if batch else quiet + 1
            for m in (m for msgs in batch.values() for m in msgs):
                out[m.topic] = out.get(m.topic, b"") + (m.key or b"") + b"\n" + (m.value or b"") + b"\n"
    finally:
        consumer.close()
    return out


def _where(live, secret: str, topics: dict[str, bytes], logs: bytes, tables: list[str]) -> list[str]:
    found = [t for t, blob in topics.items() if secret.encode() in blob]
    found += ["logs"] if secret.encode() in logs else []
    found += ["duckdb file"] if secret.encode() in live.data.joinpath("streamdesk.duckdb").read_bytes() else []
    return found + tables


def test_no_secret_is_logged_published_or_stored_in_clear(live):
    tag = uuid.uuid4().hex[:10]
    given = _through_api(live, tag)
    direct = _straight_to_topics(live, tag)
    wait_for(lambda: _sql(live, f"SELECT count(*) FROM sys_api_call_histories WHERE tenant_id = '{TENANT}' AND "
                                "path = '/v1/things'")[0][0] == 4, 60, "the demo's call rows")
    wait_for(lambda: _sql(live, "SELECT count(DISTINCT topic) FROM dead_letters WHERE topic IN "
                                "('calls.raw', 'sleep.records')")[0][0] == 2, 60, "both dead letters")
    wait_for(lambda: _sql(live, "SELECT count(*) FROM ingest_jobs WHERE tenant = 'vault' AND status = 'completed'"
                          )[0][0] == 1, 60, "the job")
    topics = _topics(live)
    logs = b"".join(p.read_bytes() for p in live.data.parent.rglob("*.log"))
    # The server's own secrets (generated into data/, 0600) are never written anywhere either.
    given |= {name: live.data.joinpath(name).read_text().strip() for name in ("jwt_secret", "secret_key")}
    tables = _in_tables(live, given | {name: secret for name, (secret, _) in direct.items()})
    leaks = {name: where for name, secret in given.items()
             if (where := _where(live, secret, topics, logs, tables.get(name, [])))}
    for name, (secret, topic) in direct.items():
        where = _where(live, secret, topics, logs, tables.get(name, []))
        assert topic in where, f"{name}: the test's own message is not on {topic}"
        if where != [topic]:
            leaks[name] = where
    assert leaks == {}
