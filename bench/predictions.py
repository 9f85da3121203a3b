"""Predictions benchmark (run by hand): POST predict -> COMPLETED latency with concurrent users.

`.venv/bin/python bench/predictions.py --users 20 --rounds 10`

Starts its own embedded broker, a real `streamdesk worker` and `streamdesk api` (subprocesses, own data dir,
own topics), produces a synthetic cohort's sleep records to `sleep.records`, then runs N concurrent users;
each predicts, polls `GET …/predictions/{id}` every --poll-ms until it settles, and goes again. Latency is
measured from just before the POST to the poll response that first shows COMPLETED (an upper bound by up
to one poll interval). Also printed: the worker-side time (request -> completion event, `processingTime`),
rounds per debate, and CPU per process. Target: p95 < 1 s with 20 users (the seed's system: 23.5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipeline.broker.embedded import free_port, start_embedded_broker  # noqa: E402
from pipeline.broker.kafka import ensure_topics, wait_for_broker  # noqa: E402
from pipeline.broker.topics import SLEEP_RECORDS, pipeline_topics  # noqa: E402
from pipeline.security import Role, mint_token  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from simulators.sleep_cohort import generate_cohort  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CLK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s)) - 1))]


async def start(base: Path, partitions: int, prefix: str = "benchp",
                freshdesk_base_url: str | None = None) -> tuple[Settings, dict[str, subprocess.Popen], str]:
    """An embedded broker, a worker and an api on a free port (the benches share this); returns when healthy."""
    broker = start_embedded_broker(None, log_path=base / "broker.log")
    await wait_for_broker(broker.bootstrap)
    port = free_port()
    s = Settings(kafka_bootstrap=broker.bootstrap, data_dir=base / "data", api_port=port, partitions=partitions,
                 topic_prefix=f"{prefix}{uuid.uuid4().hex[:6]}.", freshdesk_base_url=freshdesk_base_url,
                 _env_file=None)
    await ensure_topics(broker.bootstrap, pipeline_topics(s))
    env = {**os.environ, "STREAMDESK_KAFKA_BOOTSTRAP": broker.bootstrap, "STREAMDESK_DATA_DIR": str(s.data_dir),
           "STREAMDESK_API_PORT": str(port), "STREAMDESK_TOPIC_PREFIX": s.topic_prefix,
           "STREAMDESK_PARTITIONS": str(partitions), "STREAMDESK_LOG_FORMAT": "json",
           "STREAMDESK_LOG_LEVEL": "WARNING"}
    if freshdesk_base_url:
        env["STREAMDESK_FRESHDESK_BASE_URL"] = freshdesk_base_url
    procs = {"broker": broker.process}
    for name in ("worker", "api"):
        procs[name] = subprocess.Popen([sys.executable, "-m", "pipeline.cli", name], cwd=REPO, env=env,
                                       stdout=(base / f"{name}.log").open("ab"), stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as c:
        for _ in range(600):
            try:
                if (await c.get(f"{base_url}/health")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
        else:
            raise TimeoutError(f"api never became healthy; see {base}")
    return s, procs, base_url


async def load_cohort(s: Settings, users: list, base_url: str, token: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, linger_ms=5)
    await producer.start()
    try:
        for u in users:
            await producer.send(s.topic(SLEEP_RECORDS), orjson.dumps([r.model_dump(mode="json") for r in u.records]),
                                key=u.user_id.encode())
        await producer.flush()
    finally:
        await producer.stop()
    want = sum(len(u.records) for u in users)
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as c:
        for _ in range(600):
            rows = (await c.post("/v1/sql", json={"query": "SELECT count(*) FROM sleep_records"})).json()["rows"]
            if rows[0][0] >= want:
                return
            await asyncio.sleep(0.2)
    raise TimeoutError("sleep records never materialized")


async def one_user(c: httpx.AsyncClient, user: str, token: str, rounds: int, poll_s: float,
                   out: list[dict]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(rounds):
        t0 = time.perf_counter()
        r = await c.post("/v1/sol-cod/predict", json={"userId": user}, headers=headers)
        if r.status_code != 202:
            out.append({"error": r.json()["error"]["code"]})
            continue
        pid = r.json()["data"]["predictionId"]
        while True:
            d = (await c.get(f"/v1/sol-cod/predictions/{pid}", headers=headers)).json()["data"]
            if d["status"] != "IN_PROGRESS":
                break
            await asyncio.sleep(poll_s)
        out.append({"latency": time.perf_counter() - t0, "status": d["status"], "worker_ms": d["processingTime"],
                    "rounds": d["debateInfo"]["totalRounds"]})


async def run(args: argparse.Namespace) -> int:
    base = Path(tempfile.mkdtemp(prefix="streamdesk-bench-pred-"))
    procs: dict[str, subprocess.Popen] = {}
    try:
        s, procs, base_url = await start(base, args.partitions)
        admin = mint_token(s.jwt_key(), "bench", "bench", [Role.SYSTEM_ADMIN], 3600)
        users = generate_cohort(args.users, days=14, seed=args.seed, tenant="bench")
        await load_cohort(s, users, base_url, admin)
        log(f"{args.users} users' sleep records materialized; warming up")
        results: list[dict] = []
        limits = httpx.Limits(max_connections=args.users * 2)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as c:
            tokens = {u.user_id: mint_token(s.jwt_key(), u.user_id, "bench", [Role.REGULAR_USER], 3600) for u in users}
            await one_user(c, users[0].user_id, tokens[users[0].user_id], 2, args.poll_ms / 1000, [])
            cpu0 = {n: cpu_s(p.pid) for n, p in procs.items()}
            t0 = time.perf_counter()
            await asyncio.gather(*(one_user(c, u.user_id, tokens[u.user_id], args.rounds, args.poll_ms / 1000,
                                            results) for u in users))
            wall = time.perf_counter() - t0
            cpu = {n: cpu_s(p.pid) - cpu0[n] for n, p in procs.items()}
        report(args, results, wall, cpu)
        return 0
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def report(args: argparse.Namespace, results: list[dict], wall: float, cpu: dict[str, float]) -> None:
    ok = [r for r in results if r.get("status") == "COMPLETED"]
    lat = [r["latency"] * 1000 for r in ok]
    worker = [r["worker_ms"] for r in ok]
    rounds = [r["rounds"] for r in ok]
    errors = [r.get("error") or r.get("status") for r in results if r.get("status") != "COMPLETED"]
    print(f"\npredictions benchmark: {args.users} concurrent users x {args.rounds} predictions, "
          f"poll every {args.poll_ms} ms, {args.partitions} partitions, embedded Tansu, 2 cores")
    print(f"  completed {len(ok)}/{len(results)} in {wall:.1f} s ({len(ok) / wall:.1f} predictions/s); "
          f"not completed: {dict((e, errors.count(e)) for e in set(errors)) or 'none'}")
    if lat:
        print(f"  POST -> COMPLETED   p50 {pct(lat, 50):.0f} ms  p95 {pct(lat, 95):.0f} ms  p99 {pct(lat, 99):.0f} ms"
              f"  max {max(lat):.0f} ms   (target p95 < 1000 ms: {'MET' if pct(lat, 95) < 1000 else 'NOT MET'})")
        print(f"  worker side (request -> completion event): p50 {pct(worker, 50):.0f} ms"
              f"  p95 {pct(worker, 95):.0f} ms")
        print(f"  rounds per debate: mean {statistics.mean(rounds):.2f}, max {max(rounds)}")
    print("  CPU s: " + ", ".join(f"{n} {v:.1f}" for n, v in cpu.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=10, help="predictions per user, one after another")
    ap.add_argument("--poll-ms", type=int, default=20)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true")
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
