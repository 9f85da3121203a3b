"""The DuckDB file: one read-write connection per process; every thread uses its own cursor of it."""

from __future__ import annotations

import contextlib
import functools
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from pipeline.settings import private_dir
from pipeline.storage.migrations import migrate
from pipeline.storage.schema import DDL

T = TypeVar("T")

# DuckDB checkpoints (writes the rows held in memory into the file, with the writer stalled) once the WAL passes
# this. Until then those rows live uncompressed in the api's memory. Measured on 1M seed-shaped call rows in
# 5,000-row commits (the table has no key since the hot-path work): 256 MB took 5.3-5.6 s with one 1.1-1.7 s
# stall and held up to ~260 MB of rows in memory; 64 MB took 5.1-5.3 s with five stalls of at most 370-450 ms
# and holds a quarter of that; 32 MB took 6.0 s. (With the old primary-key index the 16 MB default cost twice
# 256 MB's time.) After a crash the next open replays up to 64 MB of WAL; a clean close, or `CHECKPOINT`, folds
# it in at once.
WRITER_CHECKPOINT_THRESHOLD = "64MB"


def retry_conflicts(fn: Callable[..., T], attempts: int = 5) -> Callable[..., T]:
    """Run a write transaction again when it lost DuckDB's optimistic-concurrency race with another writer (the
    materializer writes the same tables all the time); the loser rolled back, so running it again is safe.

    Two writers inserting the same key at once both pass their own statement's check; the second one's commit
    then fails on the key ("Failed to commit: PRIMARY KEY or UNIQUE constraint violation"), or, when the other
    committed while the statement ran, the statement itself does ("Duplicate key ... violates primary key
    constraint", even under INSERT OR IGNORE, which cannot see the row yet). That is the same race: run again,
    the statement sees the row the other committed (an INSERT OR IGNORE then adds nothing)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> T:
        for attempt in range(attempts):
            try:
                return fn(*args, **kwargs)
            except (duckdb.TransactionException, duckdb.ConstraintException) as exc:
                if not _lost_a_race(str(exc)) or attempt == attempts - 1:
                    raise
                time.sleep(random.uniform(0.01, 0.03) * (attempt + 1))  # jittered: two losers do not meet again
        raise AssertionError("unreachable")

    return run


def atomic(fn: Callable[..., T]) -> Callable[..., T]:
    """`fn(cursor, ...)` in one transaction, run again if it lost a race (`retry_conflicts`): a write of several
    statements that another writer (the scheduler, a second request, the materializer) may touch at the same
    moment. An exception rolls it back whole, and is raised as it was (a refusal stays a refusal)."""

    @functools.wraps(fn)
    def run(cur: duckdb.DuckDBPyConnection, *args: Any, **kwargs: Any) -> T:
        cur.begin()
        try:
            result = fn(cur, *args, **kwargs)
            cur.commit()
        except BaseException:
            rollback(cur)
            raise
        return result

    return retry_conflicts(run)


def rollback(cur: duckdb.DuckDBPyConnection) -> None:
    """Roll back what is still open: a commit that failed has rolled back already, and DuckDB then answers a
    rollback with "no transaction is active", an error that would hide the one that matters (and stop
    `retry_conflicts` from seeing a lost race)."""
    with contextlib.suppress(duckdb.TransactionException):
        cur.rollback()


def _lost_a_race(message: str) -> bool:
    text = message.lower()
    return ("conflict" in text or ("failed to commit" in text and "constraint violation" in text)
            or ("duplicate key" in text and "violates primary key constraint" in text))


def run_on_cursor(con: duckdb.DuckDBPyConnection, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(cursor, ...)` on a fresh cursor of the shared connection (one per thread), closed afterwards."""
    cur = con.cursor()
    try:
        return fn(cur, *args, **kwargs)
    finally:
        cur.close()


class DatabaseLocked(RuntimeError):
    """Another process (usually the running api) holds the file."""


def connect(path: Path, read_only: bool = False, memory_limit_mb: int | None = None) -> duckdb.DuckDBPyConnection:
    """Open the file with external access off and the configuration locked: SQL from users can read tables,
    never files or URLs, and cannot change a setting (settings are not transactional, a rollback keeps them).
    `memory_limit_mb` bounds DuckDB's memory (`duckdb_memory_limit_mb`); None leaves DuckDB's default."""
    private_dir(path.parent)
    # DuckDB creates its file, and a new .wal after every checkpoint, with the process umask: 0077 makes each
    # of them owner-only (0600) whenever it appears; files made before this get their mode fixed below.
    os.umask(0o077)
    config: dict[str, str | bool] = {"enable_external_access": False, "lock_configuration": True}
    if not read_only:
        config["checkpoint_threshold"] = WRITER_CHECKPOINT_THRESHOLD
    if memory_limit_mb is not None:
        config["memory_limit"] = f"{memory_limit_mb}MiB"
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise DatabaseLocked(f"{path} is in use by another process: {exc}") from exc
        raise
    if not read_only:
        for statement in DDL:
            con.execute(statement)
        _owner_only(path, path.with_name(path.name + ".wal"))
        migrate(con)
    return con


def _owner_only(*files: Path) -> None:
    for f in files:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f, 0o600)
