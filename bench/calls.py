"""Calls-stream benchmark (run by hand, not a test): `.venv/bin/python bench/calls.py --events 200000`.

One embedded broker, unique topics per system, everything deleted at the end. Every system is started and
warmed up first (a few hundred events all the way into DuckDB, so group joins and imports are behind us).
Then the passes run in rounds, one pass of each system per round, the order rotating, so that a slow spell
of this shared machine falls on all of them alike (ratios are also printed per round). In a pass N events are
produced one per message (as a plain gateway would, keyed by tenant) as fast as aiokafka's `send_batch` goes,
and the clock runs from the first send to the moment the last row is in DuckDB:

* ours: the real `streamdesk worker` (Faust, getmany batch consumer -> calls.normalized as Arrow IPC) and the
  real `streamdesk api` (materializer thread -> DuckDB), as subprocesses. "Row in DuckDB" is observed by
  polling `POST /v1/sql` every --poll-ms; the time taken is the poll's response time (an upper bound).
* quix: bench/baselines/quix_app.py, the same job as a quix-streams 3.28 app (BatchingSink -> DuckDB).
* hand-written: bench/baselines/handwritten.py, aiokafka getmany -> Arrow -> one INSERT OR IGNORE per batch into
  the keyed table (one hop); with Arrow's JSON reader (and orjson per message, if asked).
* append: the same app with `--append`, the minimal append app: no key, one plain INSERT per batch, offsets
  committed after it. The limit the 0.8x target is measured against. The baselines report each commit's wall
  time on stdout.

Input (--shape, --with, --without): `native` is the project's own spelling; `seed` is seed 003's gateway
(numeric ids, mixed-case methods, +09:00 times, secrets in one query string in five, NULL sizes, 16 tenants,
50 agents); bench/eventgen.py VARIANTS lists each switch. Every system gets the same bytes.

Freshness (ours only): a separate paced phase produces at --rate events/s for --paced-seconds with one
`send()` per event (linger 5 ms). The produce time of event i is taken just before its `send()`. The poller
asks for the rows appended since the last poll (`rowid > last`); an event first returned by a poll sent at
t_req and answered at t_resp became visible in (t_req_previous_poll, t_resp]. Freshness = t_resp - produce
time (upper bound, reported); the lower bound (previous poll's t_req - produce time) is printed alongside.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eventgen import FORMATS, VARIANTS, EventFactory, new_tag, variants_of  # noqa: E402

from pipeline.broker.embedded import free_port, start_embedded_broker  # noqa: E402
from pipeline.broker.kafka import ensure_topics, wait_for_broker  # noqa: E402
from pipeline.broker.topics import CALLS_RAW, TopicSpec, dlq, pipeline_topics  # noqa: E402
from pipeline.security import Role, mint_token  # noqa: E402
from pipeline.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
WARMUP = 300
DATA_PATH = ("pipeline/", "api/", "aiokafka/", "pyarrow/", "duckdb/", "orjson")  # for inclusive profile
SPY_HZ = 200
CLK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- measurement helpers

def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK
    except (OSError, IndexError, ValueError):
        return float("nan")


def machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has used (all cores), from /proc/stat."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLK  # all but idle and iowait


class CpuMeter:
    """CPU seconds of the named processes, plus `others`: everything else on the machine (other engineers'
    jobs share these 2 cores; a pass with others well above 0 is not comparable)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = {n: cpu_seconds(p) for n, p in pids.items()}
        self.machine = machine_busy_seconds()
        self.t0 = time.perf_counter()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        out = {n: cpu_seconds(p) - self.start[n] for n, p in self.pids.items()}
        out["others"] = max(0.0, machine_busy_seconds() - self.machine - sum(out.values()))
        out["_wall"] = wall
        return out


def fmt_cpu(cpu: dict[str, float]) -> str:
    wall = cpu.get("_wall", 0) or 1
    parts = [f"{n} {v:.1f}s ({100 * v / wall:.0f}%)" for n, v in cpu.items() if n != "_wall"]
    return f"CPU over {wall:.1f}s wall: " + ", ".join(parts)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


@dataclass
class Result:
    name: str
    events: int
    passes: list[tuple[float, float]] = field(default_factory=list)  # (e2e seconds, produce seconds)
    rounds: list[int] = field(default_factory=list)  # the round of each pass (systems interleave by round)
    note: str = ""
    cpu: dict[str, float] = field(default_factory=dict)  # of the last pass

    @property
    def rates(self) -> list[float]:
        return [self.events / e2e for e2e, _ in self.passes]

    @property
    def rate(self) -> float | None:
        return statistics.median(self.rates) if self.passes else None


def retag(events: list[tuple[bytes, bytes]], old: str, new: str) -> list[tuple[bytes, bytes]]:
    """The same events under another tag (a repeated pass into the same table must be countable apart)."""
    for prefix in ('"trace_id":"', '"traceId":"', '"traceparent":"00-'):  # native, seed-dto, kong
        a, b = f"{prefix}{old}".encode(), f"{prefix}{new}".encode()
        if events and a in events[0][1]:
            return [(k, v.replace(a, b, 1)) for k, v in events]
    raise ValueError(f"no trace id with tag {old} in the events")


# --------------------------------------------------------------------------- producing

def partition_events(events: list[tuple[bytes, bytes]], partitions: int) -> list[int]:
    part = DefaultPartitioner()
    all_p = list(range(partitions))
    return [part(k, all_p, all_p) for k, _ in events]


