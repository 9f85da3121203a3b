"""The Chain-of-Debate round engine and its judge: pure functions apart from the `now` clock passed in.

A round asks all four experts; round n hears round n-1's opinions. Rounds go on until the experts agree
(`CONSENSUS_THRESHOLD`), `MAX_ROUNDS` is reached, or consensus stops improving (the adaptive break of
multi-agent debate, Liang et al. 2023); experts with a backtested diary always hear each other once
(`should_stop`). The judge weighs the last round by measured skill (skill.py). Timings come only from
`now`, so with a fixed clock a round is
fully reproducible: `response_time_ms` is the `now()` difference around each expert, in whole ms.
The judge's reasoning text is Korean, like the experts' key points.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pipeline.predictions import skill
from pipeline.predictions.deliberation import NO_DATA_CONFIDENCE, pooled, precision
from pipeline.predictions.experts import EXPERTS, Context, context, has_any_data
from pipeline.predictions.forecast import Ledger, naive_forecasts
from schemas.debate import AgentType, DebateOutcome, Opinion, QualityMetrics, RoundRecord
from schemas.sleep import DataSnapshot

Clock = Callable[[], datetime]

CONSENSUS_THRESHOLD = 0.8
MAX_ROUNDS = 4
MIN_GAIN = 0.02  # a round that raises consensus by less than this has stalled
# A spread of 20 min is about the whole effect of a CBT-I course (19 min, Trauer et al. 2015): experts that
# far apart do not agree at all.
CONSENSUS_SCALE = 20.0
MAX_FINDINGS = 5
AGGREGATION = "skill_weighted_log_mean"
NO_DIARY_AGGREGATION = "precision_weighted_mean"


class DebateFailed(Exception):
    """The debate cannot proceed or conclude (seed 004: COD_P003)."""


def _spread(opinions: Sequence[Opinion]) -> tuple[float, float]:
    """Precision-weighted mean and standard deviation of the SOL scores (equal weights if all are 0)."""
    weights = [precision(o.confidence) for o in opinions]
    if sum(weights) == 0:
        weights = [1.0] * len(opinions)
    total = sum(weights)
    mean = sum(w * o.sol_score for w, o in zip(weights, opinions, strict=True)) / total
    var = sum(w * (o.sol_score - mean) ** 2 for w, o in zip(weights, opinions, strict=True)) / total
    return mean, math.sqrt(var)


def consensus_score(opinions: Sequence[Opinion]) -> float:
    """1 - (precision-weighted SD of the SOL scores) / 20 min, clipped to 0-1; one opinion or none is 1.0.

    Weights are w = c / (1 - c) as in the judge, so an expert without data barely moves the score.
    """
    if len(opinions) < 2:
        return 1.0
    return round(max(0.0, 1.0 - _spread(opinions)[1] / CONSENSUS_SCALE), 4)


def _ms(start: datetime, end: datetime) -> int:
    return max(round((end - start).total_seconds() * 1000), 0)


def run_round(snapshot: DataSnapshot, transcript: Sequence[RoundRecord], now: Clock,
              ctx: Context | None = None) -> RoundRecord:
    """The next round: every expert's opinion, having heard the previous round's (`ctx`: the snapshot's, if known)."""
    if not has_any_data(snapshot):
        raise DebateFailed("no sleep diary, questionnaire, mobile or treatment data for any expert")
    if len(transcript) >= MAX_ROUNDS:
        raise DebateFailed(f"the debate already ran the maximum of {MAX_ROUNDS} rounds")
    previous = transcript[-1].expert_opinions if transcript else []
    start = now()
    try:
        ctx = ctx or context(snapshot)
    except (ValueError, ArithmeticError) as exc:
        raise DebateFailed(f"the data cannot be read: {exc}") from exc
    opinions = []
    for agent, expert in EXPERTS.items():
        began = now()
        try:
            opinion = expert(snapshot, ctx, previous)
        except (ValueError, ArithmeticError) as exc:  # data the schema let through but no expert can read
            raise DebateFailed(f"{agent.value} could not form an opinion: {exc}") from exc
        opinions.append(opinion.model_copy(update={"response_time_ms": _ms(began, now())}))
    return RoundRecord(round_number=len(transcript) + 1, start_time=start, end_time=now(),
                       consensus_score=consensus_score(opinions), expert_opinions=opinions)


def _tested(record: RoundRecord) -> bool:
    """True when the round's experts forecast from a diary they backtested (their opinions name their parts)."""
    return any("forecastParts" in o.analysis_result for o in record.expert_opinions)


def should_stop(transcript: Sequence[RoundRecord]) -> bool:
    """Stop on consensus, at MAX_ROUNDS, or when a round improved consensus by less than MIN_GAIN.

    Experts with a backtested diary always get a second round: round 1 is formed alone, and only in round 2
    do they hear each other's measured evidence. After that a round in which nobody revised ends the debate.
    """
    if not transcript:
        return False
    last = transcript[-1].consensus_score
    if len(transcript) >= MAX_ROUNDS:
        return True
    if _tested(transcript[-1]):
        if len(transcript) == 1:
            return False
        if not any(o.revised for o in transcript[-1].expert_opinions):
            return True
    if last >= CONSENSUS_THRESHOLD:
        return True
    return len(transcript) >= 2 and last - transcript[-2].consensus_score < MIN_GAIN


def _merged(lists: Sequence[Sequence[str]]) -> list[str]:
    seen: dict[str, None] = {}
    for items in lists:
        seen.update((item, None) for item in items)
    return list(seen)[:MAX_FINDINGS]


def _reasoning(transcript: Sequence[RoundRecord], verdict: _Verdict, plain: float, naive: dict[str, float]) -> str:
    last = transcript[-1]
    reached = last.consensus_score >= CONSENSUS_THRESHOLD
    if verdict.weights:
        ranked = sorted(last.expert_opinions, key=lambda o: -verdict.weights.get(o.agent_type, 0))
        views = ", ".join(f"{o.agent_type.value} {o.sol_score:.1f}분(가중치 {verdict.weights[o.agent_type]:.2f})"
                          for o in ranked)
        rule = "각 전문가의 백테스트 오차 역수로 가중한 로그 평균"
    else:
        ranked = sorted(last.expert_opinions, key=lambda o: -o.confidence)
        views = ", ".join(f"{o.agent_type.value} {o.sol_score:.1f}분(신뢰도 {o.confidence:.2f})" for o in ranked)
        rule = "수면 일지가 없어 백테스트 없이 정밀도(신뢰도 r/(1-r))로 가중한 평균"
    outcome = "로 합의에 도달" if reached else f", 합의 기준 {CONSENSUS_THRESHOLD} 미달"
    baselines = "".join(f", {NAIVE_NAMES[k]} {v:.1f}분" for k, v in naive.items())
    return (f"{len(transcript)}라운드 토론 후 마지막 라운드 의견을 {rule}으로 SOL {verdict.sol:.1f}분"
            f" (80% 구간 {verdict.low:.1f}-{verdict.high:.1f}분)으로 판단했습니다. 비교: 단순 평균 {plain:.1f}분"
            f"{baselines}. 최종 합의 점수 {last.consensus_score:.2f}{outcome}. 전문가 의견: {views}.")


NAIVE_NAMES = {"lastNight": "어젯밤", "mean7": "최근 7일 평균", "median7": "최근 7일 중앙값"}
NO_DIARY_LOG_SD = 0.6  # without a diary the instruments' SOL maps are all there is: a wide interval


@dataclass(frozen=True)
class _Verdict:
    sol: float
    low: float
    high: float
    confidence: float
    first_round: float
    weights: dict[AgentType, float]


def _verdict(snapshot: DataSnapshot, transcript: Sequence[RoundRecord], ctx: Context | None) -> _Verdict:
    """Skill-weighted with a diary (skill.judge_log); precision-weighted by confidence without one."""
    last, first = transcript[-1].expert_opinions, transcript[0].expert_opinions
    ledger = (ctx or context(snapshot)).ledger if snapshot.diary else Ledger.empty()
    if ledger.level is None:
        sol, sd, weights = pooled(last), NO_DIARY_LOG_SD, {}
        first_sol = pooled(first)
    else:
        log_sol, sd, weights = skill.judge_log(ledger, last)
        sol, first_sol = math.exp(log_sol), math.exp(skill.judge_log(ledger, first)[0])
    sol, first_sol = (min(max(v, 1.0), skill.MAX_SOL) for v in (sol, first_sol))
    low, high = skill.interval(math.log(sol), sd)
    return _Verdict(sol, low, high, skill.within_ten(sol, sd), first_sol, weights)


def conclude(snapshot: DataSnapshot, transcript: Sequence[RoundRecord], ctx: Context | None = None) -> DebateOutcome:
    """The judge: the last round weighed by measured skill, an 80 % interval, a confidence derived from it.

    With a diary: log sol = sum(w_i * log s_i) / sum(w_i) over the last round, w_i = 1 / spread_i^2, spread_i
    the expert's backtest RMS log residual shrunk toward the population's (skill.py); the interval is the
    same combination's backtest spread around it; confidence = P(|SOL - sol| <= 10 min) under that spread.
    Without a diary nothing can be backtested: the precision-weighted mean of the experts' confidences
    (w = c / (1 - c)) and a wide fixed spread. Beside it: the plain average of the last round, the naive
    forecasts (last night, mean and median of the last 7), and the judge's rule applied to round 1.
    Findings and concerns are the experts' key points and risk factors, most confident expert first,
    leaving out experts that had no data of their own.
    """
    if not transcript:
        raise DebateFailed("no debate rounds to conclude")
    if not has_any_data(snapshot):
        raise DebateFailed("no data behind the opinions")
    last, verdict = transcript[-1], _verdict(snapshot, transcript, ctx)
    opinions = last.expert_opinions
    plain = statistics.fmean(o.sol_score for o in opinions)
    naive = naive_forecasts([d.data.sol_minutes for d in snapshot.diary])
    informed = sorted((o for o in opinions if o.confidence > NO_DATA_CONFIDENCE
                       and o.analysis_result.get("ownData", True)), key=lambda o: -o.confidence)
    return DebateOutcome(
        sol_score=verdict.sol, confidence_score=round(min(verdict.confidence, 1.0), 3),
        consensus_reached=last.consensus_score >= CONSENSUS_THRESHOLD, final_consensus_score=last.consensus_score,
        total_rounds=len(transcript),
        key_findings=_merged([o.key_points for o in informed]),
        concern_areas=_merged([o.risk_factors for o in informed]),
        judge_reasoning=_reasoning(transcript, verdict, plain, naive),
        aggregation=AGGREGATION if verdict.weights else NO_DIARY_AGGREGATION,
        baseline_plain_average=plain,
        per_agent_final={o.agent_type: o.sol_score for o in opinions},
        interval_low=verdict.low, interval_high=verdict.high, first_round_sol=verdict.first_round,
        naive_forecasts={k: round(v, 1) for k, v in naive.items()},
        expert_weights={a: round(w, 3) for a, w in verdict.weights.items()},
    )


def quality_metrics(transcript: Sequence[RoundRecord]) -> QualityMetrics:
    """Seed 004's qualityMetrics of a debate.

    averageRoundTime: mean of (end_time - start_time) per round, in ms.
    opinionVariance: population variance of the last round's SOL scores / 20 min squared, clipped to 1.
    convergenceRate: 1 - (weighted SD of the last round) / (weighted SD of round 1), clipped to 0-1; 1.0 when
      round 1 already agreed exactly, 0.0 for a one-round debate that still disagreed.
    participationBalance: Pielou evenness of the experts' influence, H(p) / ln(n), where p_i is expert i's
      share of all precision weight c / (1 - c) over the rounds; 1.0 when every expert weighed the same.
    """
    if not transcript:
        raise DebateFailed("no debate rounds to measure")
    last = transcript[-1].expert_opinions
    variance = statistics.pvariance([o.sol_score for o in last]) / CONSENSUS_SCALE**2 if len(last) > 1 else 0.0
    first_sd, last_sd = _spread(transcript[0].expert_opinions)[1], _spread(last)[1]
    convergence = 1.0 if first_sd == 0 else max(0.0, min(1.0, 1 - last_sd / first_sd))
    influence: dict[str, float] = {}
    for record in transcript:
        for o in record.expert_opinions:
            influence[o.agent_type] = influence.get(o.agent_type, 0.0) + precision(o.confidence)
    total = sum(influence.values())
    shares = [v / total for v in influence.values() if v > 0] if total else []
    entropy = -sum(p * math.log(p) for p in shares)
    balance = entropy / math.log(len(influence)) if len(influence) > 1 else 1.0
    return QualityMetrics(
        average_round_time=round(statistics.fmean(r.duration_ms for r in transcript), 1),
        opinion_variance=round(min(variance, 1.0), 4),
        convergence_rate=round(convergence, 4),
        participation_balance=round(balance, 4),
    )


def run_debate(snapshot: DataSnapshot, now: Clock) -> tuple[list[RoundRecord], DebateOutcome]:
    """A whole debate in one process: rounds until `should_stop`, then the judge."""
    transcript: list[RoundRecord] = []
    ctx = context(snapshot) if has_any_data(snapshot) else None
    while not should_stop(transcript):
        transcript.append(run_round(snapshot, transcript, now, ctx))
    return transcript, conclude(snapshot, transcript, ctx)
