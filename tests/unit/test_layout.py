"""The dependency direction a newcomer can rely on: schemas <- pipeline <- api, and the simulators beside them.

Checked on the modules' own import statements (module level), so an import that would make the product depend on
a development fixture, or the pipeline on the HTTP layer, fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# package -> the first-party packages it must not import at module level
FORBIDDEN = {
    "schemas": {"pipeline", "api", "simulators"},
    "pipeline": {"api", "simulators"},
    "api": {"simulators"},
}


def top_level_imports(path: Path) -> set[str]:
    """First-party packages imported at module level (not inside a function: those are opt-in paths)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_module_imports_against_the_dependency_direction(package):
    wrong = {str(p.relative_to(REPO)): sorted(top_level_imports(p) & FORBIDDEN[package])
             for p in (REPO / package).rglob("*.py")}
    assert {p: w for p, w in wrong.items() if w} == {}


def test_no_sql_is_written_outside_storage():
    """Every statement lives in pipeline/storage (queries/, sinks, schema, migrations): grep finds none elsewhere."""
    sql = re.compile(r"\b(SELECT .+ FROM|INSERT INTO|DELETE FROM|UPDATE \w+ SET|CREATE (TABLE|INDEX|SEQUENCE)|"
                     r"ALTER TABLE|DROP TABLE)\b|\.execute\(|\.sql\(")
    found = [f"{path.relative_to(REPO)}:{n}: {line.strip()}"
             for package in ("api", "pipeline", "schemas", "simulators") for path in (REPO / package).rglob("*.py")
             if not path.is_relative_to(REPO / "pipeline" / "storage")
             for n, line in enumerate(path.read_text().splitlines(), 1) if sql.search(line)]
    assert found == []