def make_producer(bootstrap: str, **kw) -> AIOKafkaProducer:
    opts = dict(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=1 << 20, max_request_size=4 << 20, acks=1,
                request_timeout_ms=30_000)
    opts.update(kw)
    return AIOKafkaProducer(**opts)


async def produce_fast(producer: AIOKafkaProducer, topic: str, events: list[tuple[bytes, bytes]],
                       parts: list[int]) -> tuple[float, float]:
    """One message per event, as fast as aiokafka goes (send_batch per partition). Returns (start, all acked)."""
    t0 = time.time()
    batches = {}
    futs = []
    for (key, value), p in zip(events, parts, strict=True):
        b = batches.get(p)
        if b is None:
            b = batches[p] = producer.create_batch()
        if b.append(key=key, value=value, timestamp=None) is None:
            futs.append(await producer.send_batch(b, topic, partition=p))
            b = batches[p] = producer.create_batch()
            b.append(key=key, value=value, timestamp=None)
    for p, b in batches.items():
        if b.record_count():
            futs.append(await producer.send_batch(b, topic, partition=p))
    await asyncio.gather(*futs)
    return t0, time.time()


async def produce_paced(producer: AIOKafkaProducer, topic: str, events: list[tuple[bytes, bytes]],
                        rate: float) -> list[float]:
    """One `send()` per event at `rate` events/s; returns each event's produce time (perf_counter)."""
    sent_at = [0.0] * len(events)
    futs = []
    t0 = time.perf_counter()
    i, n = 0, len(events)
    while i < n:
        due = min(n, int((time.perf_counter() - t0) * rate) + 1)
        while i < due:
            key, value = events[i]
            sent_at[i] = time.perf_counter()
            futs.append(await producer.send(topic, value, key=key))
            i += 1
        await asyncio.sleep(0.002)
    await asyncio.gather(*futs)
    return sent_at


# --------------------------------------------------------------------------- topics

async def delete_prefixed(bootstrap: str, marker: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if marker in t]
        if names:
            await admin.delete_topics(names)
        return names
    finally:
        await admin.close()


# --------------------------------------------------------------------------- our pipeline

