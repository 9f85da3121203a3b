"""Shared test helpers: waiting on conditions (never fixed sleeps), event factories, processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {last!r})")


async def until(condition: Callable[[], Any], timeout_s: float = 5.0, what: str = "the condition") -> Any:
    """`wait_for` inside an event loop: the loop keeps running what the condition waits on between looks."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not (last := condition()):
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.001)
    return last


def call_event(i: int, **overrides: Any) -> dict[str, Any]:
    event = {
        "tenant_id": str(1 + i % 3), "user_id": str(100 + i % 7), "agent_id": f"agent_{i % 5}",
        "method": "GET" if i % 2 else "POST", "path": f"/api/items/{i % 11}", "query_string": f"page={i % 4}",
        "status_code": 200 if i % 10 else 503, "latency_ms": 5 + i % 40, "request_size_bytes": i % 300,
        "response_size_bytes": 1000 + i, "ip_address": "10.0.0.7", "user_agent": "pytest",
        "trace_id": f"{i:032x}", "error_code": None, "source": "TEST", "created_at": "2026-11-25T10:00:00Z",
    }
    event.update(overrides)
    return event


def malformed_messages() -> list[tuple[bytes, str]]:
    """One of each kind of bad input the issue names, with a word its DLQ reason must contain."""
    good = call_event(0)
    return [
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "UTF-8"),
        (b"42", "not an event object"),
        (orjson.dumps({k: v for k, v in good.items() if k != "method"}), "method"),
        (orjson.dumps({k: v for k, v in good.items() if k != "path"}), "path"),
        (orjson.dumps({k: v for k, v in good.items() if k != "status_code"}), "status_code"),
        (orjson.dumps(good | {"status_code": "200"}), "status_code"),
        (orjson.dumps(good | {"status_code": 700}), "outside 100-599"),
        (orjson.dumps(good | {"latency_ms": -3}), "negative"),
        (orjson.dumps(good | {"response_size_bytes": -1}), "negative"),
        (orjson.dumps(good | {"created_at": "yesterday-ish"}), "ISO 8601"),
        (orjson.dumps(good | {"user_agent": "x" * (1 << 20)}), "1 MiB"),
    ]


def stop_process(proc: subprocess.Popen, timeout_s: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], cwd=REPO, env={**os.environ, **env},
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def services_without_a_broker(settings: Any) -> Any:
    """The api's services over an in-memory DuckDB, none started: for route tests that never reach a broker."""
    import duckdb

    from api.services import Services
    from pipeline.storage.store import Store

    return Services.build(settings, Store(duckdb.connect()))


_next_offset = iter(range(10**9))


def normalized(first: int, n: int, partition: int = 0, **event: Any) -> list[Any]:
    """The calls.normalized messages a worker sends for calls.raw offsets first..first+n-1 (as `outputs` does):
    what the materializer is fed, for tests that write rows without a broker (`m._write({tp: records})`)."""
    from aiokafka.structs import ConsumerRecord

    from pipeline.broker.records import Batch
    from pipeline.calls.stream import outputs
    from pipeline.calls.vectorised import normalize_batch
    from pipeline.ids import SourceIds

    values = [orjson.dumps(call_event(i, api_call_history_id=None) | event) for i in range(first, first + n)]
    out = normalize_batch("calls.raw", Batch(partition, list(range(first, first + n)), [0] * n, values),
                          SourceIds("cluster-a", "calls.raw"))
    return [ConsumerRecord("calls.normalized", 0, next(_next_offset), 0, 0, None, value, None, 0, len(value),
                           [("source", source.header())])
            for value, source in outputs(out, partition, first, first + n - 1)]


def _documented_schema(app: Any, method: str, path: str, status: int) -> dict[str, Any] | None:
    """The JSON schema /openapi.json gives for this answer, None if the answer is not JSON; AssertionError if
    the status is not documented at all."""
    import re

    spec = app.openapi()
    matches = [tpl for tpl in spec["paths"]
               if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(tpl)), path)]
    if not matches:
        return None
    tpl = min(matches, key=lambda t: t.count("{"))  # /predictions/history before /predictions/{id}
    op = spec["paths"][tpl].get(method.lower())
    if op is None:
        return None
    answer = op["responses"].get(str(status))
    assert answer is not None, f"{method} {tpl} answered {status}, which /openapi.json does not document"
    schema = answer.get("content", {}).get("application/json", {}).get("schema")
    return None if schema is None else {"components": spec.get("components", {}), **schema}


def check_documented(app: Any, response: Any) -> None:
    """Fail when a successful JSON answer is not what /openapi.json documents for its route and status."""
    import jsonschema_rs

    if not 200 <= response.status_code < 300 or "application/json" not in response.headers.get("content-type", ""):
        return
    schema = _documented_schema(app, response.request.method, response.request.url.path, response.status_code)
    if schema is not None:
        errors = [f"{e.message} at {'/'.join(map(str, e.instance_path))}"
                  for e in jsonschema_rs.validator_for(schema).iter_errors(response.json())]
        assert not errors, f"{response.request.method} {response.request.url.path}: {errors[:5]}"


def checked_client(app: Any, **kwargs: Any) -> Any:
    """A TestClient whose every successful JSON answer is checked against the route's documented schema."""
    from fastapi.testclient import TestClient

    class CheckedClient(TestClient):
        def request(self, *args: Any, **kw: Any) -> Any:
            response = super().request(*args, **kw)
            check_documented(self.app, response)
            return response

    return CheckedClient(app, **kwargs)
