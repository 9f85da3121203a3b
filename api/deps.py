"""Dependencies shared by routers: settings, database cursor, producer, runtime state."""

from __future__ import annotations

from typing import Annotated

import duckdb
from fastapi import Depends, Request

from pipeline.settings import Settings


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
