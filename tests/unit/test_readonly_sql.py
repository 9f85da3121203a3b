"""`POST /v1/sql` and `streamdesk sql`: reads run, anything else is refused with the reason."""

from __future__ import annotations

import threading
import time

import duckdb
import pytest

from pipeline.storage import readonly
from pipeline.storage.db import connect
from pipeline.storage.readonly import SqlRefused, check_read_only, run_read_only
from tests.helpers import wait_for

ROWS = "INSERT INTO sys_api_call_histories (api_call_history_id, path, status_code) VALUES ('a', '/x', 200), " \
       "('b', '/y', 404), ('c', '/z', 500)"


@pytest.fixture
def con(tmp_path) -> duckdb.DuckDBPyConnection:
    con = connect(tmp_path / "streamdesk.duckdb")
    con.execute(ROWS)
    yield con
    con.close()


def count(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT count(*) FROM sys_api_call_histories").fetchone()[0]


@pytest.mark.parametrize("sql", [
    "SELECT path, status_code FROM sys_api_call_histories ORDER BY path",
    "WITH e AS (SELECT * FROM sys_api_call_histories WHERE status_code >= 400) SELECT count(*) FROM e",
    "DESCRIBE sys_api_call_histories",
    "SHOW TABLES",
    "EXPLAIN SELECT * FROM sys_api_call_histories",
    "FROM sys_api_call_histories",
])
def test_reads_are_allowed(con, sql):
    result = run_read_only(con, sql, max_rows=100, timeout_s=10)
    assert result.rows and result.columns and len(result.types) == len(result.columns)
    assert not result.truncated


def test_select_returns_columns_types_and_rows(con):
    result = run_read_only(con, "SELECT path, status_code FROM sys_api_call_histories ORDER BY path", 100, 10)
    assert result.columns == ["path", "status_code"]
    assert result.types == ["VARCHAR", "INTEGER"]
    assert result.rows == [("/x", 200), ("/y", 404), ("/z", 500)]


@pytest.mark.parametrize(("sql", "kind"), [
    ("INSERT INTO sys_api_call_histories (api_call_history_id) VALUES ('d')", "INSERT"),
    ("UPDATE sys_api_call_histories SET status_code = 200", "UPDATE"),
    ("DELETE FROM sys_api_call_histories", "DELETE"),
    ("WITH x AS (SELECT 1) DELETE FROM sys_api_call_histories", "DELETE"),
    ("DROP TABLE sys_api_call_histories", "DROP"),
    ("COPY sys_api_call_histories TO '/tmp/stolen.csv'", "COPY"),
    ("ATTACH '/tmp/other.duckdb' AS other", "ATTACH"),
    ("SET enable_external_access = true", "SET"),
    ("PRAGMA enable_profiling", "PRAGMA"),
    ("CREATE TABLE x (a INTEGER)", "CREATE"),
])
def test_writes_and_settings_are_refused_naming_the_statement(con, sql, kind):
    with pytest.raises(SqlRefused, match=f"only read queries .* not {kind}"):
        run_read_only(con, sql, 100, 10)
    assert count(con) == 3
    assert run_read_only(con, "SELECT count(*) FROM sys_api_call_histories WHERE status_code = 200", 10, 10).rows \
        == [(1,)]


def test_multiple_statements_are_refused(con):
    with pytest.raises(SqlRefused, match="exactly one statement"):
        check_read_only("SELECT 1; DELETE FROM sys_api_call_histories")
    assert count(con) == 3


def test_invalid_sql_is_refused_as_unparseable():
    with pytest.raises(SqlRefused, match="could not parse SQL"):
        check_read_only("SELEC * FROM sys_api_call_histories")


def test_files_cannot_be_read_through_sql(con):
    with pytest.raises(SqlRefused, match=r"table function read_csv\(\)"):
        run_read_only(con, "SELECT * FROM read_csv('/etc/passwd')", 100, 10)
    with pytest.raises(SqlRefused, match="(?i)disabled|permission"):  # no table function: external access is off
        run_read_only(con, "SELECT * FROM 'passwd.csv'", 100, 10)


def test_explain_analyze_cannot_write(con):
    with pytest.raises(SqlRefused):
        run_read_only(con, "EXPLAIN ANALYZE DELETE FROM sys_api_call_histories", 100, 10)
    assert count(con) == 3


def test_row_cap_truncates_and_says_so(con):
    result = run_read_only(con, "SELECT * FROM sys_api_call_histories ORDER BY path", max_rows=2, timeout_s=10)
    assert [r[0] for r in result.rows] == ["a", "b"]
    assert result.truncated
    exact = run_read_only(con, "SELECT * FROM sys_api_call_histories", max_rows=3, timeout_s=10)
    assert len(exact.rows) == 3 and not exact.truncated


def test_a_write_that_slips_past_the_checks_is_rolled_back(con, monkeypatch):
    monkeypatch.setattr(readonly, "check_tree", lambda cur, query: None)
    result = run_read_only(con, "WITH x AS (DELETE FROM sys_api_call_histories RETURNING *) SELECT count(*) FROM x",
                           100, 10)
    assert result.rows == [(3,)]  # the DELETE ran, inside the transaction
    assert count(con) == 3


def test_statement_types_the_client_cannot_name_are_refused(con):
    with pytest.raises(SqlRefused, match="only read queries"):
        run_read_only(con, "UPDATE EXTENSIONS", 100, 10)


def test_explain_behind_comments_and_with_options(con):
    assert run_read_only(con, "/* why */ EXPLAIN SELECT 1", 100, 10).rows
    assert run_read_only(con, "EXPLAIN (FORMAT json) SELECT count(*) FROM sys_api_call_histories", 100, 10).rows
    for sql in ("EXPLAIN/**/ANALYZE DELETE FROM sys_api_call_histories", "EXPLAIN (ANALYZE) SELECT 1"):
        with pytest.raises(SqlRefused, match="EXPLAIN ANALYZE executes"):
            run_read_only(con, sql, 100, 10)
    assert count(con) == 3


def test_a_query_too_deep_to_check_is_refused_not_crashed(con):
    with pytest.raises(SqlRefused, match="nested too deeply"):
        run_read_only(con, "SELECT 1" + " + 1" * 700, 100, 10)


def test_configuration_is_locked_on_both_connections(tmp_path):
    path = tmp_path / "streamdesk.duckdb"
    for read_only in (False, True):
        con = connect(path, read_only=read_only)
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET threads = 1")
        con.close()


def test_the_time_limit_stops_a_long_read_and_ends_its_transaction(con):
    with pytest.raises(SqlRefused, match="longer than"):
        run_read_only(con, "SELECT count(*) FROM range(1000000000000)", 100, timeout_s=0.3)
    assert run_read_only(con, "SELECT count(*) FROM sys_api_call_histories", 10, 10).rows == [(3,)]


def test_a_long_read_does_not_block_the_writer(con):
    """The read's transaction sees a snapshot; the materializer keeps committing beside it."""
    connections = con.execute("SELECT count FROM duckdb_connection_count()").fetchone()[0]
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            run_read_only(con, "SELECT count(*) FROM sys_api_call_histories, range(1000000000000)", 10, timeout_s=1.5)
        except SqlRefused as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    wait_for(lambda: con.execute("SELECT count FROM duckdb_connection_count()").fetchone()[0] > connections, 5,
             "the read's cursor")
    writer = con.cursor()
    started = time.monotonic()
    writer.execute("BEGIN TRANSACTION")
    writer.execute("INSERT INTO sys_api_call_histories (api_call_history_id) VALUES ('d')")
    writer.execute("COMMIT")
    assert time.monotonic() - started < 1 and reader.is_alive()
    reader.join(10)
    assert "longer than" in str(outcome[0])
    assert count(con) == 4


def test_an_operator_bounds_duckdbs_memory_and_a_bigger_query_spills_instead_of_failing(tmp_path, monkeypatch):
    """STREAMDESK_DUCKDB_MEMORY_LIMIT_MB reaches the api's store; users' SQL cannot lift it; a group-by larger
    than the limit still answers, from disk."""
    from pipeline.settings import Settings
    from pipeline.storage.store import Store

    monkeypatch.setenv("STREAMDESK_DUCKDB_MEMORY_LIMIT_MB", "128")
    settings = Settings(data_dir=tmp_path, _env_file=None)
    store = Store.open(settings.db_path, settings.duckdb_memory_limit_mb)
    try:
        assert store.con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "128.0 MiB"
        with pytest.raises(duckdb.Error, match="locked"):
            store.con.execute("SET memory_limit = '8GB'")
        big = ("SELECT count(*), sum(n) FROM (SELECT lpad(i::VARCHAR, 40, 'x') AS k, count(*) AS n "
               "FROM range(3000000) t(i) GROUP BY k)")
        assert run_read_only(store.con, big, 10, 60).rows == [(3_000_000, 3_000_000)]
    finally:
        store.close()
    with pytest.raises(ValueError, match="greater than or equal to 128"):
        Settings(data_dir=tmp_path, _env_file=None, duckdb_memory_limit_mb=16)
