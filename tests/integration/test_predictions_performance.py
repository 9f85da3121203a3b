"""Seed 004 §4 and §5.1 from stored results: accuracy against the diary SOL the user later records."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from pipeline.security import Role, mint_token
from tests.helpers import wait_for

pytestmark = pytest.mark.integration
TENANT = "perf"
NIGHT = {"bedtime": "23:00", "lights_off": "23:10", "awakenings": 1, "waso_minutes": 10, "wake_time": "06:40",
         "time_in_bed_minutes": 450, "total_sleep_minutes": 390}


def auth(client, role: Role, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(client.settings.jwt_key(), user, TENANT, [role])}"}


def diary(user: str, day: date, sol: float) -> dict:
    return {"user_id": user, "kind": "diary", "date": day.isoformat(), "data": NIGHT | {"sol_minutes": sol}}


def send(api, records: list[dict]) -> None:
    r = api.post("/v1/sol-cod/sleep-records", json=records, headers=auth(api, Role.SERVICE_ACCOUNT, "svc"))
    assert r.status_code == 202, r.text


def stored(api, user: str, n: int) -> None:
    cur = api.app.state.services.store.con.cursor()
    wait_for(lambda: cur.execute("SELECT count(*) FROM sleep_records WHERE tenant = ? AND user_id = ?",
                                 [TENANT, user]).fetchone()[0] >= n, 30, f"{user}'s {n} records")


def predicted(api, user: str) -> dict:
    headers = auth(api, Role.REGULAR_USER, user)
    pid = api.post("/v1/sol-cod/predict", json={"userId": user}, headers=headers).json()["data"]["predictionId"]
    return wait_for(lambda: (d := api.get(f"/v1/sol-cod/predictions/{pid}", headers=headers).json()["data"])
                    ["status"] == "COMPLETED" and d, 30, "completed")


def test_accuracy_is_measured_against_the_night_the_user_then_records(api):
    start = date(2026, 10, 1)
    steady = [diary("steady", start + timedelta(days=i), 30) for i in range(7)]
    erratic = [diary("erratic", start + timedelta(days=i), s) for i, s in enumerate((10, 70, 15, 80, 12, 75, 20))]
    send(api, steady + erratic)
    stored(api, "steady", 7)
    stored(api, "erratic", 7)
    good, bad = predicted(api, "steady"), predicted(api, "erratic")
    night = start + timedelta(days=7)  # the night after the last diary entry: what was predicted
    send(api, [diary("steady", night, good["result"]["solScore"] + 3),  # within ±10 min: accurate
               diary("erratic", night, bad["result"]["solScore"] + 60)])  # an hour off: not accurate
    stored(api, "steady", 8)
    stored(api, "erratic", 8)
    ops = auth(api, Role.SERVICE_ACCOUNT, "ops")
    overview = api.get("/v1/sol-cod/performance/overview?period=30d", headers=ops).json()["data"]
    assert overview["overall"]["totalPredictions"] == 2 and overview["overall"]["successRate"] == 1.0
    assert overview["overall"]["observedPredictions"] == 2 and overview["overall"]["averageAccuracy"] == 0.5
    assert sum(p["count"] for p in overview["trends"]["predictionVolume"]) == 2
    agents = api.get("/v1/sleep-quality-cod/performance/agents?period=7d", headers=ops).json()["data"]
    assert {a["agentType"] for a in agents["agents"]} == {"SLEEP_PATTERN", "CBTI", "QUESTIONNAIRE",
                                                          "MOBILE_ANALYTICS"}
    assert all(a["metrics"]["totalAnalyses"] == 2 for a in agents["agents"])
    assert sorted(agents["comparison"]["overallRanking"]) == sorted(a["agentType"] for a in agents["agents"])
    one = api.get("/v1/sol-cod/performance/agents?agentType=CBTI", headers=ops).json()["data"]
    assert [a["agentType"] for a in one["agents"]] == ["CBTI"]
    # The admin view of one user, with details: rounds, analyses and recommendations of each prediction.
    doc = auth(api, Role.MEDICAL_PROFESSIONAL, "doc")
    user = api.get("/v1/sol-cod/admin/users/steady/predictions?includeDetails=true", headers=doc).json()["data"]
    assert user["total"] == 1 and user["predictions"][0]["debateRounds"] and user["predictions"][0]["analyses"]
    assert user["predictions"][0]["recommendations"]["totalRecommendations"] > 0
