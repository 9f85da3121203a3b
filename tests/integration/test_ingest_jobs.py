"""Seed 000's ingest routes against the Freshdesk *simulator* on loopback, a real worker and the real broker:
the seed's curl examples (the wrong ones too), job control mid-run, a worker killed mid-job, and the API
key never stored, logged or published in clear."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from pipeline.broker.kafka import ensure_topics
from pipeline.broker.topics import pipeline_topics
from pipeline.connectors.freshdesk.simserver import SimulatorServer
from pipeline.connectors.freshdesk.simstate import SimulatorConfig
from pipeline.settings import Settings
from tests.helpers import start_cli, stop_process, wait_for
from tests.integration.conftest import env_for

pytestmark = pytest.mark.integration
KEY = "sk-live-NEVER-IN-CLEAR-7f3a9c"
HEADERS = {"X-Company-ID": "wedosoft", "X-Platform": "freshdesk", "X-Domain": "wedosoft.freshdesk.com",
           "X-API-Key": KEY, "Content-Type": "application/json"}
READ = {"X-Company-ID": "wedosoft", "X-API-Key": KEY}


def _system(broker, tmp_path, tickets: int, plan: int, workers: int = 1):
    sim = SimulatorServer(SimulatorConfig(tickets=tickets, plan=plan, seed=3, kb_articles=12)).start()
    s = Settings(kafka_bootstrap=broker.bootstrap, data_dir=tmp_path / "data", partitions=2,
                 topic_prefix=f"ing{uuid.uuid4().hex[:8]}.", freshdesk_base_url=sim.base_url, _env_file=None)
    asyncio.run(ensure_topics(broker.bootstrap, pipeline_topics(s)))
    env = env_for(s) | {"STREAMDESK_FRESHDESK_BASE_URL": sim.base_url}
    procs = [start_cli(["worker"], env, tmp_path / f"worker{i}.log") for i in range(workers)]
    return sim, s, procs


@pytest.fixture
def system(broker, tmp_path):
    sim, s, procs = _system(broker, tmp_path, tickets=120, plan=100_000)
    try:
        with TestClient(create_app(s)) as client:
            client.settings, client.sim = s, sim
            wait_for(lambda: client.get("/health").status_code == 200, 60, "worker and api healthy")
            yield client
    finally:
        for p in procs:
            stop_process(p)
        sim.stop()


def _job(client, job_id: str) -> dict:
    return client.get(f"/ingest/jobs/{job_id}", headers=READ).json()


def _until(client, job_id: str, *statuses: str, timeout: float = 60) -> dict:
    return wait_for(lambda: (j := _job(client, job_id))["status"] in statuses and j, timeout,
                    f"{job_id} to be {statuses}", interval_s=0.05)


def test_seed_examples_right_and_wrong(system):
    c = system
    body = {"incremental": True, "include_kb": True, "max_tickets": 100, "max_articles": 50,
            "process_attachments": False}
    r = c.post("/ingest", json=body, headers=HEADERS)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == "completed" and out["results"]["tickets_collected"] == 100
    assert out["results"]["kb_articles_collected"] == 12 and out["timing"]["duration_seconds"] >= 0
    assert out["next_steps"] and out["storage"]["database_path"].endswith("streamdesk.duckdb")
    # Wrong 1: GET with query parameters runs nothing and says what to do.
    r = c.get("/ingest?max_tickets=100&company_id=wedosoft")
    assert r.status_code == 405 and "POST /ingest" in r.json()["error"]["message"]
    # Wrong 2: credentials in the body, no headers: refused, naming where they belong.
    r = c.post("/ingest", json={"company_id": "wedosoft", "api_key": "your_api_key", "max_tickets": 100})
    assert r.status_code == 400 and r.json()["error"]["details"]["move_to_headers"] == {
        "company_id": "X-Company-ID", "api_key": "X-API-Key"}
    # Query parameters on a POST are ignored, and the answer says so.
    r = c.post("/ingest/jobs?max_tickets=5", json={"max_tickets": 3, "include_kb": False}, headers=HEADERS)
    assert r.status_code == 202 and r.json()["ignored_query_parameters"] == ["max_tickets"]
    job = r.json()
    assert job["status"] == "queued" and job["progress_tracking"]["status_url"] == f"/ingest/jobs/{job['job_id']}"
    assert _until(c, job["job_id"], "completed")["statistics"]["tickets_collected"] == 3
    # The seed's status check carries no credentials: a clear 401 naming the headers.
    r = c.get(f"/ingest/jobs/{job['job_id']}")
    assert r.status_code == 401 and "X-Company-ID" in r.json()["error"]["message"]
    assert c.get(f"/ingest/jobs/{job['job_id']}", headers=READ | {"X-API-Key": "guess"}).status_code == 401
    assert c.get(f"/ingest/jobs/{job['job_id']}", headers={"X-Company-ID": "other", "X-API-Key": KEY}
                 ).status_code == 401  # another company cannot read it with this company's key


def test_bad_headers_and_options_get_clear_errors(system):
    c = system
    r = c.post("/ingest/jobs", json={}, headers=HEADERS | {"X-Platform": "zendesk"})
    assert r.status_code == 400 and "unknown platform" in r.json()["error"]["message"]
    r = c.post("/ingest/jobs", json={}, headers=HEADERS | {"X-Domain": "not a domain"})
    assert r.status_code == 400 and "X-Domain" in r.json()["error"]["message"]
    for bad in ({"batch_size": 0}, {"batch_size": 201}, {"max_retries": 11}, {"parallel_workers": 9},
                {"max_tickets": -1}, {"bogus": True}):
        r = c.post("/ingest/jobs", json=bad, headers=HEADERS)
        assert r.status_code == 422, (bad, r.text)
    # max_tickets null means no limit (the seed's NoneType crash), 0 means none.
    none = c.post("/ingest", json={"max_tickets": 0, "include_kb": False}, headers=HEADERS).json()
    assert none["results"]["tickets_collected"] == 0
    every = c.post("/ingest", json={"max_tickets": None, "include_kb": False}, headers=HEADERS).json()
    assert every["results"]["tickets_collected"] == 120


def test_a_rejected_key_is_a_clear_401(broker, tmp_path):
    sim = SimulatorServer(SimulatorConfig(tickets=5, valid_keys=["the-only-key"])).start()
    s = Settings(kafka_bootstrap=broker.bootstrap, data_dir=tmp_path / "data", partitions=1,
                 topic_prefix=f"ingk{uuid.uuid4().hex[:8]}.", freshdesk_base_url=sim.base_url, _env_file=None)
    asyncio.run(ensure_topics(broker.bootstrap, pipeline_topics(s)))
    worker = start_cli(["worker"], env_for(s) | {"STREAMDESK_FRESHDESK_BASE_URL": sim.base_url},
                       tmp_path / "worker.log")
    try:
        with TestClient(create_app(s)) as c:
            wait_for(lambda: c.get("/health").status_code == 200, 60, "healthy")
            r = c.post("/ingest", json={"max_tickets": 5}, headers=HEADERS | {"X-API-Key": "wrong-key"})
            assert r.status_code == 401 and "rejected the API key" in r.json()["error"]["message"]
    finally:
        stop_process(worker)
        sim.stop()


def test_pause_resume_cancel_mid_run_reach_the_job_within_a_second(broker, tmp_path):
    sim, s, procs = _system(broker, tmp_path, tickets=400, plan=600)  # ~10 calls/s: a run of ~40 s
    try:
        with TestClient(create_app(s)) as c:
            wait_for(lambda: c.get("/health").status_code == 200, 60, "healthy")
            job_id = c.post("/ingest/jobs", json={"include_kb": False, "batch_size": 10},
                            headers=HEADERS).json()["job_id"]
            wait_for(lambda: _job(c, job_id)["progress"]["completed_items"] >= 15, 60, "some progress")
            t0 = time.monotonic()
            r = c.post(f"/ingest/jobs/{job_id}/control", headers=HEADERS,
                       json={"action": "pause", "reason": "System maintenance required",
                             "options": {"graceful_shutdown": True, "save_progress": True}}).json()
            assert r["current_status"] == "paused" and time.monotonic() - t0 < 1.0, r
            assert r["previous_status"] == "running" and r["progress_saved"] and r["resume_capability"]
            at = _job(c, job_id)["progress"]["completed_items"]
            time.sleep(1.5)
            assert _job(c, job_id)["progress"]["completed_items"] == at  # paused means paused
            r = c.post(f"/ingest/jobs/{job_id}/control", headers=HEADERS, json={"action": "resume"}).json()
            assert r["current_status"] == "running"
            wait_for(lambda: _job(c, job_id)["progress"]["completed_items"] > at, 20, "progress after resume")
            r = c.post(f"/ingest/jobs/{job_id}/control", headers=HEADERS,
                       json={"action": "priority_change", "options": {"priority": "urgent"}}).json()
            assert r["priority"] == "urgent"
            t0 = time.monotonic()
            r = c.post(f"/ingest/jobs/{job_id}/control", headers=HEADERS, json={"action": "cancel"}).json()
            assert r["current_status"] == "cancelled" and time.monotonic() - t0 < 1.0, r
            assert c.post(f"/ingest/jobs/{job_id}/control", headers=HEADERS,
                          json={"action": "resume"}).status_code == 409
            listed = c.get("/ingest/jobs?status=cancelled", headers=READ).json()
            assert [j["job_id"] for j in listed["jobs"]] == [job_id] and listed["summary"]["cancelled"] == 1
    finally:
        for p in procs:
            stop_process(p)
        sim.stop()


def test_auto_start_false_waits_for_start(system):
    c = system
    job_id = c.post("/ingest/jobs", json={"auto_start": False, "max_tickets": 2, "include_kb": False},
                    headers=HEADERS).json()["job_id"]
    time.sleep(1.0)
    assert _job(c, job_id)["status"] == "queued"
    assert c.post(f"/ingest/jobs/{job_id}/control", headers=HEADERS, json={"action": "start"}).status_code == 200
    assert _until(c, job_id, "completed")["statistics"]["tickets_collected"] == 2


def test_a_job_whose_worker_dies_is_taken_over_and_finishes(broker, tmp_path):
    sim, s, procs = _system(broker, tmp_path, tickets=300, plan=900, workers=2)
    try:
        with TestClient(create_app(s)) as c:
            wait_for(lambda: len([w for w in c.get("/health").json()["worker"]["workers"] if w["alive"]]) == 2,
                     60, "two workers")
            job_id = c.post("/ingest/jobs", json={"include_kb": False, "batch_size": 10},
                            headers=HEADERS).json()["job_id"]
            running = wait_for(lambda: (j := _job(c, job_id))["progress"]["completed_items"] >= 40 and j, 60,
                               "progress")
            owner = next(p for p in procs if str(p.pid) in running["logs"][0]["message"])
            os.kill(owner.pid, signal.SIGKILL)
            done = _until(c, job_id, "completed", timeout=120)
            assert done["statistics"]["tickets_collected"] >= 300
            assert any("Job started on" in line["message"] for line in done["logs"])
            cur = c.app.state.db.cursor()
            count = lambda: cur.execute("SELECT count(*), count(DISTINCT key) FROM tickets").fetchone()  # noqa: E731
            assert wait_for(lambda: count()[0] >= 300 and count(), 60, "tickets stored") == (300, 300)
    finally:
        for p in procs:
            stop_process(p)
        sim.stop()


def test_the_api_key_is_never_in_duckdb_logs_or_topics(system, tmp_path):
    c = system
    c.post("/ingest", json={"max_tickets": 20, "max_articles": 3}, headers=HEADERS)
    db = c.app.state.db
    wal = c.settings.db_path.with_name(c.settings.db_path.name + ".wal")
    stored = c.settings.db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")  # file and its WAL
    assert KEY.encode() not in stored
    for log in tmp_path.glob("*.log"):
        assert KEY not in log.read_text(errors="replace"), log
    consumer_topics = [t for (t,) in db.execute("SELECT DISTINCT topic FROM materializer_offsets").fetchall()]
    assert consumer_topics

    async def every_message() -> bytes:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(bootstrap_servers=c.settings.kafka_bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        try:
            topics = [t for t in await consumer.topics() if t.startswith(c.settings.topic_prefix)]
            consumer.subscribe(topics)
            chunks = []
            for _ in range(20):
                got = await consumer.getmany(timeout_ms=300, max_records=10_000)
                chunks += [m.value or b"" for msgs in got.values() for m in msgs]
            return b"".join(chunks)
        finally:
            await consumer.stop()

    everything = asyncio.run(every_message())
    assert len(everything) > 10_000 and KEY.encode() not in everything


def test_the_live_stream_pushes_progress_until_the_job_ends(system):
    c = system
    job_id = c.post("/ingest/jobs", json={"include_kb": False, "batch_size": 5}, headers=HEADERS).json()["job_id"]
    seen = []
    with c.websocket_connect(f"/ingest/jobs/{job_id}/stream", headers=READ) as ws:
        while True:
            try:
                seen.append(ws.receive_json())
            except Exception:  # noqa: BLE001 - the server closes the socket when the job ends
                break
            if seen[-1]["status"] in ("completed", "failed", "cancelled"):
                break
    assert seen[-1]["status"] == "completed" and seen[-1]["statistics"]["tickets_collected"] == 120
    assert len({m["progress"]["completed_items"] for m in seen}) > 1  # it pushed progress, not just the end


def test_seed_examples_without_credentials_get_a_401_naming_the_headers(system):
    c = system
    assert c.post("/ingest", json={"max_tickets": 1, "include_kb": False}, headers=HEADERS).status_code == 200
    for method, url in (("GET", "/ingest/metrics"), ("GET", "/ingest/jobs?status=running"),
                        ("GET", "/ingest/jobs?company_id=wedosoft&status=running&limit=10&page=1"),
                        ("POST", "/ingest/sync-summaries")):
        r = c.request(method, url, json={"company_id": "wedosoft"} if method == "POST" else None,
                      headers={"Content-Type": "application/json"})
        assert r.status_code == 401 and "X-Company-ID" in r.json()["error"]["message"], (url, r.text)
        r = c.request(method, url, json={"company_id": "wedosoft"} if method == "POST" else None, headers=READ)
        assert r.status_code == 200, (url, r.text)


def test_purge_acts_on_the_calling_company_only(system):
    c = system
    other = HEADERS | {"X-Company-ID": "initech", "X-Domain": "initech.freshdesk.com", "X-API-Key": "k-initech"}
    for headers in (HEADERS, other):
        assert c.post("/ingest", json={"max_tickets": 10, "include_kb": False}, headers=headers).status_code == 200
    cur = c.app.state.db.cursor()
    counts = lambda: dict(cur.execute("SELECT tenant, count(*) FROM tickets GROUP BY 1").fetchall())  # noqa: E731
    wait_for(lambda: counts() == {"wedosoft": 10, "initech": 10}, 30, "both companies' tickets")
    purge = c.post("/ingest", json={"purge": True, "max_tickets": 0, "include_kb": False}, headers=HEADERS)
    assert purge.status_code == 200 and purge.json()["storage"]["records"]["tickets"] == 0
    assert counts() == {"initech": 10}  # the other company's data is untouched
