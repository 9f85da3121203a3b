"""Ids are tenant-scoped: one tenant's schedule, call-history or export id never reaches or hides another's row."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import duckdb
import orjson
import pytest
from kafka import KafkaProducer

from pipeline.broker.kafka import cluster_id
from pipeline.broker.topics import CALLS_RAW
from pipeline.ids import derived_id
from pipeline.security import Role
from pipeline.storage.db import connect
from pipeline.storage.materializer import Materializer
from pipeline.storage.migrations import primary_key
from pipeline.storage.queries import schedules as sq
from pipeline.storage.sinks import platform_sinks
from tests.helpers import call_event, start_cli, stop_process, wait_for
from tests.integration.conftest import env_for
from tests.integration.predictions_env import auth

P = "/v1/sol-cod"
TREATMENT = {"phase": "MID", "bedtime_goal": "23:00", "timezone": "UTC"}


def _treatment(api, tenant: str, user: str) -> None:
    record = {"user_id": user, "kind": "treatment", "date": "2026-11-01", "data": TREATMENT}
    r = api.post(f"{P}/sleep-records", json=[record], headers=auth(api, Role.SERVICE_ACCOUNT, "svc", tenant))
    assert r.status_code == 202, r.text


def _schedules(api, tenant: str, user: str) -> list[tuple]:
    return api.app.state.services.store.con.cursor().execute(
        "SELECT schedule_id, status, bedtime_goal FROM prediction_schedules WHERE tenant = ? AND user_id = ? "
        "ORDER BY created_at", [tenant, user]).fetchall()


def test_two_tenants_schedules_for_one_user_id_never_meet(api):
    """Tenant B's admin, naming the user id tenant A also has, never sees or replaces A's schedule."""
    a, b, user = "ids-a", "ids-b", "uA1"
    admin_a, admin_b = auth(api, Role.IAM_ADMIN, "adm-a", a), auth(api, Role.IAM_ADMIN, "adm-b", b)
    _treatment(api, a, user)
    a_sid = wait_for(lambda: (rows := _schedules(api, a, user)) and rows[0][0], 20, "A's schedule from the loop")
    _treatment(api, b, user)
    # The scheduler gives B's user its own schedule for the same bedtime beside A's (before: it saw A's id).
    b_sid = wait_for(lambda: (rows := _schedules(api, b, user)) and rows[0][0], 10, "B's schedule beside A's")
    assert b_sid != a_sid and _schedules(api, b, user)[0][2] == _schedules(api, a, user)[0][2]

    current = api.get(f"{P}/schedules/current?userId={user}", headers=admin_b)
    assert current.status_code == 200 and current.json()["data"]["scheduleId"] == b_sid
    bedtime = _schedules(api, a, user)[0][2]
    body = {"userId": user, "newBedtimeGoal": bedtime.isoformat(), "reason": "collide"}
    conflict = api.put(f"{P}/schedules/update", json=body, headers=admin_b)
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "COD_S003"
    assert a_sid not in conflict.text
    moved = api.put(f"{P}/schedules/update", json={**body, "forceReschedule": True}, headers=admin_b)
    assert moved.status_code == 200, moved.text
    assert a_sid not in moved.text and moved.json()["data"]["previousScheduleId"] == b_sid
    gone = api.delete(f"{P}/schedules/{a_sid}", headers=admin_b)
    assert gone.status_code == 404 and a_sid in gone.json()["error"]["message"]  # only the id B itself named

    rows = _schedules(api, a, user)
    assert [(sid, status) for sid, status, _ in rows] == [(a_sid, "SCHEDULED")]
    mine = api.get(f"{P}/schedules/current?userId={user}", headers=admin_a).json()["data"]
    assert mine["scheduleId"] == a_sid and mine["status"] == "SCHEDULED"


def test_a_schedule_made_twice_at_once_is_one_schedule_not_an_error(tmp_path):
    """The scheduler loop and GET …/schedules/current may both create a user's next schedule: the second gets
    the first's row (before: a duplicate-key error, a 500)."""
    con = connect(tmp_path / "s.duckdb")
    bedtime, lead = datetime(2030, 1, 1, 23, tzinfo=UTC), timedelta(hours=1)
    first = sq.create(con.cursor(), "t", "u", bedtime, lead, "UTC", "TREATMENT_BEDTIME_GOAL")
    second = sq.create(con.cursor(), "t", "u", bedtime, lead, "UTC", "NEXT_NIGHT")
    other = sq.create(con.cursor(), "t2", "u", bedtime, lead, "UTC", "NEXT_NIGHT")
    assert second["schedule_id"] == first["schedule_id"] and second["reason"] == "TREATMENT_BEDTIME_GOAL"
    assert other["schedule_id"] != first["schedule_id"]
    assert con.execute("SELECT tenant, count(*) FROM prediction_schedules GROUP BY ALL ORDER BY 1").fetchall() == [
        ("t", 1), ("t2", 1)]
    con.close()


