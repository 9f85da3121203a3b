"""Read-only SQL for users (`POST /v1/sql`, `streamdesk sql`): an allow-list of statement types on a
connection whose external access is off, with a row cap and a time limit."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import duckdb

ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


class SqlRefused(ValueError):
    """Not a read, or not valid SQL; the message says why."""


@dataclass(slots=True)
class SqlResult:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool


def check_read_only(sql: str) -> str:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise SqlRefused(f"could not parse SQL: {exc}") from None
    if len(statements) != 1:
        raise SqlRefused(f"send exactly one statement (got {len(statements)})")
    kind = statements[0].type
    if kind == duckdb.StatementType.EXPLAIN:
        # EXPLAIN ANALYZE runs its statement; plain EXPLAIN of a write is harmless but pointless: allow reads only.
        inner = re.sub(r"^\s*EXPLAIN\s+", "", sql, count=1, flags=re.IGNORECASE)
        if re.match(r"\s*ANALY[SZ]E\b", inner, flags=re.IGNORECASE):
            raise SqlRefused("EXPLAIN ANALYZE executes its statement; use EXPLAIN without ANALYZE")
        check_read_only(inner)
        return sql
    if kind not in ALLOWED:
        raise SqlRefused(f"only read queries (SELECT, WITH, EXPLAIN, DESCRIBE, SHOW) are allowed, not {kind.name}")
    return sql


def run_read_only(con: duckdb.DuckDBPyConnection, sql: str, max_rows: int, timeout_s: float) -> SqlResult:
    check_read_only(sql)
    cur = con.cursor()
    timer = threading.Timer(timeout_s, cur.interrupt)
    timer.start()
    try:
        rel = cur.execute(sql)
        rows = rel.fetchmany(max_rows + 1)
        columns = [d[0] for d in rel.description or []]
        types = [str(d[1]) for d in rel.description or []]
    except duckdb.InterruptException:
        raise SqlRefused(f"query ran longer than {timeout_s:.0f} s and was stopped") from None
    except duckdb.Error as exc:
        raise SqlRefused(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    finally:
        timer.cancel()
        cur.close()
    return SqlResult(columns, types, rows[:max_rows], len(rows) > max_rows)
