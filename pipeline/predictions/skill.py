"""Measured skill in the debate: what each expert forecasts, how it revises, how the judge weighs, its interval.

An expert with a diary to read forecasts `exp(level + its adjustments)` (forecast.py) and carries the
adjustment names it uses in `analysisResult.forecastParts`. Its skill is its rolling-origin backtest on this
user's own nights, as a mean absolute error relative to the level alone, shrunk toward the population's
relative error by SKILL_PSEUDO nights (`relative_skill`): with five nights of history the population speaks,
with twenty the user does. POPULATION_RELATIVE_MAE was measured on the tuning cohorts
(`simulators.sleep_cohort`, seeds 0-2, 21 nights; bench/debate_quality.py), never on the held-out ones.

Revision (`argue`): in a later round an expert looks at each peer whose shrunk skill beats its own, in order
of skill, and takes that peer's adjustments when its own backtest with them beats its backtest without. It
says so in its reasoning, with both errors. The best expert so holds its view; the others converge on it.

The judge (`judge_log`) weighs the last round's forecasts by 1 / (shrunk mean squared log residual), not by
self-declared confidence. Spread (`spread`) is the root of the shrunk mean squared log residual of a
forecaster's backtest (prior POPULATION_LOG_MSE over SPREAD_PSEUDO nights). The 80 % interval is
`forecast * exp(+-Z80 * INTERVAL_WIDEN * spread)`; `within_ten` turns a spread into a confidence: the chance,
under that log-normal, that the night lands within 10 minutes of the forecast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

from pipeline.predictions.forecast import Backtest, Ledger, backtest_of
from schemas.debate import AgentType, Opinion

OWN_PARTS: dict[AgentType, frozenset[str]] = {
    AgentType.SLEEP_PATTERN: frozenset({"weekday", "carryover"}),
    AgentType.CBTI: frozenset({"trend"}),
    AgentType.QUESTIONNAIRE: frozenset({"trait"}),
    AgentType.MOBILE_ANALYTICS: frozenset({"behaviour"}),
}
PART_NAMES = {"weekday": "요일 보정", "carryover": "전날 편차 이월", "trend": "치료 추세",
              "trait": "설문 기반 수준 보정", "behaviour": "전날 저녁 조도·화면 사용"}
POPULATION_RELATIVE_MAE = {"weekday": 0.97, "carryover": 1.0, "trend": 0.99, "trait": 1.0, "behaviour": 1.0}
SKILL_PSEUDO = 8.0
POPULATION_LOG_MSE = 0.09
SPREAD_PSEUDO = 6.0
Z80 = NormalDist().inv_cdf(0.9)
INTERVAL_WIDEN = 1.0
TOLERANCE_MINUTES = 10.0


def parts_of(opinion: Opinion) -> frozenset[str]:
    return frozenset(opinion.analysis_result.get("forecastParts") or OWN_PARTS[opinion.agent_type])


def relative_skill(ledger: Ledger, parts: frozenset[str]) -> tuple[float, Backtest]:
    """Backtest MAE of `parts` over the level's, shrunk toward the population's; lower is better."""
    bt, base = ledger.backtest(parts), ledger.backtest(frozenset())
    population = math.prod(POPULATION_RELATIVE_MAE[k] for k in parts)
    if not bt.n or not base.mae:
        return population, bt
    user = bt.mae / base.mae  # type: ignore[operator]
    return (bt.n * user + SKILL_PSEUDO * population) / (bt.n + SKILL_PSEUDO), bt


def spread(bt: Backtest) -> float:
    """Shrunk root mean squared log residual: the forecaster's log-scale error SD."""
    ss = sum(r * r for r in bt.log_residuals)
    return math.sqrt((ss + SPREAD_PSEUDO * POPULATION_LOG_MSE) / (bt.n + SPREAD_PSEUDO))


MAX_SOL = 24 * 60.0  # a night's SOL cannot pass a day (schemas.debate.SolMinutes)


def interval(log_forecast: float, sd: float) -> tuple[float, float]:
    """The 80 % interval around a log forecast, within what a night's SOL can be."""
    half = Z80 * INTERVAL_WIDEN * sd
    return min(math.exp(log_forecast - half), MAX_SOL), min(math.exp(log_forecast + half), MAX_SOL)


