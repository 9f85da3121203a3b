"""The console as an attacker meets it: no cookie, a forged or revoked one, the wrong role, another tenant's
data, a form without its CSRF token, an open redirect, a huge or broken form. Each gets a clear 4xx page and
changes nothing; the signed-in reader sees the same figures the REST routes give.

The app runs with no broker and no worker: its services are built over a real DuckDB file and never started.
"""

from __future__ import annotations

from datetime import UTC, datetime

import jwt
import orjson
import pytest
from aiokafka import TopicPartition
from fastapi.testclient import TestClient

from api.console.session import COOKIE
from api.main import create_app
from api.services import Services
from api.wire import iso_z
from pipeline.security import Role, mint_token
from pipeline.storage.store import Store
from tests.helpers import normalized


@pytest.fixture
def console(materializer):
    """The app over a file with 60 calls (tenants 1, 2, 3), a job of tenant 1, a dead letter and a prediction."""
    now = datetime.now(UTC)
    materializer._write({TopicPartition("calls.normalized", 0): normalized(0, 60, request_size_bytes=2 << 20,
                                                                           created_at=iso_z(now))})
    con = materializer.con
    con.execute("INSERT INTO ingest_jobs (job_id, tenant, platform, domain, status, priority, created_at, options, "
                "completed_items, seq) VALUES ('job-1', '1', 'freshdesk', 'acme.freshdesk.com', 'paused', 'normal', "
                "?, '{}', 10, 1)", [now])
    con.execute("INSERT INTO dead_letters (dead_letter_id, dlq_topic, error, topic, \"partition\", \"offset\", "
                "rejected_at, value, size) VALUES ('dl-1', 'calls.raw.dlq', 'not JSON', 'calls.raw', 0, 7, ?, ?, 40)",
                [now, b'{"password": "hunter2", "path": "/x?api_key=sk-123"'])
    con.execute("INSERT INTO predictions (prediction_id, tenant, user_id, status, created_at, session_id, outcome) "
                "VALUES ('pred-1', '1', 'u1', 'COMPLETED', ?, 'sess-1', ?)",
                [now, orjson.dumps({"baselinePlainAverage": 30.0}).decode()])
    app = create_app(materializer.settings)
    app.state.services = Services.build(materializer.settings, Store(con))  # built, never started
    client = TestClient(app)
    key = materializer.settings.jwt_key()
    client.token = lambda tenant, *roles: mint_token(key, "u1", tenant, list(roles))  # type: ignore[attr-defined]
    return client


def sign_in(client, tenant: str, *roles: Role, next_: str | None = None):
    form = {"token": client.token(tenant, *roles)}
    if next_ is not None:
        form["next"] = next_
    return client.post("/console/login", data=form, follow_redirects=False)


def csrf(page_html: str) -> str:
    return page_html.split('name="csrf" value="', 1)[1].split('"', 1)[0]


PAGES = ["/console/pipeline", "/console/calls", "/console/ingest", "/console/alerts", "/console/predictions"]


def test_every_page_without_a_session_is_a_401_sign_in_page(console):
    for path in [*PAGES, "/console/ingest/job-1", "/console/predictions/pred-1", "/console/dead-letters/dl-1",
                 "/console/live/calls"]:
        r = console.get(path)
        assert r.status_code == 401, path
        assert 'name="token"' in r.text and "calls.raw" not in r.text and "acme" not in r.text


def test_signing_in_sets_a_cookie_no_script_or_other_site_can_use(console):
    r = sign_in(console, "1", Role.SYSTEM_ADMIN, next_="/console/calls")
    assert r.status_code == 303 and r.headers["location"] == "/console/calls"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert "secure" not in cookie  # plain http on loopback: a Secure cookie would never come back
    for path in PAGES:
        page = console.get(path)
        assert page.status_code == 200, path
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"
    behind_tls = console.post("/console/login", data={"token": console.token("1", Role.SYSTEM_ADMIN)},
                              headers={"X-Forwarded-Proto": "https"}, follow_redirects=False)
    assert "secure" in behind_tls.headers["set-cookie"].lower()  # behind a TLS proxy: Secure


