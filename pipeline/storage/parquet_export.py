"""Every materialized table as hive-partitioned Parquet: `<out>/<table>/tenant=<t>/date=<YYYY-MM-DD>/data.parquet`.

Readable in place by DuckDB (`read_parquet('<out>/<table>/**/*.parquet', hive_partitioning = true)`), pyarrow
datasets (`partitioning="hive"`), Spark or Trino. Incremental: `parquet_manifest` remembers each partition's
row count and a hash of its rows; a run rewrites only the partitions whose count or hash changed (new rows, a
retention sweep, an erased user), and deletes the files of partitions that are now empty. Each file is written
whole to a temporary name and renamed into place, and the manifest moves on after it, so a run stopped half way
leaves every file either as it was or complete, and the next run redoes what the manifest does not show:
nothing is exported twice. An erased user's rows are gone from the tables, so the partitions that held them
are rewritten without them.

A partition's date is the day its rows were made (UTC): `created_at`, else the table's own time column; rows
without one go to `date=1970-01-01`. The tenant column stays in the files unless it is called `tenant` (the
partition key gives it back), as does a `date` column used as the partition date.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import quote

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.storage.db import retry_conflicts, rollback

# table -> (tenant column, the column that dates a row); tables not named here are not exported.
EXPORTED: dict[str, tuple[str, str]] = {
    "sys_api_call_histories": ("tenant_id", "created_at"),
    "tickets": ("tenant", "created_at"), "conversations": ("tenant", "created_at"),
    "kb_articles": ("tenant", "created_at"), "kb_categories": ("tenant", "updated_at"),
    "kb_folders": ("tenant", "updated_at"), "attachments": ("tenant", "updated_at"),
    "integrated_objects": ("tenant", "updated_at"),
    "sleep_records": ("tenant", "date"), "predictions": ("tenant", "created_at"),
    "debate_rounds": ("tenant", "start_time"), "expert_analyses": ("tenant", "created_at"),
    "recommendations": ("tenant", "created_at"),
}
NO_DATE = "1970-01-01"
BATCH_ROWS = 100_000
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


@dataclass(slots=True)
class TableExport:
    written: int = 0  # partitions (re)written this run
    removed: int = 0  # partitions deleted (now empty)
    rows: int = 0  # rows in the partitions written


def export_parquet(con: duckdb.DuckDBPyConnection, out: Path,
                   tables: list[str] | None = None) -> dict[str, TableExport]:
    """One incremental run over the chosen tables (every exported one by default)."""
    report = {}
    for table in tables or list(EXPORTED):
        cur = con.cursor()
        try:
            report[table] = _export_table(cur, out, table)
        finally:
            cur.close()
    return report


def _day(cur: duckdb.DuckDBPyConnection, table: str) -> str:
    """The partition date of a row, as SQL: the UTC day of its time column."""
    column = EXPORTED[table][1]
    kind = cur.execute("SELECT data_type FROM information_schema.columns WHERE table_name = ? AND column_name = ?",
                       [table, column]).fetchone()
    value = f'"{column}"'
    if kind and "WITH TIME ZONE" in kind[0]:
        value = f"timezone('UTC', {value})"
    return f"coalesce(CAST({value} AS DATE), DATE '{NO_DATE}')"


def _export_table(cur: duckdb.DuckDBPyConnection, out: Path, table: str) -> TableExport:
    tenant, column = EXPORTED[table]
    day = _day(cur, table)
    state = f"SELECT coalesce(CAST(\"{tenant}\" AS VARCHAR), ''), {day}, count(*), bit_xor(hash(t)) FROM {table} t"
    now = {(t, d): (n, h) for t, d, n, h in cur.execute(f"{state} GROUP BY ALL").fetchall()}
    done = {(t, d): (n, h) for t, d, n, h in cur.execute(
        "SELECT tenant, day, rows, hash FROM parquet_manifest WHERE table_name = ?", [table]).fetchall()}
    report = TableExport()
    exclude = [c for c in (tenant, column) if c in ("tenant", "date")]
    select = f"SELECT * EXCLUDE ({', '.join(exclude)})" if exclude else "SELECT *"
    for (t, d), counted in sorted(now.items()):
        if done.get((t, d)) == counted:
            continue
        where = f"coalesce(CAST(\"{tenant}\" AS VARCHAR), '') = {_literal(t)} AND {day} = DATE '{d.isoformat()}'"
        final = _partition(out, table, t, d)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".data.{os.getpid()}.parquet.tmp")
        cur.begin()  # the file and the count and hash the manifest records: one snapshot
        try:
            _write(cur.sql(f"{select} FROM {table} t WHERE {where}").to_arrow_reader(BATCH_ROWS), tmp)
            n, h = cur.execute(f"SELECT count(*), bit_xor(hash(t)) FROM {table} t WHERE {where}").fetchone()
            cur.commit()
        except BaseException:
            rollback(cur)
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, final)
        _record(cur, table, t, d, n, h)
        report.written += 1
        report.rows += n
    for t, d in sorted(set(done) - set(now)):
        _partition(out, table, t, d).unlink(missing_ok=True)
        _forget(cur, table, t, d)
        report.removed += 1
    return report


@retry_conflicts
def _record(cur: duckdb.DuckDBPyConnection, table: str, tenant: str, day: date, rows: int, hashed: int) -> None:
    cur.execute("INSERT OR REPLACE INTO parquet_manifest VALUES (?, ?, ?, ?, ?, now())",
                [table, tenant, day, rows, hashed])


@retry_conflicts
def _forget(cur: duckdb.DuckDBPyConnection, table: str, tenant: str, day: date) -> None:
    cur.execute("DELETE FROM parquet_manifest WHERE table_name = ? AND tenant = ? AND day = ?", [table, tenant, day])


def _partition(out: Path, table: str, tenant: str, day: date) -> Path:
    key = quote(tenant, safe="") if tenant else HIVE_NULL  # no tenant: the value Hive, Spark and DuckDB read as NULL
    return out / table / f"tenant={key}" / f"date={day.isoformat()}" / "data.parquet"


def _write(reader: pa.RecordBatchReader, path: Path) -> None:
    """Streamed: a partition is never held in memory whole (DuckDB's own COPY would need file access, which
    the connection has off)."""
    with pq.ParquetWriter(path, reader.schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


