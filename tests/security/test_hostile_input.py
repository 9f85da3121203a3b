"""Hostile and careless input against the real api (TestClient over create_app), broker and worker: bodies over the
message limit, batches that must be split, huge paging numbers, malformed token claims, validation errors that
would echo the input, the data directory's modes, and forged identity headers."""

from __future__ import annotations

import gzip
import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import orjson
import pytest
from fastapi.testclient import TestClient

from pipeline.security import Role, mint_token
from tests.helpers import REPO, call_event, wait_for
from tests.integration.conftest import api_on, env_for

pytestmark = pytest.mark.integration
MiB = 1 << 20
LIMIT = MiB  # the default STREAMDESK_MAX_MESSAGE_BYTES, which the fixture keeps
PROXY = "10.9.8.7"
SMALL = 16 * 1024  # an error answer bigger than this echoes the input


@pytest.fixture(scope="module")
def api(broker, tmp_path_factory):
    with api_on(broker.bootstrap, tmp_path_factory.mktemp("hostile"), "hostile",
                trusted_proxies=["10.9.8.0/24"]) as client:
        yield client


def _auth(client: TestClient, role: Role, tenant: str = "t1", user: str = "u1") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(client.settings.jwt_key(), user, tenant, [role])}"}


def _drive(client: TestClient, path: str, headers: dict[str, str], chunks: Iterator[bytes] = iter(()),
           peer: str = "127.0.0.1", method: str = "POST") -> tuple[int, bytes, int]:
    """One request straight into the app's ASGI stack, its body pulled chunk by chunk: (status, body, bytes pulled)."""
    out: dict[str, Any] = {"status": None, "body": b"", "pulled": 0}

    async def receive() -> dict[str, Any]:
        chunk = next(chunks, None)
        out["pulled"] += len(chunk or b"")
        return {"type": "http.request", "body": chunk or b"", "more_body": chunk is not None}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": (peer, 40000), "server": ("testserver", 80)}
    client.portal.call(client.app, scope, receive, send)
    return out["status"], out["body"], out["pulled"]


def _rows(client: TestClient, sql: str, *params: Any) -> list[tuple]:
    return client.app.state.services.store.con.cursor().execute(sql, list(params)).fetchall()


def _platform_error(body: bytes, code: str) -> None:
    doc = orjson.loads(body)
    assert set(doc) == {"error", "trace_id"} and doc["error"]["code"] == code, doc


def _cod_error(body: bytes, code: str) -> None:
    doc = orjson.loads(body)
    assert doc["success"] is False and doc["error"]["code"] == code and doc["meta"]["requestId"], doc


# --- defect 4: one message limit, end to end ----------------------------------------------------------------


def test_two_megabytes_of_valid_call_events_are_refused_with_413_not_accepted_and_lost(api):
    events = [call_event(i) for i in range(5000)]
    body = orjson.dumps(events)
    assert len(body) > 1.5 * MiB
    r = api.post("/v1/call-histories", content=body, headers=_auth(api, Role.SYSTEM_ADMIN) |
                 {"Content-Type": "application/json"})
    assert r.status_code == 413 and "retry-after" not in r.headers
    _platform_error(r.content, "PAYLOAD_TOO_LARGE")


def test_a_batch_just_under_the_limit_is_split_and_every_accepted_event_is_stored(api):
    """The api adds an id to each event: one message of them would pass the limit and be dead-lettered whole."""
    marker = f"split-{uuid.uuid4().hex[:8]}"
    events, size = [], 2
    while size + len(orjson.dumps(call_event(len(events), agent_id=marker))) + 1 <= LIMIT:
        size += len(orjson.dumps(call_event(len(events), agent_id=marker))) + 1
        events.append(call_event(len(events), agent_id=marker))
    body = orjson.dumps(events)
    assert LIMIT - 1024 < len(body) <= LIMIT
    r = api.post("/v1/call-histories", content=body, headers=_auth(api, Role.SYSTEM_ADMIN) |
                 {"Content-Type": "application/json"})
    assert r.status_code == 202 and r.json()["accepted"] == len(events), r.text[:500]
    count = "SELECT count(*) FROM sys_api_call_histories WHERE agent_id = ?"
    wait_for(lambda: _rows(api, count, marker)[0][0] >= len(events), 60, "every accepted event stored")
    assert _rows(api, count, marker)[0][0] == len(events)


