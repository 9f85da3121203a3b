"""A 1,500-ticket full run against the Freshdesk *simulator* with faults on, then an incremental run after
updates: DuckDB ends with exactly the simulator's records, each once; the 300-page cap is crossed."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from api.main import create_app
from pipeline.broker.kafka import ensure_topics
from pipeline.broker.topics import pipeline_topics
from pipeline.settings import Settings
from simulators.freshdesk.server import SimulatorServer
from simulators.freshdesk.state import Faults, SimulatorConfig
from tests.helpers import checked_client, start_cli, stop_process, wait_for
from tests.integration.conftest import env_for

pytestmark = pytest.mark.integration
DOMAIN = "acme.freshdesk.com"
HEADERS = {"X-Company-ID": "acme", "X-Platform": "freshdesk", "X-Domain": DOMAIN, "X-API-Key": "your_api_key",
           "Content-Type": "application/json"}
READ = {"X-Company-ID": "acme", "X-API-Key": "your_api_key"}
FAULTS = Faults(error_rate=0.03, drop_rate=0.02)  # 5xx and dropped connections on 5 % of calls


@pytest.fixture
def system(broker, tmp_path):
    # per_page_max 5 over 1,500 tickets = 300 pages: the listing must restart past the page cap.
    config = SimulatorConfig(tickets=1500, plan=1_000_000, seed=5, kb_articles=40, per_page_max=5, max_page=300,
                             faults=FAULTS)
    sim = SimulatorServer(config).start()
    s = Settings(kafka_bootstrap=broker.bootstrap, data_dir=tmp_path / "data", partitions=2,
                 topic_prefix=f"full{uuid.uuid4().hex[:8]}.", freshdesk_base_url=sim.base_url, _env_file=None)
    asyncio.run(ensure_topics(broker.bootstrap, pipeline_topics(s)))
    worker = start_cli(["worker"], env_for(s) | {"STREAMDESK_FRESHDESK_BASE_URL": sim.base_url,
                                                 "STREAMDESK_FRESHDESK_PER_PAGE": "5",
                                                 # retries after the injected faults: 20 ms, not 0.5 s, apart
                                                 "STREAMDESK_FRESHDESK_BACKOFF_S": "0.02"}, tmp_path / "worker.log")
    try:
        with checked_client(create_app(s)) as client:
            client.sim = sim
            wait_for(lambda: client.get("/health").status_code == 200, 60, "healthy")
            yield client
    finally:
        stop_process(worker)
        sim.stop()


def _truth(sim: SimulatorServer) -> dict[str, int]:
    data = sim.app.sim.dataset(DOMAIN)
    return {"tickets": len(data.tickets),
            "conversations": sum(len(t.conversations) for t in data.tickets.values())}


def _counts(client) -> dict[str, int]:
    cur = client.app.state.services.store.con.cursor()
    return {t: cur.execute(f"SELECT count(*), count(DISTINCT key) FROM {t} WHERE tenant = 'acme'").fetchone()
            for t in ("tickets", "conversations", "kb_articles", "integrated_objects")}


def _run(client, incremental: bool) -> dict:
    job_id = client.post("/ingest/jobs", json={"incremental": incremental, "batch_size": 200,
                                               "parallel_workers": 8}, headers=HEADERS).json()["job_id"]
    job = wait_for(lambda: (j := client.get(f"/ingest/jobs/{job_id}", headers=READ).json())["status"]
                   in ("completed", "failed") and j, 240, "the job to finish", interval_s=0.5)
    assert job["status"] == "completed", job
    return job


def _settled(client, want: dict[str, int]) -> dict:
    def done() -> dict | None:
        got = _counts(client)
        return got if all(got[t][0] >= n for t, n in want.items()) else None

    return wait_for(done, 120, f"rows {want}", interval_s=0.5)


def test_full_then_incremental_run_end_with_exactly_the_simulators_records(system):
    c, sim = system, system.sim
    truth = _truth(sim)
    job = _run(c, incremental=False)
    assert job["statistics"]["tickets_collected"] >= truth["tickets"]
    assert job["statistics"]["retries_performed"] > 0  # the faults were real, and survived
    got = _settled(c, {"tickets": truth["tickets"], "conversations": truth["conversations"]})
    assert got["tickets"] == (truth["tickets"], truth["tickets"])  # each ticket exactly once
    assert got["conversations"] == (truth["conversations"], truth["conversations"])
    assert got["integrated_objects"][0] == got["integrated_objects"][1] >= truth["tickets"]
    lists = sum(sim.stats()["by_endpoint"]["GET /api/v2/tickets"].values())
    assert lists > 300  # more pages than the cap allows: the listing restarted from its last updated_at
    # Updates in the simulator: some tickets change, some get a new conversation.
    changed = sim.apply_updates(150, DOMAIN, new_conversation_rate=0.5)
    truth2 = _truth(sim)
    inc = _run(c, incremental=True)
    assert inc["statistics"]["tickets_collected"] == len(set(changed))  # only what changed is fetched again
    got = _settled(c, {"conversations": truth2["conversations"]})
    assert got["tickets"] == (truth["tickets"], truth["tickets"])
    assert got["conversations"] == (truth2["conversations"], truth2["conversations"])
    cur = c.app.state.services.store.con.cursor()
    newest = cur.execute("SELECT max(updated_at) FROM tickets WHERE tenant = 'acme'").fetchone()[0]
    data = sim.app.sim.dataset(DOMAIN)
    assert newest.timestamp() == max(t.updated for t in data.tickets.values())
    metrics = c.get("/ingest/metrics", headers=READ).json()
    assert metrics["system_metrics"]["total_jobs_today"] == 2 and metrics["system_metrics"]["success_rate"] == 100.0
    assert metrics["data_quality"]["missing_fields_rate"] is not None
    # The worker embedded every object once, at its current version (the changed tickets again).
    current = lambda: cur.execute("SELECT count(*), count(DISTINCT o.key) FROM integrated_objects o JOIN "  # noqa: E731
                                  "ticket_vectors v USING (tenant, key) WHERE o.tenant = 'acme' AND "
                                  "v.updated_at = o.updated_at").fetchone()
    objects = got["integrated_objects"][0]
    wait_for(lambda: current() == (objects, objects), 120, "a vector per object, at its version", interval_s=0.5)
