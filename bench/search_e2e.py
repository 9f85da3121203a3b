"""Search benchmark through the whole pipeline (run by hand): tickets produced straight to `tickets.raw`.

`.venv/bin/python bench/search_e2e.py --tickets 100000`

Starts its own broker, a real worker and api (bench/predictions.py's `start`), produces N generated tickets with
their conversations (the Freshdesk simulator's data set, as an ingest job would publish them: one thread per
record group, 100 records a message), then measures: how fast they become integrated objects in DuckDB, how fast
the worker's embedding agent embeds them (alongside the normalizer, on the same two cores) until every vector is
stored, and `GET /search` latency (HTTP included) over 1,000 queries in three
languages. Target (issue 4): hybrid search p95 < 50 ms over 100,000 tickets.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from predictions import log, pct, start  # noqa: E402

from pipeline.broker.topics import TICKETS_RAW  # noqa: E402
from pipeline.security import Role, mint_token  # noqa: E402
from simulators.freshdesk.corpus import TOPICS  # noqa: E402
from simulators.freshdesk.fixtures import Dataset  # noqa: E402

TENANT, DOMAIN = "bench", "bench.freshdesk.com"


def envelope(kind: str, record: dict) -> dict:
    return {"tenant": TENANT, "platform": "freshdesk", "domain": DOMAIN, "kind": kind, "record": record}


def threads(data: Dataset) -> list[list[dict]]:
    out = []
    for t in data.tickets.values():
        group = [envelope("ticket", {**t.record, "attachments": []})]
        group += [envelope("conversation", {**c.record, "attachments": []}) for c in t.conversations]
        out.append(group)
    return out


async def produce(s, groups: list[list[dict]]) -> float:  # noqa: ANN001
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, linger_ms=20, max_request_size=4 << 20)
    await producer.start()
    t0 = time.perf_counter()
    try:
        batch: list[dict] = []
        for g in groups:
            batch += g
            if len(batch) >= 100:
                await producer.send(s.topic(TICKETS_RAW), orjson.dumps(batch), key=TENANT.encode())
                batch = []
        if batch:
            await producer.send(s.topic(TICKETS_RAW), orjson.dumps(batch), key=TENANT.encode())
        await producer.flush()
    finally:
        await producer.stop()
    return time.perf_counter() - t0


async def count(c: httpx.AsyncClient, table: str) -> int:
    r = await c.post("/v1/sql", json={"query": f"SELECT count(*) FROM {table} WHERE tenant = '{TENANT}'"})
    return r.json()["rows"][0][0]


async def wait_count(c: httpx.AsyncClient, table: str, n: int, timeout_s: float) -> float:
    t0, last = time.perf_counter(), -1
    while time.perf_counter() - t0 < timeout_s:
        got = await count(c, table)
        if got >= n:
            return time.perf_counter() - t0
        if got != last:
            log(f"{table}: {got:,}/{n:,}")
            last = got
        await asyncio.sleep(2.0)
    raise TimeoutError(f"{table} reached {last:,} of {n:,} in {timeout_s:.0f} s")


def queries(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    pool = [p for topic in TOPICS.values() for phrases in topic.phrases.values()
            for p in (*phrases.subjects, *phrases.problems)]
    pool += ["package was not delivered", "can't sign in, forgot my credentials", "charged twice this month",
             "택배가 오지 않아요", "ログインできない"]
    return [rng.choice(pool).replace("{order}", "").replace("{product}", "").replace("{amount}", "")
            .replace("{code}", "") for _ in range(n)]


async def run(args: argparse.Namespace) -> int:
    base = Path(tempfile.mkdtemp(prefix="streamdesk-bench-search-"))
    procs = {}
    try:
        args.partitions = 2
        s, procs, base_url = await start(base, args.partitions)
        t = time.perf_counter()
        data = Dataset(tickets=args.tickets, seed=args.seed, kb_articles=0)
        groups = threads(data)
        records = sum(len(g) for g in groups)
        log(f"generated {args.tickets:,} tickets, {records:,} records in {time.perf_counter() - t:.1f} s")
        admin = mint_token(s.jwt_key(), "bench", TENANT, [Role.SYSTEM_ADMIN], 7200)
        headers = {"Authorization": f"Bearer {admin}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120) as c:
            produced = await produce(s, groups)
            log(f"produced to tickets.raw in {produced:.1f} s")
            stored = await wait_count(c, "integrated_objects", args.tickets, 1800)
            log(f"integrated objects stored {stored:.1f} s after the last send ({args.tickets / stored:,.0f}/s)")
            embedded = stored + await wait_count(c, "ticket_vectors", args.tickets, 3600)
            log(f"all vectors stored {embedded:.1f} s after the last send ({args.tickets / embedded:,.0f} texts/s, "
                "worker embedding agent)")
            await asyncio.sleep(2 * s.search_sync_s)  # the last batch reaches the index
            lat = []
            for q in queries(args.queries, args.seed):
                t0 = time.perf_counter()
                r = await c.get("/search", params={"q": q, "k": 10})
                lat.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
        print(f"\nsearch benchmark: {args.tickets:,} tickets ({records:,} records) produced to tickets.raw, 2 cores")
        print(f"  tickets.raw -> integrated objects: {stored:.1f} s ({args.tickets / stored:,.0f}/s); "
              f"-> vectors stored: {embedded:.1f} s ({args.tickets / embedded:,.0f} texts/s, worker)")
        print(f"  GET /search (hybrid, k=10, HTTP + query embedding included), {len(lat)} queries: "
              f"p50 {pct(lat, 50):.1f} ms  p95 {pct(lat, 95):.1f} ms  p99 {pct(lat, 99):.1f} ms   "
              f"(target p95 < 50 ms: {'MET' if pct(lat, 95) < 50 else 'NOT MET'})")
        return 0
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.wait(20)
        shutil.rmtree(base, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tickets", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=2)
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
