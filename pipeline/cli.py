"""The `streamdesk` command."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pipeline.logging import configure_logging
from pipeline.security import Role, mint_token
from pipeline.settings import BrokerNotConfigured, Settings, get_settings

app = typer.Typer(help="streamdesk: an event-driven pipeline over Kafka, Faust and DuckDB.", no_args_is_help=True,
                  add_completion=False)
out = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    s = get_settings()
    configure_logging(s.log_level, s.log_format)
    return s


@app.command()
def up(
    simulator: Annotated[bool, typer.Option("--simulator", help="also run the Freshdesk simulator and point "
                                            "ingest jobs at it (a simulator, not Freshdesk)")] = False,
) -> None:
    """Start everything: the embedded broker (unless STREAMDESK_KAFKA_BOOTSTRAP is set), worker and api."""
    from pipeline.supervisor import Supervisor

    raise typer.Exit(Supervisor(_settings(), out, simulator=simulator).run())


def _freeze_loaded_heap(young_every: int | None = None) -> None:
    """For the worker and the api, once their code is loaded: that heap lives as long as the process. Frozen, the
    cyclic collector stops walking it at every full collection; `young_every` also spaces young collections
    (700 allocations by default). Measured (2026-12-07): OTLP spans over HTTP 7.2-9.7k against 5.8-7.5k a second
    in the api with both (an export of 1,000 spans allocates ~60,000 containers; `orjson.loads` of one took
    17-22 µs a span with the collector on, 5 µs off); in the worker, calls end to end 43.2-44.8k against
    36.2-41.1k events/s (medians of three runs each, alternated; within the machine's noise, the worker's CPU
    2.5-3.7 against 3.2-4.4 s a pass). The api freezes only: with young collections every 50,000 allocations
    its cyclic garbage waited longer and 1M calls through the pipeline left it at 498-516 MB against 372 MB
    (bench/ceiling.py --via-pipeline; the target is < 500 MB)."""
    import gc

    gc.collect()
    gc.freeze()
    if young_every is not None:
        gc.set_threshold(young_every, 10, 10)


@app.command()
def worker() -> None:
    """Run the Faust worker (all stream processing)."""
    from pipeline.worker import run_worker

    _freeze_loaded_heap(young_every=50_000)
    run_worker(_settings())


@app.command()
def api() -> None:
    """Run the FastAPI facade and the materializer."""
    import uvicorn

    import api.main  # noqa: F401 - loaded before the freeze

    s = _settings()
    _freeze_loaded_heap()
    uvicorn.run("api.main:create_app", factory=True, host=s.api_host, port=s.api_port, log_config=None,
                proxy_headers=False, access_log=False)


@app.command()
def broker() -> None:
    """Run only the embedded broker (memory only) and create the pipeline's topics."""
    from pipeline.broker.embedded import start_embedded_broker
    from pipeline.broker.kafka import ensure_topics, wait_for_broker
    from pipeline.broker.topics import pipeline_topics

    s = _settings()
    s.data_dir.mkdir(parents=True, exist_ok=True)
    b = start_embedded_broker(s.data_dir, port=None, log_path=s.data_dir / "broker.log")
    try:
        b.cluster_id = asyncio.run(wait_for_broker(b.bootstrap))
        b.write_file()
        asyncio.run(ensure_topics(b.bootstrap, pipeline_topics(s.model_copy(update={"kafka_bootstrap": b.bootstrap}))))
        out.print(f"broker listening on {b.bootstrap} (cluster {b.cluster_id}); export "
                  f"STREAMDESK_KAFKA_BOOTSTRAP={b.bootstrap} for other commands. Ctrl-C stops it.", highlight=False)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        b.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        b.stop()


