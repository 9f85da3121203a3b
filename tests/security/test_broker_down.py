"""The broker dies while the api serves: every route that must publish answers 503 with Retry-After in its own
error shape within 2 s (never a hang, never a 202 for work that went nowhere); reads from DuckDB keep working;
`streamdesk up` stops everything cleanly when its embedded broker dies (its data is gone)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from api.main import create_app
from pipeline.broker.embedded import free_port, start_embedded_broker
from pipeline.broker.kafka import ensure_topics, wait_for_broker
from pipeline.broker.topics import pipeline_topics
from pipeline.security import Role, mint_token
from pipeline.settings import Settings, read_broker_file
from tests.helpers import REPO, checked_client, wait_for

pytestmark = pytest.mark.integration
EVENT = {"tenant_id": "t1", "method": "GET", "path": "/x", "status_code": 200, "latency_ms": 3}
RECORD = {"tenant": "t1", "user_id": "u1", "kind": "diary", "date": "2026-11-20",
          "data": {"bedtime": "23:10", "lights_off": "23:20", "sol_minutes": 35, "awakenings": 2, "waso_minutes": 20,
                   "wake_time": "06:50", "time_in_bed_minutes": 460, "total_sleep_minutes": 405}}


@pytest.fixture
def doomed(tmp_path):
    """An api on a broker of its own, which the test kills."""
    broker = start_embedded_broker(None, log_path=tmp_path / "broker.log")
    try:
        asyncio.run(wait_for_broker(broker.bootstrap, timeout_s=30))
        s = Settings(kafka_bootstrap=broker.bootstrap, data_dir=tmp_path / "data", partitions=1,
                     topic_prefix=f"down{uuid.uuid4().hex[:6]}.", _env_file=None)
        asyncio.run(ensure_topics(broker.bootstrap, pipeline_topics(s)))
        with checked_client(create_app(s)) as client:
            client.settings = s
            yield client, broker
    finally:
        broker.stop()


def _auth(s: Settings, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(s.jwt_key(), 'u1', 't1', [role])}"}


def _timed(call) -> tuple[float, object]:
    started = time.monotonic()
    r = call()
    return time.monotonic() - started, r


def test_a_dead_broker_is_a_503_in_the_routes_shape_within_two_seconds(doomed):
    client, broker = doomed
    s = client.settings
    svc = _auth(s, Role.SERVICE_ACCOUNT)
    assert client.post("/v1/call-histories", json=[EVENT], headers=svc).status_code == 202
    os.kill(broker.process.pid, signal.SIGKILL)
    broker.process.wait()

    took, r = _timed(lambda: client.post("/v1/call-histories", json=[EVENT], headers=svc))
    assert r.status_code == 503 and r.json()["error"]["code"] == "BROKER_UNAVAILABLE", r.text
    assert r.headers["Retry-After"] and took < 2.0, took
    took, r = _timed(lambda: client.post("/v1/sol-cod/sleep-records", json=[RECORD], headers=svc))
    body = r.json()
    assert r.status_code == 503 and body["success"] is False and body["error"]["code"] == "COD_005", r.text
    assert r.headers["Retry-After"] and took < 2.0, took
    took, r = _timed(lambda: client.get("/health"))
    assert r.status_code == 503 and r.json()["broker"]["ok"] is False and took < 2.0, (took, r.text)
    # What is already in DuckDB is still served.
    admin = _auth(s, Role.SYSTEM_ADMIN)
    took, r = _timed(lambda: client.get("/v1/call-histories", headers=admin))
    assert r.status_code == 200 and took < 2.0, (took, r.text)


def test_up_stops_everything_cleanly_when_its_embedded_broker_dies(tmp_path):
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMDESK_")}
    env |= {"STREAMDESK_DATA_DIR": str(data), "STREAMDESK_API_PORT": str(free_port()), "STREAMDESK_PARTITIONS": "1",
            "STREAMDESK_LOG_FORMAT": "json"}
    log = tmp_path / "up.log"
    up = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "up"], cwd=REPO, env=env, stdout=log.open("ab"),
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        info = wait_for(lambda: read_broker_file(data), 60, "the embedded broker")
        wait_for(lambda: "api_started" in log.read_text(), 60, "the api")
        os.kill(int(info["pid"]), signal.SIGKILL)
        assert up.wait(60) != 0  # up says the broker died and exits with an error status
        left = subprocess.run(["pgrep", "-f", str(data)], capture_output=True, text=True).stdout.split()
        assert left == [], f"`up` left processes behind: {left}"
        assert "broker" in log.read_text().lower()
    finally:
        if up.poll() is None:
            up.kill()
