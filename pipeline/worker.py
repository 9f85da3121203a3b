"""The Faust worker: every stream processor of the pipeline runs here and scales out by joining the group."""

from __future__ import annotations

import os
import socket
import time
import uuid

import faust
import orjson
import structlog

from pipeline.broker.agent_topics import AgentTopics
from pipeline.broker.faust_tuning import apply_faust_tunings
from pipeline.broker.topics import HEARTBEATS
from pipeline.calls.stream import CallsNormalizer
from pipeline.ingest.agents import register_ingest_agents
from pipeline.logging import configure_logging
from pipeline.metrics import EVENTS
from pipeline.predictions.agents import register_prediction_agents
from pipeline.settings import Settings
from pipeline.tickets.agents import register_ticket_agents
from pipeline.tickets.embed_agents import register_embed_agents

log = structlog.get_logger(__name__)

def create_faust_app(settings: Settings) -> faust.App:
    apply_faust_tunings()
    app = faust.App(
        f"{settings.consumer_group_prefix}.{settings.topic_prefix}worker",
        broker=f"kafka://{settings.bootstrap()}",
        store="memory://",  # no Faust tables: the embedded broker cannot recover them (docs/decisions.md)
        datadir=str(settings.data_dir / "faust"),  # not the current directory (Faust's default)
        web_enabled=False,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_rebalance_timeout=settings.session_timeout_s,
        topic_partitions=settings.partitions,
        producer_max_request_size=settings.max_transport_bytes,
    )
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    started = time.time()
    calls = CallsNormalizer(settings)

    @app.task
    async def normalize_calls() -> None:
        await calls.run()

    topics = AgentTopics(app, settings)
    register_prediction_agents(app, settings, topics)
    register_ingest_agents(app, settings, topics)
    register_ticket_agents(app, topics)
    register_embed_agents(app, settings, topics)

    @app.timer(settings.worker_heartbeat_s)
    async def heartbeat() -> None:
        beat = {"worker_id": worker_id, "host": socket.gethostname(), "pid": os.getpid(),
                "started_at": started, "ts": time.time(), "counters": _counters()}
        ack = await app.producer.send(settings.topic(HEARTBEATS), worker_id.encode(), orjson.dumps(beat), None, None,
                                      None)
        if settings.worker_alive_file is not None:  # a container's healthcheck: the broker took this beat
            await ack
            settings.worker_alive_file.touch()

    return app


def _counters() -> list[dict]:
    out = []
    for metric in EVENTS.collect():
        for s in metric.samples:
            if s.name.endswith("_total"):
                out.append({"topic": s.labels["topic"], "outcome": s.labels["outcome"], "value": s.value})
    return out


class _Worker(faust.Worker):
    """Faust's worker, but logging stays ours (structlog, one format for every process)."""

    log_settings: tuple[str, str] = ("INFO", "auto")

    def _setup_logging(self) -> None:
        configure_logging(*self.log_settings, force=True)


def run_worker(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)
    app = create_faust_app(settings)
    worker = _Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.log_settings = (settings.log_level, settings.log_format)
    log.info("worker_starting", bootstrap=settings.bootstrap())
    worker.execute_from_commandline()
