"""`streamdesk up`: broker (when none is configured) + worker + api as supervised child processes.

A worker or api that dies is restarted with a log line and a backoff; if the embedded broker dies, everything
stops (its data is gone). Ctrl-C or SIGTERM stops all children; PR_SET_PDEATHSIG makes the kernel stop them
even if `up` itself is killed with -9, so nothing is ever left behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

import structlog
from rich.console import Console

from pipeline.broker.embedded import EmbeddedBroker, free_port, start_embedded_broker
from pipeline.broker.kafka import ensure_topics, wait_for_broker
from pipeline.broker.topics import pipeline_topics
from pipeline.settings import Settings

log = structlog.get_logger(__name__)
PR_SET_PDEATHSIG = 1
SIMULATOR_PORT = 8001


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _die_with_parent() -> None:
    os.setsid()  # own process group: Ctrl-C reaches `up` only, which stops children in order
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    backoff_s: float = 1.0
    history: list[float] = field(default_factory=list)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env=self.env, preexec_fn=_die_with_parent, stdin=subprocess.DEVNULL)
        self.started_at = time.monotonic()

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("child_killed_after_timeout", child=self.name)
            self.proc.kill()
            self.proc.wait()


class Supervisor:
    def __init__(self, settings: Settings, console: Console, simulator: bool = False) -> None:
        self.settings = settings
        self.console = console
        self.simulator = simulator
        self.simulator_url: str | None = None
        self.broker: EmbeddedBroker | None = None
        self.children: list[Child] = []
        self._stopping = False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            bootstrap = self._broker()
            env = {**os.environ, "STREAMDESK_KAFKA_BOOTSTRAP": bootstrap}
            exe = [sys.executable, "-m", "pipeline.cli"]
            self.children = []
            if self.simulator:  # the Freshdesk simulator: ingest jobs talk to it, never to the real Freshdesk
                port = SIMULATOR_PORT if _port_free(SIMULATOR_PORT) else free_port()
                self.simulator_url = f"http://127.0.0.1:{port}"
                env["STREAMDESK_FRESHDESK_BASE_URL"] = self.simulator_url
                self.children.append(Child("simulator", [*exe, "simulator", "--port", str(port)], env))
            self.children += [Child("worker", [*exe, "worker"], env), Child("api", [*exe, "api"], env)]
            for child in self.children:
                child.start()
            self._banner(bootstrap)
            return self._watch()
        except KeyboardInterrupt:
            return 0
        finally:
            self._shutdown()

    def _broker(self) -> str:
        s = self.settings
        if s.kafka_bootstrap:
            bootstrap = s.kafka_bootstrap
        else:
            s.data_dir.mkdir(parents=True, exist_ok=True)
            self.broker = start_embedded_broker(s.data_dir, log_path=s.data_dir / "broker.log",
                                                preexec_fn=_die_with_parent)
            bootstrap = self.broker.bootstrap
        cluster = asyncio.run(wait_for_broker(bootstrap, timeout_s=30))
        if self.broker:
            self.broker.cluster_id = cluster
            self.broker.write_file()
        asyncio.run(ensure_topics(bootstrap, pipeline_topics(s.model_copy(update={"kafka_bootstrap": bootstrap}))))
        log.info("broker_ready", bootstrap=bootstrap, cluster_id=cluster, embedded=self.broker is not None)
        return bootstrap

    def _banner(self, bootstrap: str) -> None:
        s = self.settings
        kind = "embedded Tansu, memory only" if self.broker else "external"
        self.console.print(
            f"[bold]streamdesk is up[/bold]\n"
            f"  broker   {bootstrap}  ({kind})\n"
            f"  api      http://{s.api_host}:{s.api_port}   docs: /docs   metrics: /metrics\n"
            f"  worker   pid {self._child('worker').proc.pid}\n"
            + (f"  freshdesk {self.simulator_url}  (the Freshdesk simulator, not Freshdesk)\n"
               f"            accepted X-API-Key: {_simulator_keys(s)}\n"
               if self.simulator_url else "") +
            f"  duckdb   {s.db_path}\n"
            f"Ctrl-C stops everything.",
            highlight=False,
        )

    def _child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def _watch(self) -> int:
        while not self._stopping:
            if self.broker and self.broker.process.poll() is not None:
                log.error("embedded_broker_died_stopping_everything", returncode=self.broker.process.returncode,
                          hint="its data was in memory and is gone; run `streamdesk up` again")
                return 1
            for child in self.children:
                if child.proc is not None and child.proc.poll() is not None and not self._stopping:
                    self._restart(child)
            time.sleep(0.2)
        return 0

    def _restart(self, child: Child) -> None:
        code = child.proc.returncode if child.proc else None
        now = time.monotonic()
        # Backoff grows while it keeps dying quickly, and resets after a minute of good health.
        child.backoff_s = 1.0 if now - child.started_at > 60 else min(child.backoff_s * 2, 30.0)
        child.restarts += 1
        log.warning("child_died_restarting", child=child.name, returncode=code, restarts=child.restarts,
                    backoff_s=child.backoff_s)
        deadline = now + child.backoff_s
        while time.monotonic() < deadline and not self._stopping:
            time.sleep(0.1)
        if not self._stopping:
            child.start()
            log.info("child_restarted", child=child.name, pid=child.proc.pid)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self._stopping:
            log.info("stopping", signal=signal.Signals(signum).name)
        self._stopping = True

    def _shutdown(self) -> None:
        self._stopping = True
        for child in reversed(self.children):  # api first (it stops taking requests), then worker
            child.stop()
        if self.broker:
            self.broker.stop()
        log.info("stopped")


def _simulator_keys(settings: Settings) -> str:
    from simulators.freshdesk.state import accepted_keys_text  # only `up --simulator` runs the simulator

    return accepted_keys_text(settings.simulator_keys)
