"""Files made by an older schema brought up to the current one on open.

DuckDB cannot alter a primary key, so a table whose key changed is rebuilt: the current DDL under a new
name, the rows copied, the old table dropped and the new one renamed, all in one transaction. A file that
already has the current keys is left untouched, so running this on every open costs one catalog query.
"""

from __future__ import annotations

import duckdb
import structlog

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


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Every migration, in order; idempotent."""
    for table, (tenant, key) in TENANT_KEYS.items():
        rekey(con, table, tenant, key)
    verify_company_keys(con)