class Ours:
    def __init__(self, bootstrap: str, base: Path, run_id: str, partitions: int) -> None:
        self.prefix = f"bench{run_id}.ours."
        self.dir = base / "ours"
        self.settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=self.prefix, data_dir=self.dir,
                                 partitions=partitions)
        self.port = free_port()
        self.env = {**os.environ, "STREAMDESK_KAFKA_BOOTSTRAP": bootstrap, "STREAMDESK_TOPIC_PREFIX": self.prefix,
                    "STREAMDESK_DATA_DIR": str(self.dir), "STREAMDESK_API_PORT": str(self.port),
                    "STREAMDESK_PARTITIONS": str(partitions), "STREAMDESK_LOG_FORMAT": "json",
                    "PYTHONWARNINGS": "ignore"}
        self.procs: dict[str, subprocess.Popen] = {}
        self.http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        await ensure_topics(self.settings.bootstrap(), pipeline_topics(self.settings))
        token = mint_token(self.settings.jwt_key(), "bench", "bench", [Role.SYSTEM_ADMIN], 3600)
        for name in ("worker", "api"):
            out = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115
            self.procs[name] = subprocess.Popen([PY, "-m", "pipeline.cli", name], cwd=REPO, env=self.env,
                                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}",
                                      headers={"Authorization": f"Bearer {token}"}, timeout=30)
        deadline = time.time() + 60
        while True:
            self.check_alive()
            try:
                if (await self.http.get("/health")).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise TimeoutError("api did not answer /health within 60 s")
            await asyncio.sleep(0.2)

    def check_alive(self) -> None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode}; see {self.dir / (name + '.log')}")

    async def sql(self, query: str) -> list[list]:
        r = await self.http.post("/v1/sql", json={"query": query})
        if r.status_code != 200:
            raise RuntimeError(f"/v1/sql answered {r.status_code}: {r.text[:300]}")
        return r.json()["rows"]

    async def count(self, tag: str) -> int:
        """Exact count of one tag's rows (a full scan: used once per phase, not in polling loops)."""
        return int((await self.sql(
            f"SELECT count(*) FROM sys_api_call_histories WHERE starts_with(trace_id, '{tag}')"))[0][0])

    async def max_rowid(self) -> int:
        return int((await self.sql("SELECT coalesce(max(rowid), -1) FROM sys_api_call_histories"))[0][0])

    async def wait_count(self, tag: str, n: int, timeout_s: float, poll_s: float,
                         after_rowid: int = -1) -> tuple[float | None, int]:
        """Poll until `n` rows carry `tag`; returns (unix time of the answering poll's response, rows).

        Each poll scans only the rows appended since the previous one (`rowid > last`: one writer, so rowids
        grow in commit order), keeping the poll's own cost in the api small; an exact count confirms the end.
        """
        deadline = time.time() + timeout_s
        got, last = 0, after_rowid
        first: tuple[float, int] | None = None
        while time.time() < deadline:
            new, top = (await self.sql(
                f"SELECT count(*) FILTER (WHERE starts_with(trace_id, '{tag}')), coalesce(max(rowid), {last}) "
                f"FROM sys_api_call_histories WHERE rowid > {last}"))[0]
            now = time.time()
            got, last = got + int(new), int(top)
            if got >= n:
                exact = await self.count(tag)
                if exact != got:
                    raise RuntimeError(f"incremental count {got} != exact count {exact} (rowid order assumption)")
                return now, got
            self.check_alive()
            # Adaptive: every poll costs the api a request (~5 ms of its CPU), so poll slowly while the end is
            # far off (at the rate seen so far) and every poll_s once it is near; the end is still seen within
            # one poll_s interval.
            if got and first is None:
                first = (now, got)
            wait = poll_s
            if first and got > first[1]:
                rate = (got - first[1]) / (now - first[0])
                wait = min(max(poll_s, 0.5 * (n - got) / rate), 0.5)
            await asyncio.sleep(wait)
        return None, got

    async def materializer_stats(self) -> dict[str, float]:
        """Sums and counts of the materializer's batch-size and write-seconds histograms from /metrics."""
        text = (await self.http.get("/metrics")).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("streamdesk_materializer_") and ("_sum" in line or "_count" in line) \
                    and "{" not in line.split(" ")[0]:
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    async def stop(self) -> None:
        if self.http:
            await self.http.aclose()
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                await asyncio.to_thread(p.wait, 20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


async def freshness_phase(ours: Ours, producer: AIOKafkaProducer, factory: EventFactory, rate: float,
                          seconds: float, poll_s: float) -> dict:
    tag = new_tag()
    n = int(rate * seconds)
    events = factory.batch(tag, n)
    topic = ours.settings.topic(CALLS_RAW)
    last_rowid = await ours.max_rowid()
    upper: dict[int, float] = {}
    lower: dict[int, float] = {}
    polls: list[float] = []
    done = asyncio.Event()

    async def poller() -> None:
        nonlocal last_rowid
        prev_req = time.perf_counter()
        idle_deadline = None
        while True:
            t_req = time.perf_counter()
            rows = await ours.sql(
                f"SELECT rowid, trace_id FROM sys_api_call_histories WHERE rowid > {last_rowid} ORDER BY rowid "
                f"LIMIT 10000")
            t_resp = time.perf_counter()
            polls.append(t_resp - t_req)
            for rowid, trace in rows:
                last_rowid = max(last_rowid, int(rowid))
                if trace and trace.startswith(tag):
                    seq = int(trace[8:], 16)
                    if seq not in upper:
                        upper[seq] = t_resp
                        lower[seq] = prev_req
            prev_req = t_req
            if len(upper) >= n:
                return
            if done.is_set():
                idle_deadline = idle_deadline or time.perf_counter() + 30
                if time.perf_counter() > idle_deadline:
                    return
            await asyncio.sleep(poll_s)

    task = asyncio.create_task(poller())
    t0 = time.perf_counter()
    sent_at = await produce_paced(producer, topic, events, rate)
    produce_s = time.perf_counter() - t0
    done.set()
    await task
    missing = n - len(upper)
    if missing:  # rows that appeared out of rowid order (or never): counted separately, not guessed
        total = await ours.count(tag)
    else:
        total = n
    fresh_hi = [upper[i] - sent_at[i] for i in upper]
    fresh_lo = [max(0.0, lower[i] - sent_at[i]) for i in upper]
    return {
        "n": n, "achieved_rate": n / produce_s, "seen": len(upper), "rows": total, "missing_from_polls": missing,
        "p50": pct(fresh_hi, 50), "p99": pct(fresh_hi, 99), "max": max(fresh_hi, default=float("nan")),
        "p50_lo": pct(fresh_lo, 50), "p99_lo": pct(fresh_lo, 99),
        "poll_p50_ms": 1000 * pct(polls, 50), "poll_count": len(polls),
    }


# --------------------------------------------------------------------------- profiling

async def profile_start(pids: dict[str, int], out_dir: Path) -> dict[str, tuple[subprocess.Popen, Path]]:
    spy = Path(PY).with_name("py-spy")
    if not spy.exists():
        raise FileNotFoundError("py-spy is not installed: .venv/bin/pip install py-spy==0.4.3")
    procs = {}
    for name, pid in pids.items():
        out = out_dir / f"profile-{name}.txt"
        err = open(out_dir / f"py-spy-{name}.log", "wb")  # noqa: SIM115
        cmd = [str(spy), "record", "--pid", str(pid), "--rate", str(SPY_HZ), "--format", "raw", "--nonblocking",
               "--threads", "--output", str(out)]
        procs[name] = (subprocess.Popen(cmd, stdout=err, stderr=subprocess.STDOUT), out)
    await asyncio.sleep(1.0)
    for name, (p, _) in procs.items():
        if p.poll() is not None:
            msg = (out_dir / f"py-spy-{name}.log").read_text(errors="replace").strip()
            raise RuntimeError(f"py-spy could not attach to {name} (pid {pids[name]}): {msg[-400:]}")
    return procs


async def profile_stop(procs: dict[str, tuple[subprocess.Popen, Path]]) -> dict[str, Path]:
    for p, _ in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p, _ in procs.values():
        try:
            await asyncio.to_thread(p.wait, 30)
        except subprocess.TimeoutExpired:
            p.kill()
    return {n: out for n, (_, out) in procs.items()}


def _func(frame: str) -> str:
    """`name (path/file.py:123)` -> `name (path/file.py)`."""
    name, _, loc = frame.partition(" (")
    return f"{name} ({loc.rsplit(':', 1)[0]})" if loc else name


def summarize_profile(path: Path, top: int) -> str:
    if not path.exists():
        return f"  (no profile written: {path})"
    self_c: Counter[str] = Counter()
    self_line: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        c = int(count)
        frames = stack.split(";")
        thread = "?"
        if frames[0].startswith("thread ("):  # --threads: `thread (TID): NAME` first
            thread = frames[0].split("): ", 1)[-1]
            frames = frames[1:]
        if not frames:
            continue
        total += c
        threads[thread] += c
        self_c[_func(frames[-1])] += c
        self_line[frames[-1]] += c
        for f in {_func(f) for f in frames}:
            incl[f] += c
    if not total:
        return "  (profile empty)"
    lines = [f"  {total} samples ({SPY_HZ} Hz, non-idle stacks only)"]
    lines.append("  by thread: " + ", ".join(f"{t} {100 * c / total:.0f}%" for t, c in threads.most_common(6)))
    lines.append("  top self time:")
    for f, c in self_c.most_common(top):
        name = f.split(" (")[0]
        hot = [(ln, n) for ln, n in self_line.most_common() if ln.startswith(name + " (")][:2]
        where = ", ".join(f"line {ln.rsplit(':', 1)[-1].rstrip(')')} {100 * n / total:.0f}%" for ln, n in hot)
        lines.append(f"    {100 * c / total:5.1f}%  {f}   [{where}]")
    lines.append("  top inclusive time (functions of the data path only):")
    data_path = [(f, c) for f, c in incl.most_common() if f.split(" (")[-1].startswith(DATA_PATH)]
    lines += [f"    {100 * c / total:5.1f}%  {f}" for f, c in data_path[:top]]
    return "\n".join(lines)


# --------------------------------------------------------------------------- baselines

class Baseline:
    """A baseline app in a subprocess reporting `READY` and `ROWS <total> <unix time>` on stdout."""

    def __init__(self, name: str, script: str, extra: list[str], bootstrap: str, base: Path, run_id: str,
                 cluster: str, partitions: int, python: str = PY) -> None:
        self.name = name
        slug = re.sub(r"[^a-zA-Z0-9._-]+", "-", name).strip("-")
        self.raw = f"bench{run_id}.{slug}.{CALLS_RAW}"
        self.dlq = dlq(self.raw)
        self.partitions = partitions
        self.bootstrap = bootstrap
        self.dir = base / slug
        self.args = [python, str(REPO / "bench" / "baselines" / script), bootstrap, self.raw, self.dlq,
                     str(self.dir / "calls.duckdb"), cluster, f"bench{run_id}.{slug}", *extra]
        self.rows = 0
        self.rows_at = 0.0
        self.expected = 0  # rows the app should have written once the passes so far are in
        self.ready = asyncio.Event()
        self.changed = asyncio.Event()
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        await ensure_topics(self.bootstrap, [TopicSpec(self.raw, self.partitions), TopicSpec(self.dlq, 1)])
        err = open(self.dir / "app.log", "ab")  # noqa: SIM115
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(REPO)})
        asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc and self.proc.stdout
        async for line in self.proc.stdout:
            parts = line.decode().split()
            if parts and parts[0] == "READY":
                self.ready.set()
            elif len(parts) == 3 and parts[0] == "ROWS":
                self.rows, self.rows_at = int(parts[1]), float(parts[2])
                self.changed.set()
        self.changed.set()

    async def wait_rows(self, n: int, timeout_s: float) -> float | None:
        deadline = time.time() + timeout_s
        while self.rows < n:
            if self.proc.returncode is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.dir / 'app.log'}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), max(0.01, deadline - time.time()))
            except TimeoutError:
                return None
        return self.rows_at

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


