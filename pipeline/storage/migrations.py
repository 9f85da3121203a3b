"""Files made by an older schema brought up to the current one on open: `MIGRATIONS`, in order.

The DDL in schema.py is always the current shape, so a new file needs no migration; a file made by an older
version has the current DDL's missing tables created, then each migration it has not recorded in
`schema_migrations` run and recorded. Each migration also checks the shape it changes before it changes it, so
a file whose history is not recorded (made before this table existed) is handled the same way. A fresh file and
an upgraded one end identical: tests/unit/test_migrations.py upgrades the oldest shape still supported
(tests/fixtures/oldest_schema.sql) and compares the two catalogs.

DuckDB cannot alter a primary key, so a table whose key changed is rebuilt: the current DDL under a new
name, the rows copied, the old table dropped and the new one renamed, all in one transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import structlog

from pipeline.calls.routes import route_templates
from pipeline.storage.schema import COMPANY_KEYS, DDL

log = structlog.get_logger(__name__)

# Tables whose key gained the tenant (issue 9): caller-influenced ids must not collide across tenants.
# The tenant column's NULLs become '' (a key column cannot be NULL; new rows store '' the same way).
# sys_api_call_histories then lost its key (issue 10): duplicates are dropped before the insert instead.
TENANT_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sys_api_call_histories": ("tenant_id", ()),
    "prediction_schedules": ("tenant", ("tenant", "schedule_id")),
    "data_exports": ("tenant", ("tenant", "export_id")),
}


def primary_key(cur: duckdb.DuckDBPyConnection, table: str) -> tuple[str, ...]:
    """The table's primary-key columns in order, () if it has none."""
    row = cur.execute("SELECT constraint_column_names FROM duckdb_constraints() WHERE table_name = ? "
                      "AND constraint_type = 'PRIMARY KEY'", [table]).fetchone()
    return tuple(row[0]) if row else ()


def _ddl(table: str) -> str:
    return next(s for s in DDL if f"CREATE TABLE IF NOT EXISTS {table} (" in s)


def rekey(con: duckdb.DuckDBPyConnection, table: str, tenant: str, key: tuple[str, ...]) -> bool:
    """Rebuild `table` with its current DDL if its stored key is not `key` (() for none); True if it did."""
    cur = con.cursor()
    try:
        if primary_key(cur, table) == key:
            return False
        staging = f"{table}__rekey"
        cur.begin()
        try:
            cur.execute(f"DROP TABLE IF EXISTS {staging}")
            cur.execute(_ddl(table).replace(f"EXISTS {table} (", f"EXISTS {staging} (", 1))
            cur.execute(f"INSERT INTO {staging} BY NAME SELECT * REPLACE (coalesce({tenant}, '') AS {tenant}) "
                        f"FROM {table}")
            rows = cur.execute(f"SELECT count(*) FROM {staging}").fetchone()[0]
            cur.execute(f"DROP TABLE {table}")
            cur.execute(f"ALTER TABLE {staging} RENAME TO {table}")
            cur.commit()
        except BaseException:
            with contextlib.suppress(duckdb.TransactionException):  # a failed commit rolled back already
                cur.rollback()
            raise
        log.info("table_rekeyed", table=table, key=",".join(key), rows=rows)
        return True
    finally:
        cur.close()


def verify_company_keys(con: duckdb.DuckDBPyConnection) -> None:
    """Rebuild a `company_keys` of the old shape (no `verified_at`): create, copy, swap, in one transaction.

    It was keyed by (tenant, platform, domain), one key each, stored unverified. Its rows are kept with
    `verified_at` NULL: they authenticate nothing until the platform confirms the key again (the next job
    created with it), because nobody ever checked them.
    """
    columns = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = "
                                         "'company_keys' AND table_schema = 'main'").fetchall()}
    if "verified_at" in columns:
        return
    con.execute("BEGIN")
    try:
        con.execute("ALTER TABLE company_keys RENAME TO company_keys_unverified")
        con.execute(COMPANY_KEYS)
        con.execute("INSERT INTO company_keys SELECT tenant, platform, domain, key_hash, created_at, NULL "
                    "FROM company_keys_unverified")
        con.execute("DROP TABLE company_keys_unverified")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def vector_seq(con: duckdb.DuckDBPyConnection) -> None:
    """`ticket_vectors` gains `embedded_at` and `seq` (the api indexes what is past the last seq it saw); stored
    vectors take the next seqs in no particular order."""
    con.execute("ALTER TABLE ticket_vectors ADD COLUMN IF NOT EXISTS embedded_at TIMESTAMPTZ")
    con.execute("ALTER TABLE ticket_vectors ADD COLUMN IF NOT EXISTS seq BIGINT")
    con.execute("UPDATE ticket_vectors SET seq = nextval('ticket_vectors_seq') WHERE seq IS NULL")


def call_routes(con: duckdb.DuckDBPyConnection) -> None:
    """`sys_api_call_histories` gains `route`, filled for the stored rows by the rule new rows are written with
    (each distinct path templated once; 1M seed-shaped rows: ~1 s)."""
    con.execute("ALTER TABLE sys_api_call_histories ADD COLUMN IF NOT EXISTS route VARCHAR")
    paths = con.sql("SELECT DISTINCT path FROM sys_api_call_histories WHERE route IS NULL AND path IS NOT NULL"
                    ).to_arrow_table().column("path")
    if not len(paths):
        return
    con.register("_routes", pa.table({"path": paths, "route": route_templates(paths)}))
    try:
        con.execute("UPDATE sys_api_call_histories SET route = _routes.route FROM _routes "
                    "WHERE sys_api_call_histories.route IS NULL AND sys_api_call_histories.path = _routes.path")
    finally:
        con.unregister("_routes")
    log.info("call_routes_filled", paths=len(paths))


def tenant_keys(con: duckdb.DuckDBPyConnection) -> None:
    for table, (tenant, key) in TENANT_KEYS.items():
        rekey(con, table, tenant, key)


@dataclass(frozen=True)
class Migration:
    version: int
    what: str
    apply: Callable[[duckdb.DuckDBPyConnection], object]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "ticket_vectors: embedded_at and seq", vector_seq),
    Migration(2, "call histories, schedules and exports keyed per tenant; call histories then without a key",
              tenant_keys),
    Migration(3, "company_keys: verified_at (stored keys unverified until the platform confirms them)",
              verify_company_keys),
    Migration(4, "sys_api_call_histories: route (the path with identifier segments as {id})", call_routes),
)
RECORD = ("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, what VARCHAR, "
          "applied_at TIMESTAMPTZ DEFAULT now())")


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Run and record every migration the file has not recorded, in order; returns the versions run."""
    con.execute(RECORD)
    done = {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
    ran = []
    for m in MIGRATIONS:
        if m.version in done:
            continue
        m.apply(con)
        con.execute("INSERT INTO schema_migrations (version, what) VALUES (?, ?)", [m.version, m.what])
        ran.append(m.version)
    return ran
