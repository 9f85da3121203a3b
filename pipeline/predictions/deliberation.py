"""What experts share: their view before the debate, its labels, and how a view changes on hearing others.

In a later round an expert moves from its previous answer toward the precision-weighted answer of the
others by the share of its own uncertainty, (1 - confidence) (multi-agent debate, Du et al. 2023).
Confidence reflects the expert's own data only, so agreeing does not inflate it. Precision treats
confidence as reliability r: an estimate of reliability r has error variance proportional to (1 - r) / r,
so inverse-variance pooling weighs it r / (1 - r).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.debate import AgentType, Evidence, OnsetPattern, Opinion, SolConsistency, SolTrend

PRIOR_SOL = 30.0  # neutral prior for a user of a CBT-I service: the insomnia threshold (Lichstein et al. 2003)
NO_DATA_CONFIDENCE = 0.1
REVISION_MINUTES = 0.5  # a move smaller than this is rounding, not a changed view
INSOMNIA_SOL = 30.0  # SOL > 30 min: the quantitative insomnia criterion (Lichstein et al. 2003)
GOOD_SOL = 20.0  # healthy adults mostly fall asleep within 10-20 min (Ohayon et al. 2004 meta-analysis)
MAX_PRECISION_CONFIDENCE = 0.95  # keeps r / (1 - r) finite


@dataclass
class View:
    """What an expert concludes from its own data, before it hears the others."""

    sol: float
    confidence: float
    key_points: list[str] = field(default_factory=list)
    risk_factors: list[str] = field(default_factory=list)
    analysis: dict[str, Any] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)
    reasoning: str = ""
    missing: str | None = None  # what the expert lacks when it has no data of its own (`no_data`)


def trend_label(per_day: float | None) -> SolTrend | None:
    """IMPROVING/WORSENING when SOL moves 3.5 min or more per week."""
    if per_day is None:
        return None
    return SolTrend.IMPROVING if per_day <= -0.5 else SolTrend.WORSENING if per_day >= 0.5 else SolTrend.STABLE


def consistency_label(cv: float | None) -> SolConsistency | None:
    """Night-to-night coefficient of variation: < 0.3 stable, < 0.6 variable, else erratic."""
    if cv is None:
        return None
    return SolConsistency.STABLE if cv < 0.3 else SolConsistency.VARIABLE if cv < 0.6 else SolConsistency.ERRATIC


def onset_label(sol: float) -> OnsetPattern:
    """GOOD within 20 min, FAIR up to the 30-min insomnia threshold, POOR beyond."""
    return OnsetPattern.GOOD if sol <= GOOD_SOL else OnsetPattern.FAIR if sol <= INSOMNIA_SOL else OnsetPattern.POOR


def describe(view: View, trend: SolTrend | None, consistency: SolConsistency | None, **extra: Any) -> None:
    """Fill the seed's analysisResult; a label is None where the expert has no basis for it."""
    view.analysis = {"solTrend": trend, "solConsistency": consistency, "sleepOnsetPatterns": onset_label(view.sol),
                     "keyPatterns": list(view.key_points), "riskFactors": list(view.risk_factors), **extra}


def no_data(what: str, sol: float = PRIOR_SOL, confidence: float = NO_DATA_CONFIDENCE) -> View:
    """The view of an expert without its data: a prior, low confidence, and a key point saying so."""
    view = View(sol=sol, confidence=confidence, key_points=[f"{what}: 사전값 {sol:.0f}분 사용, 낮은 신뢰도"],
                reasoning=f"{what}. 근거 자료가 없어 사전값 {sol:.0f}분을 제시합니다.", missing=what)
    describe(view, None, None)
    return view


def precision(confidence: float) -> float:
    """Weight of an opinion: confidence read as reliability r gives the inverse error variance, r / (1 - r)."""
    c = min(confidence, MAX_PRECISION_CONFIDENCE)
    return c / (1 - c)


def pooled(opinions: Sequence[Opinion]) -> float:
    """Precision-weighted mean SOL of `opinions` (plain mean if every weight is 0)."""
    weights = [precision(o.confidence) for o in opinions]
    if sum(weights) == 0:
        return statistics.fmean(o.sol_score for o in opinions)
    return sum(w * o.sol_score for w, o in zip(weights, opinions, strict=True)) / sum(weights)


def deliberate(agent: AgentType, view: View, previous: Sequence[Opinion]) -> Opinion:
    """The opinion `view` becomes after hearing `previous`: (1 - confidence) of the way toward the others."""
    own = next((o for o in previous if o.agent_type is agent), None)
    others = [o for o in previous if o.agent_type is not agent]
    start = own.sol_score if own is not None else view.sol
    reasoning, sol = view.reasoning, start
    if others:
        target = pooled(others)
        sol = start + (1 - view.confidence) * (target - start)
        reasoning += (f" 다른 전문가들의 정밀도 가중 의견 {target:.1f}분을 듣고, 자기 불확실성"
                      f" {1 - view.confidence:.2f}만큼 다가가 {start:.1f}분 → {sol:.1f}분.")
    return Opinion(agent_type=agent, sol_score=sol, confidence=round(view.confidence, 3),
                   key_points=view.key_points, risk_factors=view.risk_factors, analysis_result=view.analysis,
                   evidence=view.evidence, revised=own is not None and abs(sol - start) >= REVISION_MINUTES,
                   reasoning=reasoning)