# --------------------------------------------------------------------------- one pass of each system

async def warm_up_ours(ours: Ours, producer: AIOKafkaProducer, factory: EventFactory, partitions: int) -> None:
    warm_tag = new_tag()
    warm = factory.batch(warm_tag, WARMUP)
    await produce_fast(producer, ours.settings.topic(CALLS_RAW), warm, partition_events(warm, partitions))
    t_warm, got = await ours.wait_count(warm_tag, WARMUP, 120, 0.2)
    if t_warm is None:
        raise TimeoutError(f"warm-up rows never arrived ({got}/{WARMUP}); see {ours.dir}/*.log")


async def warm_up_baseline(b: Baseline, producer: AIOKafkaProducer, factory: EventFactory) -> None:
    await b.start()
    await asyncio.wait_for(b.ready.wait(), 90)
    warm = factory.batch(new_tag(), WARMUP)
    await produce_fast(producer, b.raw, warm, partition_events(warm, b.partitions))
    if await b.wait_rows(WARMUP, 60) is None:
        raise TimeoutError(f"{b.name}: warm-up rows never arrived ({b.rows}/{WARMUP})")
    b.expected = WARMUP


async def ours_pass(ours: Ours, producer: AIOKafkaProducer, events: list[tuple[bytes, bytes]], tag: str,
                    parts: list[int], pids: dict[str, int], args: argparse.Namespace) -> tuple[float, float, dict, str]:
    """(e2e s, produce s, CPU, materializer detail) of one full-speed pass through the real worker and api."""
    start_rowid = await ours.max_rowid()
    m0 = await ours.materializer_stats()
    meter = CpuMeter(pids)
    poll = asyncio.create_task(ours.wait_count(tag, len(events), args.timeout, args.poll_ms / 1000, start_rowid))
    t0, t_acked = await produce_fast(producer, ours.settings.topic(CALLS_RAW), events, parts)
    t_end, got = await poll
    cpu = meter.stop()
    if t_end is None:
        raise TimeoutError(f"timeout after {args.timeout:.0f} s with {got}/{len(events)} rows")
    detail = materializer_detail(m0, await ours.materializer_stats(), t_end - t0)
    return t_end - t0, t_acked - t0, cpu, detail


