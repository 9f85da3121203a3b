"""`streamdesk rebuild`: materialize every result topic from its beginning into a new file, then swap it in.

The swap happens only when the rebuilt file holds at least as many rows as the current one in every
table: a restarted embedded broker (memory only), or topics whose retention is shorter than the database's,
hold less than the database, and rebuilding from them would lose data. Rows that retention already deleted
from DuckDB come back while their topics still hold them, and go again at the api's next retention sweep.
"""

from __future__ import annotations

import os
import time

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from pipeline.settings import BrokerNotConfigured, Settings
from pipeline.storage.db import DatabaseLocked, connect
from pipeline.storage.materializer import Materializer
from pipeline.storage.queries.operations import row_counts
from pipeline.storage.sinks import platform_sinks


def run_rebuild(settings: Settings, idle_s: float, out: Console, err: Console) -> int:
    path = settings.db_path
    tmp = path.with_suffix(".rebuild.duckdb")
    try:
        settings.bootstrap()
        current = _counts(settings) if path.exists() else {}
    except (BrokerNotConfigured, DatabaseLocked) as exc:
        err.print(f"[red]{exc}[/red]\nStop the api first (`streamdesk up` holds the file); the broker must run.")
        return 1
    tmp.unlink(missing_ok=True)
    con = connect(tmp, memory_limit_mb=settings.duckdb_memory_limit_mb)
    sinks = platform_sinks(settings)
    m = Materializer(settings, con, sinks, consumer_name="rebuild")
    m.start()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task("rebuilding", total=None)
        last_rows, last_change = -1, time.monotonic()
        while time.monotonic() - last_change < idle_s or m.rows_written == 0 and time.monotonic() - last_change < 30:
            if m.rows_written != last_rows:
                last_rows, last_change = m.rows_written, time.monotonic()
            bar.update(task, description=f"rebuilding: {m.rows_written:,} rows from {len(sinks)} topics")
            time.sleep(0.2)
    m.stop()
    rebuilt = row_counts(con, current)
    con.close()
    short = {t: (rebuilt.get(t, 0), n) for t, n in current.items() if rebuilt.get(t, 0) < n}
    if short:
        tmp.unlink(missing_ok=True)
        detail = ", ".join(f"{t}: {got:,} < {had:,}" for t, (got, had) in short.items())
        err.print(f"[red]refused:[/red] the broker holds less than the database ({detail}); kept {path}. "
                  "Rebuild restores only what the topics still hold: the embedded broker forgets everything on "
                  "restart (rebuild needs a durable Kafka), and a topic keeps STREAMDESK_TOPIC_RETENTION_DAYS "
                  "(Kafka's default: 7), so keep topics at least as long as DuckDB keeps rows.")
        return 1
    os.replace(tmp, path)
    out.print(f"rebuilt {path}: " + ", ".join(f"{t} {n:,}" for t, n in rebuilt.items()), highlight=False)
    return 0


def _counts(settings: Settings) -> dict[str, int]:
    con = connect(settings.db_path, read_only=True, memory_limit_mb=settings.duckdb_memory_limit_mb)
    try:
        return row_counts(con, ("sys_api_call_histories", "dead_letters"))
    finally:
        con.close()
