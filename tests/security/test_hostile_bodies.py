"""Bodies a careless or hostile client sends to every route that takes one: nested 50,000 deep, not UTF-8, NUL
bytes, the wrong JSON type, a duplicated key. Each is a 4xx in the route's own shape, never a 500. (No broker
needed: all of them are refused while the request is read.)"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from pipeline.security import Role, mint_token
from pipeline.settings import Settings
from tests.helpers import services_without_a_broker

BODIES = {
    "list nested 50,000 deep": b"[" * 50_000 + b"]" * 50_000,
    "object nested 50,000 deep": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "not UTF-8": b'[{"method": "\xff\xfe", "path": "/\xc3\x28"}]',
    "NUL bytes": b"\x00\x00\x00",
    "a JSON string": b'"just a string"',
    "truncated": b'[{"method": "GET", "path": "/x"',
}
ROUTES = [("/v1/call-histories", "platform"), ("/v1/sql", "platform"), ("/v1/sol-cod/sleep-records", "cod"),
          ("/v1/sol-cod/predict", "cod"), ("/v1/sleep-quality-cod/schedules/update", "cod")]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("bodies") / "data", _env_file=None)
    app = create_app(settings)
    # No lifespan: nothing is started, and nothing here gets past authentication or validation.
    app.state.services = services_without_a_broker(settings)
    c = TestClient(app, raise_server_exceptions=False)
    roles = [Role.SYSTEM_ADMIN, Role.SERVICE_ACCOUNT]
    c.headers.update({"Authorization": f"Bearer {mint_token(settings.jwt_key(), 'u', 't', roles)}",
                      "Content-Type": "application/json"})
    return c


@pytest.mark.parametrize(("path", "shape"), ROUTES)
def test_a_hostile_body_is_a_4xx_in_the_routes_shape(client, path, shape):
    method = "PUT" if path.endswith("/update") else "POST"
    for name, body in BODIES.items():
        r = client.request(method, path, content=body)
        assert 400 <= r.status_code < 500, (name, r.status_code, r.text[:300])
        error = r.json()["error"]
        if shape == "cod":
            assert r.json()["success"] is False and error["code"] == "COD_001", (name, r.text[:300])
        else:
            assert error["code"] and error["message"] and len(r.content) < 16_384, (name, r.text[:300])