def within_ten(sol: float, sd: float) -> float:
    """P(|SOL - sol| <= 10 min) when log SOL ~ N(log sol, sd): the documented confidence of a forecast."""
    normal = NormalDist()
    hi = math.log(sol + TOLERANCE_MINUTES) - math.log(sol)
    lo = math.log(sol - TOLERANCE_MINUTES) - math.log(sol) if sol > TOLERANCE_MINUTES else -math.inf
    return normal.cdf(hi / sd) - (normal.cdf(lo / sd) if lo != -math.inf else 0.0)


def _minutes(ledger: Ledger, k: str) -> float:
    assert ledger.level is not None
    return math.exp(ledger.level + ledger.tonight[k]) - math.exp(ledger.level)


def argue(agent: AgentType, ledger: Ledger, previous: Sequence[Opinion]) -> tuple[frozenset[str], list[str]]:
    """The adjustments `agent` forecasts with this round, and the sentences saying why it changed them."""
    own = next((o for o in previous if o.agent_type is agent), None)
    parts = parts_of(own) if own is not None else OWN_PARTS[agent]
    notes: list[str] = []
    if own is None:
        return parts, notes
    score, _ = relative_skill(ledger, parts)
    peers = sorted(((relative_skill(ledger, parts_of(o))[0], o) for o in previous if o.agent_type is not agent),
                   key=lambda p: p[0])
    for peer_score, peer in peers:
        if peer_score >= score or parts_of(peer) <= parts:
            continue
        candidate = parts | parts_of(peer)
        cand_score, cand_bt = relative_skill(ledger, candidate)
        if cand_score < score:
            added = ", ".join(f"{PART_NAMES[k]} {_minutes(ledger, k):+.1f}분" for k in sorted(candidate - parts))
            result = (f"내 백테스트 MAE가 {cand_bt.mae:.1f}분으로 줄어" if cand_bt.mae is not None else
                      "과거 밤이 부족해 인구 집단의 오차로 판단하면 나아져")
            notes.append(f"{peer.agent_type.value}의 백테스트(상대 오차 {peer_score:.2f})가 내 것({score:.2f})보다 나아"
                         f" 그 근거({added})를 반영하니 {result} 수정합니다.")
            parts, score = candidate, cand_score
    return parts, notes


def describe_forecast(ledger: Ledger, parts: frozenset[str], bt: Backtest) -> str:
    assert ledger.level is not None
    steps = "".join(f", {PART_NAMES[k]} {_minutes(ledger, k):+.1f}분" for k in sorted(parts))
    sol = math.exp(ledger.forecast_log(parts))  # type: ignore[arg-type]
    tested = (f" 과거 {bt.n}일을 하루씩 앞서 예측한 백테스트 MAE {bt.mae:.1f}분." if bt.n else
              " 백테스트할 과거 밤이 부족해 인구 집단의 오차를 사용합니다.")
    return f"최근 수면 일지의 가중 로그평균 수준 {math.exp(ledger.level):.1f}분{steps} → {sol:.1f}분.{tested}"


def judge_log(ledger: Ledger, opinions: Sequence[Opinion]) -> tuple[float, float, dict[AgentType, float]]:
    """The skill-weighted log forecast of `opinions`, its spread, and each expert's share of the weight."""
    weights: dict[AgentType, float] = {}
    logs: dict[AgentType, float] = {}
    origin: dict[AgentType, list[float]] = {}
    for o in opinions:
        parts = parts_of(o)
        weights[o.agent_type] = 1 / spread(ledger.backtest(parts)) ** 2
        logs[o.agent_type] = ledger.forecast_log(parts)  # type: ignore[assignment]
        origin[o.agent_type] = ledger.origin_forecasts(parts)
    total = sum(weights.values())
    log_f = sum(weights[a] * logs[a] for a in weights) / total
    combined = [sum(weights[a] * origin[a][i] for a in weights) / total for i in range(len(ledger.origin_levels))]
    sd = spread(backtest_of(combined, ledger.origin_truths))
    return log_f, sd, {a: weights[a] / total for a in weights}
