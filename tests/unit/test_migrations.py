"""A file made by an older version opens into exactly the schema a new file has, with its rows kept, and the
migrations it ran are recorded so the next open runs none."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipeline.storage.db import connect
from pipeline.storage.migrations import MIGRATIONS, migrate

OLDEST = Path(__file__).resolve().parents[1] / "fixtures" / "oldest_schema.sql"
T = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def catalog(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Every table's columns (in order, with type, nullability, default), constraints, sequences and indexes."""
    return {
        "columns": con.execute("SELECT table_name, column_index, column_name, data_type, is_nullable, "
                               "column_default FROM duckdb_columns() WHERE schema_name = 'main' "
                               "ORDER BY 1, 2").fetchall(),
        "constraints": con.execute("SELECT table_name, constraint_type, constraint_column_names, expression "
                                   "FROM duckdb_constraints() WHERE schema_name = 'main' ORDER BY ALL").fetchall(),
        "sequences": con.execute("SELECT sequence_name FROM duckdb_sequences() ORDER BY 1").fetchall(),
        "indexes": con.execute("SELECT table_name, index_name, sql FROM duckdb_indexes() ORDER BY 1, 2").fetchall(),
    }


def oldest_file(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute(OLDEST.read_text())
    con.execute("INSERT INTO sys_api_call_histories (api_call_history_id, tenant_id, method, path, status_code, "
                "created_at) VALUES ('c1', '1', 'GET', '/a/42', 200, ?), ('c2', NULL, 'POST', '/b', 500, ?), "
                "('c3', '1', 'GET', NULL, 200, ?)", [T, T, T])
    con.execute("INSERT INTO prediction_schedules (schedule_id, tenant, user_id, status) VALUES "
                "('s1', 'acme', 'u1', 'SCHEDULED')")
    con.execute("INSERT INTO data_exports (export_id, tenant, user_id, status) VALUES ('e1', 'acme', 'u1', 'DONE')")
    con.execute("INSERT INTO company_keys (tenant, platform, domain, key_hash, created_at) VALUES "
                "('acme', 'freshdesk', 'acme.freshdesk.com', 'h', ?)", [T])
    con.execute("INSERT INTO ticket_vectors (tenant, key, kind, model, text_hash, vector, updated_at) VALUES "
                "('acme', 'k1', 'ticket', 'm', 't', [0.5, 0.5], ?), ('acme', 'k2', 'ticket', 'm', 't', [1, 0], ?)",
                [T, T])
    con.close()


def test_an_upgraded_file_and_a_fresh_one_have_the_same_schema_and_the_old_rows_are_kept(tmp_path):
    oldest_file(tmp_path / "old.duckdb")
    upgraded, fresh = connect(tmp_path / "old.duckdb"), connect(tmp_path / "fresh.duckdb")
    assert catalog(upgraded) == catalog(fresh)

    cur = upgraded.cursor()
    assert cur.execute("SELECT api_call_history_id, tenant_id, route FROM sys_api_call_histories ORDER BY 1"
                       ).fetchall() == [("c1", "1", "/a/{id}"), ("c2", "", "/b"), ("c3", "1", None)]
    # a key column cannot be NULL: no tenant is stored as ''; stored rows get the route new rows are written with
    assert cur.execute("SELECT tenant, schedule_id FROM prediction_schedules").fetchall() == [("acme", "s1")]
    assert cur.execute("SELECT tenant, export_id, status FROM data_exports").fetchall() == [("acme", "e1", "DONE")]
    assert cur.execute("SELECT key_hash, verified_at FROM company_keys").fetchall() == [("h", None)]  # unverified
    seqs = cur.execute("SELECT seq FROM ticket_vectors ORDER BY seq").fetchall()
    assert sorted(s for (s,) in seqs) == [1, 2]  # every stored vector gets a seq, so the api indexes it


def test_each_migration_runs_once_and_is_recorded_in_order(tmp_path):
    oldest_file(tmp_path / "old.duckdb")
    con = connect(tmp_path / "old.duckdb")
    recorded = con.execute("SELECT version FROM schema_migrations ORDER BY applied_at, version").fetchall()
    assert [v for (v,) in recorded] == [m.version for m in MIGRATIONS] == sorted(m.version for m in MIGRATIONS)
    con.close()

    again = duckdb.connect(str(tmp_path / "old.duckdb"))
    assert migrate(again) == []  # the next open runs nothing
    again.close()
