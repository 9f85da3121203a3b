"""`streamdesk sql`: through the running api (it holds the DuckDB file), else straight on the file."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from pipeline.security import Role, mint_token
from pipeline.settings import Settings
from pipeline.storage.db import DatabaseLocked, connect
from pipeline.storage.readonly import SqlRefused, SqlResult, run_read_only


def run_sql(settings: Settings, query: str, fmt: str, out: Console, err: Console) -> int:
    if fmt not in ("table", "csv", "json"):
        err.print("--format must be table, csv or json")
        return 2
    try:
        result = _via_api(settings, query)
        if result is None:
            result = _on_file(settings, query)
    except SqlRefused as exc:
        err.print(f"[red]refused:[/red] {exc}", highlight=False)
        return 1
    except DatabaseLocked as exc:
        err.print(f"[red]{exc}[/red]\nIs an api running on another port? Set STREAMDESK_API_PORT.")
        return 1
    _print(result, fmt, out)
    return 0


def _via_api(settings: Settings, query: str) -> SqlResult | None:
    base = f"http://{settings.api_host}:{settings.api_port}"
    token = mint_token(settings.jwt_key(), "streamdesk-cli", "system", [Role.SYSTEM_ADMIN], ttl_s=300)
    try:
        resp = httpx.post(f"{base}/v1/sql", json={"query": query}, timeout=settings.sql_timeout_s + 10,
                          headers={"Authorization": f"Bearer {token}", "X-DWP-Source": "streamdesk-cli"})
    except httpx.TransportError:
        return None  # no api running: read the file directly
    body = resp.json()
    if resp.status_code != 200:
        raise SqlRefused(body.get("error", {}).get("message", resp.text))
    return SqlResult(body["columns"], body["types"], [tuple(r) for r in body["rows"]], body["truncated"])


def _on_file(settings: Settings, query: str) -> SqlResult:
    if not settings.db_path.exists():
        raise SqlRefused(f"no database at {settings.db_path} yet (start the pipeline with `streamdesk up`)")
    con = connect(settings.db_path, read_only=True, memory_limit_mb=settings.duckdb_memory_limit_mb)
    try:
        return run_read_only(con, query, settings.sql_max_rows, settings.sql_timeout_s)
    finally:
        con.close()


def _cell(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


def _print(result: SqlResult, fmt: str, out: Console) -> None:
    if fmt == "json":
        rows = [dict(zip(result.columns, map(_cell, r), strict=True)) for r in result.rows]
        out.file.write(json.dumps(rows, default=str, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(result.columns)
        w.writerows([[_cell(c) for c in r] for r in result.rows])
        out.file.write(buf.getvalue())
    else:
        table = Table(*result.columns)
        for r in result.rows:
            table.add_row(*["NULL" if c is None else str(_cell(c)) for c in r])
        out.print(table)
        out.print(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''}"
                  f"{', truncated' if result.truncated else ''})", highlight=False)