@pytest.mark.parametrize(("role", "status"), [(Role.REGULAR_USER, 403), (Role.SERVICE_ACCOUNT, 403),
                                              (Role.MEDICAL_PROFESSIONAL, 403)])
def test_only_the_two_admin_roles_may_sign_in(console, role, status):
    r = sign_in(console, "1", role)
    assert r.status_code == status and "set-cookie" not in r.headers
    assert console.get("/console/pipeline").status_code == 401


def test_a_forged_expired_or_misused_credential_is_refused(console, materializer):
    assert console.post("/console/login", data={"token": "not-a-jwt"}).status_code == 401
    forged = jwt.encode({"sub": "x", "tenant": "1", "roles": ["system_admin"], "exp": 9_999_999_999}, "guess",
                        algorithm="HS256")
    assert console.post("/console/login", data={"token": forged}).status_code == 401
    # An API token is not a session cookie, and a session cookie is not a Bearer token.
    console.cookies.set(COOKIE, console.token("1", Role.SYSTEM_ADMIN), path="/console")
    assert console.get("/console/pipeline").status_code == 401
    console.cookies.clear()
    sign_in(console, "1", Role.SYSTEM_ADMIN)
    cookie = console.cookies.get(COOKIE)
    r = console.get("/v1/call-histories", headers={"Authorization": f"Bearer {cookie}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
    # A cookie signed with the right key but for another audience (a hand-made one) is refused too.
    console.cookies.set(COOKIE, cookie[:-4] + "AAAA", path="/console")
    assert console.get("/console/pipeline").status_code == 401


def test_an_iam_admin_sees_its_own_tenant_only(console):
    sign_in(console, "2", Role.IAM_ADMIN)
    calls = console.get("/console/calls?window=24h")
    assert calls.status_code == 200
    tenants = calls.text.split('id="top-tenants"', 1)[1].split("</table>", 1)[0]
    assert ">2<" in tenants and ">1<" not in tenants and ">3<" not in tenants
    assert console.get("/console/calls?tenant=1").status_code == 403
    assert console.get("/console/live/calls?tenant=1").status_code == 403
    assert console.get("/console/ingest/job-1").status_code == 404  # tenant 1's job does not exist for tenant 2
    assert "job-1" not in console.get("/console/ingest").text
    assert console.get("/console/predictions/pred-1").status_code == 404
    assert "pred-1" not in console.get("/console/predictions").text
    assert console.get("/console/dead-letters/dl-1").status_code == 403
    assert 'id="dead-letters"' not in console.get("/console/pipeline").text


def test_the_calls_page_shows_the_figures_the_rest_route_gives(console):
    sign_in(console, "1", Role.SYSTEM_ADMIN)
    stats = console.get("/v1/call-histories/stats", params={"since": "2000-01-01T00:00:00Z"},
                        headers={"Authorization": f"Bearer {console.token('1', Role.SYSTEM_ADMIN)}"}).json()
    page = console.get("/console/calls?window=30d").text
    count = page.split('id="kpi-count">', 1)[1].split("<", 1)[0]
    assert count == f"{stats['total']['count']:,}" == "60"
    large = page.split('id="large-count">', 1)[1].split("<", 1)[0]
    assert large == f"{stats['sizes']['large_requests']['count']:,}" == "60"


def test_forms_without_the_sessions_csrf_token_change_nothing(console):
    sign_in(console, "1", Role.SYSTEM_ADMIN)
    page = console.get("/console/ingest/job-1")
    token = csrf(page.text)
    for form in ({"action": "resume"}, {"action": "resume", "csrf": "0" * 64}):
        r = console.post("/console/ingest/job-1/control", data=form, follow_redirects=False)
        assert r.status_code == 403 and "did not come from the console" in r.text
    store = console.app.state.services.store
    assert store.con.execute("SELECT status FROM ingest_jobs WHERE job_id = 'job-1'").fetchone()[0] == "paused"
    # Sign-out needs it too; with it the session ends for good (the same cookie is refused afterwards).
    assert console.post("/console/logout", data={}, follow_redirects=False).status_code == 403
    assert console.get("/console/pipeline").status_code == 200
    cookie = console.cookies.get(COOKIE)
    out = console.post("/console/logout", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    console.cookies.set(COOKIE, cookie, path="/console")
    assert console.get("/console/pipeline").status_code == 401


def test_another_tenants_admin_cannot_steer_a_job(console):
    sign_in(console, "2", Role.SYSTEM_ADMIN)  # sees every tenant, but acts for its own (as the REST route)
    page = console.get("/console/ingest/job-1")
    assert page.status_code == 200 and 'id="action-resume"' not in page.text
    r = console.post("/console/ingest/job-1/control", data={"action": "resume", "csrf": csrf(page.text)},
                     follow_redirects=False)
    assert r.status_code == 404
    store = console.app.state.services.store
    assert store.con.execute("SELECT status FROM ingest_jobs WHERE job_id = 'job-1'").fetchone()[0] == "paused"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "/console//evil.example",
                                    "/v1/sql", "/console/\\evil"])
def test_sign_in_never_redirects_off_the_console(console, target):
    r = sign_in(console, "1", Role.IAM_ADMIN, next_=target)
    assert r.status_code == 303 and r.headers["location"] == "/console/pipeline"


def test_huge_broken_and_unknown_input_get_clear_4xx(console):
    sign_in(console, "1", Role.SYSTEM_ADMIN)
    assert console.post("/console/login", content=b"token=" + b"a" * (20 << 10),
                        headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 413
    assert console.post("/console/login", content=b"\xff\xfe\x00",
                        headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 400
    assert console.get("/console/calls?window=1y").status_code == 422
    assert console.get("/console/ingest?status=exploded").status_code == 422
    assert console.get("/console/live/nope").status_code == 404
    assert console.get("/console/static/../../pipeline/settings.py").status_code == 404
    assert console.get("/console/static/secret_key").status_code == 404
    page = console.get("/console/ingest/job-1")
    bad = console.post("/console/ingest/job-1/control", data={"action": "explode", "csrf": csrf(page.text)},
                       follow_redirects=False)
    assert bad.status_code == 422


def test_a_dead_letter_shows_its_bytes_with_secrets_masked(console):
    sign_in(console, "1", Role.SYSTEM_ADMIN)
    pipeline = console.get("/console/pipeline").text
    assert "/console/dead-letters/dl-1" in pipeline and "not JSON" in pipeline
    page = console.get("/console/dead-letters/dl-1")
    assert page.status_code == 200
    assert "hunter2" not in page.text and "sk-123" not in page.text and "REDACTED" in page.text
    assert console.get("/console/dead-letters/nope").status_code == 404


def test_markup_in_data_is_shown_as_text_never_run(console, materializer):
    materializer._write({TopicPartition("calls.normalized", 0): normalized(
        100, 1, agent_id="<script>alert(1)</script>", path="/x\"><img src=x onerror=alert(1)>",
        created_at=iso_z(datetime.now(UTC)))})
    sign_in(console, "1", Role.SYSTEM_ADMIN)
    page = console.get("/console/calls?window=30d").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page


def test_a_session_holds_a_bounded_number_of_live_streams(console):
    from api.console import routes

    sign_in(console, "1", Role.SYSTEM_ADMIN)
    session_id = jwt.decode(console.cookies.get(COOKIE), options={"verify_signature": False})["jti"]
    routes._streams[session_id] = routes.MAX_STREAMS_PER_SESSION  # as many tabs open as allowed
    try:
        r = console.get("/console/live/alerts")
        assert r.status_code == 429 and "live pages" in r.text
    finally:
        routes._streams.pop(session_id, None)


def test_a_cookie_from_before_a_restart_is_refused(console, monkeypatch):
    from api.console import session

    sign_in(console, "1", Role.SYSTEM_ADMIN)
    assert console.get("/console/alerts").status_code == 200
    monkeypatch.setattr(session, "BOOT", "another-process")  # the api restarted (and forgot its revocations)
    r = console.get("/console/alerts")
    assert r.status_code == 401 and "restarted" in r.text
