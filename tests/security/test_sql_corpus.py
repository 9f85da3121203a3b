"""Read-only SQL cannot write: every write or escape attempt below is refused, and no table's row count, no
setting, no sequence, no catalog object and no file changes; on the file (`run_read_only`), through
`POST /v1/sql` of a real api, and through `streamdesk sql` on the file. Ordinary reads keep working."""

from __future__ import annotations

import io
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest
from rich.console import Console

from pipeline.security import Role, mint_token
from pipeline.sqlcli import run_sql
from pipeline.storage.db import connect
from pipeline.storage.readonly import SqlRefused, run_read_only
from tests.e2e.test_up import SEED_QUERIES
from tests.integration.conftest import api_on

pytestmark = pytest.mark.integration

DML_CTE = "WITH x AS (DELETE FROM sys_api_call_histories RETURNING *) SELECT count(*) FROM x"
# (category, statement); {out} is a file path and {dir} a directory in the test's own tmp dir.
CORPUS: list[tuple[str, str]] = [
    ("dml-cte", DML_CTE),
    ("dml-cte", "WITH x AS (INSERT INTO sys_api_call_histories (api_call_history_id) VALUES ('evil') RETURNING *) "
                "SELECT * FROM x"),
    ("dml-cte", "WITH x AS (UPDATE sys_api_call_histories SET status_code = 999 RETURNING *) SELECT count(*) FROM x"),
    ("dml-cte", "WITH x AS (DELETE FROM company_keys RETURNING *) SELECT count(*) FROM x"),
    ("dml-cte", "WITH x AS (INSERT INTO company_keys (tenant, platform, domain, key_hash) VALUES "
                "('victim', 'freshdesk', 'victim.freshdesk.com', 'attacker') RETURNING *) SELECT * FROM x"),
    ("dml-cte", "WITH a AS (SELECT 1 AS n), b AS (DELETE FROM dead_letters RETURNING *) SELECT * FROM a, b"),
    ("dml-cte", "WITH o AS (WITH i AS (DELETE FROM sys_api_call_histories RETURNING *) SELECT * FROM i) "
                "SELECT count(*) FROM o"),
    ("dml-cte", f"SELECT ({DML_CTE})"),
    ("dml-cte", f"SELECT * FROM ({DML_CTE}) s"),
    ("dml-cte", f"SELECT 1 UNION ALL ({DML_CTE})"),
    ("dml-cte", "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3), "
                "d AS (DELETE FROM sys_api_call_histories RETURNING *) SELECT * FROM r, d"),
    ("dml-cte", "/* a read */ WITH x AS (DELETE FROM sys_api_call_histories RETURNING *) SELECT 1"),
    ("dml-cte", "SELECT * FROM (DELETE FROM sys_api_call_histories RETURNING *)"),
    ("dml-cte", "DESCRIBE " + DML_CTE),
    ("dml-cte", "SUMMARIZE (" + DML_CTE + ")"),
    ("explain", "EXPLAIN " + DML_CTE),
    ("explain", "EXPLAIN ANALYZE " + DML_CTE),
    ("explain", "EXPLAIN ANALYZE DELETE FROM sys_api_call_histories"),
    ("explain", "/* c */ EXPLAIN ANALYZE DELETE FROM company_keys"),
    ("explain", "EXPLAIN/**/ANALYZE DELETE FROM sys_api_call_histories"),
    ("explain", "EXPLAIN (ANALYZE) UPDATE sys_api_call_histories SET status_code = 1"),
    ("explain", "EXPLAIN DELETE FROM sys_api_call_histories"),
    ("plain-dml", "DELETE FROM sys_api_call_histories"),
    ("plain-dml", "TRUNCATE company_keys"),
    ("plain-dml", "UPDATE sys_api_call_histories SET status_code = 999"),
    ("plain-dml", "INSERT INTO dead_letters (dead_letter_id) VALUES ('evil')"),
    ("plain-dml", "MERGE INTO company_keys USING (SELECT 1 AS a) s ON true WHEN MATCHED THEN DELETE"),
    ("ddl", "DROP TABLE company_keys"),
    ("ddl", "ALTER TABLE sys_api_call_histories RENAME TO gone"),
    ("ddl", "CREATE TABLE stolen AS SELECT * FROM company_keys"),
    ("ddl", "CREATE TEMP TABLE stolen AS SELECT * FROM company_keys"),
    ("ddl", "CREATE MACRO m(a) AS a"),
    ("ddl", "CREATE VIEW v AS SELECT 1"),
    ("ddl", "CREATE SEQUENCE s"),
    ("files", "COPY sys_api_call_histories TO '{out}'"),
    ("files", "COPY (SELECT * FROM company_keys) TO '{out}' (FORMAT parquet)"),
    ("files", "COPY sys_api_call_histories FROM '{out}'"),
    ("files", "EXPORT DATABASE '{dir}'"),
    ("files", "SELECT * FROM read_csv('/etc/passwd')"),
    ("files", "SELECT * FROM read_text('/etc/passwd')"),
    ("files", "SELECT * FROM read_blob('/etc/hostname')"),
    ("files", "SELECT * FROM glob('/etc/*')"),
    ("files", "SELECT * FROM read_parquet('{out}')"),
    ("files", "SELECT * FROM '/etc/passwd'"),
    ("files", "SELECT * FROM 'data.csv'"),
    ("files", "SELECT * FROM read_duckdb('{out}')"),
    ("attach", "ATTACH '{dir}/other.duckdb' AS other"),
    ("attach", "DETACH memory"),
    ("attach", "USE memory"),
    ("extensions", "INSTALL httpfs"),
    ("extensions", "LOAD httpfs"),
    ("extensions", "UPDATE EXTENSIONS"),
    ("settings", "SET enable_external_access = true"),
    ("settings", "SET lock_configuration = false"),
    ("settings", "SET threads = 1"),
    ("settings", "RESET threads"),
    ("settings", "SET VARIABLE x = 1"),
    ("settings", "PRAGMA enable_profiling"),
    ("settings", "PRAGMA threads = 1"),
    ("settings", "CALL enable_logging()"),
    ("settings", "SELECT * FROM enable_logging()"),
    ("settings", "SELECT * FROM enable_profiling()"),
    ("state", "CHECKPOINT"),
    ("state", "CALL checkpoint()"),
    ("state", "SELECT * FROM checkpoint()"),
    ("state", "SELECT * FROM force_checkpoint()"),
    ("state", "VACUUM"),
    ("state", "SELECT nextval('ticket_vectors_seq')"),
    ("state", "SELECT * FROM truncate_duckdb_logs()"),
    ("secrets", "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')"),
    ("secrets", "SELECT * FROM duckdb_secrets()"),
    ("secrets", "SELECT * FROM which_secret('s3://bucket/x', 's3')"),
    ("dynamic", "SELECT * FROM query('SELECT 1')"),
    ("dynamic", "SELECT * FROM query_table('company_keys')"),
    ("dynamic", "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))"),
    ("dynamic", "PREPARE p AS DELETE FROM sys_api_call_histories"),
    ("multi", "SELECT 1; DELETE FROM sys_api_call_histories"),
    ("multi", "SELECT 1 /* ; */ ; DROP TABLE company_keys"),
    ("multi", "SELECT 1 -- harmless\n; DELETE FROM company_keys"),
    ("multi", "/* SELECT */ DELETE FROM sys_api_call_histories"),
    ("multi", "BEGIN; DELETE FROM sys_api_call_histories; COMMIT"),
    ("multi", "COMMIT"),
    ("multi", "ABORT"),
]
READS = [
    "SELECT path, status_code FROM sys_api_call_histories ORDER BY path",
    "WITH e AS (SELECT * FROM sys_api_call_histories WHERE status_code >= 400) SELECT count(*) FROM e",
    "EXPLAIN SELECT * FROM sys_api_call_histories",
    "EXPLAIN (FORMAT json) SELECT count(*) FROM company_keys",
    "DESCRIBE sys_api_call_histories",
    "SHOW TABLES",
    "SUMMARIZE sys_api_call_histories",
    "SELECT name, value FROM duckdb_settings() WHERE name = 'threads'",
    "SELECT * FROM range(3)",
    *SEED_QUERIES.values(),
]
SEED_ROWS = [
    "INSERT INTO sys_api_call_histories (api_call_history_id, agent_id, path, query_string, status_code, "
    "request_size_bytes, response_size_bytes, created_at) VALUES "
    "('a', 'agent_test_123', '/api/admin/users', 'page=1&size=10', 200, 10, 20, now()), "
    "('b', 'agent_test_123', '/api/auth/login', NULL, 401, 64, 30, now()), "
    "('c', 'agent_x', '/api/aura/test/stream', NULL, 500, NULL, 12, now())",
    "INSERT INTO company_keys (tenant, platform, domain, key_hash) VALUES ('wedosoft', 'freshdesk', "
    "'wedosoft.freshdesk.com', 'hmac')",
    "INSERT INTO dead_letters (dead_letter_id, error) VALUES ('d1', 'bad json')",
]


