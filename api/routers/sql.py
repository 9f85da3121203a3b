"""Read-only SQL over the live database, for System Admins (`streamdesk sql` uses it while the api runs)."""

from __future__ import annotations

import csv
import io
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from api.deps import SettingsDep, StoreDep
from api.errors import ApiError
from api.security import bearer
from pipeline.security import Role
from pipeline.storage.readonly import EXAMPLE_QUERY, SqlRefused, run_read_only
from schemas.platform_api import SqlRows

router = APIRouter(tags=["sql"])


class SqlQuery(BaseModel):
    query: str = Field(min_length=1, max_length=100_000, examples=[EXAMPLE_QUERY])
    format: Literal["json", "csv"] = "json"


@router.post("/v1/sql", responses={200: {
    "description": "rows as JSON, or as CSV with `format: csv`", "model": SqlRows,
    "content": {"text/csv": {"schema": {"type": "string"}}}}})
async def run_sql(
    body: SqlQuery, store: StoreDep, s: SettingsDep,
    _: bearer(Role.SYSTEM_ADMIN),
) -> Any:
    try:
        result = await store.run(run_read_only, body.query, s.sql_max_rows, s.sql_timeout_s)
    except SqlRefused as exc:
        raise ApiError(400, str(exc), code="SQL_REFUSED") from None
    if body.format == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
        return PlainTextResponse(buf.getvalue(), media_type="text/csv")
    rows = _text_blobs(result.rows) if any("BLOB" in t for t in result.types) else result.rows
    return {"columns": result.columns, "types": result.types, "rows": rows, "truncated": result.truncated}


def _text_blobs(value: Any) -> Any:
    """BLOBs as text, `\\xff` where not UTF-8: JSON encoding decodes bytes as UTF-8 and fails (a 500)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, list | tuple):
        return [_text_blobs(v) for v in value]
    if isinstance(value, dict):
        return {_text_blobs(k): _text_blobs(v) for k, v in value.items()}
    return value
