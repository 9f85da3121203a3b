"""The DuckDB file: one read-write connection per process; every thread uses its own cursor of it."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.storage.schema import DDL


class DatabaseLocked(RuntimeError):
    """Another process (usually the running api) holds the file."""


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the file with external access off: SQL from users can read tables, never files or URLs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {"enable_external_access": False}
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise DatabaseLocked(f"{path} is in use by another process: {exc}") from exc
        raise
    if not read_only:
        for statement in DDL:
            con.execute(statement)
    return con
