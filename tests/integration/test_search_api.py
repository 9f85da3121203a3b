"""Tickets ingested from the Freshdesk *simulator* become searchable: the worker embeds them as they stream by,
sync-summaries fills gaps or rebuilds, and `/search` finds a ticket by meaning with a paraphrase that shares no
keyword, tenant-scoped."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from api.main import create_app
from pipeline.broker.kafka import ensure_topics
from pipeline.broker.topics import pipeline_topics
from pipeline.settings import Settings
from simulators.freshdesk.server import SimulatorServer
from simulators.freshdesk.state import SimulatorConfig
from tests.helpers import checked_client, start_cli, stop_process, wait_for
from tests.integration.conftest import env_for

pytestmark = pytest.mark.integration
DOMAIN = "globex.freshdesk.com"
HEADERS = {"X-Company-ID": "globex", "X-Platform": "freshdesk", "X-Domain": DOMAIN, "X-API-Key": "your_api_key",
           "Content-Type": "application/json"}
READ = {"X-Company-ID": "globex", "X-API-Key": "your_api_key"}
PARAPHRASE = "purchase never reached the recipient"  # the shipping topic, in words its tickets do not use


@pytest.fixture(scope="module")
def searchable(broker, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("search")
    sim = SimulatorServer(SimulatorConfig(tickets=80, plan=1_000_000, seed=9, kb_articles=16)).start()
    s = Settings(kafka_bootstrap=broker.bootstrap, data_dir=tmp / "data", partitions=1, search_sync_s=0.2,
                 topic_prefix=f"srch{uuid.uuid4().hex[:8]}.", freshdesk_base_url=sim.base_url, _env_file=None)
    asyncio.run(ensure_topics(broker.bootstrap, pipeline_topics(s)))
    worker = start_cli(["worker"], env_for(s) | {"STREAMDESK_FRESHDESK_BASE_URL": sim.base_url}, tmp / "worker.log")
    try:
        with checked_client(create_app(s)) as c:
            wait_for(lambda: c.get("/health").status_code == 200, 60, "healthy")
            r = c.post("/ingest", json={"include_kb": True}, headers=HEADERS)
            assert r.status_code == 200, r.text
            # It answers once every record is stored and embedded: the counts are final, search is ready.
            storage = r.json()["storage"]
            assert storage["materialized"] and storage["searchable"]
            assert storage["records"]["tickets"] == 80 and storage["records"]["kb_articles"] == 16
            assert storage["records"]["integrated_objects"] == 96
            job = c.get(f"/ingest/jobs/{r.json()['execution_id']}", headers=READ).json()
            assert job["storage"] == {"materialized": True, "searchable": True}
            c.sim = sim
            yield c
    finally:
        stop_process(worker)
        sim.stop()


def _topic(sim: SimulatorServer, hit: dict) -> str | None:
    if hit["kind"] != "ticket":
        return None
    return sim.app.sim.dataset(DOMAIN).tickets[int(hit["id"].rsplit(":", 1)[1])].topic


def _vectors(c) -> dict[str, int]:
    cur = c.app.state.services.store.con.cursor()
    return dict(cur.execute("SELECT key, seq FROM ticket_vectors WHERE tenant = 'globex'").fetchall())


def _objects(c) -> int:
    cur = c.app.state.services.store.con.cursor()
    return cur.execute("SELECT count(*) FROM integrated_objects WHERE tenant = 'globex'").fetchone()[0]


def test_the_worker_embeds_what_streams_by_and_sync_summaries_fills_gaps_or_rebuilds(searchable):
    c = searchable
    assert len(_vectors(c)) == _objects(c) == 96  # the worker embedded each as it streamed by
    r = c.post("/ingest/sync-summaries", json={"company_id": "globex", "sync_options": {
        "force_rebuild": False, "incremental_only": True, "embedding_model": "text-embedding-3-small"}}, headers=READ)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["status"] == "completed" and first["embedded"] == 0 and first["reused"] == first["objects"] >= 96
    assert first["note"]  # names the model actually used
    n = first["objects"]
    assert c.get("/ingest/metrics", headers=READ).json()["search_metrics"] == {
        "integrated_objects": n, "embedded": n, "pending_embedding": 0, "indexed": n}

    gap = sorted(_vectors(c))[:5]  # as if the embedder had been down for these five
    c.app.state.services.store.con.cursor().execute("DELETE FROM ticket_vectors WHERE key IN (SELECT unnest(?))", [gap])
    assert c.get("/ingest/metrics", headers=READ).json()["search_metrics"]["pending_embedding"] == 5
    filled = c.post("/ingest/sync-summaries", json={"company_id": "globex"}, headers=READ).json()
    assert (filled["status"], filled["embedded"], filled["pending"]) == ("completed", 5, 0)
    assert set(gap) <= set(_vectors(c))

    before = _vectors(c)
    forced = c.post("/ingest/sync-summaries", json={"sync_options": {"force_rebuild": True}}, headers=READ).json()
    assert forced["status"] == "completed" and forced["embedded"] == forced["objects"] == len(before)
    after = _vectors(c)
    assert all(after[k] > max(before.values()) for k in before)  # every vector rewritten after the request
    # The seed's example carries only X-Company-ID: a clear 401; another company in the body: 403.
    assert c.post("/ingest/sync-summaries", json={"company_id": "globex"},
                  headers={"X-Company-ID": "globex"}).status_code == 401
    assert c.post("/ingest/sync-summaries", json={"company_id": "initech"}, headers=READ).status_code == 403


def test_search_finds_a_ticket_by_meaning_and_by_keyword(searchable):
    c = searchable  # no sync-summaries: what the worker embedded is searchable when POST /ingest answers
    semantic = c.get("/search", params={"q": PARAPHRASE, "mode": "semantic", "kind": "ticket"}, headers=READ).json()
    assert semantic["hits"] and _topic(c.sim, semantic["hits"][0]) == "shipping", semantic["hits"][:3]
    hybrid = c.get("/search", params={"q": PARAPHRASE, "k": 5}, headers=READ).json()
    assert "shipping" in {_topic(c.sim, h) for h in hybrid["hits"][:3]}
    keyword = c.get("/search", params={"q": "invoice", "mode": "keyword"}, headers=READ).json()
    assert keyword["hits"] and "<mark>" in keyword["hits"][0]["snippet"].lower()
    assert c.get("/search", params={"q": "invoice"}, headers={"X-Company-ID": "initech", "X-API-Key": "your_api_key"}
                 ).status_code == 401  # another company cannot search with this one's key


def test_force_rebuild_recollects_the_full_history_and_search_follows(searchable):
    """The seed's `force_rebuild` with `incremental` left at its default (true): the company's data is purged and
    collected again in full (an incremental run after a purge would leave only what changed since the last job)."""
    c = searchable
    cur = c.app.state.services.store.con.cursor()
    tickets = lambda: cur.execute("SELECT count(*) FROM tickets WHERE tenant = 'globex'").fetchone()[0]  # noqa: E731
    truth = len(c.sim.app.sim.dataset(DOMAIN).tickets)
    assert tickets() == truth
    r = c.post("/ingest", json={"force_rebuild": True, "include_kb": True}, headers=HEADERS)
    assert r.status_code == 200, r.text
    assert r.json()["results"]["tickets_collected"] == truth
    assert tickets() == truth and len(_vectors(c)) == _objects(c) == 96  # rebuilt and re-embedded
    assert c.get("/search", params={"q": PARAPHRASE, "mode": "semantic"}, headers=READ).json()["total"]


def test_an_embeddings_url_that_is_down_leaves_objects_pending_and_sync_summaries_says_why(broker, tmp_path):
    down = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    sim = SimulatorServer(SimulatorConfig(tickets=6, plan=1_000_000, seed=4, kb_articles=0)).start()
    s = Settings(kafka_bootstrap=broker.bootstrap, data_dir=tmp_path / "data", partitions=1, search_sync_s=0.2,
                 topic_prefix=f"srchdown{uuid.uuid4().hex[:8]}.", freshdesk_base_url=sim.base_url,
                 embeddings_url=down, _env_file=None)
    asyncio.run(ensure_topics(broker.bootstrap, pipeline_topics(s)))
    worker = start_cli(["worker"], env_for(s) | {"STREAMDESK_FRESHDESK_BASE_URL": sim.base_url,
                                                 "STREAMDESK_EMBEDDINGS_URL": down}, tmp_path / "worker.log")
    try:
        with checked_client(create_app(s)) as c:
            wait_for(lambda: c.get("/health").status_code == 200, 60, "healthy")
            assert c.post("/ingest", json={"include_kb": False}, headers=HEADERS).status_code == 200
            metrics = lambda: c.get("/ingest/metrics", headers=READ).json()["search_metrics"]  # noqa: E731
            wait_for(lambda: metrics()["integrated_objects"] == 6, 30, "the tickets stored")
            r = c.post("/ingest/sync-summaries", json={}, headers=READ)
            assert r.status_code == 503 and "could not embed" in r.json()["error"]["message"], r.text
            assert metrics()["pending_embedding"] == 6  # stored all the same, waiting for a vector
            cur = c.app.state.services.store.con.cursor()
            assert cur.execute("SELECT count(*) FROM dead_letters WHERE dlq_topic = ? AND error LIKE "
                               "'embedding failed%'", [s.topic("tickets.embed_requests.dlq")]).fetchone()[0] == 1
    finally:
        stop_process(worker)
        sim.stop()
