"""`Store`: the DuckDB file as the one process that may write it holds it, and the only way that process queries it.

DuckDB lets one process open a file read-write. The api is that process (docs/decisions.md, "Who owns what
state"): its materializer is the file's single writer, and its routes read what it wrote in the same process,
so a route reads its own writes at once. Workers never open the file; they publish.

Every query is a function `fn(cursor, *args)` from `pipeline/storage/queries/` (or a sink), run on a cursor of
its own that is closed afterwards:
- `await store.run(fn, *args)` from the event loop (a thread of the pool runs it; the loop keeps serving);
- `store.call(fn, *args)` from code that already runs on a thread (a sync dependency, a background thread);
- `await store.write(fn, *args)` for a write that another writer may make to the same rows at the same moment.

Writers of one process still race: DuckDB's concurrency is optimistic, so when two cursors update one row (a
route cancelling a schedule the scheduler is triggering, the materializer upserting a job's progress while its
control route sets its priority), one commits and the other gets "Conflict on update". `write` runs the loser
again; a write of several statements is made `atomic` (`pipeline.storage.db`) so that running it again is safe.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import duckdb

from pipeline.storage.db import connect, retry_conflicts, run_on_cursor

T = TypeVar("T")
# A route's write that keeps meeting the materializer's (which holds a busy job's row ~13 ms a batch) tries this
# many times, ~1 s of backoff in all, before the request fails.
WRITE_ATTEMPTS = 10


class Store:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    @classmethod
    def open(cls, path: Path, memory_limit_mb: int | None = None) -> Store:
        """The file read-write, its tables created and migrated (`pipeline.storage.db.connect`)."""
        return cls(connect(path, memory_limit_mb=memory_limit_mb))

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """`fn(cursor, *args, **kwargs)` off the event loop."""
        return await anyio.to_thread.run_sync(functools.partial(run_on_cursor, self.con, fn, *args, **kwargs))

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """`fn(cursor, *args, **kwargs)` on the calling thread (never call this from the event loop)."""
        return run_on_cursor(self.con, fn, *args, **kwargs)

    async def write(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """`run`, and run again if it lost a race with another writer (`retry_conflicts`). `fn` must be one
        statement, `atomic`, or otherwise safe to run again from the start."""
        return await self.run(retry_conflicts(fn, attempts=WRITE_ATTEMPTS), *args, **kwargs)

    def close(self) -> None:
        self.con.close()