def test_two_megabytes_of_sleep_records_are_refused_with_413_in_the_seed_envelope(api):
    record = {"user_id": "u1", "kind": "diary", "date": "2026-11-20", "data": {"note": "z" * 1900}}
    body = orjson.dumps([record] * 1000)
    assert len(body) > 1.8 * MiB
    r = api.post("/v1/sol-cod/sleep-records", content=body, headers=_auth(api, Role.REGULAR_USER) |
                 {"Content-Type": "application/json"})
    assert r.status_code == 413
    _cod_error(r.content, "COD_001")


@pytest.mark.parametrize("path,check", [("/v1/call-histories", lambda b: _platform_error(b, "PAYLOAD_TOO_LARGE")),
                                        ("/v1/sol-cod/sleep-records", lambda b: _cod_error(b, "COD_001"))])
def test_a_ten_megabyte_body_is_refused_with_413_before_it_is_read(api, path, check):
    ten = 10 * MiB
    chunks = (b"x" * (64 * 1024) for _ in range(ten // (64 * 1024)))
    headers = _auth(api, Role.SYSTEM_ADMIN) | {"content-type": "application/json", "content-length": str(ten)}
    status, body, pulled = _drive(api, path, headers, chunks)
    assert status == 413 and pulled == 0  # the Content-Length alone decides
    check(body)


@pytest.mark.parametrize("path,check", [("/v1/call-histories", lambda b: _platform_error(b, "PAYLOAD_TOO_LARGE")),
                                        ("/v1/sol-cod/sleep-records", lambda b: _cod_error(b, "COD_001"))])
def test_a_chunked_body_without_length_is_cut_off_with_413_once_it_passes_the_limit(api, path, check):
    chunk = 64 * 1024
    chunks = (b"[" if i == 0 else b" " * chunk for i in range(10 * MiB // chunk))
    headers = _auth(api, Role.SYSTEM_ADMIN) | {"content-type": "application/json", "transfer-encoding": "chunked"}
    started = time.perf_counter()
    status, body, pulled = _drive(api, path, headers, chunks)
    assert status == 413 and pulled <= LIMIT + chunk  # stopped reading at the limit
    assert time.perf_counter() - started < 5
    check(body)


def _gzip_chunks(data: bytes, chunk: int = 16 * 1024) -> Iterator[bytes]:
    packed = gzip.compress(data)
    return (packed[i:i + chunk] for i in range(0, len(packed), chunk))


@pytest.mark.parametrize("path,check", [("/v1/traces", lambda b: _platform_error(b, "PAYLOAD_TOO_LARGE")),
                                        ("/v1/call-histories", lambda b: _platform_error(b, "PAYLOAD_TOO_LARGE")),
                                        ("/v1/sol-cod/sleep-records", lambda b: _cod_error(b, "COD_001"))],
                         ids=["traces", "call-histories", "sleep-records"])
def test_a_gzip_bomb_is_refused_with_413_once_its_decompressed_bytes_pass_the_limit(api, path, check):
    bomb = b"[" + b" " * (64 * MiB) + b"]"  # 64 MiB of JSON that gzip packs into ~64 KB
    chunks = _gzip_chunks(bomb)
    headers = _auth(api, Role.SYSTEM_ADMIN) | {"content-type": "application/json", "content-encoding": "gzip"}
    started = time.perf_counter()
    status, body, pulled = _drive(api, path, headers, chunks)
    assert status == 413 and pulled < len(gzip.compress(bomb))  # it stopped inflating at the limit
    assert time.perf_counter() - started < 5
    check(body)
    assert b"decompressed" in body


@pytest.mark.parametrize("coding,body,status,code", [
    ("gzip", b"\x1f\x8b\x08\x00 this is not a gzip stream", 400, "BAD_REQUEST"),
    ("gzip", gzip.compress(b'{"resourceSpans": []}', mtime=0)[:-12], 400, "BAD_REQUEST"),  # cut short
    ("br", b"whatever", 415, "UNSUPPORTED_MEDIA_TYPE"),
], ids=["not-gzip", "cut-short", "brotli"])  # ids, not bytes: every xdist worker must collect the same names
def test_a_broken_or_unknown_content_encoding_is_a_4xx_in_the_routes_shape(api, coding, body, status, code):
    headers = _auth(api, Role.SYSTEM_ADMIN) | {"content-type": "application/json", "content-encoding": coding}
    got, answer, _ = _drive(api, "/v1/traces", headers, iter([body]))
    assert got == status, answer
    _platform_error(answer, code)
    got, answer, _ = _drive(api, "/v1/sol-cod/sleep-records", _auth(api, Role.REGULAR_USER) | {
        "content-type": "application/json", "content-encoding": coding}, iter([body]))
    assert got == status, answer  # seed 004's envelope, HTTP's status kept
    _cod_error(answer, "COD_001")


def test_the_cli_refuses_a_line_over_the_message_limit_instead_of_losing_it(settings):
    env = env_for(settings) | {"STREAMDESK_MAX_MESSAGE_BYTES": str(64 * 1024)}
    lines = orjson.dumps(call_event(0, user_agent="u" * (70 * 1024))) + b"\n" + orjson.dumps(call_event(1)) + b"\n"
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "produce", "calls.raw"], input=lines, cwd=REPO,
                          env={**os.environ, **env}, capture_output=True, timeout=60)
    err = done.stderr.decode()
    assert done.returncode == 1 and "line 1" in err and "not sent" in err and "produced 1 message" in err, err


# --- defect 6: every paging number is bounded ----------------------------------------------------------------


def test_the_huge_paging_numbers_of_the_report_are_4xx_in_the_route_shape(api):
    r = api.get("/v1/sol-cod/predictions/history?offset=100000000000000000000", headers=_auth(api, Role.REGULAR_USER))
    assert r.status_code == 400
    _cod_error(r.content, "COD_001")
    r = api.get("/ingest/jobs?page=4611686018427387904", headers=_auth(api, Role.SYSTEM_ADMIN))
    assert r.status_code == 422
    _platform_error(r.content, "VALIDATION_ERROR")


def _int_query_params(client: TestClient) -> list[tuple[str, str]]:
    """Every integer query parameter of every route; each must declare a maximum."""
    found = []
    for path, ops in client.app.openapi()["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", []):
                ints = [t for t in [p["schema"], *p["schema"].get("anyOf", [])] if t.get("type") == "integer"]
                if p["in"] == "query" and ints:
                    assert method == "get" and all("maximum" in t for t in ints), (method, path, p)
                    found.append((path, p["name"]))
    return found


def test_every_integer_query_parameter_refuses_out_of_range_values_with_a_4xx(api):
    params = _int_query_params(api)
    assert {("/ingest/jobs", "page"), ("/v1/sol-cod/predictions/history", "offset"), ("/search", "k"),
            ("/v1/call-histories", "limit")} <= set(params)
    headers = _auth(api, Role.SYSTEM_ADMIN)
    for path, name in params:
        url = path.replace("{", "").replace("}", "")  # any id: the parameter is checked before the lookup
        for value in (str(10**20), "-1", "abc"):
            r = api.get(url, params={name: value}, headers=headers)
            assert 400 <= r.status_code < 500, (path, name, value, r.status_code, r.text[:300])
            if path.startswith("/v1/sol-cod") or path.startswith("/v1/sleep-quality-cod"):
                _cod_error(r.content, "COD_001")
            else:
                _platform_error(r.content, "VALIDATION_ERROR")


# --- defect 8: malformed claims, echoed input, file modes, forged identity --------------------------------------

BAD_CLAIMS = {
    "roles of an object": {"roles": [{}]},
    "roles of a number": {"roles": [1]},
    "roles a string": {"roles": "system_admin"},
    "roles an object": {"roles": {"system_admin": True}},
    "tenant an object": {"tenant": {"id": "t1"}},
    "tenant a list": {"tenant": ["t1"]},
    "tenant empty": {"tenant": ""},
    "tenant missing": {"tenant": None},
    "sub an object": {"sub": {"id": "u1"}},
}


@pytest.mark.parametrize("case", list(BAD_CLAIMS))
def test_a_signed_token_with_malformed_claims_is_401_in_the_route_shape(api, case):
    claims = {"sub": "u1", "tenant": "t1", "roles": ["system_admin"], "exp": int(time.time()) + 600}
    claims |= BAD_CLAIMS[case]
    claims = {k: v for k, v in claims.items() if v is not None}
    headers = {"Authorization": f"Bearer {jwt.encode(claims, api.settings.jwt_key(), algorithm='HS256')}"}
    r = api.get("/v1/call-histories", headers=headers)
    assert r.status_code == 401, r.text[:300]
    _platform_error(r.content, "UNAUTHORIZED")
    r = api.get("/v1/sol-cod/predictions/history", headers=headers)
    assert r.status_code == 401, r.text[:300]
    _cod_error(r.content, "COD_002")


def test_a_limit_sized_invalid_body_gets_a_small_validation_error(api):
    body = b"[" + b"1," * ((LIMIT - 4) // 2) + b"1]"
    assert len(body) <= LIMIT
    r = api.post("/v1/call-histories", content=body, headers=_auth(api, Role.SYSTEM_ADMIN) |
                 {"Content-Type": "application/json"})
    assert r.status_code == 422 and len(r.content) < SMALL
    _platform_error(r.content, "VALIDATION_ERROR")


def test_an_invalid_sleep_record_is_not_echoed_back(api):
    record = {"user_id": "u1", "kind": "diary", "date": "2026-11-20", "data": {"bedtime": "z" * 400_000}}
    r = api.post("/v1/sol-cod/sleep-records", json=[record], headers=_auth(api, Role.REGULAR_USER))
    assert r.status_code == 400 and len(r.content) < SMALL
    _cod_error(r.content, "COD_001")


def test_the_data_directory_is_0700_and_the_database_files_0600(api):
    data = api.settings.data_dir
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = [f for f in (api.settings.db_path, data / "streamdesk.duckdb.wal") if f.exists()]
    assert api.settings.db_path in files
    assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {f.name: 0o600 for f in files}


def test_identity_headers_are_believed_only_from_a_trusted_proxy_or_a_token(api):
    marker = uuid.uuid4().hex[:8]
    forged = {"x-tenant-id": "victim", "x-user-id": "mallory"}
    token = _auth(api, Role.REGULAR_USER, tenant="t-token", user="u-token")
    cases = {"stranger": ("203.0.113.5", forged), "proxy": (PROXY, forged),
             "token": ("203.0.113.5", forged | {"authorization": token["Authorization"]})}
    for name, (peer, headers) in cases.items():
        status, _, _ = _drive(api, f"/nowhere/{marker}/{name}", headers, peer=peer, method="GET")
        assert status == 404
    sql = "SELECT path, tenant_id, user_id FROM sys_api_call_histories WHERE path LIKE ?"
    rows = wait_for(lambda: len(got := _rows(api, sql, f"/nowhere/{marker}/%")) == 3 and got, 60, "three rows")
    by_case = {path.rsplit("/", 1)[1]: (tenant, user) for path, tenant, user in rows}
    # No tenant is stored as '': the tenant is part of the row's key (tests/security/test_tenant_ids.py).
    assert by_case == {"stranger": ("", None), "proxy": ("victim", "mallory"), "token": ("t-token", "u-token")}
