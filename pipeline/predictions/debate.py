"""The Chain-of-Debate round engine and its judge: pure functions apart from the `now` clock passed in.

A round asks all four experts; round n hears round n-1's opinions. Rounds go on until the experts agree
(`CONSENSUS_THRESHOLD`), `MAX_ROUNDS` is reached, or consensus stops improving (the adaptive break of
multi-agent debate, Liang et al. 2023). Timings come only from `now`, so with a fixed clock a round is
fully reproducible: `response_time_ms` is the `now()` difference around each expert, in whole ms.
The judge's reasoning text is Korean, like the experts' key points.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from datetime import datetime

from pipeline.predictions.deliberation import NO_DATA_CONFIDENCE, pooled, precision
from pipeline.predictions.experts import EXPERTS, has_any_data
from pipeline.predictions.features import extract
from schemas.debate import DebateOutcome, Opinion, QualityMetrics, RoundRecord
from schemas.sleep import DataSnapshot

Clock = Callable[[], datetime]

CONSENSUS_THRESHOLD = 0.8
MAX_ROUNDS = 4
MIN_GAIN = 0.02  # a round that raises consensus by less than this has stalled
# A spread of 20 min is about the whole effect of a CBT-I course (19 min, Trauer et al. 2015): experts that
# far apart do not agree at all.
CONSENSUS_SCALE = 20.0
MAX_FINDINGS = 5
AGGREGATION = "precision_weighted_mean"


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


def run_round(snapshot: DataSnapshot, transcript: Sequence[RoundRecord], now: Clock) -> RoundRecord:
    """The next round: every expert's opinion, having heard the previous round's."""
    if not has_any_data(snapshot):
        raise DebateFailed("no sleep diary, questionnaire, mobile or treatment data for any expert")
    if len(transcript) >= MAX_ROUNDS:
        raise DebateFailed(f"the debate already ran the maximum of {MAX_ROUNDS} rounds")
    features = extract(snapshot)
    previous = transcript[-1].expert_opinions if transcript else []
    start = now()
    opinions = []
    for agent, expert in EXPERTS.items():
        began = now()
        try:
            opinion = expert(snapshot, features, previous)
        except ValueError as exc:  # data the schema let through but no expert can read (pydantic errors too)
            raise DebateFailed(f"{agent.value} could not form an opinion: {exc}") from exc
        opinions.append(opinion.model_copy(update={"response_time_ms": _ms(began, now())}))
    return RoundRecord(round_number=len(transcript) + 1, start_time=start, end_time=now(),
                       consensus_score=consensus_score(opinions), expert_opinions=opinions)


def should_stop(transcript: Sequence[RoundRecord]) -> bool:
    """Stop on consensus, at MAX_ROUNDS, or when a round improved consensus by less than MIN_GAIN."""
    if not transcript:
        return False
    last = transcript[-1].consensus_score
    if last >= CONSENSUS_THRESHOLD or len(transcript) >= MAX_ROUNDS:
        return True
    return len(transcript) >= 2 and last - transcript[-2].consensus_score < MIN_GAIN


def _merged(lists: Sequence[Sequence[str]]) -> list[str]:
    seen: dict[str, None] = {}
    for items in lists:
        seen.update((item, None) for item in items)
    return list(seen)[:MAX_FINDINGS]


def _reasoning(transcript: Sequence[RoundRecord], sol: float, plain: float, reached: bool) -> str:
    last = transcript[-1]
    ranked = sorted(last.expert_opinions, key=lambda o: -o.confidence)
    views = ", ".join(f"{o.agent_type.value} {o.sol_score:.1f}분(신뢰도 {o.confidence:.2f})" for o in ranked)
    verdict = "로 합의에 도달" if reached else f", 합의 기준 {CONSENSUS_THRESHOLD} 미달"
    return (f"{len(transcript)}라운드 토론 후 마지막 라운드 의견을 정밀도(신뢰도 r/(1-r))로 가중 평균하여"
            f" SOL {sol:.1f}분으로 판단했습니다 (단순 평균 {plain:.1f}분). 최종 합의 점수"
            f" {last.consensus_score:.2f}{verdict}. 전문가 의견: {views}.")


def conclude(snapshot: DataSnapshot, transcript: Sequence[RoundRecord]) -> DebateOutcome:
    """The judge: a precision-weighted mean of the last round, a discounted confidence, merged findings.

    sol = sum(w_i * s_i) / sum(w_i) over the last round, w_i = c_i / (1 - c_i) (c = confidence, s = SOL):
    confidence as reliability makes w the inverse error variance. confidence = (sum(c_i^2) / sum(c_i))
    * (0.5 + 0.5 * final consensus): as sure as its experts, less so while they still disagree.
    Findings and concerns are the experts' key points and risk factors, most confident expert first,
    leaving out experts that had no data of their own.
    """
    if not transcript:
        raise DebateFailed("no debate rounds to conclude")
    if not has_any_data(snapshot):
        raise DebateFailed("no data behind the opinions")
    last = transcript[-1]
    opinions = last.expert_opinions
    sol, plain = pooled(opinions), statistics.fmean(o.sol_score for o in opinions)
    total = sum(o.confidence for o in opinions) or 1.0
    confidence = sum(o.confidence**2 for o in opinions) / total * (0.5 + 0.5 * last.consensus_score)
    reached = last.consensus_score >= CONSENSUS_THRESHOLD
    informed = sorted((o for o in opinions if o.confidence > NO_DATA_CONFIDENCE), key=lambda o: -o.confidence)
    return DebateOutcome(
        sol_score=sol,
        confidence_score=round(min(confidence, 1.0), 3),
        consensus_reached=reached,
        final_consensus_score=last.consensus_score,
        total_rounds=len(transcript),
        key_findings=_merged([o.key_points for o in informed]),
        concern_areas=_merged([o.risk_factors for o in informed]),
        judge_reasoning=_reasoning(transcript, sol, plain, reached),
        aggregation=AGGREGATION,
        baseline_plain_average=plain,
        per_agent_final={o.agent_type: o.sol_score for o in opinions},
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
    while not should_stop(transcript):
        transcript.append(run_round(snapshot, transcript, now))
    return transcript, conclude(snapshot, transcript)
