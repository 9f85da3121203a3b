"""Shared by every test directory: one built copy of the local embedding model (data/models, as `make up`
uses), one real embedded broker per test session with unique topics per test (integration, security), and
`live`: `streamdesk up --simulator` on a fresh data dir, shared by the security and browser tests."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.broker.embedded import free_port
from tests.helpers import REPO, stop_process, wait_for


def pytest_configure() -> None:
    os.environ.setdefault("STREAMDESK_MODELS_DIR", str(Path(__file__).resolve().parent.parent / "data" / "models"))


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from pipeline.broker.embedded import start_embedded_broker
    from pipeline.broker.kafka import wait_for_broker

    log = tmp_path_factory.mktemp("broker") / "broker.log"
    b = start_embedded_broker(None, log_path=log)
    try:
        b.cluster_id = asyncio.run(wait_for_broker(b.bootstrap, timeout_s=30))
        yield b
    finally:
        b.stop()


@pytest.fixture
def settings(broker, tmp_path, request: pytest.FixtureRequest):
    from pipeline.broker.kafka import ensure_topics
    from pipeline.broker.topics import pipeline_topics
    from pipeline.settings import Settings

    name = request.node.name.replace("[", "_").replace("]", "")[:40]
    s = Settings(kafka_bootstrap=broker.bootstrap, data_dir=tmp_path / "data", partitions=2,
                 topic_prefix=f"t{uuid.uuid4().hex[:8]}.{name}.", _env_file=None)
    asyncio.run(ensure_topics(broker.bootstrap, pipeline_topics(s)))
    return s


from tests.integration.predictions_env import api, cohort  # noqa: E402, F401 - session fixtures for seed 004


@pytest.fixture
def materializer(tmp_path):
    """A materializer over a real DuckDB file with every sink, written to directly (no broker): `m._write(...)`."""
    from pipeline.settings import Settings
    from pipeline.storage.db import connect
    from pipeline.storage.materializer import Materializer
    from pipeline.storage.sinks import platform_sinks

    settings = Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path)
    con = connect(settings.db_path)
    m = Materializer(settings, con, platform_sinks(settings))
    m.cluster_id = "cluster-a"
    yield m
    con.close()


# --- `live`: the system as a user starts it (security and e2e tests share one) ------------------------------


class Live:
    """A running `streamdesk up --simulator`: its base url, environment and data dir."""

    def __init__(self, base: str, env: dict[str, str], data: Path, log: Path, secret_key: str) -> None:
        self.base, self.env, self.data, self.log = base, env, data, log
        self.secret_key = secret_key  # a Freshdesk key the simulator accepts beside the seed's placeholder

    def cli(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=REPO, env=self.env,
                              capture_output=True, text=True, timeout=timeout_s)

    def token(self, user: str, tenant: str, role: str) -> str:
        out = self.cli("token", "--user", user, "--tenant", tenant, "--role", role)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.base + path, timeout=kw.pop("timeout", 30), **kw)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data = tmp_path_factory.mktemp("live") / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMDESK_")}
    env |= {"STREAMDESK_DATA_DIR": str(data), "STREAMDESK_API_PORT": str(port), "STREAMDESK_LOG_FORMAT": "json",
            "STREAMDESK_PARTITIONS": "2", "STREAMDESK_MODELS_DIR": os.environ["STREAMDESK_MODELS_DIR"]}
    secret_key = f"sk-live-{uuid.uuid4().hex}"
    env["STREAMDESK_SIMULATOR_KEYS"] = json.dumps({"*": ["your_api_key", secret_key]})
    log = data.parent / "up.log"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "up", "--simulator"], cwd=REPO, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    system = Live(f"http://127.0.0.1:{port}", env, data, log, secret_key)

    def healthy() -> bool:
        try:
            return system.request("GET", "/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, 120, f"/health to answer 200 (log: {log})", interval_s=0.5)
        yield system
    finally:
        stop_process(proc, timeout_s=30)
