"""What any HTTP client (or an OpenAPI fuzzer) relies on, checked without a broker: every status a route can
answer is in /openapi.json with its body's schema, 405 names every method of the path and keeps its status
under seed 004's envelope, and a parameter takes only what its schema says."""

from __future__ import annotations

import duckdb
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from pipeline.security import Role, mint_token
from pipeline.settings import Settings
from tests.helpers import services_without_a_broker


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("contract") / "data", _env_file=None)
    app = create_app(settings)
    # No lifespan: nothing is started, and these requests never reach the broker or the tables.
    app.state.services = services_without_a_broker(settings)
    c = TestClient(app)
    c.token = {"Authorization": f"Bearer {mint_token(settings.jwt_key(), 'u', 't', [Role.SYSTEM_ADMIN])}"}
    return c


def test_every_operation_documents_its_error_answers_with_their_body(client):
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if path == "/health":
                continue  # public, and its 503 is the health report itself
            documented = set(op["responses"])
            assert {"401", "403", "413", "422", "503"} <= documented, (method, path, sorted(documented))
            schema = op["responses"]["401"]["content"]["application/json"]["schema"]["$ref"]
            cod = path.startswith(("/v1/sol-cod", "/v1/sleep-quality-cod"))
            assert schema.endswith("CodErrorEnvelope" if cod else "PlatformError"), (path, schema)


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("OPTIONS", "/ingest/jobs", "GET, POST"),
    ("OPTIONS", "/ingest", "POST"),  # the hidden GET only explains the seed's pitfall
    ("OPTIONS", "/v1/sol-cod/schedules/current", "GET"),  # not DELETE: /current is not a {schedule_id}
    ("TRACE", "/v1/call-histories", "GET, POST"),
])
def test_405_lists_exactly_the_methods_of_the_path(client, method, path, allow):
    r = client.request(method, path)
    assert r.status_code == 405 and r.headers["Allow"] == allow


def test_405_under_seed_004_keeps_its_status_in_the_seeds_envelope(client):
    r = client.request("TRACE", "/v1/sol-cod/predictions/pred_x")
    body = r.json()
    assert r.status_code == 405 and body["success"] is False and body["error"]["code"] == "COD_001"


@pytest.mark.parametrize("url", ["/v1/call-histories?until=0.5", "/v1/call-histories?since=1700000000",
                                 "/v1/call-histories/stats?until=1e9"])
def test_a_number_is_not_a_date_time(client, url):
    r = client.get(url, headers=client.token)
    assert r.status_code == 422 and "ISO 8601" in r.text, r.text


def test_a_number_is_not_a_date_under_seed_004(client):
    r = client.get("/v1/sol-cod/predictions/history?startDate=0.5", headers=client.token)
    assert r.status_code == 400 and r.json()["error"]["code"] == "COD_001"


def test_a_write_that_loses_a_conflict_with_the_materializer_is_run_again():
    """Archive, restore and erase ran into DuckDB's 'Conflict on update' beside the materializer and answered
    500 (found by the OpenAPI fuzzer); they now run again, and other errors still surface at once."""
    from pipeline.storage.db import retry_conflicts

    con = duckdb.connect()
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
    con.execute("INSERT INTO t VALUES (1, 0)")
    rival, attempts = con.cursor(), []

    @retry_conflicts
    def bump(cur: duckdb.DuckDBPyConnection) -> int:
        attempts.append(1)
        cur.begin()
        try:
            if len(attempts) == 1:  # a rival writer updates the row first and commits while we are in flight
                rival.begin()
                rival.execute("UPDATE t SET v = v + 10 WHERE id = 1")
            cur.execute("UPDATE t SET v = v + 1 WHERE id = 1")
            cur.commit()
        except BaseException:
            cur.rollback()
            if rival.execute("SELECT 1").fetchone() and len(attempts) == 1:
                rival.commit()
            raise
        return cur.execute("SELECT v FROM t WHERE id = 1").fetchone()[0]

    assert bump(con.cursor()) == 11 and len(attempts) == 2

    @retry_conflicts
    def broken(cur: duckdb.DuckDBPyConnection) -> None:
        attempts.append(1)
        raise duckdb.TransactionException("cannot start a transaction within a transaction")

    attempts.clear()
    with pytest.raises(duckdb.TransactionException):
        broken(con.cursor())
    assert len(attempts) == 1


def test_an_insert_or_ignore_that_meets_a_key_committed_mid_statement_is_run_again():
    """CI saw GET schedules/current answer 500: its INSERT OR IGNORE raised "Duplicate key ... violates primary key
    constraint" (a ConstraintException, not a failed commit) while the scheduler committed the same schedule.
    The same lost race: run again, it reads the other's row; a constraint error of another kind still surfaces."""
    from pipeline.storage.db import retry_conflicts

    attempts: list[int] = []

    @retry_conflicts
    def create(cur: object) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise duckdb.ConstraintException('Constraint Error: Duplicate key "tenant: t1, schedule_id: s1" '
                                             "violates primary key constraint.")
        return "the row the scheduler committed"

    assert create(None) == "the row the scheduler committed" and len(attempts) == 2

    @retry_conflicts
    def not_null(cur: object) -> None:
        attempts.append(1)
        raise duckdb.ConstraintException("Constraint Error: NOT NULL constraint failed: t.v")

    attempts.clear()
    with pytest.raises(duckdb.ConstraintException):
        not_null(None)
    assert len(attempts) == 1


def test_two_writers_inserting_one_key_at_once_end_with_one_row_and_no_error():
    """GET schedules/current and the scheduler created the same schedule at the same moment: both INSERT OR
    IGNOREs passed, the second commit failed on the key and the route answered 500 (seen once in CI). Run
    again, the loser sees the row the other committed."""
    from pipeline.storage.db import retry_conflicts, rollback

    con = duckdb.connect()
    con.execute("CREATE TABLE s (k VARCHAR PRIMARY KEY, v INTEGER)")
    rival, attempts = con.cursor(), []

    @retry_conflicts
    def create(cur: duckdb.DuckDBPyConnection) -> int:
        attempts.append(1)
        cur.begin()
        try:
            if len(attempts) == 1:
                rival.begin()
                rival.execute("INSERT OR IGNORE INTO s VALUES ('x', 1)")
            cur.execute("INSERT OR IGNORE INTO s VALUES ('x', 2)")
            if len(attempts) == 1:
                rival.commit()
            cur.commit()
        except BaseException:
            rollback(cur)  # a plain cur.rollback() here raises "no transaction is active" and hides the race
            raise
        return cur.execute("SELECT v FROM s WHERE k = 'x'").fetchone()[0]

    assert create(con.cursor()) == 1 and len(attempts) == 2
