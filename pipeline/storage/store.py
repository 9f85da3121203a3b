"""`Store`: the DuckDB file as the one process that may write it holds it, and the only way that process queries it.

DuckDB lets one process open a file read-write. The api is that process (docs/decisions.md, "Who owns what
state"): its materializer is the file's single writer, and its routes read what it wrote in the same process,
so a route reads its own writes at once and nothing else needs a lock. Workers never open the file; they publish.

Every query is a function `fn(cursor, *args)` from `pipeline/storage/queries/` (or a sink), run on a cursor of
its own that is closed afterwards:
- `await store.run(fn, *args)` from the event loop (a thread of the pool runs it; the loop keeps serving);
- `store.call(fn, *args)` from code that already runs on a thread (a sync dependency, a background thread).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import duckdb

from pipeline.storage.db import connect, run_on_cursor

T = TypeVar("T")


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

    def close(self) -> None:
        self.con.close()
