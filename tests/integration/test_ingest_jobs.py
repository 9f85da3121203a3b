"""Seed 000's ingest routes against the Freshdesk *simulator* on loopback, a real worker and the real broker:
the seed's curl examples (the wrong ones too), job control mid-run, a worker killed mid-job, and the API
key never stored, logged or published in clear."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.partitioner import DefaultPartitioner

from api.main import create_app
from pipeline.broker.kafka import ensure_topics
from pipeline.broker.topics import pipeline_topics
from pipeline.ingest.jobs import MAX_CONTENT_IN_TOPIC
from pipeline.settings import Settings
from pipeline.tickets.attachments import MAX_CONTENT_TEXT
from simulators.freshdesk.server import SimulatorServer
from simulators.freshdesk.state import SimulatorConfig
from tests.helpers import checked_client, start_cli, stop_process, wait_for
from tests.integration.conftest import env_for

pytestmark = pytest.mark.integration
KEY = "sk-live-NEVER-IN-CLEAR-7f3a9c"
HEADERS = {"X-Company-ID": "wedosoft", "X-Platform": "freshdesk", "X-Domain": "wedosoft.freshdesk.com",
           "X-API-Key": KEY, "Content-Type": "application/json"}
READ = {"X-Company-ID": "wedosoft", "X-API-Key": KEY}
GLOBEX = HEADERS | {"X-Company-ID": "globex", "X-Domain": "globex.freshdesk.com", "X-API-Key": KEY}


def _system(broker, tmp_path, tickets: int, plan: int, workers: int = 1, **settings):
    config = SimulatorConfig(tickets=tickets, plan=plan, seed=3, kb_articles=12, keys={"*": [KEY]})
    sim = SimulatorServer(config).start()
    s = Settings(kafka_bootstrap=broker.bootstrap, data_dir=tmp_path / "data", partitions=2,
                 topic_prefix=f"ing{uuid.uuid4().hex[:8]}.", freshdesk_base_url=sim.base_url, _env_file=None,
                 **settings)
    asyncio.run(ensure_topics(broker.bootstrap, pipeline_topics(s)))
    env = env_for(s) | {"STREAMDESK_FRESHDESK_BASE_URL": sim.base_url}
    procs = [start_cli(["worker"], env, tmp_path / f"worker{i}.log") for i in range(workers)]
    return sim, s, procs


@pytest.fixture(scope="module")
def system(broker, tmp_path_factory):
    """One worker, api and simulator for the tests that need no fresh start (a worker takes ~7 s to join). The
    seed-example test runs first (file order) on an empty company; the others use their own companies, full
    runs, or answers that what the others stored does not change."""
    tmp = tmp_path_factory.mktemp("ingest")
    sim, s, procs = _system(broker, tmp, tickets=120, plan=100_000)
    try:
        with checked_client(create_app(s)) as client:
            client.settings, client.sim, client.tmp = s, sim, tmp
            wait_for(lambda: client.get("/health").status_code == 200, 60, "worker and api healthy")
            yield client
    finally:
        for p in procs:
            stop_process(p)
        sim.stop()


def _job(client, job_id: str, company: dict | None = None) -> dict:
    read = {k: company[k] for k in ("X-Company-ID", "X-API-Key")} if company else READ
    return client.get(f"/ingest/jobs/{job_id}", headers=read).json()


def _items(client, job_id: str, company: dict) -> int:
    return _job(client, job_id, company)["progress"]["completed_items"]


def _lines(cur, job_id: str) -> list[tuple[datetime, str]]:  # noqa: ANN001 - a job's log, oldest first
    return cur.execute("SELECT timestamp, message FROM ingest_job_logs WHERE job_id = ? ORDER BY seq, n",
                       [job_id]).fetchall()


def _acted_after(cur, job_id: str, prefix: str, sent: datetime) -> float:  # noqa: ANN001
    """Seconds from `sent` until the job itself, in its worker, logged a line starting with `prefix`."""
    when = wait_for(lambda: [t for t, m in _lines(cur, job_id) if m.startswith(prefix) and t >= sent], 10,
                    f"{job_id} to log {prefix!r}")
    return (when[0] - sent).total_seconds()


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
    # process_attachments false: the attachments of those 100 tickets are stored as metadata, none downloaded.
    assert out["results"]["attachments_processed"] == 0 and c.sim.stats()["files"].get("downloads", 0) == 0
    listed = c.sim.app.sim.dataset(HEADERS["X-Domain"]).ordered("updated_at", False)[:100]
    expected = sum(len(t.attachments) + sum(len(cv.attachments) for cv in t.conversations) for t in listed)
    cur = c.app.state.services.store.con.cursor()
    count = "SELECT count(*), count(content_sha256) + count(content_size) + count(content_skipped) FROM attachments"
    assert wait_for(lambda: (n := cur.execute(count).fetchone())[0] == expected and n, 30, "attachments") == (
        expected, 0)
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
    every = c.post("/ingest", json={"max_tickets": None, "include_kb": False, "incremental": False},
                   headers=HEADERS).json()
    assert every["results"]["tickets_collected"] == 120


def test_a_rejected_key_is_a_clear_401(broker, tmp_path):
    sim = SimulatorServer(SimulatorConfig(tickets=5, keys={"*": ["the-only-key"]})).start()
    s = Settings(kafka_bootstrap=broker.bootstrap, data_dir=tmp_path / "data", partitions=1,
                 topic_prefix=f"ingk{uuid.uuid4().hex[:8]}.", freshdesk_base_url=sim.base_url, _env_file=None)
    asyncio.run(ensure_topics(broker.bootstrap, pipeline_topics(s)))
    worker = start_cli(["worker"], env_for(s) | {"STREAMDESK_FRESHDESK_BASE_URL": sim.base_url},
                       tmp_path / "worker.log")
    try:
        with checked_client(create_app(s)) as c:
            wait_for(lambda: c.get("/health").status_code == 200, 60, "healthy")
            r = c.post("/ingest", json={"max_tickets": 5}, headers=HEADERS | {"X-API-Key": "wrong-key"})
            assert r.status_code == 401 and "rejected the API key" in r.json()["error"]["message"]
    finally:
        stop_process(worker)
        sim.stop()


def test_control_reaches_each_running_job_within_a_second_on_whichever_of_two_workers_runs_it(broker, tmp_path):
    # Commands are keyed by domain: these two domains' land on different partitions, so on different workers.
    companies = (HEADERS, GLOBEX)
    assert {DefaultPartitioner()(h["X-Domain"].encode(), [0, 1], [0, 1]) for h in companies} == {0, 1}
    sim, s, procs = _system(broker, tmp_path, tickets=400, plan=600, workers=2)  # ~10 calls/s: runs of ~40 s
    try:
        with checked_client(create_app(s)) as c:
            cur = c.app.state.services.store.con.cursor()
            owner = lambda job_id: cur.execute(  # noqa: E731 - the worker the job's latest state came from
                "SELECT worker FROM ingest_jobs WHERE job_id = ?", [job_id]).fetchone()[0]
            spent = lambda h: sim.stats()["domains"][h["X-Domain"]]["requests"]  # noqa: E731 - Freshdesk calls
            wait_for(lambda: len([w for w in c.get("/health").json()["worker"]["workers"] if w["alive"]]) == 2,
                     60, "two workers")
            jobs = [(h, c.post("/ingest/jobs", json={"include_kb": False, "batch_size": 10},
                               headers=h).json()["job_id"]) for h in companies]
            for h, job_id in jobs:
                wait_for(lambda j=job_id, h=h: _items(c, j, h) >= 15, 60, "some progress")
            owners = {job_id: owner(job_id) for _, job_id in jobs}
            assert len(set(owners.values())) == 2 and {o.rsplit(":", 1)[1] for o in owners.values()} == {
                str(p.pid) for p in procs}, owners  # each worker runs one of the jobs
            at = {}
            for h, job_id in jobs:
                sent = datetime.now(UTC)
                r = c.post(f"/ingest/jobs/{job_id}/control", headers=h,
                           json={"action": "pause", "reason": "System maintenance required",
                                 "options": {"graceful_shutdown": True, "save_progress": True}}).json()
                assert r["current_status"] == "paused", r  # confirmed by the worker (the api waits up to 2 s)
                assert r["previous_status"] == "running" and r["progress_saved"] and r["resume_capability"]
                assert _acted_after(cur, job_id, "Job paused", sent) < 1.0  # the running job paused within 1 s
                assert owner(job_id) == owners[job_id]  # ...in the worker that runs it
                at[job_id] = (_items(c, job_id, h), spent(h))
            # A running job reports at least every second: once both workers have beaten more than a second after
            # the last pause, and those beats are stored, a job still running would have shown progress too.
            quiet_since = datetime.now(UTC) + timedelta(seconds=1)
            wait_for(lambda: cur.execute("SELECT count(*) FROM worker_heartbeats WHERE last_seen > ?",
                                         [quiet_since]).fetchone()[0] >= 2, 20, "both workers' beats a second on")
            for h, job_id in jobs:  # paused means paused: no progress, no Freshdesk calls but those already sent
                done, calls = at[job_id]
                assert _items(c, job_id, h) == done
                assert spent(h) - calls <= 4  # parallel_workers: conversation calls in flight at the pause
            for h, job_id in jobs:
                r = c.post(f"/ingest/jobs/{job_id}/control", headers=h, json={"action": "resume"}).json()
                assert r["current_status"] == "running"
            for h, job_id in jobs:
                wait_for(lambda j=job_id, h=h: _items(c, j, h) > at[j][0], 20, "progress after resume")
            r = c.post(f"/ingest/jobs/{jobs[0][1]}/control", headers=HEADERS,
                       json={"action": "priority_change", "options": {"priority": "urgent"}}).json()
            assert r["priority"] == "urgent"
            for h, job_id in jobs:
                sent = datetime.now(UTC)
                r = c.post(f"/ingest/jobs/{job_id}/control", headers=h, json={"action": "cancel"}).json()
                assert r["current_status"] == "cancelled", r
                # The running job itself stopped (not just a "cancelled" status from a worker that lacks it).
                assert _acted_after(cur, job_id, "Job cancelled", sent) < 1.0
                assert c.post(f"/ingest/jobs/{job_id}/control", headers=h,
                              json={"action": "resume"}).status_code == 409
            for h, job_id in jobs:
                logged = [m for _, m in _lines(cur, job_id)]
                # One run from start to cancel: resume continued it in place, no second worker started it anew.
                assert [m for m in logged if m.startswith("Job started on")] == [f"Job started on {owners[job_id]}"]
                assert sum(m.startswith("Job paused") for m in logged) == 1
                stats = _job(c, job_id, h)["statistics"]
                assert stats["api_calls"] <= stats["tickets_collected"] + 4 + 3  # every ticket's calls once
            listed = c.get("/ingest/jobs?status=cancelled", headers=READ).json()
            assert [j["job_id"] for j in listed["jobs"]] == [jobs[0][1]] and listed["summary"]["cancelled"] == 1
    finally:
        for p in procs:
            stop_process(p)
        sim.stop()


def test_auto_start_false_waits_for_start(system):
    c = system
    job_id = c.post("/ingest/jobs", json={"auto_start": False, "max_tickets": 2, "include_kb": False,
                                          "incremental": False}, headers=HEADERS).json()["job_id"]
    # Not a fixed wait: a job created after it, which does start, runs to its end on the same domain's worker
    # while the first one stays queued.
    later = c.post("/ingest/jobs", json={"max_tickets": 2, "include_kb": False, "incremental": False},
                   headers=HEADERS).json()["job_id"]
    _until(c, later, "completed")
    assert _job(c, job_id)["status"] == "queued"
    assert c.post(f"/ingest/jobs/{job_id}/control", headers=HEADERS, json={"action": "start"}).status_code == 200
    assert _until(c, job_id, "completed")["statistics"]["tickets_collected"] == 2


def test_a_job_whose_worker_dies_is_taken_over_and_finishes(broker, tmp_path):
    # The api takes a job silent for 8 s as orphaned (15 s by default): past the group's 6 s session timeout.
    sim, s, procs = _system(broker, tmp_path, tickets=300, plan=2400, workers=2, ingest_stale_after_s=8)
    try:
        with checked_client(create_app(s)) as c:
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
            cur = c.app.state.services.store.con.cursor()
            count = lambda: cur.execute("SELECT count(*), count(DISTINCT key) FROM tickets").fetchone()  # noqa: E731
            assert wait_for(lambda: count()[0] >= 300 and count(), 60, "tickets stored") == (300, 300)
    finally:
        for p in procs:
            stop_process(p)
        sim.stop()


def test_the_api_key_is_never_in_duckdb_logs_or_topics(system):
    c, tmp_path = system, system.tmp
    c.post("/ingest", json={"max_tickets": 20, "max_articles": 3}, headers=HEADERS)
    db = c.app.state.services.store.con
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
    job_id = c.post("/ingest/jobs", json={"incremental": False, "include_kb": False, "batch_size": 5},
                    headers=HEADERS).json()["job_id"]
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
    mine = HEADERS | {"X-Company-ID": "hooli", "X-Domain": "hooli.freshdesk.com", "X-API-Key": KEY}
    other = HEADERS | {"X-Company-ID": "initech", "X-Domain": "initech.freshdesk.com", "X-API-Key": KEY}
    for headers in (mine, other):
        assert c.post("/ingest", json={"max_tickets": 10, "include_kb": False}, headers=headers).status_code == 200
    cur = c.app.state.services.store.con.cursor()
    counts = lambda: dict(cur.execute("SELECT tenant, count(*) FROM tickets WHERE tenant IN ('hooli', 'initech') "  # noqa: E731
                                      "GROUP BY 1").fetchall())
    assert counts() == {"hooli": 10, "initech": 10}  # POST /ingest answered once they were stored
    purge = c.post("/ingest", json={"purge": True, "max_tickets": 0, "include_kb": False}, headers=mine)
    assert purge.status_code == 200 and purge.json()["storage"]["records"]["tickets"] == 0
    assert counts() == {"initech": 10}  # the other company's data is untouched


def test_attachment_content_is_stored_hashed_with_its_text_within_the_cap(system):
    c, sim = system, system.sim
    data = sim.app.sim.dataset(HEADERS["X-Domain"])  # read between requests only
    files = dict(data.attachments)
    small = {i: a for i, a in files.items() if a.size <= MAX_CONTENT_IN_TOPIC}
    texts = {i for i, a in small.items() if a.content_type.startswith("text/")}
    assert texts and len(small) > len(texts) and len(files) > len(small)  # text, binary and over-the-cap files
    cur = c.app.state.services.store.con.cursor()

    def stored() -> dict[int, tuple] | None:
        got = {int(r[0]): r[1:] for r in cur.execute(
            "SELECT source_id, name, size, content_sha256, content_size, content_text, content_truncated, "
            "content_skipped FROM attachments WHERE tenant = 'wedosoft'").fetchall()}
        return got if len(got) == len(files) else None

    sim.reset_stats()
    # A full run over what earlier tests stored as metadata only: the processed copies replace those rows.
    fetched = c.post("/ingest", json={"incremental": False, "include_kb": False, "process_attachments": True},
                     headers=HEADERS).json()
    assert fetched["results"]["attachments_processed"] == len(files)
    assert sim.stats()["files"] == {"downloads": len(files)}  # each once (over the cap: headers only, no body)
    rows = wait_for(stored, 30, "every attachment stored")
    assert {i: r[:2] for i, r in rows.items()} == {i: (a.name, a.size) for i, a in files.items()}
    for i, a in files.items():
        sha, size, text, truncated, skipped = rows[i][2:]
        if i not in small:  # over the cap: metadata only, with the reason
            assert (sha, size, text, skipped) == (None, a.size, None, f"over {MAX_CONTENT_IN_TOPIC} bytes"), a
            continue
        raw = b"".join(data.attachment_chunks(a))
        assert (sha, size, truncated, skipped) == (hashlib.sha256(raw).hexdigest(), a.size, False, None), a
        if i in texts:  # a CSV or a log becomes searchable text, kept up to 64 Ki characters
            assert text == raw.decode().rstrip("\n")[:MAX_CONTENT_TEXT], a
        else:
            assert text is None, a
    assert cur.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)  # no batch was too big to store
