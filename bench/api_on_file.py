"""For benchmarks: the real `streamdesk api` started on a prepared data dir (with an embedded broker), as a
context manager that yields a client on it and stops both after."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipeline.broker.embedded import free_port, start_embedded_broker  # noqa: E402


@contextmanager
def api_on(data: Path, settle_s: float = 2.0) -> Iterator[tuple[httpx.Client, subprocess.Popen]]:
    """(a client with the api's base url, the api process) once /health answers; retention off."""
    broker = start_embedded_broker(None)
    port = free_port()
    env = {**os.environ, "STREAMDESK_KAFKA_BOOTSTRAP": broker.bootstrap, "STREAMDESK_DATA_DIR": str(data),
           "STREAMDESK_API_PORT": str(port), "STREAMDESK_RETENTION_INTERVAL_S": "0", "STREAMDESK_LOG_FORMAT": "json"}
    api = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "api"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        deadline = time.time() + 90
        while True:
            try:
                client.get("/health")
                break
            except httpx.TransportError:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
        time.sleep(settle_s)
        yield client, api
    finally:
        api.send_signal(signal.SIGTERM)
        try:
            api.wait(20)
        except subprocess.TimeoutExpired:
            api.kill()
        broker.stop()
