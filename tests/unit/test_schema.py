"""All DDL is SQL in pipeline/storage/schema.py; the ticket tables must still be exactly their row models."""

from __future__ import annotations

import duckdb
import pytest

from pipeline.storage.schema import DDL
from pipeline.storage.ticket_tables import MODELS, columns


@pytest.fixture(scope="module")
def catalog() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for statement in DDL:
        con.execute(statement)
    return con


@pytest.mark.parametrize("table", sorted(MODELS))
def test_a_ticket_table_has_its_models_fields_in_order_with_their_types(catalog, table: str):
    stored = catalog.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? "
                             "ORDER BY column_index", [table]).fetchall()
    spelled = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}  # how DuckDB's catalog names the alias
    assert stored == [(name, spelled.get(kind, kind)) for name, kind in columns(MODELS[table]).items()]
    key = catalog.execute("SELECT constraint_column_names FROM duckdb_constraints() WHERE table_name = ? AND "
                          "constraint_type = 'PRIMARY KEY'", [table]).fetchone()
    assert key == (["key"],)


def test_every_statement_is_sql_text_run_as_written():
    assert all(isinstance(s, str) and s.strip() for s in DDL)
    tables = [s for s in DDL if "CREATE TABLE" in s]
    names = [s.split("EXISTS", 1)[1].split()[0] for s in tables]
    assert len(names) == len(set(names))  # one statement per table
