"""Shared by the seed-004 integration tests: one api (TestClient) and one real worker on the real broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from api.main import create_app
from pipeline.broker.kafka import ensure_topics
from pipeline.broker.topics import pipeline_topics
from pipeline.security import Role, mint_token
from pipeline.settings import Settings
from simulators.sleep_cohort import generate_cohort
from tests.helpers import checked_client, start_cli, stop_process, wait_for
from tests.integration.conftest import env_for

TENANT = "t1"


def auth(client, role: Role, user: str = "u1", tenant: str = TENANT) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(client.settings.jwt_key(), user, tenant, [role])}"}


def envelope_ok(body: dict) -> None:
    assert set(body) == ({"success", "data", "meta"} if body["success"] else {"success", "error", "meta"})
    assert set(body["meta"]) == {"requestId", "timestamp", "version"} and body["meta"]["requestId"]


@pytest.fixture(scope="session")
def api(broker, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cod")
    s = Settings(kafka_bootstrap=broker.bootstrap, data_dir=tmp / "data", partitions=2,
                 topic_prefix=f"cod{uuid.uuid4().hex[:8]}.", scheduler_tick_s=0.2, schedule_retry_s=1.0,
                 schedule_max_retries=1, _env_file=None)
    asyncio.run(ensure_topics(broker.bootstrap, pipeline_topics(s)))
    worker = start_cli(["worker"], env_for(s), tmp / "worker.log")
    try:
        with checked_client(create_app(s)) as client:
            client.settings = s
            wait_for(lambda: client.get("/health").status_code == 200, 60, "worker and api healthy")
            yield client
    finally:
        stop_process(worker)


@pytest.fixture(scope="session")
def cohort(api):
    """Three synthetic users' records, sent through POST …/sleep-records (broker -> worker -> DuckDB)."""
    users = generate_cohort(3, days=14, seed=11, tenant=TENANT)
    for u in users:
        body = [r.model_dump(mode="json") for r in u.records]
        r = api.post("/v1/sol-cod/sleep-records", json=body, headers=auth(api, Role.SERVICE_ACCOUNT, "svc"))
        assert r.status_code == 202, r.text
    total = sum(len(u.records) for u in users)

    def stored() -> bool:
        cur = api.app.state.services.store.con.cursor()
        return cur.execute("SELECT count(*) FROM sleep_records").fetchone()[0] >= total

    wait_for(stored, 60, "sleep records materialized")
    return users
