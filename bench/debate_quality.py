"""How good is the debate? Errors and interval coverage against two synthetic cohorts' true next-night SOL.

Run by hand: `.venv/bin/python bench/debate_quality.py [--users 500] [--days 21] [--split held-out]`.

Two generators with different functional forms (see each module's docstring):
- `tuning`: `simulators.sleep_cohort`, seeds 0-2, the only cohorts the debate's constants were fitted on;
- `held-out`: the same generator on seeds 100-101 and `simulators.diary_study_cohort` on seeds 900-901,
  neither ever used to choose a constant.

For every cohort it prints the mean absolute error (minutes) and the share of true nights inside the 80 %
interval of: the debate's answer; the judge's rule on round 1 (what the debate changed); each expert alone
(round 1); the plain average of the last round; the naive forecasts a clinician has (last night, mean and
median of the last 7 nights, with the 10th-90th percentile of the last 14 nights as their interval); and
the generator's own conditional median (a floor no forecast from the records reaches). Then: every one of
those MAEs (with coverage) per data-completeness third, rounds to stop, consensus, the share of debates whose
answer moved from round 1 by 0.5 min or more, the confidence score against the hit rate it promises (within
10 minutes), and engine time per prediction. Every prediction goes through the same pure functions the worker runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.predictions.debate import CONSENSUS_THRESHOLD, MAX_ROUNDS, quality_metrics, run_debate
from pipeline.predictions.features import build_snapshot, completeness
from pipeline.predictions.recommend import recommend
from simulators import diary_study_cohort, sleep_cohort

SPLITS: dict[str, list[tuple[str, int]]] = {
    "tuning": [("sleep_cohort", 0), ("sleep_cohort", 1), ("sleep_cohort", 2)],
    "held-out": [("sleep_cohort", 100), ("sleep_cohort", 101), ("diary_study", 900), ("diary_study", 901)],
}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Scored:
    """Absolute errors and interval hits of one forecaster over a cohort, with the user each came from."""

    errors: list[float]
    hits: list[bool]
    users: list[int]
    hit_users: list[int]

    def add(self, forecast: float, truth: float, interval: Sequence[float] | None, user: int) -> None:
        self.errors.append(abs(forecast - truth))
        self.users.append(user)
        if interval is not None:
            self.hits.append(interval[0] <= truth <= interval[1])
            self.hit_users.append(user)


def _reference_a(u: sleep_cohort.SyntheticUser, days: int) -> float:
    lat = u.latent
    start = min(r.date for r in u.records)
    mean = sleep_cohort.Behaviour(screen=lat.screen_mean, lux=lat.lux_mean, daylight=lat.daylight_mean,
                                  active=lat.active_mean)
    return sleep_cohort.median_sol(lat, mean, days, start + timedelta(days=days))


def _cohort(generator: str, users: int, days: int, seed: int) -> list[tuple[Any, float]]:
    """(user, reference median) pairs."""
    if generator == "sleep_cohort":
        return [(u, _reference_a(u, days)) for u in sleep_cohort.generate_cohort(users, days=days, seed=seed)]
    return [(u, u.reference_sol) for u in diary_study_cohort.generate_cohort(users, days=days, seed=seed)]


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def evaluate(generator: str, seed: int, users: int, days: int) -> dict[str, Any]:
    scores: dict[str, Scored] = {}

    def score(name: str) -> Scored:
        return scores.setdefault(name, Scored([], [], [], []))

    thirds: list[tuple[float, int]] = []  # (completeness, user): the cohort is cut in thirds by rank
    rounds: list[int] = []
    changed = reached = 0
    confidence: list[tuple[float, bool]] = []
    engine_ms: list[float] = []
    stops: Counter[str] = Counter()
    for u, reference in _cohort(generator, users, days, seed):
        snapshot = build_snapshot("cohort", u.user_id, u.records)
        truth, done = u.next_night_sol, len(thirds)
        began = time.perf_counter()
        transcript, outcome = run_debate(snapshot, _now)
        quality_metrics(transcript)
        recommend(snapshot, outcome, f"pred_{u.user_id}")
        engine_ms.append((time.perf_counter() - began) * 1000)
        interval = (outcome.interval_low, outcome.interval_high)
        score("debate (final answer)").add(outcome.sol_score, truth, interval, done)
        if outcome.first_round_sol is not None:
            score("judge's rule on round 1").add(outcome.first_round_sol, truth, None, done)
            changed += abs(outcome.sol_score - outcome.first_round_sol) >= 0.5
        for o in transcript[0].expert_opinions:
            score(f"{o.agent_type.value} alone (round 1)").add(o.sol_score, truth, o.analysis_result.get("interval80"),
                                                                done)
        score("plain average, last round").add(outcome.baseline_plain_average, truth, None, done)
        sols = [d.data.sol_minutes for d in snapshot.diary]
        usual = (_percentile(sols[-14:], 0.1), _percentile(sols[-14:], 0.9)) if len(sols) >= 2 else None
        for name, value in outcome.naive_forecasts.items():
            score(f"naive: {name}").add(value, truth, usual, done)
        score("generator's conditional median").add(reference, truth, None, done)
        confidence.append((outcome.confidence_score, abs(outcome.sol_score - truth) <= 10))
        thirds.append((completeness(snapshot).total_score, done))
        rounds.append(len(transcript))
        reached += outcome.consensus_reached
        stops["consensus" if outcome.consensus_reached else "max rounds" if len(transcript) == MAX_ROUNDS
              else "stalled"] += 1
    return {"scores": scores, "thirds": thirds, "rounds": rounds, "changed": changed, "reached": reached,
            "confidence": confidence, "engine_ms": engine_ms, "stops": stops, "n": len(rounds)}


def report(title: str, r: dict[str, Any]) -> dict[str, float]:
    n = r["n"]
    mae = {name: statistics.fmean(s.errors) for name, s in r["scores"].items()}
    print(f"\n=== {title}: {n} users")
    print(f"  {'forecaster':<40} {'MAE':>6}  80% interval coverage")
    for name, s in r["scores"].items():
        cover = f"{statistics.fmean(s.hits):.1%}" if s.hits else "-"
        print(f"  {name:<40} {mae[name]:6.2f}  {cover}")
    naive = min(v for k, v in mae.items() if k.startswith("naive"))
    singles = {k: v for k, v in mae.items() if k.endswith("alone (round 1)")}
    best = min(singles, key=singles.__getitem__)
    debate = mae["debate (final answer)"]
    print(f"  debate vs best naive {naive:.2f}: {1 - debate / naive:+.1%} (target >= +10%);"
          f" vs best expert {best.split(' ')[0]} {singles[best]:.2f}: {1 - debate / singles[best]:+.1%}"
          " (target >= +5%)")
    ranked = sorted(r["thirds"])
    for i, label in enumerate(("low", "middle", "high")):
        part = ranked[i * n // 3:(i + 1) * n // 3]
        lo, hi, members = part[0][0], part[-1][0], {user for _, user in part}
        figures = []
        for name, s in r["scores"].items():
            errors = [e for e, user in zip(s.errors, s.users, strict=True) if user in members]
            hits = [h for h, user in zip(s.hits, s.hit_users, strict=True) if user in members]
            if errors:
                cover = f" ({statistics.fmean(hits):.0%})" if hits else ""
                figures.append(f"{name.split(' (')[0].replace('naive: ', '')} {statistics.fmean(errors):.2f}{cover}")
        print(f"  completeness {label:<6} {lo:.2f}-{hi:.2f}: " + "; ".join(figures))
    hist = Counter(r["rounds"])
    print(f"  rounds: mean {statistics.fmean(r['rounds']):.2f} ("
          + ", ".join(f"{k}: {hist.get(k, 0)}" for k in range(1, MAX_ROUNDS + 1))
          + f"); consensus >= {CONSENSUS_THRESHOLD} in {r['reached'] / n:.1%}; stopped by "
          + ", ".join(f"{k} {v}" for k, v in r["stops"].most_common()))
    print(f"  debates whose answer moved >= 0.5 min from round 1: {r['changed'] / n:.1%}")
    conf = r["confidence"]
    print(f"  confidenceScore mean {statistics.fmean(c for c, _ in conf):.3f} vs share within 10 min "
          f"{statistics.fmean(h for _, h in conf):.3f}")
    ms = r["engine_ms"]
    print(f"  engine time per prediction: p50 {_percentile(ms, 0.5):.1f} ms, p95 {_percentile(ms, 0.95):.1f} ms")
    return mae


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--split", choices=[*SPLITS, "all"], default="held-out")
    parser.add_argument("--cohort", action="append", default=[],
                        help="generator:seed instead of a split, e.g. diary_study:905 (repeatable)")
    args = parser.parse_args()
    chosen = ([(g, int(s)) for g, s in (c.split(":") for c in args.cohort)] if args.cohort else
              [c for name, cs in SPLITS.items() if args.split in (name, "all") for c in cs])
    run: Callable[[str, int], dict[str, Any]] = lambda g, s: evaluate(g, s, args.users, args.days)  # noqa: E731
    print(f"{args.users} users x {args.days} nights per cohort")
    for generator, seed in chosen:
        split = "chosen" if args.cohort else next(name for name, cs in SPLITS.items() if (generator, seed) in cs)
        report(f"{generator} seed {seed} ({split})", run(generator, seed))


if __name__ == "__main__":
    main()
