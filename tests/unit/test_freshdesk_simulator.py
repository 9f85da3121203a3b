"""The Freshdesk simulator behaves like Freshdesk where an ingest job would notice: pages, caps, limits, faults."""

from __future__ import annotations

import io
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

import httpx
import pytest
from rich.console import Console

from pipeline.settings import Settings
from pipeline.supervisor import Child, Supervisor
from simulators.freshdesk.fixtures import Dataset
from simulators.freshdesk.server import SimulatorServer
from simulators.freshdesk.state import Faults, SimulatorConfig
from tests.helpers import REPO, start_cli, stop_process, wait_for

END = datetime(2026, 1, 1, tzinfo=UTC)
ALL = {"updated_since": "1970-01-01T00:00:00Z", "order_by": "updated_at", "order_type": "asc"}
Start = Callable[..., httpx.Client]


@pytest.fixture
def start() -> Iterator[Start]:
    """Starts simulators on loopback; returns a client for one account (Host header), stopped after the test."""
    servers: list[SimulatorServer] = []

    def _start(host: str = "acme.freshdesk.com", key: str | None = "your_api_key",
               server: SimulatorServer | None = None, **config: object) -> httpx.Client:
        if server is None:
            server = SimulatorServer(SimulatorConfig(**({"tickets": 40, "end": END, "plan": 10_000} | config)))
            servers.append(server.start())
        c = httpx.Client(base_url=server.base_url, headers={"Host": host}, auth=(key, "X") if key else None)
        c.server = server  # type: ignore[attr-defined]
        return c

    yield _start
    for server in servers:
        server.stop()


def follow(c: httpx.Client, path: str, params: dict | None) -> tuple[list[dict], list[httpx.Response]]:
    """Every record of a listing by following Link rel=next (on the same server), and the responses seen."""
    records, responses, url = [], [], path
    while url:
        r = c.get(url, params=params)
        assert r.status_code == 200, r.text
        records += r.json()
        responses.append(r)
        link = r.links.get("next", {}).get("url")
        url, params = (f"{urlsplit(link).path}?{urlsplit(link).query}" if link else None), None
    return records, responses


def test_ticket_list_pages_through_link_headers_and_every_ticket_comes_once_in_update_order(start):
    c = start(tickets=25, per_page_max=10)
    tickets, responses = follow(c, "/api/v2/tickets", ALL | {"per_page": 10})
    assert sorted(t["id"] for t in tickets) == list(range(1, 26))
    assert [t["updated_at"] for t in tickets] == sorted(t["updated_at"] for t in tickets)
    assert len(responses) == 3 and "link" not in responses[-1].headers
    assert re.fullmatch(r'<http://acme\.freshdesk\.com/api/v2/tickets\?.*page=2.*>; rel="next"',
                        responses[0].headers["link"])


def test_a_page_past_the_cap_answers_400_while_the_last_allowed_page_still_links_onwards(start):
    c = start(tickets=30, per_page_max=2, max_page=3)
    third = c.get("/api/v2/tickets", params=ALL | {"per_page": 2, "page": 3})
    assert third.status_code == 200 and "page=4" in third.headers["link"]
    beyond = c.get("/api/v2/tickets", params=ALL | {"per_page": 2, "page": 4})
    assert beyond.status_code == 400
    assert beyond.json()["errors"] == [{"field": "page", "message": "You cannot access beyond 3 pages",
                                        "code": "invalid_value"}]


def test_bad_list_parameters_get_freshdesk_validation_errors(start):
    c = start(per_page_max=100)
    too_many = c.get("/api/v2/tickets", params=ALL | {"per_page": 101})
    assert too_many.status_code == 400 and too_many.json()["errors"][0]["field"] == "per_page"
    assert c.get("/api/v2/tickets", params={"updated_since": "yesterday"}).json()["errors"][0]["field"] == \
        "updated_since"
    assert c.get("/api/v2/tickets", params={"updatedsince": "2025-01-01"}).json()["errors"][0]["code"] == \
        "invalid_field"