def test_health_does_not_tell_strangers_the_cluster_id(api, broker):
    """The cluster id seeds every derived call id: whoever knows it can precompute them."""
    r = api.get("/health")
    assert r.status_code == 200 and r.json()["broker"]["ok"]
    assert broker.cluster_id not in r.text


def test_the_same_call_id_posted_by_two_tenants_is_two_rows_each_read_by_its_tenant(api):
    """POST /v1/call-histories with an id another tenant used first: stored, and GET by id finds one's own row."""
    call_id = "shared-post-1"
    for tenant in ("ids-post-a", "ids-post-b"):
        event = call_event(0, tenant_id=tenant, api_call_history_id=call_id, path=f"/{tenant}")
        r = api.post("/v1/call-histories", json=event, headers=auth(api, Role.SERVICE_ACCOUNT, "svc", tenant))
        assert r.status_code == 202 and r.json()["ids"] == [call_id], r.text

    def stored() -> bool:
        return api.app.state.services.store.con.cursor().execute("SELECT count(*) FROM sys_api_call_histories WHERE "
                                                 "api_call_history_id = ?", [call_id]).fetchone()[0] >= 2

    wait_for(stored, 20, "both tenants' rows")
    for tenant in ("ids-post-a", "ids-post-b"):
        r = api.get(f"/v1/call-histories/{call_id}", headers=auth(api, Role.IAM_ADMIN, "adm", tenant))
        assert r.status_code == 200 and (r.json()["tenant_id"], r.json()["path"]) == (tenant, f"/{tenant}")
    admin = auth(api, Role.SYSTEM_ADMIN, "root", "ids-post-a")
    r = api.get(f"/v1/call-histories/{call_id}?tenant_id=ids-post-b", headers=admin)
    assert r.status_code == 200 and r.json()["tenant_id"] == "ids-post-b"