async def baseline_pass(b: Baseline, producer: AIOKafkaProducer, events: list[tuple[bytes, bytes]],
                        parts: list[int], pids: dict[str, int], timeout_s: float) -> tuple[float, float, dict]:
    meter = CpuMeter(pids)
    t0, t_acked = await produce_fast(producer, b.raw, events, parts)
    b.expected += len(events)
    t_end = await b.wait_rows(b.expected, timeout_s)
    cpu = meter.stop()
    if t_end is None:
        raise TimeoutError(f"timeout after {timeout_s:.0f} s with {b.rows - b.expected + len(events)}/"
                           f"{len(events)} rows")
    return t_end - t0, t_acked - t0, cpu


def otlp_export(events: list[dict]) -> dict:
    """The events as one OTLP/HTTP JSON export: one HTTP server span each, with the semantic conventions'
    attributes, the tenant on `tenant.id`, and the event's trace id as the span's."""
    def attr(key: str, value: object) -> dict:
        return {"key": key, "value": {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}}

    spans = []
    for i, ev in enumerate(events):
        start = int(datetime.fromisoformat(ev["created_at"]).timestamp() * 1_000_000_000)
        attrs = {"http.request.method": ev["method"], "url.path": ev["path"], "url.query": ev["query_string"],
                 "http.response.status_code": ev["status_code"], "client.address": ev["ip_address"],
                 "user_agent.original": ev["user_agent"], "http.request.body.size": ev["request_size_bytes"],
                 "http.response.body.size": ev["response_size_bytes"], "tenant.id": str(ev["tenant_id"]),
                 "user.id": str(ev["user_id"]), "gen_ai.agent.id": ev["agent_id"], "error.type": ev["error_code"]}
        spans.append({"traceId": ev["trace_id"], "spanId": f"{i:016x}", "name": f"{ev['method']} {ev['path']}",
                      "kind": 2, "startTimeUnixNano": str(start),
                      "endTimeUnixNano": str(start + ev["latency_ms"] * 1_000_000),
                      "attributes": [attr(k, v) for k, v in attrs.items() if v is not None]})
    return {"resourceSpans": [{"resource": {"attributes": [attr("service.name", "aura-gateway")]},
                               "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}]}]}


async def http_pass(ours: Ours, factory: EventFactory, n: int, fmt: str, batch: int, timeout_s: float,
                    poll_s: float) -> float:
    """n events POSTed by 4 concurrent senders, `batch` a request, as native events or Kong log objects (what
    Kong's http-log plugin sends) to /v1/call-histories, or as OTLP spans to /v1/traces; events/s from the first
    request to the last row in DuckDB."""
    tag = new_tag()
    events = [factory.event(tag, i) for i in range(n)]
    if fmt == "kong":
        events = [factory.as_kong(e) for e in events]
    bodies = [events[i:i + batch] for i in range(0, n, batch)]
    payloads = [orjson.dumps(otlp_export(b) if fmt == "otlp" else b) for b in bodies]
    route = "/v1/traces" if fmt == "otlp" else "/v1/call-histories"
    start_rowid = await ours.max_rowid()
    poll = asyncio.create_task(ours.wait_count(tag, n, timeout_s, poll_s, start_rowid))
    queue = list(reversed(payloads))
    t0 = time.time()

    async def sender() -> None:
        while queue:
            r = await ours.http.post(route, content=queue.pop(), headers={"Content-Type": "application/json"})
            if r.status_code >= 300:
                raise RuntimeError(f"{route} answered {r.status_code}: {r.text[:200]}")

    await asyncio.gather(*(sender() for _ in range(4)))
    t_end, got = await poll
    if t_end is None:
        raise TimeoutError(f"{fmt} over HTTP: {got}/{n} rows")
    return n / (t_end - t0)


# --------------------------------------------------------------------------- main

async def run(args: argparse.Namespace) -> int:
    """Every system is started and warmed up first; then the passes interleave, one of each system per round
    (the order rotating), so a slower spell of this shared machine falls on every system alike. Ratios are
    also reported per round (paired)."""
    base = Path(tempfile.mkdtemp(prefix="streamdesk-bench-"))
    run_id = uuid.uuid4().hex[:8]
    broker = start_embedded_broker(None, log_path=base / "broker.log")
    results: dict[str, Result] = {}
    fresh: dict | None = None
    http_rates: dict[str, list[float]] = {}
    profile_text = ""
    mat_detail = ""
    ours: Ours | None = None
    baselines: list[Baseline] = []
    producer: AIOKafkaProducer | None = None
    try:
        cluster = await wait_for_broker(broker.bootstrap)
        log(f"broker {broker.bootstrap} (cluster {cluster}, pid {broker.process.pid}); work dir {base}")
        log(f"input shape {args.shape}: {', '.join(sorted(args.variants)) or 'no variants'}; "
            f"format {', '.join(args.formats)}")
        tag = new_tag()
        # One input per format, each the same calls (one seed) in that gateway's bytes; the first is the main one:
        # the baselines, the paced phase and the profile use it.
        factories = {fmt: EventFactory(seed=args.seed, variants=args.variants, fmt=fmt) for fmt in args.formats}
        inputs: dict[str, tuple[list[tuple[bytes, bytes]], list[int]]] = {}
        for fmt, maker in factories.items():
            t = time.perf_counter()
            made = maker.batch(tag, args.events)
            sizes = [len(v) for _, v in made]
            log(f"generated {len(made)} {fmt} events in {time.perf_counter() - t:.1f}s: mean "
                f"{statistics.mean(sizes):.0f} B, p5 {pct(sizes, 5)} B, p95 {pct(sizes, 95)} B")
            inputs[fmt] = (made, partition_events(made, args.partitions))
        factory = factories[args.format]
        events, parts = inputs[args.format]
        producer = make_producer(broker.bootstrap)
        await producer.start()

        runners: list[tuple[str, object]] = []
        if "ours" in args.systems:
            ours = Ours(broker.bootstrap, base, run_id, args.partitions)
            results["ours"] = Result("ours (worker + api)", len(events))
            try:
                await ours.start()
                log(f"ours: worker pid {ours.procs['worker'].pid}, api pid {ours.procs['api'].pid} "
                    f"on :{ours.port}; warming up")
                for maker in factories.values():
                    await warm_up_ours(ours, producer, maker, args.partitions)
                runners.append(("ours", ours))
                for fmt in args.formats[1:]:  # the same worker and api, fed another gateway's bytes
                    results[f"ours[{fmt}]"] = Result(f"ours[{fmt}] (worker + api)", len(events))
                    runners.append((f"ours[{fmt}]", ours))
            except Exception as exc:  # noqa: BLE001 - one system failing must not lose the others' figures
                results["ours"].note = f"failed: {type(exc).__name__}: {exc}"
                log(results["ours"].note)
        if "quix" in args.systems:
            baselines.append(Baseline("quix-streams 3.28", "quix_app.py",
                                      ["--commit-interval", str(args.quix_commit_interval)],
                                      broker.bootstrap, base, run_id, cluster, args.partitions, args.quix_python))
        for parser in args.handwritten_parsers:
            baselines.append(Baseline(f"hand-written ({parser})", "handwritten.py", ["--parser", parser],
                                      broker.bootstrap, base, run_id, cluster, args.partitions))
        if "append" in args.systems:
            baselines.append(Baseline("append (no key)", "handwritten.py", ["--parser", "arrow", "--append"],
                                      broker.bootstrap, base, run_id, cluster, args.partitions))
        for b in baselines:
            results[b.name] = Result(b.name, len(events))
            log(f"{b.name}: starting")
            try:
                await warm_up_baseline(b, producer, factory)
                runners.append((b.name, b))
            except Exception as exc:  # noqa: BLE001
                results[b.name].note = f"failed: {type(exc).__name__}: {exc}"
                log(results[b.name].note)
        await asyncio.sleep(1.0)

        failed: set[str] = set()
        for i in range(args.repeat):
            k = i % max(1, len(runners))
            for name, system in runners[k:] + runners[:k]:
                if name in failed:
                    continue
                res = results[name]
                ptag = new_tag()
                fmt = name[len("ours["):-1] if name.startswith("ours[") else args.format
                pass_events = retag(inputs[fmt][0], tag, ptag)
                try:
                    if isinstance(system, Ours):
                        pids = {"broker": broker.process.pid, "worker": system.procs["worker"].pid,
                                "api": system.procs["api"].pid, "bench": os.getpid()}
                        e2e, acked, res.cpu, mat_detail = await ours_pass(system, producer, pass_events, ptag,
                                                                          inputs[fmt][1], pids, args)
                    else:
                        pids = {"broker": broker.process.pid, "app": system.proc.pid, "bench": os.getpid()}
                        e2e, acked, res.cpu = await baseline_pass(system, producer, pass_events, parts, pids,
                                                                  args.timeout)
                except Exception as exc:  # noqa: BLE001
                    res.note = f"failed: {type(exc).__name__}: {exc}"
                    log(f"{res.name}: {res.note}")
                    failed.add(name)
                    continue
                res.passes.append((e2e, acked))
                res.rounds.append(i)
                log(f"{res.name}: round {i + 1}: {len(events) / e2e:,.0f} events/s; {fmt_cpu(res.cpu)}"
                    + (f"; {mat_detail}" if isinstance(system, Ours) else ""))
                await asyncio.sleep(0.5)

        if ours is not None and "ours" not in failed and ("ours", ours) in runners:
            pids = {"broker": broker.process.pid, "worker": ours.procs["worker"].pid,
                    "api": ours.procs["api"].pid, "bench": os.getpid()}
            topic = ours.settings.topic(CALLS_RAW)
            if args.rate > 0:
                log(f"ours: paced phase, {args.rate:,.0f} events/s for {args.paced_seconds:.0f} s")
                paced_producer = make_producer(broker.bootstrap)
                await paced_producer.start()
                try:
                    fresh = await freshness_phase(ours, paced_producer, factory, args.rate, args.paced_seconds,
                                                  args.fresh_poll_ms / 1000)
                finally:
                    await paced_producer.stop()
                log(f"ours: freshness {fresh}")
            if args.http:
                for fmt in args.http_formats * args.http_passes:  # interleaved: a slow spell falls on each
                    rate = await http_pass(ours, factory, args.http, fmt, args.http_batch, args.timeout,
                                           args.poll_ms / 1000)
                    log(f"ours over HTTP, {fmt}: {rate:,.0f} events/s")
                    http_rates.setdefault(fmt, []).append(rate)
            if args.profile:
                log("ours: profiling another full-speed pass with py-spy (worker, api)")
                ptag = new_tag()
                pevents = retag(events, tag, ptag)
                try:
                    start_rowid = await ours.max_rowid()
                    spies = await profile_start({"worker": pids["worker"], "api": pids["api"]}, base)
                    meter = CpuMeter(pids)
                    poll = asyncio.create_task(ours.wait_count(ptag, len(pevents), args.timeout,
                                                               args.poll_ms / 1000, start_rowid))
                    t0, _ = await produce_fast(producer, topic, pevents, partition_events(pevents, args.partitions))
                    t_end, got = await poll
                    cpu = meter.stop()
                    outs = await profile_stop(spies)
                    rate = f"{len(pevents) / (t_end - t0):,.0f} events/s" if t_end else f"timeout ({got} rows)"
                    profile_text = (f"Profiled pass (py-spy attached, so slower): {rate}\n  {fmt_cpu(cpu)}\n"
                                    + "\n".join(f"-- {n} (pid {pids[n]})\n{summarize_profile(p, args.top)}"
                                                for n, p in outs.items()))
                except (RuntimeError, FileNotFoundError, PermissionError) as exc:
                    profile_text = f"profile not taken: {exc}"
    finally:
        if producer:  # first: its metadata refresh would re-create (auto-create) a deleted topic
            await producer.stop()
        if ours:
            await ours.stop()
        for b in baselines:
            await b.stop()
        try:
            leftover = await delete_prefixed(broker.bootstrap, f"bench{run_id}.")
            log(f"deleted {len(leftover)} topics")
        except Exception as exc:  # noqa: BLE001
            log(f"could not delete topics: {exc}")
        broker.stop()
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    print_report(args, list(results.values()), fresh, profile_text, mat_detail)
    if http_rates:
        print("\nOver HTTP (ours, events/s per pass): " + "; ".join(
            f"{fmt} {', '.join(f'{r / 1000:.1f}k' for r in rates)}" for fmt, rates in http_rates.items()))
        for fmt in [f for f in http_rates if f != "native" and "native" in http_rates]:
            ratio = statistics.median(http_rates[fmt]) / statistics.median(http_rates["native"])
            pairs = [o / n for n, o in zip(http_rates["native"], http_rates[fmt], strict=True)]
            print(f"{fmt} ÷ native over HTTP: {ratio:.2f} (target >= 0.70); paired by pass: "
                  f"{' '.join(f'{x:.2f}' for x in pairs)} (median {statistics.median(pairs):.2f})")
    return 0


def materializer_detail(m0: dict[str, float], m1: dict[str, float], wall: float) -> str:
    def d(name: str) -> float:
        return m1.get(name, 0.0) - m0.get(name, 0.0)
    txns = d("streamdesk_materializer_batch_rows_count")
    if not txns:
        return "materializer: no transactions seen in /metrics"
    rows, secs = d("streamdesk_materializer_batch_rows_sum"), d("streamdesk_materializer_batch_seconds_sum")
    return (f"materializer: {txns:.0f} transactions, {rows / txns:,.0f} rows each, {1000 * secs / txns:.0f} ms each, "
            f"{1e6 * secs / max(rows, 1):.1f} us/row, busy {100 * secs / wall:.0f}% of the e2e time")


def paired(a: Result, b: Result) -> str:
    """a/b per round in which both ran (their passes were next to each other in time), and the median."""
    rate_a = dict(zip(a.rounds, a.rates, strict=True))
    rate_b = dict(zip(b.rounds, b.rates, strict=True))
    ratios = [rate_a[r] / rate_b[r] for r in sorted(set(rate_a) & set(rate_b))]
    if not ratios:
        return "-"
    return " ".join(f"{x:.2f}" for x in ratios) + f" (median {statistics.median(ratios):.2f})"


def print_report(args: argparse.Namespace, results: list[Result], fresh: dict | None, profile_text: str,
                 mat_detail: str = "") -> None:
    print()
    print(f"calls benchmark: {args.events:,} events, one per message (~500 B JSON), {args.partitions} partitions, "
          f"embedded Tansu broker, {os.cpu_count()} cores")
    print(f"input: {args.shape} shape ({', '.join(sorted(args.variants)) or 'no variants'}); "
          f"format {', '.join(args.formats)}")
    print(f"{'system':<24}{'events/s':>10}{'e2e s':>8}{'produce s':>11}  {'passes (events/s)':<26}"
          f"CPU s of the last pass")
    by = {}
    for r in results:
        by[r.name.split(" ")[0]] = r
        cpu = ", ".join(f"{n} {v:.1f}" for n, v in r.cpu.items() if n != "_wall")
        rate = f"{r.rate:,.0f}" if r.rate else "-"
        secs = f"{statistics.median(e for e, _ in r.passes):.2f}" if r.passes else "-"
        prod = f"{statistics.median(p for _, p in r.passes):.2f}" if r.passes else "-"
        passes = " ".join(f"{x / 1000:.1f}k" for x in r.rates)
        print(f"{r.name:<24}{rate:>10}{secs:>8}{prod:>11}  {passes:<26}{cpu} {r.note}")
    print("  events/s = N / (first send -> last row in DuckDB), median of the passes; produce s = first send -> "
          "last ack; the systems' passes interleave round by round")
    if mat_detail:
        print(f"  ours, {mat_detail}")
    ours = by.get("ours")
    quix = by.get("quix-streams")
    append = by.get("append")
    hands = [r for r in results if r.name.startswith("hand-written") and r.rate]
    keyed = max(hands, key=lambda r: r.rate) if hands else None
    limit = append if append and append.rate else None
    print()
    if ours and ours.rate and quix and quix.rate:
        ratio = ours.rate / quix.rate
        print(f"ours / quix-streams         {ratio:6.2f}x   (target >= 2x: {'MET' if ratio >= 2 else 'NOT MET'})"
              f"   paired by round: {paired(ours, quix)}")
    if ours and ours.rate and limit:
        ratio = ours.rate / limit.rate
        print(f"ours / {limit.name:<21}{ratio:6.2f}x   (target >= 0.8x: {'MET' if ratio >= 0.8 else 'NOT MET'})"
              f"   paired by round: {paired(ours, limit)}")
    if ours and ours.rate and keyed:
        print(f"ours / {keyed.name:<21}{ours.rate / keyed.rate:6.2f}x   (the same app keyed: what the key costs it)"
              f"   paired by round: {paired(ours, keyed)}")
    for fmt in args.formats[1:]:
        other = by.get(f"ours[{fmt}]")
        if ours and ours.rate and other and other.rate:
            ratio = other.rate / ours.rate
            print(f"ours, {fmt} / {args.format:<17}{ratio:6.2f}x   (an adapter may cost <= 30 %, so >= 0.7x: "
                  f"{'MET' if ratio >= 0.7 else 'NOT MET'})   paired by round: {paired(other, ours)}")
    if fresh:
        ok = fresh["p99"] < 1.0 and not fresh["missing_from_polls"]
        print(f"freshness at {fresh['achieved_rate']:,.0f} events/s ({fresh['n']:,} events, one send() each): "
              f"p50 {1000 * fresh['p50']:.0f} ms, p99 {1000 * fresh['p99']:.0f} ms, max {1000 * fresh['max']:.0f} ms"
              f"   (target p99 < 1 s: {'MET' if ok else 'NOT MET'})")
        print(f"  measured: produce time (just before send()) -> response of the first /v1/sql poll returning the row"
              f" (polled every {args.fresh_poll_ms} ms, poll p50 {fresh['poll_p50_ms']:.0f} ms, "
              f"{fresh['poll_count']} polls); lower bound p50 {1000 * fresh['p50_lo']:.0f} ms, "
              f"p99 {1000 * fresh['p99_lo']:.0f} ms; rows {fresh['rows']}/{fresh['n']}, "
              f"not seen by rowid polling {fresh['missing_from_polls']}")
    if profile_text:
        print()
        print(profile_text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000, help="events per system (default 200000)")
    ap.add_argument("--partitions", type=int, default=Settings().partitions, help="partitions of calls.raw")
    ap.add_argument("--rate", type=float, default=5000, help="paced phase events/s (0 skips it)")
    ap.add_argument("--paced-seconds", type=float, default=10)
    ap.add_argument("--poll-ms", type=int, default=50, help="row-count poll interval in the throughput phase")
    ap.add_argument("--fresh-poll-ms", type=int, default=50, help="poll interval in the paced phase")
    ap.add_argument("--timeout", type=float, default=120, help="seconds to wait for the last row of a phase")
    ap.add_argument("--systems", default="ours,quix,handwritten,append", help="comma-separated subset")
    ap.add_argument("--handwritten-parser", default="arrow",
                    help="keyed hand-written app variants to run: arrow (default), orjson, or both")
    ap.add_argument("--shape", choices=("native", "seed"), default="seed", help="input spelling (default seed)")
    ap.add_argument("--with", dest="with_", default="", metavar="VARIANTS",
                    help="variants to add to the shape: " + ", ".join(VARIANTS))
    ap.add_argument("--without", default="", metavar="VARIANTS", help="variants to take out of the shape")
    ap.add_argument("--format", default="native", metavar="FORMATS",
                    help="whose bytes: the native event, seed 003's DTO (camelCase) or Kong's log object; several\n"
                         "(native,kong) run ours on each in the same rounds, compared with the first")
    ap.add_argument("--quix-commit-interval", type=float, default=1.0, help="quix checkpoint (sink flush) seconds")
    ap.add_argument("--quix-python", default=str(REPO / ".venv-quix" / "bin" / "python"),
                    help="interpreter with quixstreams installed (its own venv: it needs pydantic<2.14)")
    ap.add_argument("--profile", action="store_true", help="py-spy the worker and api during an extra pass")
    ap.add_argument("--top", type=int, default=12, help="functions shown per profiled process")
    ap.add_argument("--repeat", type=int, default=3, help="full-speed passes per system (median reported)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, DuckDB files)")
    ap.add_argument("--http", type=int, default=0, metavar="N",
                    help="after the passes, POST N events over HTTP in each of --http-formats")
    ap.add_argument("--http-batch", type=int, default=1000, help="events (spans) per HTTP request")
    ap.add_argument("--http-passes", type=int, default=2, help="HTTP passes of each format, interleaved")
    ap.add_argument("--http-formats", default="native,otlp",
                    help="what to POST: native events, otlp spans, kong log objects (comma-separated)")
    args = ap.parse_args(argv)
    args.systems = {s.strip() for s in args.systems.split(",") if s.strip()}
    args.formats = list(dict.fromkeys(f.strip() for f in args.format.split(",") if f.strip()))
    if not args.formats or set(args.formats) - set(FORMATS):
        ap.error(f"--format: one or more of {', '.join(FORMATS)}")
    args.format = args.formats[0]
    args.http_formats = tuple(f.strip() for f in args.http_formats.split(",") if f.strip())
    if set(args.http_formats) - {"native", "otlp", "kong"}:
        ap.error("--http-formats: native, otlp and/or kong")
    args.variants = variants_of(args.shape, args.with_, args.without)
    args.handwritten_parsers = ([p.strip() for p in args.handwritten_parser.split(",") if p.strip()]
                                if "handwritten" in args.systems else [])
    return args


def main() -> int:
    args = parse_args()
    sys.path.insert(0, str(REPO))
    from bench.baselines.keyed import DUCKDB_CONFIG  # noqa: PLC0415 - only the baselines need it
    from pipeline.storage.db import WRITER_CHECKPOINT_THRESHOLD  # noqa: PLC0415
    if DUCKDB_CONFIG["checkpoint_threshold"] != WRITER_CHECKPOINT_THRESHOLD:
        raise SystemExit("bench/baselines/keyed.py DUCKDB_CONFIG differs from the pipeline's writer settings")
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
