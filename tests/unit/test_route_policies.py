"""Every route declares exactly one authorisation policy (api/security), and the ones that matter most are the
ones the contract names: a new route without a policy, or with a looser one, fails here."""

from __future__ import annotations

import pytest

from api.cod_envelope import PREFIXES
from api.console.session import console_session
from api.main import create_app
from api.routing import path_of, routes
from api.security import FRAMEWORK_PATHS, policy_of
from pipeline.settings import Settings


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(Settings(data_dir=tmp_path_factory.mktemp("policies") / "data", _env_file=None))


def _table(app) -> dict[tuple[str, str], list[str]]:
    out = {}
    for r in routes(app):
        path = path_of(r)
        if path in FRAMEWORK_PATHS:
            continue
        for method in sorted(getattr(r, "methods", None) or {"WEBSOCKET"}):
            out[(method, path)] = policy_of(r)
    return out


def test_every_route_declares_exactly_one_policy(app):
    table = _table(app)
    assert len(table) >= 50
    assert {k: v for k, v in table.items() if len(v) != 1} == {}


def test_only_the_framework_pages_are_outside_the_policy_walk(app):
    """A route the walk cannot see would escape the check above: the skipped paths are FastAPI's own pages."""
    skipped = {path_of(r) for r in routes(app) if path_of(r) in FRAMEWORK_PATHS}
    assert skipped <= FRAMEWORK_PATHS and "/openapi.json" in skipped


@pytest.mark.parametrize(("method", "path", "policy"), [
    ("POST", "/v1/sql", "bearer: system_admin"),
    ("POST", "/v1/call-histories", "bearer: system_admin, service_account"),
    ("GET", "/v1/call-histories", "bearer: system_admin, iam_admin, service_account"),
    ("POST", "/ingest/jobs", "company: the four seed-000 headers, the key confirmed by the platform"),
    ("POST", "/ingest", "company: the four seed-000 headers, the key confirmed by the platform"),
    ("POST", "/ingest/jobs/{job_id}/control", "company: X-Company-ID with a confirmed X-API-Key, or a Bearer token "
                                              "of the tenant"),
    ("WEBSOCKET", "/ingest/jobs/{job_id}/stream", "company: as the job reads, for its websocket (refused: close "
                                                  "4401)"),
    ("GET", "/search", "company: X-Company-ID with a confirmed X-API-Key, or a Bearer token of the tenant"),
    ("DELETE", "/v1/sol-cod/admin/users/{user_id}/data", "matrix: admin_delete"),
    ("GET", "/v1/sleep-quality-cod/users/me/data-export", "matrix: data_export"),
])
def test_the_routes_that_matter_most_have_the_policy_the_contract_names(app, method, path, policy):
    assert _table(app)[(method, path)] == [policy]


def test_public_routes_are_only_the_ones_meant_to_be(app):
    public = sorted(f"{m} {p}" for (m, p), v in _table(app).items() if v and v[0].startswith("public"))
    assert public == ["GET /console", "GET /console/login", "GET /console/static/{name}", "GET /health", "GET /ingest",
                      "GET /metrics", "POST /console/login"]


def test_every_other_console_route_needs_a_session(app):
    console = {k: v for k, v in _table(app).items() if k[1].startswith("/console")
               and k not in {("GET", "/console"), ("GET", "/console/login"), ("GET", "/console/static/{name}"),
                             ("POST", "/console/login")}}
    assert len(console) >= 10 and all(v == [CONSOLE_POLICY] for v in console.values())


CONSOLE_POLICY = console_session.__streamdesk_policy__


def test_seed_004_routes_all_answer_by_the_matrix(app):
    cod = {k: v for k, v in _table(app).items() if k[1].startswith(PREFIXES)}
    assert cod and all(v[0].startswith("matrix: ") for v in cod.values())