def _send(settings, values: list[bytes]) -> None:
    """In order, all to partition 0: the test knows each message's offset."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, max_in_flight_requests_per_connection=1)
    for v in values:
        producer.send(settings.topic(CALLS_RAW), v, partition=0).get(timeout=10)
    producer.close()


def _by_tenant(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return dict(con.cursor().execute(
        "SELECT tenant_id, count(*) FROM sys_api_call_histories GROUP BY tenant_id").fetchall())


def _materialize_until_idle(settings, con: duckdb.DuckDBPyConnection, want: dict[str, int]) -> None:
    m = Materializer(settings, con, platform_sinks(settings))
    m.start()
    try:
        wait_for(lambda: sum(_by_tenant(con).values()) >= sum(want.values()), 30, f"{want} rows")
        m.caught_up.clear()
        wait_for(m.caught_up.is_set, 30, "materializer idle")
    finally:
        m.stop()


@pytest.mark.integration
def test_one_tenants_ids_never_suppress_anothers_events(settings, tmp_path):
    """Tenant A sends the id B will supply and the id B's next event will be given; B's rows all arrive."""
    topic = settings.topic(CALLS_RAW)
    cluster = asyncio.run(cluster_id(settings.bootstrap()))
    stolen = derived_id(cluster, topic, 0, 2, None)  # what B's id-less event at offset 2 is named
    b_supplied = orjson.dumps(call_event(3, tenant_id="B", api_call_history_id="shared-1"))
    values = [orjson.dumps(call_event(0, tenant_id="A", api_call_history_id="shared-1")),  # offset 0
              orjson.dumps(call_event(1, tenant_id="A", api_call_history_id=stolen)),  # offset 1
              orjson.dumps(call_event(2, tenant_id="B", api_call_history_id=None)),  # offset 2: derived id
              b_supplied, b_supplied]  # offsets 3 and 4: a producer's resend is still one row
    worker = start_cli(["worker"], env_for(settings), tmp_path / "worker.log")
    con = connect(settings.db_path)
    try:
        _send(settings, values)
        _materialize_until_idle(settings, con, {"A": 2, "B": 2})
        assert _by_tenant(con) == {"A": 2, "B": 2}
        ids = con.cursor().execute("SELECT api_call_history_id FROM sys_api_call_histories WHERE tenant_id = 'B' "
                                   "ORDER BY trace_id").fetchall()
        assert ids == [(stolen,), ("shared-1",)]
        # A replay from the start (the stored offsets forgotten) adds nothing: the keys are stable.
        con.cursor().execute("DELETE FROM materializer_offsets")
        _materialize_until_idle(settings, con, {"A": 2, "B": 2})
        assert _by_tenant(con) == {"A": 2, "B": 2}
    finally:
        stop_process(worker)
        con.close()


OLD_CALLS = """CREATE TABLE sys_api_call_histories (api_call_history_id VARCHAR PRIMARY KEY, tenant_id VARCHAR,
    user_id VARCHAR, agent_id VARCHAR(100), method VARCHAR, path VARCHAR, query_string VARCHAR, status_code INTEGER,
    latency_ms BIGINT, request_size_bytes BIGINT, response_size_bytes BIGINT, ip_address VARCHAR, user_agent VARCHAR,
    trace_id VARCHAR, error_code VARCHAR, source VARCHAR, created_at TIMESTAMPTZ)"""
OLD_SCHEDULES = """CREATE TABLE prediction_schedules (schedule_id VARCHAR PRIMARY KEY, tenant VARCHAR,
    user_id VARCHAR, bedtime_goal TIMESTAMPTZ, scheduled_trigger_time TIMESTAMPTZ, status VARCHAR,
    retry_count INTEGER, next_execution TIMESTAMPTZ, timezone VARCHAR, reason VARCHAR, last_prediction_id VARCHAR,
    last_error VARCHAR, created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ)"""
OLD_EXPORTS = """CREATE TABLE data_exports (export_id VARCHAR PRIMARY KEY, tenant VARCHAR, user_id VARCHAR,
    status VARCHAR, format VARCHAR, include_raw BOOLEAN, created_at TIMESTAMPTZ, completed_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ, content BLOB, error VARCHAR)"""


def _old_file(path) -> None:
    con = duckdb.connect(str(path))
    for ddl in (OLD_CALLS, OLD_SCHEDULES, OLD_EXPORTS):
        con.execute(ddl)
    con.execute("INSERT INTO sys_api_call_histories (api_call_history_id, tenant_id, path, status_code, created_at) "
                "VALUES ('c1', 'A', '/a', 200, '2026-11-25 10:00:00+00'), ('c2', NULL, '/b', 503, NULL)")
    con.execute("INSERT INTO prediction_schedules (schedule_id, tenant, user_id, status) "
                "VALUES ('sched_202611252200_u1', 'A', 'u1', 'SCHEDULED')")
    con.execute("INSERT INTO data_exports (export_id, tenant, user_id, status, content) "
                "VALUES ('export_1', 'A', 'u1', 'COMPLETED', 'abc'::BLOB)")
    con.close()


def test_a_file_made_by_the_old_schema_keeps_its_rows_under_the_current_keys(tmp_path):
    path = tmp_path / "old.duckdb"
    _old_file(path)
    for _ in range(2):  # the second open finds nothing to do
        con = connect(path)
        assert primary_key(con, "sys_api_call_histories") == ()  # an append-only log now (issue 10)
        assert primary_key(con, "prediction_schedules") == ("tenant", "schedule_id")
        assert primary_key(con, "data_exports") == ("tenant", "export_id")
        assert con.execute("SELECT api_call_history_id, tenant_id, path, status_code, created_at "
                           "FROM sys_api_call_histories ORDER BY 1").fetchall() == [
            ("c1", "A", "/a", 200, datetime.fromisoformat("2026-11-25T10:00:00+00:00")),
            ("c2", "", "/b", 503, None)]
        assert con.execute("SELECT schedule_id, user_id, status FROM prediction_schedules").fetchall() == [
            ("sched_202611252200_u1", "u1", "SCHEDULED")]
        assert con.execute("SELECT export_id, content FROM data_exports").fetchall() == [("export_1", b"abc")]
        con.close()
    con = connect(path)
    con.execute("INSERT INTO sys_api_call_histories (api_call_history_id, tenant_id, path, status_code) "
                "VALUES ('c1', 'B', '/x', 200)")  # the same id in another tenant is another row now
    same = con.execute("SELECT count(*) FROM sys_api_call_histories WHERE api_call_history_id = 'c1'").fetchone()
    assert same == (2,)
    con.close()
