"""`streamdesk export`: one incremental Parquet export, through the running api (it holds the DuckDB file), else
straight on the file."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from pipeline.security import Role, mint_token
from pipeline.settings import Settings
from pipeline.storage.db import DatabaseLocked, connect
from pipeline.storage.parquet_export import export_parquet


def run_export(settings: Settings, out_dir: Path | None, out: Console, err: Console) -> int:
    try:
        done = _via_api(settings)
        if done is not None and out_dir is not None and out_dir.resolve() != Path(done["directory"]).resolve():
            err.print(f"the running api exports into its own directory ({done['directory']}, "
                      "STREAMDESK_PARQUET_DIR); --out applies when it is stopped")
        if done is None:
            done = _on_file(settings, out_dir or settings.parquet_path)
    except DatabaseLocked as exc:
        err.print(f"[red]{exc}[/red]\nIs an api running on another port? Set STREAMDESK_API_PORT.")
        return 1
    except RuntimeError as exc:
        err.print(f"[red]{exc}[/red]")
        return 1
    table = Table("table", "partitions written", "partitions removed", "rows written")
    for name, r in done["tables"].items():
        table.add_row(name, f"{r['written']:,}", f"{r['removed']:,}", f"{r['rows']:,}")
    out.print(table)
    out.print(f"in {done['directory']} (read with DuckDB: read_parquet('{done['directory']}/<table>/**/*.parquet', "
              "hive_partitioning = true))", highlight=False)
    return 0


def _via_api(settings: Settings) -> dict[str, Any] | None:
    base = f"http://{settings.api_host}:{settings.api_port}"
    token = mint_token(settings.jwt_key(), "streamdesk-cli", "system", [Role.SYSTEM_ADMIN], ttl_s=300)
    try:
        resp = httpx.post(f"{base}/v1/parquet-exports", timeout=3600,
                          headers={"Authorization": f"Bearer {token}", "X-DWP-Source": "streamdesk-cli"})
    except httpx.TransportError:
        return None  # no api running: export from the file directly
    if resp.status_code != 200:
        raise RuntimeError(f"the api refused the export ({resp.status_code}): {resp.text[:300]}")
    return dict(resp.json())


def _on_file(settings: Settings, out_dir: Path) -> dict[str, Any]:
    if not settings.db_path.exists():
        raise RuntimeError(f"no database at {settings.db_path} yet (start the pipeline with `streamdesk up`)")
    con = connect(settings.db_path, memory_limit_mb=settings.duckdb_memory_limit_mb)
    try:
        report = export_parquet(con, out_dir)
    finally:
        con.close()
    return {"directory": str(out_dir), "tables": {t: asdict(r) for t, r in report.items()}}