def test_without_updated_since_only_the_last_30_days_are_listed_and_description_needs_include(start):
    c = start(tickets=300, end=None)
    recent, _ = follow(c, "/api/v2/tickets", {"per_page": 100})
    everything, _ = follow(c, "/api/v2/tickets", ALL | {"per_page": 100, "include": "description"})
    floor = (datetime.now(UTC) - timedelta(days=31)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert 0 < len(recent) < len(everything) == 300
    assert all(t["created_at"] >= floor for t in recent)
    assert "description" not in recent[0] and everything[0]["description"].startswith("<div>")


def test_every_answer_carries_rate_headers_and_the_budget_runs_out_into_429_with_retry_after(start):
    c = start(plan=5)
    listed = c.get("/api/v2/tickets", params=ALL | {"include": "description"})
    assert listed.headers["x-ratelimit-used-currentrequest"] == "3"  # an include costs 2 more credits
    assert (listed.headers["x-ratelimit-total"], listed.headers["x-ratelimit-remaining"]) == ("5", "2")
    assert [c.get("/api/v2/solutions/categories").status_code for _ in range(3)] == [200, 200, 429]
    refused = c.get("/api/v2/solutions/categories")
    assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
    assert c.get("/_simulator/stats").json()["domains"]["acme.freshdesk.com"]["throttled"] == 2


def test_credits_come_back_when_the_window_slides_past_them(start):
    c = start(plan=2, window_seconds=0.3)
    assert [c.get("/api/v2/solutions/categories").status_code for _ in range(3)] == [200, 200, 429]
    wait_for(lambda: c.get("/api/v2/solutions/categories").status_code == 200, 5, "credits back after the window")


def test_each_host_is_its_own_account_with_its_own_data_and_budget(start):
    acme = start(tickets=20, plan=1)
    globex = start("globex.freshdesk.com", server=acme.server)
    a, g = acme.get("/api/v2/tickets", params=ALL), globex.get("/api/v2/tickets", params=ALL)
    assert a.status_code == g.status_code == 200
    assert [t["subject"] for t in a.json()] != [t["subject"] for t in g.json()]
    assert acme.get("/api/v2/tickets", params=ALL).status_code == 429  # acme spent its one credit, globex too
    assert start("initech.freshdesk.com", server=acme.server).get("/api/v2/tickets", params=ALL).status_code == 200


def test_only_listed_domains_exist_when_the_simulator_is_given_a_list(start):
    c = start(host="nobody.freshdesk.com", domains=["acme.freshdesk.com"])
    assert c.get("/api/v2/tickets", params=ALL).status_code == 404


def test_a_wrong_key_is_refused_with_freshdesks_body_and_costs_no_credit(start):
    wrong = start(key="wrong", keys={"*": ["right"]}, plan=3)
    for _ in range(4):
        r = wrong.get("/api/v2/tickets", params=ALL)
        assert r.status_code == 401
    assert r.json() == {"code": "invalid_credentials", "message": "You have to be logged in to perform this action."}
    assert start(key=None, server=wrong.server).get("/api/v2/tickets").status_code == 401
    right = start(key="right", server=wrong.server)
    assert right.get("/api/v2/tickets", params=ALL).headers["x-ratelimit-remaining"] == "2"


def test_faults_set_at_runtime_hit_the_next_requests_and_are_counted(start):
    c = start()
    c.post("/_simulator/faults", json={"errors_next": 2, "error_status": 502, "throttle_next": 1,
                                       "throttle_retry_after_s": 7})
    statuses = [c.get("/api/v2/tickets/1/conversations") for _ in range(4)]
    assert [r.status_code for r in statuses] == [502, 502, 429, 200]
    assert statuses[2].headers["retry-after"] == "7"
    stats = c.get("/_simulator/stats").json()
    assert stats["by_endpoint"]["GET /api/v2/tickets/{id}/conversations"] == {"502": 2, "429": 1, "200": 1}
    assert stats["faults"] == {"error": 2, "throttle": 1}
    assert stats["domains"]["acme.freshdesk.com"]["throttled_injected"] == 1
    assert c.delete("/_simulator/faults").json() == Faults().model_dump()


def test_random_faults_repeat_exactly_for_the_same_seed(start):
    def statuses(seed: int) -> list[int]:
        c = start(seed=seed, faults=Faults(error_rate=0.3))
        return [c.get("/api/v2/solutions/categories").status_code for _ in range(40)]

    first = statuses(1)
    assert first == statuses(1) and 5 <= first.count(503) <= 20
    assert first != statuses(2)


def test_slow_answers_wait_and_dropped_connections_get_no_answer_at_all():
    with SimulatorServer(SimulatorConfig(tickets=5, end=END)) as server:
        with httpx.Client(base_url=server.base_url, auth=("your_api_key", "X")) as c:
            server.set_faults(slow_next=1, slow_s=0.3, drop_next=1)
            started = time.monotonic()
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                c.get("/api/v2/solutions/categories")
            assert time.monotonic() - started >= 0.3
            assert c.get("/api/v2/solutions/categories").status_code == 200
        stats = server.stats()
    assert stats["by_endpoint"]["GET /api/v2/solutions/categories"] == {"dropped": 1, "200": 1}
    assert stats["faults"] == {"delayed": 1, "drop": 1}


def test_generated_accounts_are_deterministic_multilingual_real_html():
    one, again, other = Dataset(200, seed=7, end=END), Dataset(200, seed=7, end=END), Dataset(200, seed=8, end=END)
    assert [t.record for t in one.tickets.values()] == [t.record for t in again.tickets.values()]
    assert [t.record["subject"] for t in one.tickets.values()] != [t.record["subject"] for t in
                                                                   other.tickets.values()]
    html = " ".join(t.record["description"] for t in one.tickets.values())
    text = " ".join(t.record["description_text"] for t in one.tickets.values())
    assert all(tag in html for tag in ("<p>", "<br>", "<b>", "<li>", "&amp;", "&nbsp;", "<script>", "<style>"))
    assert "trackOpen" not in text and "color:" not in text and "<" not in text.replace("<E", "")
    assert re.search(r"[\uac00-\ud7a3]", text) and re.search(r"[\u3040-\u30ff]", text) and "refund" in text
    counts = [len(t.conversations) for t in one.tickets.values()]
    assert min(counts) == 0 and max(counts) == 8
    assert all(t.updated > t.created for t in one.tickets.values() if t.conversations)


def test_updates_move_tickets_past_everything_listed_so_far(start):
    c = start(tickets=50)
    before, _ = follow(c, "/api/v2/tickets", ALL | {"per_page": 100})
    newest = max(t["updated_at"] for t in before)
    changed = c.post("/_simulator/updates", json={"count": 6, "domain": "acme.freshdesk.com",
                                                  "new_conversation_rate": 1.0}).json()["updated_ids"]
    after, _ = follow(c, "/api/v2/tickets", ALL | {"per_page": 100, "updated_since": newest})
    assert sorted(t["id"] for t in after if t["updated_at"] > newest) == sorted(changed) and len(changed) == 6
    replies = c.get(f"/api/v2/tickets/{changed[0]}/conversations", params={"per_page": 100}).json()
    assert replies[-1]["incoming"] is True and replies[-1]["created_at"] > newest


def test_conversations_and_the_knowledge_base_paginate_and_missing_records_are_404(start):
    c = start(tickets=60, kb_articles=30, per_page_max=2)
    busiest = max(c.server.app.sim.dataset("acme.freshdesk.com").tickets.values(), key=lambda t: len(t.conversations))
    conversations, pages = follow(c, f"/api/v2/tickets/{busiest.record['id']}/conversations", {"per_page": 2})
    assert len(conversations) == len(busiest.conversations) > 2 and len(pages) > 1
    assert {"body", "body_text", "incoming", "private", "user_id", "attachments"} <= set(conversations[0])
    categories, _ = follow(c, "/api/v2/solutions/categories", {"per_page": 2})
    articles = []
    for category in categories:
        for folder in follow(c, f"/api/v2/solutions/categories/{category['id']}/folders", {"per_page": 2})[0]:
            articles += follow(c, f"/api/v2/solutions/folders/{folder['id']}/articles", {"per_page": 2})[0]
    assert len(articles) == 30 and {a["status"] for a in articles} == {1, 2}
    assert c.get("/api/v2/tickets/999999/conversations").status_code == 404


def test_attachment_urls_serve_the_declared_bytes_and_refuse_when_tampered_or_expired(start):
    c = start(tickets=200, attachment_url_ttl_s=1)
    tickets, _ = follow(c, "/api/v2/tickets", ALL | {"per_page": 100})
    small = min((a for t in tickets for a in t["attachments"]), key=lambda a: a["size"])
    got = c.get(small["attachment_url"], auth=None)
    assert got.status_code == 200 and len(got.content) == small["size"]
    assert got.headers["content-type"].startswith(small["content_type"])
    assert c.get(small["attachment_url"].replace("signature=", "signature=0")).status_code == 403
    wait_for(lambda: c.get(small["attachment_url"]).status_code == 403, 10, "the signed URL to expire")


def test_the_cli_serves_the_simulator_on_loopback_and_says_it_is_one(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "simulator.log"
    proc = start_cli(["simulator", "--port", str(port), "--tickets", "12", "--plan", "50", "--valid-key", "k1"],
                     {"STREAMDESK_DATA_DIR": str(tmp_path)}, log)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(base), 20, "the simulator to listen")
        r = httpx.get(f"{base}/api/v2/tickets", params=ALL, auth=("k1", "X"))
        assert r.status_code == 200 and len(r.json()) == 12 and r.headers["x-ratelimit-total"] == "50"
        assert httpx.get(f"{base}/api/v2/tickets", auth=("other", "X")).status_code == 401
    finally:
        stop_process(proc)
    printed = log.read_text()
    assert f"listening on http://127.0.0.1:{port}" in printed and "simulator" in printed.lower()
    refused = subprocess.run([sys.executable, "-m", "pipeline.cli", "simulator", "--host", "0.0.0.0"],
                             cwd=REPO, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "loopback" in refused.stderr


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/_simulator/info", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


FRESHDESK_401 = {"code": "invalid_credentials", "message": "You have to be logged in to perform this action."}


def test_by_default_every_account_accepts_the_seeds_key_only_and_any_other_key_gets_freshdesks_401(start):
    right = start()  # the seed's placeholder, your_api_key
    assert right.get("/api/v2/tickets", params=ALL).status_code == 200
    for wrong in (start(key="any-other-key", server=right.server),
                  start("globex.freshdesk.com", key="k-globex", server=right.server)):
        for path in ("/api/v2/tickets", "/api/v2/agents/me", "/api/v2/solutions/categories",
                     "/api/v2/tickets/1/conversations", "/api/v2/tickets/1"):
            r = wrong.get(path)
            assert (r.status_code, r.json()) == (401, FRESHDESK_401), path
    assert httpx.get(f"{right.server.base_url}/_simulator/stats").status_code == 200  # admin side needs no key


def test_agents_me_answers_the_agent_of_the_key_for_that_account(start):
    acme = start()
    r = acme.get("/api/v2/agents/me")
    assert r.status_code == 200 and r.headers["x-ratelimit-used-currentrequest"] == "1"
    agent = r.json()
    assert isinstance(agent["id"], int) and agent["type"] == "support_agent" and agent["contact"]["active"]
    assert agent["contact"]["email"] == "support@acme.freshdesk.com"
    globex = start("globex.freshdesk.com", server=acme.server).get("/api/v2/agents/me").json()
    assert globex["id"] != agent["id"] and acme.get("/api/v2/agents/me").json() == agent  # stable per account


def test_keys_by_domain_replace_the_default_and_star_covers_the_other_accounts(start):
    keys = {"acme.freshdesk.com": ["acme-old", "acme-new"], "*": ["shared"]}
    acme = start(key="acme-new", keys=keys)
    me = "/api/v2/agents/me"
    assert acme.get(me).status_code == 200 and start(key="acme-old", server=acme.server).get(me).status_code == 200
    assert start(key="shared", server=acme.server).get(me).status_code == 401  # acme has its own keys
    assert start("globex.freshdesk.com", key="shared", server=acme.server).get(me).status_code == 200
    assert start("globex.freshdesk.com", server=acme.server).get(me).status_code == 401  # your_api_key replaced


def test_the_cli_takes_its_keys_from_streamdesk_simulator_keys_and_prints_them(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "simulator.log"
    env = {"STREAMDESK_DATA_DIR": str(tmp_path), "STREAMDESK_SIMULATOR_KEYS": '{"*": ["from-env-key"]}'}
    proc = start_cli(["simulator", "--port", str(port), "--tickets", "3"], env, log)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(base), 20, "the simulator to listen")
        assert httpx.get(f"{base}/api/v2/agents/me", auth=("from-env-key", "X")).status_code == 200
        assert httpx.get(f"{base}/api/v2/agents/me", auth=("your_api_key", "X")).status_code == 401
    finally:
        stop_process(proc)
    printed = " ".join(log.read_text().split())
    assert "Accepted API keys: fr… (12 characters)" in printed and "from-env-key" not in printed  # not logged


def test_settings_read_simulator_keys_as_json_and_default_to_the_seeds_key(monkeypatch):
    assert Settings(_env_file=None).simulator_keys == {"*": ["your_api_key"]}
    monkeypatch.setenv("STREAMDESK_SIMULATOR_KEYS", '{"acme.freshdesk.com": ["k1", "k2"]}')
    assert Settings(_env_file=None).simulator_keys == {"acme.freshdesk.com": ["k1", "k2"]}


def test_the_up_banner_prints_the_key_the_simulator_accepts(tmp_path):
    out = io.StringIO()
    sup = Supervisor(Settings(data_dir=tmp_path, _env_file=None), Console(file=out, width=200), simulator=True)
    sup.simulator_url = "http://127.0.0.1:8001"
    sup.children = [Child("worker", [], {}, proc=SimpleNamespace(pid=4242))]  # type: ignore[arg-type]
    sup._banner("127.0.0.1:9092")
    assert "accepted X-API-Key: your_api_key" in out.getvalue()
