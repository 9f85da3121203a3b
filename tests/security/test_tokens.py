"""Forged, expired and malformed tokens on every kind of route: a 401 in the route's own shape, never a 500, and
never a pass. (No broker needed: every one of these is refused before a route reads or publishes anything.)"""

from __future__ import annotations

import time

import jwt
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from pipeline.settings import Settings
from tests.helpers import services_without_a_broker

NOW = int(time.time())
GOOD = {"sub": "u1", "tenant": "t1", "roles": ["system_admin"], "iat": NOW, "exp": NOW + 600}
ROUTES = [("GET", "/v1/call-histories", "platform"), ("POST", "/v1/sql", "platform"),
          ("GET", "/ingest/jobs", "platform"), ("GET", "/search?q=x", "platform"),
          ("GET", "/v1/sol-cod/predictions/history", "cod"),
          ("GET", "/v1/sleep-quality-cod/performance/overview", "cod")]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("tokens") / "data", _env_file=None)
    app = create_app(settings)
    # No lifespan: nothing is started, and nothing here gets past authentication or validation.
    app.state.services = services_without_a_broker(settings)
    c = TestClient(app)
    c.key = settings.jwt_key()
    return c


def _forgeries(key: str) -> dict[str, str]:
    sign = lambda claims, k=key, alg="HS256": jwt.encode(claims, k, algorithm=alg)  # noqa: E731
    return {
        "alg none": jwt.encode(GOOD, None, algorithm="none"),
        "wrong key": sign(GOOD, "not-the-servers-secret-but-long-enough-for-hs256"),
        "HS384 with the right key": sign(GOOD, alg="HS384"),
        "expired": sign(GOOD | {"exp": NOW - 60}),
        "no exp": sign({k: v for k, v in GOOD.items() if k != "exp"}),
        "no sub": sign({k: v for k, v in GOOD.items() if k != "sub"}),
        "no tenant": sign({k: v for k, v in GOOD.items() if k != "tenant"}),
        "roles [{}]": sign(GOOD | {"roles": [{}]}),
        "roles a string": sign(GOOD | {"roles": "system_admin"}),
        "tenant an object": sign(GOOD | {"tenant": {"$ne": ""}}),
        "empty sub": sign(GOOD | {"sub": ""}),
        "not a JWT": "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln",
        "tampered payload": _tampered(sign(GOOD)),
    }


def _tampered(token: str) -> str:
    head, _, rest = token.partition(".")
    payload, _, sig = rest.partition(".")
    forged = jwt.utils.base64url_encode(jwt.utils.base64url_decode(payload).replace(b'"t1"', b'"t2"')).decode()
    return f"{head}.{forged}.{sig}"


@pytest.mark.parametrize(("method", "path", "shape"), ROUTES)
def test_every_forged_token_is_a_401_in_the_routes_shape(client, method, path, shape):
    for name, token in _forgeries(client.key).items():
        r = client.request(method, path, headers={"Authorization": f"Bearer {token}", "X-Company-ID": "t1"},
                           json={"query": "SELECT 1"} if method == "POST" else None)
        body = r.json()
        assert r.status_code == 401, (name, r.status_code, r.text)
        code = body["error"]["code"]
        if shape == "cod":
            assert body["success"] is False and code == "COD_002", (name, body)
        else:
            assert code in ("UNAUTHORIZED", "MISSING_CREDENTIALS") and "trace_id" in body, (name, body)


@pytest.mark.parametrize("header", ["Basic dTpw", "Bearer", "Bearer ", "bearer\tx", "Token abc"])
def test_an_authorization_header_that_is_not_a_bearer_token_is_a_401(client, header):
    for method, path, _ in ROUTES:
        r = client.request(method, path, headers={"Authorization": header},
                           json={"query": "SELECT 1"} if method == "POST" else None)
        assert r.status_code == 401, (header, path, r.text)
