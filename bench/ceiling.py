"""What one machine holds (run by hand, not a test): `.venv/bin/python bench/ceiling.py --rows 1000000 10000000`.

For each size: a DuckDB file with that many call rows (seed-shaped: 40 tenants, 200 routes whose paths carry
~1M distinct ids, 30 days, written by SQL into the real schema), the real `streamdesk api` started on it (with
an embedded broker), and then:

* the api's resident memory (RSS) after start, and after the reads below;
* `GET /v1/call-histories/stats` (totals, per-route p50/p95/p99, top agents and users, a time series) for one
  tenant and for every tenant (a system_admin), --queries times each: p50 / p95 of the HTTP time;
* the per-route percentile query alone through `POST /v1/sql` over every row: p50 / p95 (as /stats runs it,
  over the stored routes, and as it ran before they were stored, over raw paths, with the RSS after that too);
* the file's size.

Targets (issue 12): api RSS < 500 MB with 1M rows; the per-route percentile query p95 < 500 ms over 10M rows.

`--via-pipeline` fills the file the way users do instead: seed-shaped events (bench/eventgen.py) produced to
`calls.raw` of a running embedded broker, worker and api (the api's materializer writes them), then the same
reads on that api. It reports the fill's rate too, and shows whether rows written in the pipeline's many small
transactions read as fast as rows written by one INSERT.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_on_file import api_on  # noqa: E402

from pipeline.security import Role, mint_token  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.storage.db import connect  # noqa: E402

# The per-route query of /stats (pipeline/storage/queries/calls.py), over every tenant's rows: one pass over the
# stored routes.
ROUTES_SQL = ("SELECT method, route, count(*) AS n, quantile_cont(latency_ms, [0.5, 0.95, 0.99]) "
              "FROM sys_api_call_histories GROUP BY method, route ORDER BY n DESC, method, route LIMIT 20")
# The query /stats ran before routes were stored, over raw paths (counted first, percentiles for the top 20
# only): 10M seed-shaped calls hold ~6M distinct paths.
PATHS_SQL = ("WITH top AS (SELECT method, path, count(*) AS n FROM sys_api_call_histories GROUP BY method, path "
             "ORDER BY n DESC, method, path LIMIT 20) "
             "SELECT t.method, t.path, any_value(t.n) AS n, quantile_cont(c.latency_ms, [0.5, 0.95, 0.99]) "
             "FROM top t JOIN sys_api_call_histories c ON c.method IS NOT DISTINCT FROM t.method "
             "AND c.path IS NOT DISTINCT FROM t.path GROUP BY t.method, t.path ORDER BY n DESC")


# A call row's time and request size, as SQL over `i` (0..rows-1); the defaults are this benchmark's own.
FIXED_MONTH = "TIMESTAMPTZ '2026-11-01 00:00:00+00' + to_milliseconds(i * (2592000000 // {rows}))"
SMALL_BODIES = "CASE WHEN i % 3 = 0 THEN 100 + i % 8000 ELSE NULL END"


def fill(db: Path, rows: int, created_at: str = FIXED_MONTH, request_size: str = SMALL_BODIES) -> float:
    """`rows` seed-shaped call rows into a fresh file; returns seconds taken."""
    t = time.perf_counter()
    con = connect(db)
    con.execute(f"""
        INSERT INTO sys_api_call_histories
        SELECT md5(i::VARCHAR), (1 + (i * 7919) % 40)::VARCHAR, (i % 5000)::VARCHAR,
               'agent_' || (i % 200), ['GET', 'GET', 'GET', 'POST', 'PUT'][1 + i % 5],
               '/api/v1/ep' || (i % 200) || '/' || ((i * 2654435761) % 1000003),
               CASE WHEN i % 5 = 0 THEN 'page=' || (i % 9) ELSE NULL END,
               [200, 200, 200, 200, 201, 404, 500, 200, 200, 302][1 + (i * 31) % 10],
               (exp(3.4 + 1.1 * sqrt(-2 * ln(random())) * cos(2 * pi() * random())))::BIGINT,
               {request_size}, 40 + (i * 13) % 60000,
               '10.0.' || (i % 250) || '.' || (1 + i % 253), 'okhttp/4.12.0', md5((i * 3)::VARCHAR),
               NULL, 'AURA', {created_at.format(rows=rows)}, '/api/v1/ep' || (i % 200) || '/{{id}}'
        FROM range({rows}) r(i)""")
    con.execute("CHECKPOINT")
    con.close()
    return time.perf_counter() - t


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(client: httpx.Client, n: int, method: str, url: str, **kw) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.request(method, url, **kw)
        times.append(time.perf_counter() - t)
        r.raise_for_status()
    times.sort()
    return statistics.median(times) * 1000, times[min(len(times) - 1, int(len(times) * 0.95))] * 1000


def reads(client: httpx.Client, pid: int, queries: int, admin: str, tenant: str) -> dict:
    """The api's RSS before and after the reads, and each read's p50/p95 over `queries` runs."""
    started = rss_mb(pid)
    one = timed(client, queries, "GET", "/v1/call-histories/stats", headers={"Authorization": f"Bearer {tenant}"})
    every = timed(client, queries, "GET", "/v1/call-histories/stats", headers={"Authorization": f"Bearer {admin}"})
    routes = timed(client, queries, "POST", "/v1/sql", json={"query": ROUTES_SQL},
                   headers={"Authorization": f"Bearer {admin}"})
    after = rss_mb(pid)
    by_path = timed(client, max(3, queries // 4), "POST", "/v1/sql", json={"query": PATHS_SQL},
                    headers={"Authorization": f"Bearer {admin}"})
    return {"rss_start_mb": started, "rss_after_mb": after, "stats_tenant_ms": one, "stats_all_ms": every,
            "routes_sql_ms": routes, "paths_sql_ms": by_path, "rss_after_paths_mb": rss_mb(pid)}


def tokens(settings: Settings) -> tuple[str, str]:
    """A system_admin's token (every tenant) and tenant 1's iam_admin's, signed with the data dir's key."""
    return (mint_token(settings.jwt_key(), "bench", "ops", [Role.SYSTEM_ADMIN], 3600),
            mint_token(settings.jwt_key(), "bench", "1", [Role.IAM_ADMIN], 3600))


def measure(rows: int, queries: int) -> dict:
    base = Path(tempfile.mkdtemp(prefix="streamdesk-ceiling-"))
    data = base / "data"
    data.mkdir()
    filled = fill(data / "streamdesk.duckdb", rows)
    return {"rows": rows, "fill_s": filled, "file_mb": (data / "streamdesk.duckdb").stat().st_size / 2**20,
            "data": data, **measure_on(data, None, queries)}


def measure_on(data: Path, limit_mb: int | None, queries: int) -> dict:
    """The reads on a filled data dir, the api started (again) on it, with STREAMDESK_DUCKDB_MEMORY_LIMIT_MB
    if `limit_mb` is given."""
    if limit_mb:
        os.environ["STREAMDESK_DUCKDB_MEMORY_LIMIT_MB"] = str(limit_mb)
    try:
        with api_on(data) as (client, api):
            return reads(client, api.pid, queries, *tokens(Settings(data_dir=data, _env_file=None)))
    finally:
        os.environ.pop("STREAMDESK_DUCKDB_MEMORY_LIMIT_MB", None)


def report(label: str, m: dict) -> None:
    print(f"{label}: api RSS {m['rss_start_mb']:,.0f} MB at start, {m['rss_after_mb']:,.0f} MB after the reads; "
          f"/stats one tenant p50/p95 {m['stats_tenant_ms'][0]:,.0f}/{m['stats_tenant_ms'][1]:,.0f} ms, "
          f"every tenant {m['stats_all_ms'][0]:,.0f}/{m['stats_all_ms'][1]:,.0f} ms; per-route percentiles "
          f"over every row (POST /v1/sql) {m['routes_sql_ms'][0]:,.0f}/{m['routes_sql_ms'][1]:,.0f} ms; "
          f"grouped by raw path instead, as /stats did before routes were stored "
          f"{m['paths_sql_ms'][0]:,.0f}/{m['paths_sql_ms'][1]:,.0f} ms, api RSS after it "
          f"{m['rss_after_paths_mb']:,.0f} MB", flush=True)


def measure_via_pipeline(rows: int, queries: int) -> dict:
    import asyncio

    from aiokafka import AIOKafkaProducer
    from eventgen import SHAPES, EventFactory, new_tag
    from predictions import start

    from pipeline.broker.topics import CALLS_RAW

    base = Path(tempfile.mkdtemp(prefix="streamdesk-ceiling-pipe-"))

    async def produce(s: Settings) -> None:
        factory, tag = EventFactory(variants=SHAPES["seed"]), new_tag()
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, linger_ms=20, max_batch_size=1 << 20)
        await producer.start()
        try:
            for i in range(0, rows, 5000):
                batch = [factory.make(tag, j) for j in range(i, min(i + 5000, rows))]
                await asyncio.gather(*[producer.send(s.topic(CALLS_RAW), value, key=key) for key, value in batch])
        finally:
            await producer.stop()

    async def run() -> dict:
        s, procs, base_url = await start(base, partitions=4, prefix="ceiling")
        try:
            admin, tenant = tokens(s)
            t = time.perf_counter()
            await produce(s)
            count = {"query": "SELECT count(*) AS n FROM sys_api_call_histories"}
            with httpx.Client(base_url=base_url, timeout=120) as client:
                while client.post("/v1/sql", json=count, headers={"Authorization": f"Bearer {admin}"}
                                  ).json()["rows"][0][0] < rows:
                    time.sleep(0.5)
                filled = time.perf_counter() - t
                measured = reads(client, procs["api"].pid, queries, admin, tenant)
            size = (s.data_dir / "streamdesk.duckdb").stat().st_size / 2**20
            return {"rows": rows, "fill_s": filled, "file_mb": size, "data": s.data_dir, **measured}
        finally:
            for p in procs.values():
                p.terminate()
            for p in procs.values():
                p.wait(30)

    return asyncio.run(run())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--via-pipeline", action="store_true", help="fill through calls.raw, the worker and the api")
    ap.add_argument("--memory-limit-mb", type=int, help="then the same reads with the api's DuckDB bounded to this")
    ap.add_argument("--data", type=Path, help="no fill: the reads on this data dir (one a run above left)")
    args = ap.parse_args()
    if args.data:
        report(f"{args.data}", measure_on(args.data, None, args.queries))
        if args.memory_limit_mb:
            report(f"the same with DuckDB's memory_limit {args.memory_limit_mb} MiB",
                   measure_on(args.data, args.memory_limit_mb, args.queries))
        return 0
    for rows in args.rows:
        m = (measure_via_pipeline if args.via_pipeline else measure)(rows, args.queries)
        how = f"through the pipeline at {rows / m['fill_s']:,.0f} events/s" if args.via_pipeline else "by SQL"
        report(f"{m['rows']:>11,} rows: file {m['file_mb']:,.0f} MB (filled {how} in {m['fill_s']:.0f} s)", m)
        if args.memory_limit_mb:
            report(f"{m['rows']:>11,} rows, the api again with DuckDB's memory_limit {args.memory_limit_mb} MiB",
                   measure_on(m["data"], args.memory_limit_mb, args.queries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
