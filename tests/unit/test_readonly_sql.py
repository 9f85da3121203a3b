"""`POST /v1/sql` and `streamdesk sql`: reads run, anything else is refused with the reason."""

from __future__ import annotations

import duckdb
import pytest

from pipeline.storage.db import connect
from pipeline.storage.readonly import SqlRefused, check_read_only, run_read_only

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
    with pytest.raises(SqlRefused, match="(?i)disabled|permission"):
        run_read_only(con, "SELECT * FROM read_csv('/etc/passwd')", 100, 10)


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
