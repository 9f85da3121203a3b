"""Proof of company identity on seed 000's job routes, against the real broker, a worker and the Freshdesk
simulator on loopback: a key counts only once the platform confirms it, a company stays on the domain its first
confirmed key bound, and nothing is purged for a request that proved nothing."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pydantic import SecretStr

from api.main import create_app
from api.security.company_keys import key_hash
from pipeline.broker.kafka import ensure_topics
from pipeline.broker.topics import pipeline_topics
from pipeline.security import Role, mint_token
from pipeline.settings import Settings
from simulators.freshdesk.server import SimulatorServer
from simulators.freshdesk.state import SimulatorConfig
from tests.helpers import checked_client, start_cli, stop_process, wait_for
from tests.integration.conftest import env_for

pytestmark = pytest.mark.integration
KEY, ROTATED, EVIL_KEY = "your_api_key", "rotated-key-2", "evil-own-key"
VICTIM = {"X-Company-ID": "victim", "X-Platform": "freshdesk", "X-Domain": "victim.freshdesk.com", "X-API-Key": KEY}
EVIL_DOMAIN = "evil.freshdesk.com"
DESTRUCTIVE = [("/ingest/jobs", {"purge": True}), ("/ingest/jobs", {"force_rebuild": True}),
               ("/ingest", {"purge": True, "max_tickets": 0, "include_kb": False})]
ME = "GET /api/v2/agents/me"


@pytest.fixture(scope="module")
def system(broker, tmp_path_factory):
    """Victim's company has collected 10 tickets from its domain with the simulator's default key."""
    tmp = tmp_path_factory.mktemp("identity")
    keys = {"*": [KEY, ROTATED], EVIL_DOMAIN: [EVIL_KEY]}
    sim = SimulatorServer(SimulatorConfig(tickets=10, plan=100_000, seed=7, kb_articles=0, keys=keys)).start()
    s = Settings(kafka_bootstrap=broker.bootstrap, data_dir=tmp / "data", partitions=1,
                 topic_prefix=f"ident{uuid.uuid4().hex[:8]}.", freshdesk_base_url=sim.base_url, _env_file=None)
    asyncio.run(ensure_topics(broker.bootstrap, pipeline_topics(s)))
    worker = start_cli(["worker"], env_for(s) | {"STREAMDESK_FRESHDESK_BASE_URL": sim.base_url}, tmp / "worker.log")
    try:
        with checked_client(create_app(s)) as c:
            wait_for(lambda: c.get("/health").status_code == 200, 60, "worker and api healthy")
            r = c.post("/ingest", json={"include_kb": False}, headers=VICTIM)
            assert r.status_code == 200 and r.json()["storage"]["records"]["tickets"] == 10, r.text
            c.sim, c.settings = sim, s
            yield c
    finally:
        stop_process(worker)
        sim.stop()


def _rows(c, company: str = "victim") -> dict[str, int]:
    cur = c.app.state.services.store.con.cursor()
    return {t: cur.execute(f"SELECT count(*) FROM {t} WHERE tenant = ?", [company]).fetchone()[0]
            for t in ("tickets", "conversations", "integrated_objects", "ingest_jobs")}


def _reads(c, company: str, key: str) -> int:
    return c.get("/ingest/jobs", headers={"X-Company-ID": company, "X-API-Key": key}).status_code


def _me_calls(c) -> int:
    return sum(c.sim.stats()["by_endpoint"].get(ME, {}).values())


def _token(c, tenant: str, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(c.settings.jwt_key(), 'alice', tenant, [role])}"}


def test_a_wrong_key_is_a_401_naming_x_api_key_and_purges_nothing(system):
    c = system
    before = _rows(c)
    assert before["tickets"] == 10 and before["conversations"] > 0
    for route, body in DESTRUCTIVE:
        r = c.post(route, json=body, headers=VICTIM | {"X-API-Key": "guessed-key"})
        assert r.status_code == 401, (route, body, r.text)
        error = r.json()["error"]
        assert error["code"] == "INVALID_API_KEY" and "X-API-Key" in error["message"], error
        assert _rows(c) == before, (route, body)  # no ticket deleted, no job created
    assert _reads(c, "victim", "guessed-key") == 401


def test_a_wrong_key_for_a_new_company_is_never_registered(system):
    c = system
    headers = VICTIM | {"X-Company-ID": "newco", "X-Domain": "newco.freshdesk.com", "X-API-Key": "not-a-key"}
    r = c.post("/ingest/jobs", json={"auto_start": False}, headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "INVALID_API_KEY", r.text
    assert _reads(c, "newco", "not-a-key") == 401  # its first key was not taken as the company's
    assert _rows(c, "newco")["ingest_jobs"] == 0


def test_an_attackers_own_valid_key_cannot_act_for_a_company_bound_to_another_domain(system):
    c = system
    before, calls = _rows(c), _me_calls(c)
    evil = VICTIM | {"X-Domain": EVIL_DOMAIN, "X-API-Key": EVIL_KEY}  # Freshdesk would accept this key there
    for route, body in DESTRUCTIVE:
        r = c.post(route, json=body, headers=evil)
        assert r.status_code == 403 and r.json()["error"]["code"] == "DOMAIN_NOT_BOUND", (route, r.text)
        assert "iam_admin" in r.json()["error"]["message"]
    for token in (_token(c, "evilcorp", Role.IAM_ADMIN), _token(c, "victim", Role.REGULAR_USER)):
        assert c.post("/ingest/jobs", json={"purge": True}, headers=evil | token).status_code == 403
    assert _rows(c) == before and _me_calls(c) == calls  # refused before Freshdesk was even asked
    assert _reads(c, "victim", EVIL_KEY) == 401


def test_an_iam_admin_of_the_tenant_adds_a_domain_with_a_confirmed_key(system):
    c = system
    eu = VICTIM | {"X-Domain": "victim-eu.freshdesk.com"}
    r = c.post("/ingest/jobs", json={"auto_start": False}, headers=eu | _token(c, "victim", Role.IAM_ADMIN))
    assert r.status_code == 202, r.text
    cur = c.app.state.services.store.con.cursor()
    bound = cur.execute("SELECT domain, bound_by FROM company_domains WHERE tenant = 'victim' ORDER BY bound_at"
                        ).fetchall()
    assert bound == [("victim.freshdesk.com", "verified_key"), ("victim-eu.freshdesk.com", "token:alice")]
    assert c.post("/ingest/jobs", json={"auto_start": False}, headers=eu).status_code == 202  # bound from now on
    wrong = eu | {"X-Domain": "victim-us.freshdesk.com", "X-API-Key": "guessed"}  # the token does not vouch for keys
    assert c.post("/ingest/jobs", json={"auto_start": False},
                  headers=wrong | _token(c, "victim", Role.SYSTEM_ADMIN)).status_code == 401


def test_a_rotated_key_is_stored_beside_the_old_one_and_both_read(system):
    c = system
    r = c.post("/ingest/jobs", json={"auto_start": False}, headers=VICTIM | {"X-API-Key": ROTATED})
    assert r.status_code == 202, r.text
    assert _reads(c, "victim", ROTATED) == 200 and _reads(c, "victim", KEY) == 200
    job = c.get(f"/ingest/jobs/{r.json()['job_id']}", headers={"X-Company-ID": "victim", "X-API-Key": KEY})
    assert job.status_code == 200 and job.json()["status"] == "queued"


def test_a_stored_confirmed_key_needs_no_new_call_to_freshdesk(system):
    c = system
    calls = _me_calls(c)
    for _ in range(3):
        assert c.post("/ingest/jobs", json={"auto_start": False}, headers=VICTIM).status_code == 202
    assert _me_calls(c) == calls


def test_a_key_stored_without_confirmation_opens_nothing(system):
    c = system  # as a key stored before confirmation existed is kept by the migration
    digest = key_hash(c.settings.fernet_key(), "legacy", SecretStr("legacy-key"))
    c.app.state.services.store.con.cursor().execute("INSERT INTO company_keys VALUES ('legacy', 'freshdesk', "
                                    "'legacy.freshdesk.com', ?, now(), NULL)", [digest])
    assert _reads(c, "legacy", "legacy-key") == 401


def test_freshdesk_unreachable_is_a_503_and_nothing_is_done(system):
    c = system
    c.sim.set_faults(errors_next=3)  # the check's three attempts all answer 503
    try:
        headers = VICTIM | {"X-Company-ID": "outage", "X-Domain": "outage.freshdesk.com"}
        r = c.post("/ingest/jobs", json={"purge": True}, headers=headers)
        assert r.status_code == 503 and r.json()["error"]["code"] == "PLATFORM_UNAVAILABLE", r.text
        assert "verify X-API-Key" in r.json()["error"]["message"] and r.headers["retry-after"] == "5"
        assert _rows(c, "outage")["ingest_jobs"] == 0 and _reads(c, "outage", KEY) == 401
    finally:
        c.sim.clear_faults()


def test_another_tenants_token_reads_and_steers_nothing_of_the_company(system):
    """Every seed-000 read and control route, with tenant B's admin token naming the victim's company (or naming
    none): 401 or an empty answer of B's own, and the victim's jobs and tickets are untouched."""
    c = system
    before = _rows(c)
    job = c.get("/ingest/jobs", headers={"X-Company-ID": "victim", "X-API-Key": KEY}).json()["jobs"][0]["job_id"]
    other = _token(c, "evilcorp", Role.IAM_ADMIN)
    naming_victim = other | {"X-Company-ID": "victim"}
    for method, url, body in (("GET", "/ingest/jobs", None), ("GET", f"/ingest/jobs/{job}", None),
                              ("GET", "/ingest/metrics", None), ("GET", "/search?q=order", None),
                              ("POST", f"/ingest/jobs/{job}/control", {"action": "cancel"}),
                              ("POST", "/ingest/sync-summaries", {"sync_options": {"force_rebuild": True}})):
        r = c.request(method, url, json=body, headers=naming_victim)
        assert r.status_code == 401 and r.json()["error"]["code"] == "MISSING_CREDENTIALS", (url, r.text)
    own = c.get("/ingest/jobs", headers=other).json()  # the token's own tenant: none of the victim's jobs
    assert own["jobs"] == [] and own["pagination"]["total"] == 0
    assert c.get(f"/ingest/jobs/{job}", headers=other).status_code == 404  # another company's job does not exist
    hits = c.get("/search?q=order", headers=other).json()
    assert hits["total"] == 0 and hits["hits"] == []
    assert c.get("/ingest/jobs?company_id=victim", headers=other).status_code == 403
    assert _rows(c) == before
