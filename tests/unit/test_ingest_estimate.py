"""A job's estimate of its total when no max_tickets is set (pipeline/ingest/estimate.py), on walks computed
from known ticket spreads, and the job's seed-000 log lines and totals against the simulator."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from pipeline.ingest.estimate import MIN_TICKETS, estimate_total
from simulators.freshdesk.server import SimulatorServer
from simulators.freshdesk.state import SimulatorConfig
from tests.unit.test_freshdesk_ingest_job import END, run_job

ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=100)


def _walk(times: list[float], share: float) -> tuple[int, datetime, list[tuple[float, int]]]:
    """Tickets at `times` (days past the origin, sorted): what a listing `share` of the way through has seen."""
    cut = SPAN.total_seconds() * share
    seen = [t * 86400 for t in times if t * 86400 <= cut]
    walk = [(s, i + 1) for i, s in enumerate(seen)]
    return len(seen), ORIGIN + timedelta(seconds=seen[-1]), walk


def _estimate(times: list[float], share: float) -> int | None:
    collected, position, walk = _walk(times, share)
    return estimate_total(collected, ORIGIN, position, ORIGIN + SPAN, walk=walk)


def test_an_even_spread_is_estimated_closely_from_a_quarter_of_the_walk():
    rnd = random.Random(3)
    times = sorted(rnd.uniform(0, 100) for _ in range(4000))
    assert abs(_estimate(times, 0.25) - 4000) < 0.08 * 4000
    assert abs(_estimate(times, 0.5) - 4000) < 0.05 * 4000


def test_a_growing_help_desk_is_carried_forward_not_averaged():
    rnd = random.Random(4)
    times = sorted(100 * rnd.random() ** 0.5 for _ in range(4000))  # density rising linearly
    collected, position, walk = _walk(times, 0.4)
    even = round(collected / 0.4)
    fitted = estimate_total(collected, ORIGIN, position, ORIGIN + SPAN, walk=walk)
    assert abs(fitted - 4000) < 0.08 * 4000  # the density line
    assert even < 0.5 * 4000  # what an even-spread estimate would have said: under half


def test_no_estimate_before_there_is_evidence_and_never_past_a_limit_or_below_what_is_collected():
    assert estimate_total(MIN_TICKETS - 1, ORIGIN, ORIGIN + SPAN / 2, ORIGIN + SPAN) is None
    assert estimate_total(500, ORIGIN, ORIGIN + SPAN / 100, ORIGIN + SPAN) is None  # 1 % walked
    assert estimate_total(500, None, ORIGIN + SPAN / 2, ORIGIN + SPAN) is None
    assert estimate_total(500, ORIGIN, ORIGIN + SPAN / 2, ORIGIN + SPAN, limit=700) == 700
    assert estimate_total(500, ORIGIN, ORIGIN + SPAN * 2, ORIGIN + SPAN) == 500  # walked past the end seen


def test_a_job_without_a_limit_reports_an_estimated_total_and_the_seeds_batch_lines():
    config = SimulatorConfig(tickets=400, seed=9, end=END, plan=100_000, kb_articles=0)
    with SimulatorServer(config) as server:
        status, batches, progress = run_job(server, {"batch_size": 40}, "estimate-9.freshdesk.com")
    assert status == "completed"
    actual = progress[-1].statistics.tickets_collected
    assert actual == 400 and progress[-1].total_items == 400 and not progress[-1].statistics.total_is_estimate
    mid = next(p for p in progress if p.statistics.tickets_collected >= 200)
    assert mid.statistics.total_is_estimate and abs(mid.total_items - 400) <= 0.2 * 400
    lines = [line.message for p in progress for line in p.logs]
    batch_lines = [m for m in lines if m.startswith("Successfully processed ticket batch")]
    assert len(batch_lines) == progress[-1].statistics.batches_published == len(batches)
    numbers = [int(m.split()[-1].split("/")[0]) for m in batch_lines]
    assert numbers == list(range(1, len(batches) + 1))
    assert batch_lines[-1].endswith(f"{len(batches)}/{len(batches)}")  # the last batch knows it is the last
    assert all("/" in m for m in batch_lines[len(batch_lines) // 4:])  # an estimated count once it can say
    first_rate = next(p.items_per_second for p in progress if p.completed_items)
    assert 0 < first_rate < 100_000  # items this run collected over this run's time


def test_a_job_given_a_limit_counts_batches_out_of_it():
    config = SimulatorConfig(tickets=300, seed=10, end=END, plan=100_000, kb_articles=0)
    with SimulatorServer(config) as server:
        _, batches, progress = run_job(server, {"batch_size": 40, "max_tickets": 100}, "estimate-10.freshdesk.com")
    assert progress[-1].statistics.tickets_collected == 100
    assert all(not p.statistics.total_is_estimate and p.total_items == 100 for p in progress)
    assert progress[-1].statistics.estimated_total_tickets is None  # no extra request for a known limit
