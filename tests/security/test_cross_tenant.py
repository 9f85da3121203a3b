"""Tenant A's data, then every read route asked for it by tenant B's staff (and by A's other users): each answer is
a 4xx in the route's shape or a list without a single row of A's, and A's data is unchanged afterwards.

Seed 000's routes (jobs, metrics, search) are attacked in test_company_identity.py, SQL in test_sql_corpus.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.security import Role
from tests.helpers import wait_for
from tests.integration.predictions_env import TENANT, auth

pytestmark = pytest.mark.integration
P = "/v1/sol-cod"
B = "intruder-co"


@pytest.fixture(scope="module")
def a_data(api, cohort):
    """One completed prediction, a schedule, an export and three call rows, all of tenant A."""
    user = cohort[2].user_id
    me = auth(api, Role.REGULAR_USER, user)
    pid = api.post(f"{P}/predict", json={"userId": user}, headers=me).json()["data"]["predictionId"]
    done = wait_for(lambda: (d := api.get(f"{P}/predictions/{pid}", headers=me).json()["data"])["status"]
                    == "COMPLETED" and d, 30, "A's prediction")
    staff = auth(api, Role.MEDICAL_PROFESSIONAL, "doc-a")
    debate = api.get(f"{P}/debates/{done['debateInfo']['sessionId']}", headers=staff).json()["data"]
    goal = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    sched = api.put(f"{P}/schedules/update", json={"userId": user, "newBedtimeGoal": goal, "forceReschedule": True},
                    headers=auth(api, Role.IAM_ADMIN, "adm-a")).json()["data"]
    export = api.get(f"{P}/users/me/data-export", headers=me).json()["data"]
    svc = auth(api, Role.SERVICE_ACCOUNT, "gw-a")
    ids = [f"a-secret-call-{i}" for i in range(3)]
    events = [{"api_call_history_id": i, "method": "GET", "path": "/a/private", "status_code": 200, "latency_ms": 1}
              for i in ids]
    assert api.post("/v1/call-histories", json=events, headers=svc).status_code == 202
    wait_for(lambda: len(api.get("/v1/call-histories?path=/a/private", headers=svc).json()["items"]) == 3, 30,
             "A's call rows")
    return {"user": user, "pid": pid, "session": done["debateInfo"]["sessionId"],
            "analysis": debate["analyses"][0]["analysisId"], "schedule": sched["scheduleId"],
            "export": export["exportId"], "calls": ids}


def _cod(r, status: int, code: str) -> None:
    body = r.json()
    assert r.status_code == status and body["success"] is False and body["error"]["code"] == code, r.text


@pytest.mark.parametrize("role", [Role.IAM_ADMIN, Role.MEDICAL_PROFESSIONAL, Role.SERVICE_ACCOUNT])
def test_another_tenants_staff_find_nothing_of_tenant_a_by_id(api, a_data, role):
    them = auth(api, role, "mallory", tenant=B)
    for path in (f"/predictions/{a_data['pid']}", f"/recommendations/{a_data['pid']}",
                 f"/debates/{a_data['session']}", f"/analyses/expert/{a_data['analysis']}"):
        _cod(api.get(P + path, headers=them), 404, "COD_004")


def test_another_tenants_staff_list_nothing_of_tenant_a(api, a_data):
    admin = auth(api, Role.IAM_ADMIN, "mallory", tenant=B)
    history = api.get(f"{P}/predictions/history?userId={a_data['user']}", headers=admin).json()["data"]
    assert history["predictions"] == [] and history["pagination"]["total"] == 0
    users = api.get(f"{P}/admin/users/{a_data['user']}/predictions", headers=admin).json()["data"]
    assert users["predictions"] == [] and users["total"] == 0
    _cod(api.get(f"{P}/schedules/current?userId={a_data['user']}", headers=admin), 404, "COD_S001")
    overview = api.get(f"{P}/performance/overview", headers=admin).json()["data"]
    assert a_data["pid"] not in str(overview)
    calls = api.get("/v1/call-histories?path=/a/private", headers=auth(api, Role.IAM_ADMIN, "m", tenant=B)).json()
    assert calls["items"] == []
    r = api.get(f"/v1/call-histories?tenant_id={TENANT}", headers=auth(api, Role.IAM_ADMIN, "m", tenant=B))
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    for call_id in a_data["calls"]:
        r = api.get(f"/v1/call-histories/{call_id}", headers=auth(api, Role.SERVICE_ACCOUNT, "m", tenant=B))
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    stats = api.get("/v1/call-histories/stats", headers=auth(api, Role.IAM_ADMIN, "m", tenant=B)).json()
    assert "/a/private" not in str(stats)


def test_another_tenants_admin_changes_nothing_of_tenant_a(api, a_data):
    admin = auth(api, Role.IAM_ADMIN, "mallory", tenant=B)
    _cod(api.delete(f"{P}/schedules/{a_data['schedule']}", headers=admin), 404, "COD_004")
    _cod(api.post(f"{P}/admin/users/{a_data['user']}/archive", json={"reason": "x"}, headers=admin), 404, "COD_004")
    first = api.request("DELETE", f"{P}/admin/users/{a_data['user']}/data", json={"reason": "x"}, headers=admin)
    code = first.json()["error"]["details"]["confirmationCode"]
    api.request("DELETE", f"{P}/admin/users/{a_data['user']}/data", json={"reason": "x", "confirmationCode": code},
                headers=admin)  # erases tenant B's rows of that user id: there are none
    mine = auth(api, Role.REGULAR_USER, a_data["user"])
    assert api.get(f"{P}/predictions/{a_data['pid']}", headers=mine).json()["data"]["status"] == "COMPLETED"
    current = api.get(f"{P}/schedules/current?userId={a_data['user']}", headers=auth(api, Role.IAM_ADMIN, "a"))
    assert current.json()["data"]["scheduleId"] == a_data["schedule"]
    svc = auth(api, Role.SERVICE_ACCOUNT, "gw-a")
    assert len(api.get("/v1/call-histories?path=/a/private", headers=svc).json()["items"]) == 3


def test_a_regular_user_reaches_no_one_elses_data(api, a_data, cohort):
    other = auth(api, Role.REGULAR_USER, cohort[0].user_id)  # same tenant, another user
    stranger = auth(api, Role.REGULAR_USER, a_data["user"], tenant=B)  # the same user id in another tenant
    for who in (other, stranger):
        _cod(api.get(f"{P}/predictions/{a_data['pid']}", headers=who), 404, "COD_004")
        _cod(api.get(f"{P}/recommendations/{a_data['pid']}", headers=who), 404, "COD_004")
        _cod(api.get(f"{P}/users/me/data-export/{a_data['export']}", headers=who), 404, "COD_004")
        _cod(api.get(f"{P}/users/me/data-export/{a_data['export']}/download", headers=who), 404, "COD_004")
        history = api.get(f"{P}/predictions/history?userId={a_data['user']}", headers=who).json()["data"]
        assert a_data["pid"] not in [p["predictionId"] for p in history["predictions"]]
    r = api.get("/v1/call-histories", headers=other)
    assert r.status_code == 403  # call histories are for staff of the tenant
