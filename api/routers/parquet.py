"""`POST /v1/parquet-exports`: one incremental Parquet export now, into the api's `parquet_dir` (System Admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import ServicesDep, SettingsDep
from api.security import bearer
from pipeline.security import Role
from schemas.platform_api import ParquetExportResult

router = APIRouter(tags=["sql"])
Admin = bearer(Role.SYSTEM_ADMIN)


@router.post("/v1/parquet-exports", response_model=ParquetExportResult)
async def export_now(principal: Admin, services: ServicesDep, settings: SettingsDep) -> dict[str, Any]:
    """Every exported table as hive-partitioned Parquet (`<table>/tenant=…/date=…/data.parquet`); only the
    partitions that changed since the last run are written. The files stay on the api's machine."""
    tables = await services.parquet.run_once()
    return {"directory": str(settings.parquet_path), "tables": tables}
