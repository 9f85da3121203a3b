"""Dependencies shared by routers: settings, database cursor, producer, runtime state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import duckdb
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from pipeline.settings import Settings
from pipeline.storage.db import run_on_cursor


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_cursor(request: Request):
    cur = request.app.state.db.cursor()
    try:
        yield cur
    finally:
        cur.close()


CursorDep = Annotated[duckdb.DuckDBPyConnection, Depends(get_cursor)]


T = TypeVar("T")


async def in_db(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(cursor, *args)` on a fresh cursor of the api's database, off the event loop."""
    return await run_in_threadpool(run_on_cursor, request.app.state.db, fn, *args)
