"""Debates survive a worker's death: kill -9 one of two workers while 20 debates run; replayed rounds are
recorded once."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from kafka import KafkaProducer

from api.main import create_app
from pipeline.broker.kafka import ensure_topics
from pipeline.broker.topics import PREDICTIONS_RESULTS, PREDICTIONS_ROUNDS, SLEEP_RECORDS, pipeline_topics
from pipeline.predictions.flow import advance, first_round
from pipeline.security import Role
from pipeline.settings import Settings
from schemas.predictions import PredictionRequest
from simulators.sleep_cohort import generate_cohort
from tests.helpers import checked_client, start_cli, stop_process, wait_for
from tests.integration.conftest import env_for
from tests.integration.predictions_env import TENANT, auth

pytestmark = pytest.mark.integration
USERS = 20


@pytest.fixture
def two_workers(broker, tmp_path):
    s = Settings(kafka_bootstrap=broker.bootstrap, data_dir=tmp_path / "data", partitions=4,
                 topic_prefix=f"take{uuid.uuid4().hex[:8]}.", _env_file=None)
    asyncio.run(ensure_topics(broker.bootstrap, pipeline_topics(s)))
    workers = [start_cli(["worker"], env_for(s), tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        with checked_client(create_app(s)) as client:
            client.settings = s
            wait_for(lambda: len([w for w in client.get("/health").json()["worker"]["workers"] if w["alive"]]) == 2,
                     60, "two live workers")
            yield client, workers, tmp_path
    finally:
        for w in workers:
            stop_process(w)


def _rounds_by_session(api) -> dict[str, list[int]]:
    rows = api.app.state.services.store.con.cursor().execute(
        "SELECT session_id, list(round_number ORDER BY round_number) FROM debate_rounds GROUP BY 1").fetchall()
    return dict(rows)


def test_a_worker_killed_mid_debate_loses_nothing_and_records_no_round_twice(two_workers):
    api, workers, tmp = two_workers
    users = generate_cohort(USERS, days=14, seed=21, tenant=TENANT)
    producer = KafkaProducer(bootstrap_servers=api.settings.kafka_bootstrap, linger_ms=5)
    for u in users:
        producer.send(api.settings.topic(SLEEP_RECORDS), orjson.dumps([r.model_dump(mode="json") for r in u.records]),
                      key=u.user_id.encode())
    producer.flush()
    producer.close()
    total = sum(len(u.records) for u in users)
    cur = api.app.state.services.store.con.cursor()
    wait_for(lambda: cur.execute("SELECT count(*) FROM sleep_records").fetchone()[0] == total, 60, "all records")

    pids = []
    for i, u in enumerate(users):
        r = api.post("/v1/sol-cod/predict", json={"userId": u.user_id}, headers=auth(api, Role.REGULAR_USER, u.user_id))
        assert r.status_code == 202, r.text
        pids.append(r.json()["data"]["predictionId"])
        if i == USERS // 2:
            os.kill(workers[0].pid, signal.SIGKILL)  # mid-stream: some debates are between rounds on its partitions

    def settled() -> list | None:
        rows = cur.execute("SELECT status, total_rounds, session_id FROM predictions WHERE status <> 'IN_PROGRESS'"
                           ).fetchall()
        return rows if len(rows) == USERS else None

    rows = wait_for(settled, 40, "all 20 predictions settled", interval_s=0.2)
    assert [s for s, _, _ in rows] == ["COMPLETED"] * USERS
    rounds = _rounds_by_session(api)
    for _, total_rounds, session in rows:
        assert rounds[session] == list(range(1, total_rounds + 1)), (session, rounds[session])
    assert workers[0].poll() is not None


def test_a_replayed_round_message_is_recorded_once(api, cohort):
    """What a crash between 'round published' and 'offset committed' leaves behind: the same round twice."""
    user = cohort[0].user_id
    pid = api.post("/v1/sol-cod/predict", json={"userId": user, "options": {"forceExecution": True}},
                   headers=auth(api, Role.REGULAR_USER, user)).json()["data"]["predictionId"]
    cur = api.app.state.services.store.con.cursor()
    wait_for(lambda: cur.execute("SELECT status FROM predictions WHERE prediction_id = ?", [pid]).fetchone()[0]
             == "COMPLETED", 30, "the prediction completed")
    # Rebuild round 2's input exactly as the worker did, and deliver it twice more.
    snapshot_row = cur.execute("SELECT session_id, total_rounds FROM predictions WHERE prediction_id = ?",
                               [pid]).fetchone()
    session, total_rounds = snapshot_row
    before = _rounds_by_session(api)[session]
    request = _request_like(api, user, pid, session)
    _, second = advance(first_round(request), lambda: datetime.now(UTC))
    message = (second or first_round(request)).model_dump_json().encode()

    async def replay() -> None:
        for _ in range(2):
            await api.app.state.services.publisher.send(PREDICTIONS_ROUNDS, message, session.encode())

    results = api.settings.topic(PREDICTIONS_RESULTS)

    def materialized() -> int:  # how far the materializer has read predictions.results
        return cur.execute("SELECT coalesce(sum(next_offset), 0) FROM materializer_offsets WHERE topic = ?",
                           [results]).fetchone()[0]

    read = materialized()
    api.portal.call(replay)
    # Each replayed round publishes at least one event: both have passed worker and materializer once read >= +2.
    wait_for(lambda: materialized() >= read + 2, 30, "both replays' events materialized")
    assert _rounds_by_session(api)[session] == before == list(range(1, total_rounds + 1))
    status = cur.execute("SELECT status, total_rounds FROM predictions WHERE prediction_id = ?", [pid]).fetchone()
    assert status == ("COMPLETED", total_rounds)


def _request_like(api, user: str, pid: str, session: str) -> PredictionRequest:
    from pipeline.predictions.features import build_snapshot, completeness
    from pipeline.storage.queries.predictions import load_sleep_records

    records = load_sleep_records(api.app.state.services.store.con.cursor(), TENANT, user)
    snapshot = build_snapshot(TENANT, user, records)
    now = datetime.now(UTC)
    return PredictionRequest(prediction_id=pid, session_id=session, tenant=TENANT, user_id=user,
                             trigger_type="MANUAL_REQUEST", requested_by=user, requested_at=now,
                             deadline=now.replace(year=now.year + 1), completeness=completeness(snapshot),
                             snapshot=snapshot)
