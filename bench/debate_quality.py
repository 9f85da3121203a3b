"""How good is the debate? Prediction error against a synthetic cohort's true next-night SOL, rounds, engine time.

Run by hand: `.venv/bin/python bench/debate_quality.py [--users 500] [--days 14] [--seed 0]`. It prints:
MAE (minutes) of the debate's answer, of each expert alone (round 1), of the best single expert, of the
plain average of round 1, and of the same judge rule applied to round 1 (no debate); rounds to stop,
how often consensus is reached, and the engine time per prediction (debate + judge + quality metrics +
recommendations; building the snapshot is not counted).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from pipeline.predictions.debate import CONSENSUS_THRESHOLD, MAX_ROUNDS, quality_metrics, run_debate
from pipeline.predictions.deliberation import pooled
from pipeline.predictions.features import build_snapshot, completeness
from pipeline.predictions.recommend import recommend
from schemas.debate import AgentType
from simulators.sleep_cohort import Behaviour, SyntheticUser, generate_cohort, median_sol


def _now() -> datetime:
    return datetime.now(UTC)


def _reference(u: SyntheticUser, days: int) -> float:
    """The generator's own median for the target night at the user's mean behaviour: a floor no data reaches."""
    lat = u.latent
    start = min(r.date for r in u.records)
    mean = Behaviour(screen=lat.screen_mean, lux=lat.lux_mean, daylight=lat.daylight_mean, active=lat.active_mean)
    return median_sol(lat, mean, days, start + timedelta(days=days))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    cohort = generate_cohort(args.users, days=args.days, seed=args.seed)
    errors: dict[str, list[float]] = {}
    by_completeness: list[tuple[float, float, float]] = []
    rounds: list[int] = []
    stops: Counter[str] = Counter()
    reached = 0
    engine_ms: list[float] = []
    for u in cohort:
        snapshot = build_snapshot("cohort", u.user_id, u.records)
        began = time.perf_counter()
        transcript, outcome = run_debate(snapshot, _now)
        quality_metrics(transcript)
        recommend(snapshot, outcome, f"pred_{u.user_id}")
        engine_ms.append((time.perf_counter() - began) * 1000)

        truth = u.next_night_sol
        first = transcript[0].expert_opinions
        errors.setdefault("debate (final answer)", []).append(abs(outcome.sol_score - truth))
        for o in first:
            errors.setdefault(f"{o.agent_type.value} alone (round 1)", []).append(abs(o.sol_score - truth))
        errors.setdefault("plain average, round 1", []).append(abs(statistics.fmean(o.sol_score for o in first)
                                                                   - truth))
        errors.setdefault("judge rule on round 1 (no debate)", []).append(abs(pooled(first) - truth))
        errors.setdefault("plain average, last round", []).append(abs(outcome.baseline_plain_average - truth))
        errors.setdefault("reference: generator's median", []).append(abs(_reference(u, args.days) - truth))
        sp = next(o for o in first if o.agent_type is AgentType.SLEEP_PATTERN)
        by_completeness.append((completeness(snapshot).total_score, abs(outcome.sol_score - truth),
                                abs(sp.sol_score - truth)))
        rounds.append(len(transcript))
        reached += outcome.consensus_reached
        stops["consensus" if outcome.consensus_reached else "max rounds" if len(transcript) == MAX_ROUNDS
              else "stalled"] += 1

    mae = {name: statistics.fmean(v) for name, v in errors.items()}
    singles = {name: v for name, v in mae.items() if name.endswith("alone (round 1)")}
    best = min(singles, key=singles.__getitem__)
    n = len(cohort)
    print(f"cohort: {n} users x {args.days} nights, seed {args.seed}; mean true next-night SOL "
          f"{statistics.fmean(u.next_night_sol for u in cohort):.1f} min")
    print("\nMAE against next_night_sol (minutes)")
    for name, value in mae.items():
        print(f"  {name:<40} {value:6.2f}")
    print(f"  {'best single expert: ' + best.split(' ')[0]:<40} {singles[best]:6.2f}")

    print("\nMAE by data completeness (tercile): debate vs SLEEP_PATTERN alone")
    by_completeness.sort()
    for i, label in enumerate(("low", "middle", "high")):
        part = by_completeness[i * n // 3:(i + 1) * n // 3]
        print(f"  {label:<7} completeness {part[0][0]:.2f}-{part[-1][0]:.2f}: debate "
              f"{statistics.fmean(p[1] for p in part):5.2f}  SLEEP_PATTERN {statistics.fmean(p[2] for p in part):5.2f}")

    hist = Counter(rounds)
    print(f"\nrounds: mean {statistics.fmean(rounds):.2f}; histogram "
          + ", ".join(f"{r}: {hist.get(r, 0)}" for r in range(1, MAX_ROUNDS + 1)))
    print(f"consensus (score >= {CONSENSUS_THRESHOLD}) reached: {reached / n:.1%}; stopped by "
          + ", ".join(f"{k} {v}" for k, v in stops.most_common()))
    print(f"engine time per prediction: p50 {_percentile(engine_ms, 0.5):.2f} ms, "
          f"p95 {_percentile(engine_ms, 0.95):.2f} ms, max {max(engine_ms):.2f} ms")


if __name__ == "__main__":
    main()
