"""As a user starts it: `streamdesk up`, seed 003's curl examples, its four SQL queries, then kill -9 of the
worker and the api during a 20,000-event load."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from kafka import KafkaProducer

from pipeline.settings import read_broker_file
from tests.helpers import REPO, call_event, stop_process, wait_for

pytestmark = pytest.mark.e2e

# Seed 003, "테스트 방법": the four check queries, verbatim.
SEED_QUERIES = {
    "agent_id": """SELECT api_call_history_id, agent_id, path, created_at
FROM sys_api_call_histories
WHERE agent_id = 'agent_test_123'
ORDER BY created_at DESC
LIMIT 10;""",
    "request_size_bytes": """SELECT api_call_history_id, path, request_size_bytes, created_at
FROM sys_api_call_histories
WHERE path = '/api/auth/login'
  AND request_size_bytes IS NOT NULL
ORDER BY created_at DESC
LIMIT 10;""",
    "response_size_bytes": """SELECT api_call_history_id, path, status_code, response_size_bytes, created_at
FROM sys_api_call_histories
WHERE response_size_bytes IS NOT NULL
ORDER BY created_at DESC
LIMIT 10;""",
    "query_string": """SELECT api_call_history_id, path, query_string, created_at
FROM sys_api_call_histories
WHERE path = '/api/admin/users'
  AND query_string IS NOT NULL
ORDER BY created_at DESC
LIMIT 10;""",
}
LOGIN_BODY = '{"username": "admin", "password": "admin1234!", "tenantId": 1}'


def _port() -> int:
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", 8000)) != 0:
            return 8000  # the seed's port, when it is free
        s2 = socket.socket()
        s2.bind(("127.0.0.1", 0))
        port = s2.getsockname()[1]
        s2.close()
        return port


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    data = tmp_path_factory.mktemp("up") / "data"
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMDESK_")}
    env |= {"STREAMDESK_DATA_DIR": str(data), "STREAMDESK_API_PORT": str(port), "STREAMDESK_LOG_FORMAT": "json",
            "STREAMDESK_PARTITIONS": "2",
            # The seed's curl examples play the gateway in front of the api: its identity headers are believed.
            "STREAMDESK_TRUSTED_PROXIES": '["127.0.0.1/32", "::1/128"]'}
    log = data.parent / "up.log"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "up"], cwd=REPO, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, 90, f"/health to answer 200 (log: {log})", interval_s=0.5)
        yield {"proc": proc, "base": base, "port": port, "env": env, "data": data, "log": log, "healthy": healthy}
    finally:
        stop_process(proc, timeout_s=30)
        children = subprocess.run(["pgrep", "-f", str(data)], capture_output=True, text=True).stdout.split()
        assert children == [], f"`up` left processes behind: {children}"


def _sql(system, query: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "pipeline.cli", "sql", query, "--format", "json"], cwd=REPO,
                         env=system["env"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_seed_curl_examples_then_seed_queries_return_their_rows(system):
    host = f"http://localhost:{system['port']}"
    curls = [
        ["curl", "-sS", "-X", "POST", f"{host}/api/aura/test/stream", "-H", "Authorization: Bearer {JWT}",
         "-H", "X-Tenant-ID: 1", "-H", "X-User-ID: 1", "-H", "X-Agent-ID: agent_test_123", "-H", "X-DWP-Source: AURA",
         "-H", "Content-Type: application/json", "-d", '{"prompt": "test"}'],
        ["curl", "-sS", "-X", "POST", f"{host}/api/auth/login", "-H", "Content-Type: application/json",
         "-H", "X-Tenant-ID: 1", "-d", LOGIN_BODY],
        ["curl", "-sS", "-X", "GET", f"{host}/api/admin/users?page=1&size=10", "-H", "Authorization: Bearer {JWT}",
         "-H", "X-Tenant-ID: 1"],
    ]
    for argv in curls:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert "error" in orjson.loads(done.stdout)  # no such route here: a clear JSON 404, and still recorded

    rows = wait_for(lambda: _sql(system, SEED_QUERIES["query_string"]), 30, "the /api/admin/users row")
    assert rows[0]["query_string"] == "page=1&size=10"
    agent = _sql(system, SEED_QUERIES["agent_id"])
    assert agent and agent[0]["agent_id"] == "agent_test_123" and agent[0]["path"] == "/api/aura/test/stream"
    login = _sql(system, SEED_QUERIES["request_size_bytes"])
    assert login and login[0]["request_size_bytes"] == len(LOGIN_BODY.encode())
    sizes = _sql(system, SEED_QUERIES["response_size_bytes"])
    assert sizes and all(r["response_size_bytes"] > 0 for r in sizes)
    # The aura call's identity came from the seed's headers; its source from X-DWP-Source.
    ident = _sql(system, "SELECT tenant_id, user_id, source FROM sys_api_call_histories "
                         "WHERE agent_id = 'agent_test_123'")
    assert ident[0] == {"tenant_id": "1", "user_id": "1", "source": "AURA"}


def _children(up_pid: int) -> dict[str, int]:
    found = {}
    for pid in subprocess.run(["pgrep", "-P", str(up_pid)], capture_output=True, text=True).stdout.split():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:  # gone between pgrep and here (a child that just died and was reaped)
            continue
        for name in ("worker", "api"):
            if cmd[-2:-1] == [name.encode()] or (len(cmd) > 1 and cmd[-2] == name.encode()):
                found[name] = int(pid)
    return found


def test_kill_9_of_worker_and_api_during_a_load_loses_and_duplicates_nothing(system):
    marker = f"load-{uuid.uuid4().hex[:8]}"
    info = read_broker_file(system["data"])
    producer = KafkaProducer(bootstrap_servers=info["bootstrap"], linger_ms=5)
    before = _children(system["proc"].pid)
    assert set(before) == {"worker", "api"}, before
    for i in range(20_000):
        producer.send("calls.raw", orjson.dumps(call_event(i, agent_id=marker)))
        if i == 8_000:
            producer.flush()
            os.kill(before["worker"], signal.SIGKILL)
            os.kill(before["api"], signal.SIGKILL)
    producer.flush()
    producer.close()
    after = wait_for(lambda: (c := _children(system["proc"].pid)) and set(c) == {"worker", "api"}
                     and c["worker"] != before["worker"] and c["api"] != before["api"] and c, 60, "restarts")
    assert after["worker"] != before["worker"]
    wait_for(system["healthy"], 90, "health after restarts", interval_s=0.5)
    count = f"SELECT count(*) AS n, count(DISTINCT api_call_history_id) AS d FROM sys_api_call_histories " \
            f"WHERE agent_id = '{marker}'"
    wait_for(lambda: _sql(system, count)[0]["n"] >= 20_000, 120, "20,000 rows of the load", interval_s=1)
    assert _sql(system, count)[0] == {"n": 20_000, "d": 20_000}
    log = system["log"].read_text()
    assert "child_died_restarting" in log
