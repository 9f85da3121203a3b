"""Seed 004 on the real broker and a real worker: the access matrix (75 cells x 2 prefixes), the envelope,
every error code a request can trigger, and predict -> COMPLETED with rounds, analyses, recommendations."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from api.cod_envelope import MATRIX, PREFIXES
from pipeline.security import Role, mint_token
from tests.helpers import wait_for
from tests.integration.predictions_env import TENANT, auth, envelope_ok

pytestmark = pytest.mark.integration


# --- the access matrix: 15 routes x 5 roles, under both prefixes -----------------------------------------

def _seed_routes() -> list[tuple[str, str, str, dict | None]]:
    goal = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    return [
        ("predict", "POST", "/predict", {"userId": "matrix-user"}),
        ("prediction", "GET", "/predictions/pred_unknown", None),
        ("history", "GET", "/predictions/history", None),
        ("schedule_current", "GET", "/schedules/current", None),
        ("schedule_update", "PUT", "/schedules/update", {"userId": "matrix-user", "newBedtimeGoal": goal}),
        ("schedule_delete", "DELETE", "/schedules/sched_unknown", None),
        ("debate", "GET", "/debates/debate_unknown", None),
        ("analysis", "GET", "/analyses/expert/analysis_unknown", None),
        ("recommendations", "GET", "/recommendations/pred_unknown", None),
        ("performance_overview", "GET", "/performance/overview", None),
        ("performance_agents", "GET", "/performance/agents", None),
        ("admin_user_predictions", "GET", "/admin/users/matrix-user/predictions", None),
        ("admin_archive", "POST", "/admin/users/matrix-user/archive", {"reason": "USER_INACTIVE_6_MONTHS"}),
        ("admin_delete", "DELETE", "/admin/users/matrix-user/data", {"reason": "USER_REQUEST_GDPR"}),
        ("data_export", "GET", "/users/me/data-export", None),
    ]


CELLS = [(prefix, route, role) for prefix in PREFIXES for route in _seed_routes() for role in Role]


@pytest.mark.parametrize(("prefix", "route", "role"), CELLS,
                         ids=[f"{p.split('/')[-1]}-{r[0]}-{role.value}" for p, r, role in CELLS])
def test_access_matrix_cell(api, prefix, route, role):
    key, method, path, body = route
    allowed, denial = MATRIX[key]
    user = "matrix-user" if role is Role.REGULAR_USER else "staff"
    r = api.request(method, prefix + path, json=body, headers=auth(api, role, user))
    payload = r.json()
    envelope_ok(payload)
    if role in allowed:
        assert r.status_code != 403 and r.status_code != 401, payload
    else:
        assert r.status_code == 403 and payload["error"]["code"] == denial, payload


def test_the_matrix_covers_the_seed_exactly():
    assert len(_seed_routes()) == 15 and len([c for c in CELLS if c[0] == PREFIXES[0]]) == 75


# --- tokens --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("prefix", PREFIXES)
def test_missing_expired_and_tampered_tokens_are_cod_002(api, prefix):
    url = f"{prefix}/predictions/history"
    key = api.settings.jwt_key()
    expired = jwt.encode({"sub": "u1", "tenant": TENANT, "roles": ["regular_user"], "exp": int(time.time()) - 5},
                         key, algorithm="HS256")
    good = mint_token(key, "u1", TENANT, [Role.REGULAR_USER])
    head, claims, sig = good.split(".")
    tampered = f"{head}.{claims[:-2]}{'A' if claims[-2] != 'A' else 'B'}{claims[-1]}.{sig}"
    for headers in ({}, {"Authorization": f"Bearer {expired}"}, {"Authorization": f"Bearer {tampered}"},
                    {"Authorization": "Basic dXNlcjpwYXNz"}):
        r = api.get(url, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "COD_002", (headers, r.text)
        envelope_ok(r.json())


# --- the happy path, end to end -----------------------------------------------------------------------

def _predict(api, user: str, role: Role = Role.REGULAR_USER, **body) -> dict:
    r = api.post("/v1/sol-cod/predict", json={"userId": user, **body}, headers=auth(api, role, user))
    assert r.status_code == 202, r.text
    return r.json()


def _completed(api, user: str, prediction_id: str) -> dict:
    def done() -> dict | None:
        data = api.get(f"/v1/sol-cod/predictions/{prediction_id}", headers=auth(api, Role.REGULAR_USER, user)).json()
        return data if data["data"]["status"] != "IN_PROGRESS" else None

    return wait_for(done, 30, f"{prediction_id} settled", interval_s=0.05)


def test_predict_completes_with_rounds_analyses_and_recommendations(api, cohort):
    user = cohort[0].user_id
    r = _predict(api, user)
    assert r["data"]["status"] == "IN_PROGRESS", r
    assert r["data"]["participatingAgents"] == 4 and r["data"]["dataCompleteness"]["sleepDays"] >= 3
    envelope_ok(r)
    pid = r["data"]["predictionId"]
    done = _completed(api, user, pid)["data"]
    assert done["status"] == "COMPLETED" and done["result"]["consensusReached"] in (True, False)
    assert 0 < done["result"]["solScore"] < 180 and done["debateInfo"]["totalRounds"] >= 1
    interval = done["result"]["predictionInterval"]
    assert interval["level"] == 0.8 and interval["lower"] < done["result"]["solScore"] < interval["upper"]
    assert set(done["result"]["baselines"]) == {"plainAverage", "lastNight", "mean7", "median7"}
    assert done["result"]["baselines"]["median7"] > 0
    staff = auth(api, Role.MEDICAL_PROFESSIONAL, "doc")
    debate = api.get(f"/v1/sleep-quality-cod/debates/{done['debateInfo']['sessionId']}", headers=staff).json()["data"]
    assert debate["judge"]["aggregation"] == "skill_weighted_log_mean"
    assert debate["judge"]["firstRoundSol"] > 0 and set(debate["judge"]["expertWeights"]) == {
        "SLEEP_PATTERN", "CBTI", "QUESTIONNAIRE", "MOBILE_ANALYTICS"}
    assert [rd["roundNumber"] for rd in debate["rounds"]] == list(range(1, done["debateInfo"]["totalRounds"] + 1))
    assert {o["agentType"] for o in debate["rounds"][0]["expertOpinions"]} == {
        "SLEEP_PATTERN", "CBTI", "QUESTIONNAIRE", "MOBILE_ANALYTICS"}
    assert set(debate["qualityMetrics"]) >= {"averageRoundTime", "opinionVariance", "convergenceRate",
                                             "participationBalance"}
    analysis_id = debate["analyses"][0]["analysisId"]
    analysis = api.get(f"/v1/sol-cod/analyses/expert/{analysis_id}", headers=staff).json()["data"]
    assert analysis["predictionId"] == pid and analysis["llmInfo"]["model"] == "rules"
    recs = api.get(f"/v1/sol-cod/recommendations/{pid}", headers=auth(api, Role.REGULAR_USER, user)).json()["data"]
    assert recs["totalRecommendations"] == len(recs["recommendations"]) > 0
    assert all(rec["rationale"] and rec["actionSteps"] for rec in recs["recommendations"])
    history = api.get("/v1/sol-cod/predictions/history", headers=auth(api, Role.REGULAR_USER, user)).json()["data"]
    assert pid in [p["predictionId"] for p in history["predictions"]]
    assert history["summary"]["totalPredictions"] == history["pagination"]["total"] >= 1


def test_a_regular_user_sees_only_their_own_prediction(api, cohort):
    owner, other = cohort[1].user_id, cohort[2].user_id
    pid = _predict(api, owner)["data"]["predictionId"]
    _completed(api, owner, pid)
    r = api.get(f"/v1/sol-cod/predictions/{pid}", headers=auth(api, Role.REGULAR_USER, other))
    assert r.status_code == 404 and r.json()["error"]["code"] == "COD_004"  # existence does not leak
    r = api.get(f"/v1/sol-cod/predictions/{pid}", headers=auth(api, Role.IAM_ADMIN, "adm", tenant="other"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "COD_004"  # nor across tenants
    r = api.post("/v1/sol-cod/predict", json={"userId": owner}, headers=auth(api, Role.REGULAR_USER, other))
    assert r.status_code == 403 and r.json()["error"]["code"] == "COD_003"
