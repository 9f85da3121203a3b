"""Tickets ingested from the Freshdesk *simulator* become searchable: sync-summaries embeds them, and
`/search` finds a ticket by meaning with a paraphrase that shares no keyword, tenant-scoped."""

from __future__ import annotations

import asyncio
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
DOMAIN = "globex.freshdesk.com"
HEADERS = {"X-Company-ID": "globex", "X-Platform": "freshdesk", "X-Domain": DOMAIN, "X-API-Key": "k-globex",
           "Content-Type": "application/json"}
READ = {"X-Company-ID": "globex", "X-API-Key": "k-globex"}
PARAPHRASE = "purchase never reached the recipient"  # the shipping topic, in words its tickets do not use


@pytest.fixture(scope="module")
def searchable(broker, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("search")
    sim = SimulatorServer(SimulatorConfig(tickets=80, plan=1_000_000, seed=9, kb_articles=16)).start()
    s = Settings(kafka_bootstrap=broker.bootstrap, data_dir=tmp / "data", partitions=1, search_sync_s=3600,
                 topic_prefix=f"srch{uuid.uuid4().hex[:8]}.", freshdesk_base_url=sim.base_url, _env_file=None)
    asyncio.run(ensure_topics(broker.bootstrap, pipeline_topics(s)))
    worker = start_cli(["worker"], env_for(s) | {"STREAMDESK_FRESHDESK_BASE_URL": sim.base_url}, tmp / "worker.log")
    try:
        with TestClient(create_app(s)) as c:
            wait_for(lambda: c.get("/health").status_code == 200, 60, "healthy")
            assert c.post("/ingest", json={"include_kb": True}, headers=HEADERS).status_code == 200
            cur = c.app.state.db.cursor()
            wait_for(lambda: cur.execute("SELECT count(*) FROM integrated_objects WHERE tenant = 'globex'")
                     .fetchone()[0] >= 96, 60, "integrated objects")
            c.sim = sim
            yield c
    finally:
        stop_process(worker)
        sim.stop()


def _topic(sim: SimulatorServer, hit: dict) -> str | None:
    if hit["kind"] != "ticket":
        return None
    return sim.app.sim.dataset(DOMAIN).tickets[int(hit["id"].rsplit(":", 1)[1])].topic


def test_sync_summaries_embeds_every_object_once(searchable):
    c = searchable
    r = c.post("/ingest/sync-summaries", json={"company_id": "globex", "sync_options": {
        "force_rebuild": False, "incremental_only": True, "embedding_model": "text-embedding-3-small"}}, headers=READ)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["objects"] == first["embedded"] >= 96 and first["note"]  # names the model actually used
    again = c.post("/ingest/sync-summaries", json={"company_id": "globex"}, headers=READ).json()
    assert again["embedded"] == 0 and again["reused"] == first["objects"]  # incremental: nothing changed
    forced = c.post("/ingest/sync-summaries", json={"sync_options": {"force_rebuild": True}}, headers=READ).json()
    assert forced["embedded"] == first["objects"]
    # The seed's example carries only X-Company-ID: a clear 401; another company in the body: 403.
    assert c.post("/ingest/sync-summaries", json={"company_id": "globex"},
                  headers={"X-Company-ID": "globex"}).status_code == 401
    assert c.post("/ingest/sync-summaries", json={"company_id": "initech"}, headers=READ).status_code == 403


def test_search_finds_a_ticket_by_meaning_and_by_keyword(searchable):
    c = searchable
    c.post("/ingest/sync-summaries", json={}, headers=READ)
    semantic = c.get("/search", params={"q": PARAPHRASE, "mode": "semantic", "kind": "ticket"}, headers=READ).json()
    assert semantic["hits"] and _topic(c.sim, semantic["hits"][0]) == "shipping", semantic["hits"][:3]
    hybrid = c.get("/search", params={"q": PARAPHRASE, "k": 5}, headers=READ).json()
    assert "shipping" in {_topic(c.sim, h) for h in hybrid["hits"][:3]}
    keyword = c.get("/search", params={"q": "invoice", "mode": "keyword"}, headers=READ).json()
    assert keyword["hits"] and "<mark>" in keyword["hits"][0]["snippet"].lower()
    assert c.get("/search", params={"q": "invoice"}, headers={"X-Company-ID": "initech", "X-API-Key": "k-globex"}
                 ).status_code == 401  # another company cannot search with this one's key
