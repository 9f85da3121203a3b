"""The Parquet export (pipeline/storage/parquet_export.py) on a real DuckDB file, read back by DuckDB and by
pyarrow datasets: the same rows as the tables, run after run, through new rows, erasure, retention and a run
that stops half way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow.dataset as ds
import pytest

from pipeline.storage import parquet_export
from pipeline.storage.parquet_export import export_parquet

DAY = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _calls(con, n: int, start: int = 0, tenants=("1", "2"), day: datetime = DAY) -> None:
    for i in range(start, start + n):
        con.execute("INSERT INTO sys_api_call_histories (api_call_history_id, tenant_id, user_id, method, path, "
                    "status_code, latency_ms, created_at) VALUES (?, ?, ?, 'GET', '/x', 200, ?, ?)",
                    [f"c{i}", tenants[i % len(tenants)], f"u{i % 3}", i, day + timedelta(hours=i % 30)])


def _exported(out, table: str) -> list[tuple]:
    rows = duckdb.sql(f"SELECT api_call_history_id, tenant_id, user_id, latency_ms, tenant, date FROM "
                      f"read_parquet('{out}/{table}/**/*.parquet', hive_partitioning = true) ORDER BY 1").fetchall()
    return [(r[0], r[1], r[2], r[3], str(r[4]), str(r[5])) for r in rows]


def _table(con) -> list[tuple]:
    rows = con.execute("SELECT api_call_history_id, tenant_id, user_id, latency_ms, tenant_id, "
                       "CAST(timezone('UTC', created_at) AS DATE) FROM sys_api_call_histories ORDER BY 1").fetchall()
    return [(r[0], r[1], r[2], r[3], str(r[4]), str(r[5])) for r in rows]


def test_export_reads_back_equal_in_duckdb_and_pyarrow_and_only_changes_are_rewritten(materializer, tmp_path):
    con, out = materializer.con, tmp_path / "parquet"
    _calls(con, 40)
    con.execute("INSERT INTO sleep_records (record_key, tenant, user_id, kind, date) VALUES ('r1', '1', 'u1', "
                "'diary', DATE '2026-11-30')")
    first = export_parquet(con, out)
    assert first["sys_api_call_histories"].written == 4  # 2 tenants x 2 days
    assert _exported(out, "sys_api_call_histories") == _table(con)
    dataset = ds.dataset(out / "sys_api_call_histories", format="parquet", partitioning="hive")
    assert dataset.count_rows() == 40 and {"tenant", "date", "tenant_id"} <= set(dataset.schema.names)
    sleep = duckdb.sql(f"SELECT record_key, tenant, date FROM read_parquet('{out}/sleep_records/**/*.parquet', "
                       "hive_partitioning = true)").fetchall()
    assert [(k, str(t), str(d)) for k, t, d in sleep] == [("r1", "1", "2026-11-30")]

    again = export_parquet(con, out)
    assert again["sys_api_call_histories"].written == 0  # nothing new, nothing written

    _calls(con, 5, start=40, tenants=("3",), day=DAY + timedelta(days=5, hours=-10))  # one day: 10:00-14:00
    third = export_parquet(con, out)
    assert third["sys_api_call_histories"].written == 1 and third["sys_api_call_histories"].rows == 5
    assert _exported(out, "sys_api_call_histories") == _table(con)  # nothing twice


def test_erased_and_expired_rows_leave_the_export(materializer, tmp_path):
    con, out = materializer.con, tmp_path / "parquet"
    _calls(con, 40)
    export_parquet(con, out)
    con.execute("DELETE FROM sys_api_call_histories WHERE user_id = 'u1'")  # an erasure
    con.execute("DELETE FROM sys_api_call_histories WHERE created_at < ?", [DAY + timedelta(hours=14)])  # retention
    run = export_parquet(con, out)
    assert run["sys_api_call_histories"].removed == 2  # the first day of both tenants is empty now
    assert _exported(out, "sys_api_call_histories") == _table(con)
    assert all(r[2] != "u1" for r in _exported(out, "sys_api_call_histories"))
    assert not list((out / "sys_api_call_histories").glob("*/date=2026-12-01/*.parquet"))


def test_a_run_stopped_half_way_is_finished_by_the_next_without_duplicates(materializer, tmp_path, monkeypatch):
    con, out = materializer.con, tmp_path / "parquet"
    _calls(con, 40)
    real, calls = parquet_export._record, []

    def crash_on_third(*args):
        calls.append(args)
        if len(calls) == 3:
            raise RuntimeError("killed")
        real(*args)

    monkeypatch.setattr(parquet_export, "_record", crash_on_third)
    with pytest.raises(RuntimeError):
        export_parquet(con, out, ["sys_api_call_histories"])
    monkeypatch.setattr(parquet_export, "_record", real)
    rerun = export_parquet(con, out, ["sys_api_call_histories"])
    assert rerun["sys_api_call_histories"].written == 2  # the one whose record was lost, and the one never reached
    assert _exported(out, "sys_api_call_histories") == _table(con)
    assert not list(out.rglob("*.tmp"))


def test_the_route_runs_one_export_for_a_system_admin_only(materializer, tmp_path):
    from types import SimpleNamespace

    from api.deps import services_of
    from api.main import create_app
    from api.parquet_exports import ParquetExports
    from pipeline.security import Role, mint_token
    from pipeline.storage.store import Store
    from tests.helpers import checked_client

    settings = materializer.settings.model_copy(update={"parquet_dir": tmp_path / "pq"})
    _calls(materializer.con, 4, tenants=("1", ""))
    app = create_app(settings)
    app.dependency_overrides[services_of] = lambda: SimpleNamespace(
        parquet=ParquetExports(settings, Store(materializer.con)))
    client = checked_client(app)
    key = settings.jwt_key()
    admin = {"Authorization": f"Bearer {mint_token(key, 'a', 'ops', [Role.SYSTEM_ADMIN])}"}
    iam = {"Authorization": f"Bearer {mint_token(key, 'b', '1', [Role.IAM_ADMIN])}"}
    assert client.post("/v1/parquet-exports", headers=iam).status_code == 403
    assert not (tmp_path / "pq").exists()
    r = client.post("/v1/parquet-exports", headers=admin)
    assert r.status_code == 200 and r.json()["tables"]["sys_api_call_histories"]["rows"] == 4
    files = f"{tmp_path}/pq/sys_api_call_histories/**/*.parquet"
    tenants = duckdb.sql(f"SELECT DISTINCT tenant FROM read_parquet('{files}', hive_partitioning = true) "
                         "ORDER BY 1 NULLS LAST").fetchall()
    assert tenants == [(1,), (None,)] or tenants == [("1",), (None,)]  # no tenant: Hive's NULL partition


def test_requests_during_a_run_join_it_instead_of_queueing_their_own(materializer, tmp_path, monkeypatch):
    import asyncio
    import threading
    import time

    import api.parquet_exports as exports
    from pipeline.storage.store import Store
    from tests.helpers import until

    runs: list[float] = []
    release = threading.Event()

    def slow_export(cur, directory):  # noqa: ANN001, ANN202 - stands in for export_parquet
        runs.append(time.monotonic())
        assert release.wait(5), "the test never let the export finish"
        return {}

    monkeypatch.setattr(exports, "export_parquet", slow_export)
    service = exports.ParquetExports(materializer.settings.model_copy(update={"parquet_dir": tmp_path}),
                                     Store(materializer.con))

    async def five_at_once() -> float:
        started = time.monotonic()
        calls = asyncio.gather(*(service.run_once() for _ in range(5)))
        await until(lambda: runs, 5, "a run to start")  # under way (the five callers were scheduled before it)
        release.set()
        await calls
        return time.monotonic() - started

    took = asyncio.run(five_at_once())
    assert len(runs) == 1 and took < 0.6  # one run, shared: not five runs one after another (1.5 s)
    asyncio.run(service.run_once())  # release is set: this run ends at once
    assert len(runs) == 2  # the next request after it finished starts a new run