@app.command()
def simulator(
    host: Annotated[str, typer.Option(help="loopback address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8001,
    tickets: Annotated[int, typer.Option(help="tickets in each simulated account")] = 3000,
    seed: Annotated[int, typer.Option(help="seed of the generated data and of the fault dice")] = 1,
    plan: Annotated[int, typer.Option(help="API credits per minute per account: 50 trial, 200, 400, 700")] = 700,
    valid_key: Annotated[list[str] | None, typer.Option("--valid-key", help="the only API key every account "
                                                        "accepts; repeat for several (default: "
                                                        "STREAMDESK_SIMULATOR_KEYS, else your_api_key)")] = None,
    per_page_max: Annotated[int, typer.Option(help="largest per_page a list accepts")] = 100,
    max_page: Annotated[int, typer.Option(help="last page a list serves (later pages answer 400)")] = 300,
    window_seconds: Annotated[float, typer.Option(help="length of the rate-limit minute (shorter for tests)")] = 60.0,
) -> None:
    """Run the Freshdesk API v2 simulator (not Freshdesk) on loopback, for ingest jobs to run against."""
    import ipaddress

    import uvicorn

    from simulators.freshdesk.simulator import create_simulator
    from simulators.freshdesk.state import SimulatorConfig, accepted_keys_text

    settings = _settings()
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        err.print(f"[red]the simulator listens on loopback only; {host} is not a loopback address[/red]")
        raise typer.Exit(2)
    keys = {"*": valid_key} if valid_key else settings.simulator_keys
    config = SimulatorConfig(tickets=tickets, seed=seed, plan=plan, keys=keys, per_page_max=per_page_max,
                             max_page=max_page, window_seconds=window_seconds)
    url = f"http://{host}:{port}"
    out.print(f"Freshdesk simulator (a simulator, not Freshdesk) listening on {url}: {tickets} tickets per "
              f"account, {plan} credits per {window_seconds:g} s. Accounts are chosen by the Host header; point "
              f"ingest jobs at it with STREAMDESK_FRESHDESK_BASE_URL={url}. Accepted API keys: "
              f"{accepted_keys_text(keys)}. Admin: {url}/_simulator/stats. Ctrl-C stops it.",
              highlight=False, soft_wrap=True)
    uvicorn.run(create_simulator(config), host=host, port=port, log_config=None, access_log=False,
                proxy_headers=False)


@app.command()
def produce(
    topic: Annotated[str, typer.Argument(help="topic to write, e.g. calls.raw")],
    file: Annotated[Path | None, typer.Argument(help="JSON lines file; stdin when omitted")] = None,
    key: Annotated[str | None, typer.Option(help="message key for every line (e.g. a tenant id)")] = None,
) -> None:
    """Produce one message per line (sent as-is: malformed lines reach the topic's DLQ with a reason).

    A line over STREAMDESK_MAX_MESSAGE_BYTES is not sent (no consumer would read it) and the exit status is 1.
    """
    from kafka import KafkaProducer

    s = _settings()
    try:
        bootstrap = s.bootstrap()
    except BrokerNotConfigured as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    stream = file.open("rb") if file else sys.stdin.buffer
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_request_size=s.max_transport_bytes)
    sent, refused = [], 0
    with stream:
        for number, line in enumerate(stream, 1):
            line = line.rstrip(b"\r\n")
            if len(line) > s.max_message_bytes:
                err.print(f"[red]line {number}: {len(line)} bytes, over the {s.max_message_bytes}-byte message "
                          f"limit; not sent[/red]", highlight=False)
                refused += 1
            elif line:
                sent.append(producer.send(s.topic(topic), line, key=key.encode() if key else None))
    producer.flush()
    producer.close()
    failed = sum(1 for f in sent if f.failed())
    err.print(f"produced {len(sent) - failed} message(s) to {s.topic(topic)}", highlight=False)
    if failed or refused:
        err.print(f"[red]{failed + refused} message(s) not produced[/red]", highlight=False)
        raise typer.Exit(1)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="one read-only statement")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="table | csv | json")] = "table",
) -> None:
    """Run read-only SQL: through the api while it runs, on the DuckDB file otherwise."""
    from pipeline.sqlcli import run_sql

    raise typer.Exit(run_sql(_settings(), query, fmt, out, err))


@app.command()
def export(
    out_dir: Annotated[Path | None, typer.Option("--out", help="directory (when the api is stopped); default "
                                                  "STREAMDESK_PARQUET_DIR or <data dir>/parquet")] = None,
) -> None:
    """Export every materialized table as hive-partitioned Parquet (only what changed since the last run)."""
    from pipeline.exportcli import run_export

    raise typer.Exit(run_export(_settings(), out_dir, out, err))


@app.command()
def token(
    user: Annotated[str, typer.Option(help="user id (the `sub` claim)")],
    tenant: Annotated[str, typer.Option(help="tenant id")],
    role: Annotated[list[Role], typer.Option(help="role; repeat for several")],
    ttl: Annotated[int, typer.Option(help="lifetime in seconds")] = 86_400,
) -> None:
    """Mint a development JWT (HS256, the data dir's secret); prints the token alone on stdout."""
    s = _settings()
    sys.stdout.write(mint_token(s.jwt_key(), user, tenant, role, ttl) + "\n")


@app.command()
def rebuild(
    idle: Annotated[float, typer.Option(help="seconds without new messages that count as caught up")] = 3.0,
) -> None:
    """Recreate the DuckDB file from the topics (api must be stopped); swaps it in only on success."""
    from pipeline.rebuild import run_rebuild

    raise typer.Exit(run_rebuild(_settings(), idle, out, err))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