def _ids() -> list[str]:
    seen: Counter[str] = Counter()
    ids = []
    for category, _ in CORPUS:
        seen[category] += 1
        ids.append(f"{category}-{seen[category]}")
    return ids


def state(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Everything an attempt could change: rows per table, settings, sequences, catalog objects."""
    cur = con.cursor()
    try:
        tables = [r[0] for r in cur.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()]
        return {
            "rows": {t: cur.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables},
            "settings": cur.execute("SELECT name, value FROM duckdb_settings() ORDER BY name").fetchall(),
            "sequences": cur.execute("SELECT sequence_name, last_value FROM duckdb_sequences()").fetchall(),
            "objects": cur.execute("SELECT database_name, table_name, temporary FROM duckdb_tables() UNION ALL "
                                   "SELECT database_name, view_name, temporary FROM duckdb_views() WHERE NOT internal "
                                   "ORDER BY ALL").fetchall(),
            "databases": cur.execute("SELECT database_name FROM duckdb_databases() ORDER BY 1").fetchall(),
        }
    finally:
        cur.close()


def files(root: Path) -> set[str]:
    """Files under root, the DuckDB file and its WAL aside (the api's own writes may touch them)."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.name.startswith("streamdesk.duckdb")}


def attempt(template: str, root: Path) -> str:
    return template.format(out=root / "out.csv", dir=root / "export")


def seeded_file(path: Path) -> Path:
    con = connect(path)
    for statement in SEED_ROWS:
        con.execute(statement)
    con.close()
    return path


@pytest.fixture(scope="module")
def on_file(tmp_path_factory) -> tuple[duckdb.DuckDBPyConnection, Path]:
    root = tmp_path_factory.mktemp("sqlfile")
    con = connect(seeded_file(root / "data" / "streamdesk.duckdb"))
    yield con, root
    con.close()


@pytest.mark.parametrize(("category", "template"), CORPUS, ids=_ids())
def test_run_read_only_refuses_and_changes_nothing(on_file, category, template):
    con, root = on_file
    before, before_files = state(con), files(root)
    with pytest.raises(SqlRefused) as refused:
        run_read_only(con, attempt(template, root), max_rows=100, timeout_s=10)
    assert str(refused.value)
    assert state(con) == before
    assert files(root) == before_files


@pytest.mark.parametrize("query", READS)
def test_run_read_only_still_reads(on_file, query):
    con, _ = on_file
    result = run_read_only(con, query, max_rows=100, timeout_s=10)
    assert result.columns and result.rows


@pytest.fixture(scope="module")
def api(broker, tmp_path_factory):
    root = tmp_path_factory.mktemp("sqlapi")
    with api_on(broker.bootstrap, root, "sql", worker=False) as client:
        s = client.settings
        cur = client.app.state.services.store.con.cursor()
        for statement in SEED_ROWS:
            cur.execute(statement)
        cur.close()
        client.root = root
        client.admin = {"Authorization": f"Bearer {mint_token(s.jwt_key(), 'u', 't', [Role.SYSTEM_ADMIN])}"}
        yield client


def test_a_delete_hidden_in_a_cte_deletes_nothing_through_the_api(api):
    db = api.app.state.services.store.con
    before = db.cursor().execute("SELECT count(*) FROM sys_api_call_histories").fetchone()[0]
    r = api.post("/v1/sql", json={"query": DML_CTE}, headers=api.admin)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "SQL_REFUSED" and "DELETE" in r.json()["error"]["message"]
    assert db.cursor().execute("SELECT count(*) FROM sys_api_call_histories").fetchone()[0] == before > 0


@pytest.mark.parametrize(("category", "template"), CORPUS, ids=_ids())
def test_post_sql_refuses_and_changes_nothing(api, category, template):
    before, before_files = state(api.app.state.services.store.con), files(api.root)
    r = api.post("/v1/sql", json={"query": attempt(template, api.root)}, headers=api.admin)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"]["code"] == "SQL_REFUSED" and body["error"]["message"] and body["trace_id"]
    assert state(api.app.state.services.store.con) == before
    assert files(api.root) == before_files


@pytest.mark.parametrize("query", READS)
def test_post_sql_still_reads(api, query):
    r = api.post("/v1/sql", json={"query": query}, headers=api.admin)
    assert r.status_code == 200, r.text
    assert r.json()["columns"] and r.json()["rows"]


def test_post_sql_answers_blobs_that_are_not_utf8(api):
    r = api.post("/v1/sql", json={"query": "SELECT '\\xFF'::BLOB AS b, ['ok'::BLOB, 'a\\xFE'::BLOB] AS l, "
                                           "123.456::DECIMAL(9,3) AS d"}, headers=api.admin)
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [["\\xff", ["ok", "a\\xfe"], "123.456"]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cli_settings(tmp_path_factory):
    from pipeline.settings import Settings

    root = tmp_path_factory.mktemp("sqlcli")
    s = Settings(data_dir=root / "data", api_port=_free_port(), _env_file=None)  # no api there: the file is read
    seeded_file(s.db_path)
    s.jwt_key()  # generated once by the first CLI call: not a file an attempt wrote
    return s, root


def _cli(settings, query: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_sql(settings, query, "json", Console(file=out, width=200), Console(file=err, width=200))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(("category", "template"), CORPUS, ids=_ids())
def test_streamdesk_sql_on_the_file_refuses_and_changes_nothing(cli_settings, category, template):
    settings, root = cli_settings
    with duckdb.connect(str(settings.db_path), read_only=True) as con:
        before = state(con)
    before_files = files(root)
    code, out, err = _cli(settings, attempt(template, root))
    assert code == 1 and "refused" in err and not out
    with duckdb.connect(str(settings.db_path), read_only=True) as con:
        assert state(con) == before
    assert files(root) == before_files


@pytest.mark.parametrize("query", READS)
def test_streamdesk_sql_on_the_file_still_reads(cli_settings, query):
    code, out, err = _cli(cli_settings[0], query)
    assert code == 0, err
    assert out.strip() not in ("", "[]")
