"""Read-only SQL for users (`POST /v1/sql`, `streamdesk sql`), in four layers: one statement of a read type;
a syntax tree with no data-modifying CTE, no table function outside a read-only allow-list and no function that
changes state; a transaction that is always rolled back; a database whose external access is off and whose
configuration is locked (`pipeline.storage.db.connect`). DuckDB reports `WITH x AS (DELETE …) SELECT …` as a
SELECT, so the statement type alone is not enough; the rollback holds even if a write slips past the checks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb

ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
READ_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
# Table functions that only read the catalog or generate values; everything else (files, checkpoint(),
# enable_logging(), query(), json_execute_serialized_sql(), …) is refused.
TABLE_FUNCTIONS = frozenset({
    "range", "generate_series", "unnest", "repeat", "repeat_row", "json_each", "json_tree", "summary",
    "duckdb_columns", "duckdb_constraints", "duckdb_databases", "duckdb_dependencies", "duckdb_functions",
    "duckdb_indexes", "duckdb_keywords", "duckdb_schemas", "duckdb_sequences", "duckdb_settings", "duckdb_tables",
    "duckdb_types", "duckdb_views", "duckdb_memory", "duckdb_optimizers", "pragma_table_info", "pragma_show",
    "pragma_version", "pragma_database_size", "pragma_storage_info", "pragma_metadata_info", "pragma_collations",
    "pragma_platform", "pg_timezone_names", "icu_calendar_names",
})
# Scalar functions whose effect outlives a rollback (a sequence does not roll back) or the statement.
EXAMPLE_QUERY = "SELECT count(*) FROM sys_api_call_histories"  # what the api's docs show
STATEFUL_FUNCTIONS = frozenset({"nextval", "setval", "setseed", "write_log"})


class SqlRefused(ValueError):
    """Not a read, or not valid SQL; the message says why."""


@dataclass(slots=True)
class SqlResult:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool


def _one_statement(sql: str) -> tuple[duckdb.Statement, duckdb.StatementType]:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise SqlRefused(f"could not parse SQL: {exc}") from None
    if len(statements) != 1:
        raise SqlRefused(f"send exactly one statement (got {len(statements)})")
    try:
        return statements[0], statements[0].type
    except ValueError:  # a statement type the Python client cannot name (UPDATE EXTENSIONS): not a read
        raise SqlRefused("only read queries (SELECT, WITH, EXPLAIN, DESCRIBE, SHOW) are allowed") from None


def _explained(query: str) -> str:
    """The statement after `EXPLAIN [(options)]`; refused if it would be run (ANALYZE)."""
    tokens = [(pos, kind) for pos, kind in duckdb.tokenize(query) if kind != duckdb.token_type.comment]
    words = [query[pos:end].strip().upper() for (pos, _), (end, _) in zip(tokens, [*tokens[1:], (len(query), None)],
                                                                        strict=True)]
    i, depth = 1, 0
    while i < len(words) and (depth or words[i] in ("(", "ANALYZE", "ANALYSE")):
        if words[i] in ("ANALYZE", "ANALYSE"):
            raise SqlRefused("EXPLAIN ANALYZE executes its statement; use EXPLAIN without ANALYZE")
        depth += {"(": 1, ")": -1}.get(words[i], 0)
        i += 1
    if i >= len(words):
        raise SqlRefused("EXPLAIN needs a statement to explain")
    return query[tokens[i][0]:]


def check_read_only(sql: str) -> tuple[duckdb.Statement, str]:
    """The one statement to run and the read query inside it (itself, or what EXPLAIN explains)."""
    statement, kind = _one_statement(sql)
    if kind not in ALLOWED:
        raise SqlRefused(f"only read queries (SELECT, WITH, EXPLAIN, DESCRIBE, SHOW) are allowed, not {kind.name}")
    if kind != duckdb.StatementType.EXPLAIN:
        return statement, statement.query
    inner, inner_kind = _one_statement(_explained(statement.query))
    if inner_kind != duckdb.StatementType.SELECT:
        raise SqlRefused(f"EXPLAIN only of read queries (SELECT, WITH), not {inner_kind.name}")
    return statement, inner.query


def _walk(tree: Any) -> Iterator[dict[str, Any]]:
    stack = [tree]  # iterative: a hostile query nests deeper than Python's recursion limit
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _offence(node: dict[str, Any]) -> str | None:
    kind = node.get("type")
    if isinstance(kind, str) and kind.endswith("_NODE") and kind not in READ_NODES:
        return f"a data-modifying {kind.removesuffix('_NODE').removesuffix('_QUERY')} inside the query"
    if kind == "TABLE_FUNCTION":
        name = str(node.get("function", {}).get("function_name", "")).lower()
        if name not in TABLE_FUNCTIONS:
            return f"table function {name}() (only tables and catalog functions such as duckdb_tables() are readable)"
    elif node.get("class") == "FUNCTION" and str(node.get("function_name", "")).lower() in STATEFUL_FUNCTIONS:
        return f"{node['function_name']}() changes state"
    return None


def check_tree(cur: duckdb.DuckDBPyConnection, query: str) -> None:
    """Refuse what a SELECT can hide: DML in a CTE, state-changing or file-reading functions."""
    try:
        tree = json.loads(cur.execute("SELECT json_serialize_sql(?)", [query]).fetchone()[0])
    except RecursionError:  # the parser allows 1,000 levels, each several JSON levels deep
        raise SqlRefused("the query is nested too deeply to check; flatten it") from None
    if tree.get("error"):
        raise SqlRefused(f"could not check this statement: {tree.get('error_message')}")
    if len(tree.get("statements", [])) != 1:
        raise SqlRefused("send exactly one statement")
    for node in _walk(tree):
        if (why := _offence(node)) is not None:
            raise SqlRefused(f"not read-only: {why}")


def _message(exc: duckdb.Error) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def run_read_only(con: duckdb.DuckDBPyConnection, sql: str, max_rows: int, timeout_s: float) -> SqlResult:
    """Run one checked read on its own cursor of `con` (a connection or a cursor), inside a transaction that is
    always rolled back."""
    statement, query = check_read_only(sql)
    cur = con.cursor()
    timer = threading.Timer(timeout_s, cur.interrupt)
    timer.start()
    try:
        check_tree(cur, query)
        cur.execute("BEGIN TRANSACTION")
        rel = cur.execute(statement)
        rows = rel.fetchmany(max_rows + 1)
        columns = [d[0] for d in rel.description or []]
        types = [str(d[1]) for d in rel.description or []]
    except duckdb.InterruptException:
        raise SqlRefused(f"query ran longer than {timeout_s:.0f} s and was stopped") from None
    except duckdb.Error as exc:
        raise SqlRefused(_message(exc)) from None
    finally:
        timer.cancel()
        _rollback(cur)
    return SqlResult(columns, types, rows[:max_rows], len(rows) > max_rows)


def _rollback(cur: duckdb.DuckDBPyConnection) -> None:
    try:
        cur.execute("ROLLBACK")
    except duckdb.Error:
        pass  # no transaction open (the checks refused first); closing the cursor ends one in any case
    finally:
        cur.close()
