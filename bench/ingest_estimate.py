"""How good is an ingest job's estimate of its total when no `max_tickets` is set? (seed 000's progress/ETA)

Runs real ingest jobs (pipeline/ingest/jobs.py, no broker) against the Freshdesk simulator's accounts, shaped
three ways the estimator was not tuned on: tickets spread evenly over a year, a help desk growing linearly
(density ~ t), and one growing fast (~ t^3), and prints the estimate's error when 10/25/50/75/90 % of the
tickets were really collected, and the ETA's error at the same points (remaining / the rate so far, as the
console shows it), with the job paced by the account's rate budget as against Freshdesk (a 1 s window here, so
a run takes seconds, not minutes).

    .venv/bin/python bench/ingest_estimate.py [--tickets 2000] [--seeds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import SecretStr

from pipeline.ingest.freshdesk.ratelimit import budget_for
from pipeline.ingest.jobs import IngestJob, JobControl
from schemas.ingest import JobCommand, JobOptions, JobProgress
from simulators.freshdesk.server import SimulatorServer
from simulators.freshdesk.state import SimulatorConfig

POINTS = (0.10, 0.25, 0.50, 0.75, 0.90)


def run(server: SimulatorServer, domain: str) -> tuple[list[tuple[float, JobProgress]], float]:
    budget_for(domain, per_window=server.config.plan, window_s=server.config.window_seconds)
    cmd = JobCommand(action="run", job_id=f"bench-{domain}", tenant="bench", domain=domain, at=datetime.now(UTC),
                     options=JobOptions.model_validate({"include_kb": False, "batch_size": 50}),
                     api_key_token="unused")
    seen: list[tuple[float, JobProgress]] = []
    t0 = time.monotonic()

    async def emit(batch: list[dict[str, Any]]) -> None:
        return None

    async def report(p: JobProgress) -> None:
        seen.append((time.monotonic() - t0, p))

    async def go() -> None:
        job = IngestJob(cmd, SecretStr("your_api_key"), server.base_url, emit, report, JobControl(), "bench")
        job.opts = job.opts.model_copy(update={"batch_size": 50})
        await job.run()

    asyncio.run(go())
    return seen, time.monotonic() - t0


def fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):+7.1f}, {max(xs, key=abs):+7.1f}" if xs else "   (none yet)"


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--plan", type=int, default=400, help="credits per second: the job is paced as by Freshdesk")
    args = ap.parse_args()
    print(f"{'account':<16}{'at':>6}  {'estimate error (median, worst) %':>34}  {'ETA error (median, worst) %':>30}")
    for name, growth in (("even", 0.0), ("growing t", 1.0), ("growing t^3", 3.0)):
        errors: dict[float, list[float]] = {p: [] for p in POINTS}
        eta_errors: dict[float, list[float]] = {p: [] for p in POINTS}
        for seed in range(1, args.seeds + 1):
            config = SimulatorConfig(tickets=args.tickets, seed=seed, plan=args.plan, window_seconds=1.0, kb_articles=0,
                                     growth=growth,
                                     end=datetime(2026, 6, 1, tzinfo=UTC))
            with SimulatorServer(config) as server:
                seen, took = run(server, f"est-{growth}-{seed}.freshdesk.com")
            actual = seen[-1][1].statistics.tickets_collected
            for point in POINTS:
                at, p = next((t, p) for t, p in seen if p.statistics.tickets_collected >= point * actual)
                if p.total_items:
                    errors[point].append(100 * (p.total_items - actual) / actual)
                    rate = p.completed_items / max(at, 1e-3)  # the rate so far (the one a person sees)
                    eta = (p.total_items - p.completed_items) / rate if rate else float("inf")
                    eta_errors[point].append(100 * (eta - (took - at)) / max(took - at, 1e-3))
        for point in POINTS:
            e, r = errors[point], eta_errors[point]
            print(f"{name:<16}{point:>6.0%}  {fmt(e):>34}  {fmt(r):>30}")


if __name__ == "__main__":
    main()
