"""docker-compose.yml stays valid: checked by Compose itself when installed; its shape read from the YAML."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def _compose_cmd() -> list[str] | None:
    """`docker compose` (v2 plugin) if it works, else the standalone `docker-compose`, else None."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def _services() -> dict:
    try:
        import yaml
    except ImportError:
        cmd = _compose_cmd()
        if cmd is None or cmd[-1] != "compose":  # only the v2 plugin prints JSON
            pytest.skip("neither PyYAML nor the `docker compose` plugin is installed to read the file")
        out = subprocess.run([*cmd, "-f", str(COMPOSE), "config", "--format", "json"], cwd=ROOT, check=True,
                             capture_output=True, text=True, timeout=60).stdout
        return json.loads(out)["services"]
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _published(port: object) -> str | None:
    if isinstance(port, dict):
        return str(port.get("published"))
    parts = str(port).split("/")[0].split(":")  # [host_ip:]published:target
    return parts[-2] if len(parts) > 1 else None


def test_compose_config_is_valid() -> None:
    cmd = _compose_cmd()
    if cmd is None and os.environ.get("STREAMDESK_REQUIRE_COMPOSE"):
        pytest.fail("CI must validate docker-compose.yml, but neither `docker compose` nor `docker-compose` exists")
    if cmd is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    proc = subprocess.run([*cmd, "-f", str(COMPOSE), "config", "-q"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_compose_services() -> None:
    services = _services()
    assert {"kafka", "worker", "api"} <= services.keys()
    assert "8000" in [_published(p) for p in services["api"].get("ports", [])]
    for name in ("worker", "api"):
        assert _env(services[name])["STREAMDESK_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert set(_env(services["kafka"])["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}


def test_the_broker_allows_what_the_pipeline_produces_for_the_configured_message_limit() -> None:
    from pipeline.settings import Settings

    services = _services()
    limit = int(_env(services["api"])["STREAMDESK_MAX_MESSAGE_BYTES"])
    expected = Settings(max_message_bytes=limit, _env_file=None).max_transport_bytes
    assert int(_env(services["kafka"])["KAFKA_MESSAGE_MAX_BYTES"]) == expected


CLUSTER = ROOT / "docker-compose.cluster.yml"


def _merged(base: dict, over: dict) -> dict:
    """Compose's override merge as far as these files need it: mappings merge, the overlay's scalars win."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _cluster_services() -> dict:
    yaml = pytest.importorskip("yaml")
    return _merged(yaml.safe_load(COMPOSE.read_text()), yaml.safe_load(CLUSTER.read_text()))["services"]


def test_cluster_overlay_config_is_valid() -> None:
    cmd = _compose_cmd()
    if cmd is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    proc = subprocess.run([*cmd, "-f", str(COMPOSE), "-f", str(CLUSTER), "config", "-q"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_cluster_has_three_voters_replication_three_and_two_workers() -> None:
    services = _cluster_services()
    nodes = {name: _env(services[name]) for name in ("kafka", "kafka-2", "kafka-3")}
    assert sorted(env["KAFKA_NODE_ID"] for env in nodes.values()) == ["1", "2", "3"]
    for env in nodes.values():
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"
        assert (env["KAFKA_DEFAULT_REPLICATION_FACTOR"], env["KAFKA_MIN_INSYNC_REPLICAS"]) == ("3", "2")
    published = [_published(p) for name in nodes for p in services[name].get("ports", [])]
    assert sorted(published) == ["19092", "19093", "19094"]  # producers on the host reach every broker
    for name in ("init-topics", "worker", "api"):  # what the project reads, not constants in code
        env = _env(services[name])
        assert env["STREAMDESK_REPLICATION_FACTOR"] == "3" and env["STREAMDESK_MIN_INSYNC_REPLICAS"] == "2"
        assert env["STREAMDESK_KAFKA_BOOTSTRAP"].count(":9092") == 3
    assert services["worker"]["deploy"]["replicas"] == 2


def test_worker_and_api_have_healthchecks_and_topics_keep_what_rebuild_needs() -> None:
    services = _services()
    assert "streamdesk-worker.alive" in " ".join(services["worker"]["healthcheck"]["test"])
    assert _env(services["worker"])["STREAMDESK_WORKER_ALIVE_FILE"] == "/tmp/streamdesk-worker.alive"
    assert "/health" in " ".join(services["api"]["healthcheck"]["test"])
    env = _env(services["api"])
    assert float(env["STREAMDESK_TOPIC_RETENTION_DAYS"]) >= float(env["STREAMDESK_RETENTION_CALLS_DAYS"])
    assert "19092" in [_published(p) for p in services["kafka"].get("ports", [])]
