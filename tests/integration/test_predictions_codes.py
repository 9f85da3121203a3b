"""Every seed-004 error code a request can trigger, triggered; archive/restore, two-step erasure, export;
the scheduler triggering AUTO_SCHEDULE predictions and retrying."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import orjson
import pytest

from api.publish import Publisher
from pipeline.broker.embedded import free_port
from pipeline.broker.topics import PREDICTIONS_REQUESTS
from pipeline.predictions.features import completeness
from pipeline.security import Role
from schemas.predictions import PredictionRequest, TriggerType
from schemas.sleep import DataSnapshot
from tests.helpers import wait_for
from tests.integration.predictions_env import TENANT, auth, envelope_ok

pytestmark = pytest.mark.integration
P = "/v1/sol-cod"
DIARY = {"bedtime": "23:00", "lights_off": "23:10", "sol_minutes": 40, "awakenings": 1, "waso_minutes": 10,
         "wake_time": "06:40", "time_in_bed_minutes": 460, "total_sleep_minutes": 400}


def code_of(r, status: int, code: str) -> dict:
    body = r.json()
    envelope_ok(body)
    assert r.status_code == status and body["error"]["code"] == code, (r.status_code, body)
    return body["error"]


def send_records(api, user: str, nights: int, treatment: dict | None = None) -> None:
    records = [{"user_id": user, "kind": "diary", "date": (date(2026, 11, 1) + timedelta(days=i)).isoformat(),
                "data": DIARY} for i in range(nights)]
    if treatment is not None:
        records.append({"user_id": user, "kind": "treatment", "date": "2026-11-01", "data": treatment})
    r = api.post(f"{P}/sleep-records", json=records, headers=auth(api, Role.SERVICE_ACCOUNT, "svc"))
    assert r.status_code == 202, r.text
    want = nights + (treatment is not None)

    def stored() -> bool:
        cur = api.app.state.services.store.con.cursor()
        return cur.execute("SELECT count(*) FROM sleep_records WHERE user_id = ?", [user]).fetchone()[0] >= want

    wait_for(stored, 30, f"{user}'s records")


def settle(api, user: str, pid: str) -> dict:
    def done() -> dict | None:
        d = api.get(f"{P}/predictions/{pid}", headers=auth(api, Role.REGULAR_USER, user)).json()["data"]
        return d if d["status"] != "IN_PROGRESS" else None

    return wait_for(done, 40, f"{pid} settled", interval_s=0.05)


def test_cod_001_invalid_body_or_parameter(api):
    user = auth(api, Role.REGULAR_USER, "u1")
    code_of(api.post(f"{P}/predict", json={"userId": "u1", "bogus": 1}, headers=user), 400, "COD_001")
    code_of(api.post(f"{P}/predict", content=b"{not json", headers=user | {"content-type": "application/json"}),
            400, "COD_001")
    code_of(api.get(f"{P}/predictions/history?limit=500", headers=user), 400, "COD_001")
    code_of(api.get(f"{P}/predictions/history?status=DONE", headers=user), 400, "COD_001")
    code_of(api.post(f"{P}/sleep-records", json={"kind": "diary", "date": "2026-11-01", "data": {}}, headers=user),
            400, "COD_001")


def test_cod_004_unknown_resources_and_routes(api):
    staff = auth(api, Role.SYSTEM_ADMIN, "root")
    for path in ("/predictions/pred_nope", "/debates/debate_nope", "/analyses/expert/analysis_nope",
                 "/recommendations/pred_nope", "/no/such/route"):
        code_of(api.get(P + path, headers=staff), 404, "COD_004")


def test_cod_p001_too_little_data_names_what_is_missing(api):
    send_records(api, "sparse", 2)
    err = code_of(api.post(f"{P}/predict", json={"userId": "sparse"}, headers=auth(api, Role.REGULAR_USER, "sparse")),
                  422, "COD_P001")
    assert err["details"]["current"].startswith("2") and set(err["details"]) == {"required", "current", "suggestion"}


def test_cod_p005_one_prediction_at_a_time_unless_forced(api, cohort):
    user = cohort[2].user_id
    headers = auth(api, Role.REGULAR_USER, user)
    first = api.post(f"{P}/predict", json={"userId": user}, headers=headers).json()["data"]["predictionId"]
    err = code_of(api.post(f"{P}/predict", json={"userId": user}, headers=headers), 409, "COD_P005")
    assert err["details"]["activePredictionId"] == first
    forced = api.post(f"{P}/predict", json={"userId": user, "options": {"forceExecution": True}}, headers=headers)
    assert forced.status_code == 202
    for pid in (first, forced.json()["data"]["predictionId"]):
        assert settle(api, user, pid)["status"] == "COMPLETED"


def test_cod_005_when_the_request_cannot_be_published(api, cohort, monkeypatch):
    nobody = Publisher(api.settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"}))
    monkeypatch.setattr(api.app.state.services.predictor, "publisher", nobody)  # a broker nobody answers at
    user = cohort[0].user_id
    started = time.monotonic()
    r = api.post(f"{P}/predict", json={"userId": user, "options": {"forceExecution": True}},
                 headers=auth(api, Role.REGULAR_USER, user))
    code_of(r, 503, "COD_005")  # the seed's code for a system error; HTTP says it is worth a retry
    assert r.headers["Retry-After"] and time.monotonic() - started < api.settings.publish_timeout_s + 1.5
    monkeypatch.undo()
    cur = api.app.state.services.store.con.cursor()
    row = cur.execute("SELECT status, error_code FROM predictions WHERE user_id = ? ORDER BY created_at DESC LIMIT 1",
                      [user]).fetchone()
    assert row == ("FAILED", "COD_005")  # the row it wrote first does not stay IN_PROGRESS


def test_cod_p002_a_prediction_nobody_finishes_times_out(api):
    cur = api.app.state.services.store.con.cursor()
    cur.execute("INSERT INTO predictions (prediction_id, tenant, user_id, status, created_at, trigger_type) "
                "VALUES ('pred_stuck', ?, 'stuck', 'IN_PROGRESS', now() - INTERVAL 40 SECOND, 'MANUAL_REQUEST')",
                [TENANT])
    d = settle(api, "stuck", "pred_stuck")
    assert d["status"] == "FAILED" and d["error"]["code"] == "COD_P002"


def test_cod_p003_a_debate_that_cannot_proceed_fails(api):
    """A request whose snapshot holds nothing at all (produced by hand): the worker fails it with COD_P003."""
    now = datetime.now(UTC)
    empty = DataSnapshot(tenant=TENANT, user_id="ghost")
    req = PredictionRequest(prediction_id="pred_ghost", session_id="debate_ghost", tenant=TENANT, user_id="ghost",
                            trigger_type=TriggerType.MANUAL_REQUEST, requested_by="test", requested_at=now,
                            deadline=now + timedelta(seconds=25), completeness=completeness(empty), snapshot=empty)
    api.app.state.services.store.con.cursor().execute(
        "INSERT INTO predictions (prediction_id, tenant, user_id, status, created_at, trigger_type, session_id) "
        "VALUES ('pred_ghost', ?, 'ghost', 'IN_PROGRESS', now(), 'MANUAL_REQUEST', 'debate_ghost')", [TENANT])

    async def publish() -> None:
        await api.app.state.services.publisher.send(PREDICTIONS_REQUESTS, req.model_dump_json().encode())

    api.portal.call(publish)
    d = settle(api, "ghost", "pred_ghost")
    assert d["status"] == "FAILED" and d["error"]["code"] == "COD_P003"


def test_schedule_codes_s001_s003_s004(api):
    staff = auth(api, Role.SERVICE_ACCOUNT, "svc")
    code_of(api.get(f"{P}/schedules/current?userId=no-treatment", headers=staff), 404, "COD_S001")
    send_records(api, "paused", 3, {"phase": "MID", "bedtime_goal": "23:00", "timezone": "Asia/Seoul",
                                    "paused": True})
    goal = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    code_of(api.put(f"{P}/schedules/update", json={"userId": "paused", "newBedtimeGoal": goal}, headers=staff),
            409, "COD_S004")
    send_records(api, "resched", 3, {"phase": "MID", "bedtime_goal": "23:00", "timezone": "Asia/Seoul"})
    current = api.get(f"{P}/schedules/current?userId=resched", headers=staff).json()["data"]
    assert current["status"] == "SCHEDULED" and current["timezone"] == "Asia/Seoul"
    bedtime = datetime.fromisoformat(current["bedtimeGoal"])
    trigger = datetime.fromisoformat(current["scheduledTriggerTime"])
    assert bedtime - trigger == timedelta(hours=1)  # the seed's example: 23:00 -> 22:00
    assert bedtime.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Seoul")).strftime("%H:%M") == "23:00"
    code_of(api.put(f"{P}/schedules/update", json={"userId": "resched", "newBedtimeGoal": goal}, headers=staff),
            409, "COD_S003")
    moved = api.put(f"{P}/schedules/update", json={"userId": "resched", "newBedtimeGoal": goal,
                                                    "forceReschedule": True}, headers=staff).json()["data"]
    assert moved["previousScheduleId"] == current["scheduleId"] and moved["status"] == "SCHEDULED"
    gone = api.delete(f"{P}/schedules/{moved['scheduleId']}", headers=staff).json()["data"]
    assert gone["status"] == "CANCELLED"


def test_cancels_and_reschedules_of_one_schedule_at_once_are_answered_and_leave_one_schedule(api):
    # Two writers updating one row at once: DuckDB lets one commit and tells the other "Conflict on update". That
    # loser was answered with a 500 (COD_005) until the writes were retried; the fuzzer's two workers found it.
    staff = auth(api, Role.SERVICE_ACCOUNT, "svc")
    send_records(api, "racer", 3, {"phase": "MID", "bedtime_goal": "23:00", "timezone": "Asia/Seoul"})
    for day in range(2, 6):
        sid = api.get(f"{P}/schedules/current?userId=racer", headers=staff).json()["data"]["scheduleId"]
        goal = (datetime.now(UTC) + timedelta(days=day)).isoformat()
        body = {"userId": "racer", "newBedtimeGoal": goal, "forceReschedule": True, "reason": "race"}
        with ThreadPoolExecutor(8) as pool:
            cancels = [pool.submit(api.delete, f"{P}/schedules/{sid}", headers=staff) for _ in range(6)]
            moves = [pool.submit(api.put, f"{P}/schedules/update", json=body, headers=staff) for _ in range(2)]
        for r in (f.result() for f in cancels + moves):
            assert r.status_code == 200, r.text
            envelope_ok(r.json())
        cur = api.app.state.services.store.con.cursor()
        rows = cur.execute("SELECT schedule_id, status FROM prediction_schedules WHERE user_id = 'racer' AND status "
                           "IN ('SCHEDULED', 'RETRYING')").fetchall()
        assert len(rows) == 1 and rows[0][0] != sid, rows  # the cancelled one is gone, the new goal's is active
        assert cur.execute("SELECT status FROM prediction_schedules WHERE schedule_id = ?", [sid]).fetchone()[0] \
            == "CANCELLED"


def test_the_scheduler_triggers_auto_schedule_predictions_and_retries(api, cohort):
    staff = auth(api, Role.SERVICE_ACCOUNT, "svc")
    lead = timedelta(seconds=api.settings.schedule_lead_s)
    user = cohort[1].user_id
    goal = (datetime.now(UTC) + lead + timedelta(seconds=1)).isoformat()
    sched = api.put(f"{P}/schedules/update", json={"userId": user, "newBedtimeGoal": goal, "forceReschedule": True},
                    headers=staff).json()["data"]

    def fired() -> dict | None:
        cur = api.app.state.services.store.con.cursor()
        row = cur.execute("SELECT status, last_prediction_id FROM prediction_schedules WHERE schedule_id = ?",
                          [sched["scheduleId"]]).fetchone()
        return row if row[0] == "TRIGGERED" else None

    _, pid = wait_for(fired, 30, "the schedule to trigger")
    d = settle(api, user, pid)
    assert d["status"] == "COMPLETED" and d["triggerType"] == "AUTO_SCHEDULE"
    # Too little data: the trigger is refused (COD_P001), retried once, then the schedule fails.
    send_records(api, "thin", 1, {"phase": "EARLY", "bedtime_goal": "23:00", "timezone": "UTC"})
    goal = (datetime.now(UTC) + lead + timedelta(seconds=1)).isoformat()
    thin = api.put(f"{P}/schedules/update", json={"userId": "thin", "newBedtimeGoal": goal, "forceReschedule": True},
                   headers=staff).json()["data"]

    def failed() -> tuple | None:
        row = api.app.state.services.store.con.cursor().execute(
            "SELECT status, retry_count, last_error FROM prediction_schedules WHERE schedule_id = ?",
            [thin["scheduleId"]]).fetchone()
        return row if row[0] == "FAILED" else None

    status, retries, error = wait_for(failed, 30, "retries to run out")
    assert retries == api.settings.schedule_max_retries and error.startswith("COD_P001")


def test_archive_then_restore_moves_a_users_data_out_and_back(api):
    send_records(api, "archivist", 4)
    user_h, admin = auth(api, Role.REGULAR_USER, "archivist"), auth(api, Role.IAM_ADMIN, "adm")
    pid = api.post(f"{P}/predict", json={"userId": "archivist"}, headers=user_h).json()["data"]["predictionId"]
    assert settle(api, "archivist", pid)["status"] == "COMPLETED"
    r = api.post(f"{P}/admin/users/archivist/archive", json={"reason": "USER_INACTIVE_6_MONTHS",
                                                             "archiveDate": "2026-12-01"}, headers=admin)
    moved = r.json()["data"]["rowsArchived"]
    assert r.status_code == 200 and moved["predictions"] == 1 and moved["sleep_records"] == 4
    code_of(api.get(f"{P}/predictions/{pid}", headers=user_h), 404, "COD_004")
    r = api.post(f"{P}/admin/users/archivist/restore", json={}, headers=admin)
    assert r.status_code == 200 and r.json()["data"]["rowsRestored"]["predictions"] == 1
    assert api.get(f"{P}/predictions/{pid}", headers=user_h).json()["data"]["status"] == "COMPLETED"
    code_of(api.post(f"{P}/admin/users/archivist/restore", json={}, headers=admin), 404, "COD_004")


def test_cod_d001_and_d002_when_the_move_fails(api):
    send_records(api, "fragile", 3)
    admin = auth(api, Role.SYSTEM_ADMIN, "root")
    db = api.app.state.services.store.con
    db.execute("ALTER TABLE archive_sleep_records RENAME TO archive_sleep_records_away")
    try:
        code_of(api.post(f"{P}/admin/users/fragile/archive", json={"reason": "X"}, headers=admin), 500, "COD_D001")
    finally:
        db.execute("ALTER TABLE archive_sleep_records_away RENAME TO archive_sleep_records")
    assert db.cursor().execute("SELECT count(*) FROM sleep_records WHERE user_id = 'fragile'").fetchone()[0] == 3
    assert api.post(f"{P}/admin/users/fragile/archive", json={"reason": "X"}, headers=admin).status_code == 200
    db.execute("ALTER TABLE sleep_records RENAME TO sleep_records_away")
    try:
        code_of(api.post(f"{P}/admin/users/fragile/restore", json={}, headers=admin), 500, "COD_D002")
    finally:
        db.execute("ALTER TABLE sleep_records_away RENAME TO sleep_records")
    assert api.post(f"{P}/admin/users/fragile/restore", json={}, headers=admin).status_code == 200


def test_erasure_needs_a_confirmation_then_removes_the_user_everywhere_for_good(api):
    send_records(api, "leaver", 3)
    bad = {"user_id": "leaver", "kind": "diary", "date": "2026-11-09", "data": {"bedtime": "99:99"}}
    async def send_bad() -> None:
        await api.app.state.services.publisher.send("sleep.records", orjson.dumps({"tenant": TENANT, **bad}))

    api.portal.call(send_bad)
    cur = api.app.state.services.store.con.cursor()
    wait_for(lambda: cur.execute("SELECT count(*) FROM dead_letters WHERE decode(value) LIKE '%leaver%'").fetchone()[0],
             30, "the leaver's dead letter")
    admin = auth(api, Role.IAM_ADMIN, "adm")
    url = f"{P}/admin/users/leaver/data"
    code_of(api.request("DELETE", url, json={"reason": "USER_REQUEST_GDPR", "cascadeDelete": False}, headers=admin),
            422, "COD_D004")
    err = code_of(api.request("DELETE", url, json={"reason": "USER_REQUEST_GDPR"}, headers=admin), 422, "COD_D004")
    code = err["details"]["confirmationCode"]
    code_of(api.request("DELETE", url, json={"reason": "USER_REQUEST_GDPR", "confirmationCode": "DELETE_CONFIRM_X"},
                        headers=admin), 422, "COD_D004")
    r = api.request("DELETE", url, json={"reason": "USER_REQUEST_GDPR", "confirmationCode": code}, headers=admin)
    assert r.status_code == 200 and r.json()["data"]["rowsDeleted"]["sleep_records"] == 3
    assert r.json()["data"]["rowsDeleted"]["dead_letters"] == 1
    # The code was one-time; the user's new records are never materialized again.
    code_of(api.request("DELETE", url, json={"reason": "R", "confirmationCode": code}, headers=admin), 422, "COD_D004")
    send_records_unchecked = api.post(f"{P}/sleep-records", json=[{"user_id": "leaver", "kind": "diary",
                                                                   "date": "2026-11-20", "data": DIARY}],
                                      headers=auth(api, Role.SERVICE_ACCOUNT, "svc"))
    assert send_records_unchecked.status_code == 202
    send_records(api, "after-leaver", 1)  # a later record of someone else is stored: the stream went on
    assert cur.execute("SELECT count(*) FROM sleep_records WHERE user_id = 'leaver'").fetchone()[0] == 0
    assert cur.execute("SELECT count(*) FROM erasures WHERE user_id = 'leaver'").fetchone()[0] == 1


def test_one_confirmation_code_sent_by_several_requests_at_once_erases_once_and_refuses_the_rest(api):
    # Deleting one row from two cursors at once: DuckDB answers the loser "Conflict on tuple deletion", a 500
    # until the redeem was retried; retried, it finds the code used and gets the seed's COD_D004.
    admin = auth(api, Role.IAM_ADMIN, "adm")
    for n in range(3):
        user = f"twice-{n}"
        send_records(api, user, 1)
        url = f"{P}/admin/users/{user}/data"
        err = code_of(api.request("DELETE", url, json={"reason": "USER_REQUEST_GDPR"}, headers=admin), 422,
                      "COD_D004")
        body = {"reason": "USER_REQUEST_GDPR", "confirmationCode": err["details"]["confirmationCode"]}
        with ThreadPoolExecutor(4) as pool:
            sent = [pool.submit(api.request, "DELETE", url, json=body, headers=admin) for _ in range(4)]
        answers = [f.result() for f in sent]
        assert sorted(r.status_code for r in answers) == [200, 422, 422, 422], [r.text for r in answers]
        for r in answers:
            envelope_ok(r.json())
            if r.status_code == 422:
                assert r.json()["error"]["code"] == "COD_D004" and r.json()["error"]["details"]["invalidCodeGiven"]


def test_my_data_export_is_asynchronous_and_downloads_json_and_csv(api, cohort):
    user = cohort[0].user_id
    headers = auth(api, Role.REGULAR_USER, user)
    made = api.post(f"{P}/predict", json={"userId": user, "options": {"forceExecution": True}}, headers=headers)
    settle(api, user, made.json()["data"]["predictionId"])  # a prediction of its own, whatever ran before it
    for fmt in ("JSON", "CSV"):
        r = api.get(f"/v1/sleep-quality-cod/users/me/data-export?format={fmt}&includeRawData=true", headers=headers)
        data = r.json()["data"]
        assert r.status_code == 202 and data["status"] == "IN_PROGRESS" and data["downloadUrl"] is None
        done = wait_for(lambda d=data: (x := api.get(f"/v1/sleep-quality-cod/users/me/data-export/{d['exportId']}",
                                                     headers=headers).json()["data"])["status"] == "COMPLETED" and x,
                        30, "export completed")
        body = api.get(done["downloadUrl"], headers=headers)
        assert body.status_code == 200
        if fmt == "JSON":
            doc = body.json()
            assert doc["userId"] == user and doc["sleepRecords"] and doc["predictions"]
        else:
            assert body.text.startswith("section,id,date") and "sleep_diary" in body.text
    other = auth(api, Role.REGULAR_USER, cohort[1].user_id)
    code_of(api.get(f"/v1/sleep-quality-cod/users/me/data-export/{data['exportId']}", headers=other), 404, "COD_004")
