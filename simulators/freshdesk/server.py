"""The simulator under uvicorn on a free loopback port, in a background thread: for tests and benchmarks."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import uvicorn

from simulators.freshdesk.simulator import create_simulator
from simulators.freshdesk.state import SimulatorConfig


class SimulatorServer:
    """`with SimulatorServer(config) as sim:` serves on `sim.base_url`; admin calls go over HTTP like anyone's."""

    def __init__(self, config: SimulatorConfig | None = None, host: str = "127.0.0.1") -> None:
        self.config = config or SimulatorConfig()
        self.app = create_simulator(self.config)
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on such sockets (else 40 ms per answer)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.bind((host, 0))
        self.host, self.port = self._sock.getsockname()[:2]
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off",
                                                     timeout_keep_alive=30))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True,
                                        name="freshdesk-simulator")

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> SimulatorServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Freshdesk simulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(method, f"{self.base_url}/_simulator/{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        return self._admin("GET", "stats")

    def reset_stats(self) -> dict[str, Any]:
        return self._admin("DELETE", "stats")

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        return self._admin("POST", "faults", changes)

    def clear_faults(self) -> dict[str, Any]:
        return self._admin("DELETE", "faults")

    def apply_updates(self, count: int, domain: str | None = None, new_conversation_rate: float = 0.5) -> list[int]:
        body = {"count": count, "domain": domain, "new_conversation_rate": new_conversation_rate}
        return self._admin("POST", "updates", body)["updated_ids"]
