"""The predictions stream's debate models: opinions, rounds, the judge's outcome, recommendations (seed 004).

They travel in Kafka messages as JSON and are returned by the API. Attributes are snake_case;
`model_dump(by_alias=True, mode="json")` gives the seed's camelCase keys (`solScore`, `keyPoints`,
`expertOpinions`, `consensusScore`, ...). `Opinion.response_time_ms` is spelled `responseTime`, as in the seed.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from schemas.sleep import TreatmentPhase

Unit = Annotated[float, Field(ge=0, le=1)]
SolMinutes = Annotated[float, Field(ge=0, le=24 * 60)]


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class AgentType(StrEnum):
    SLEEP_PATTERN = "SLEEP_PATTERN"
    CBTI = "CBTI"
    QUESTIONNAIRE = "QUESTIONNAIRE"
    MOBILE_ANALYTICS = "MOBILE_ANALYTICS"


class SolTrend(StrEnum):
    IMPROVING = "IMPROVING"
    STABLE = "STABLE"
    WORSENING = "WORSENING"


class SolConsistency(StrEnum):
    STABLE = "STABLE"
    VARIABLE = "VARIABLE"
    ERRATIC = "ERRATIC"


class OnsetPattern(StrEnum):
    GOOD = "GOOD"
    FAIR = "FAIR"
    POOR = "POOR"


class DataPoint(_Wire):
    date: date
    value: float


class Evidence(_Wire):
    """One series an expert relied on (seed: `evidenceData`), e.g. `SOL_TREND` with its nightly values."""

    type: str
    data_points: list[DataPoint] = Field(default_factory=list)
    relevance_score: Unit


class Opinion(_Wire):
    """One expert's view in one round; `analysis_result` holds solTrend, solConsistency, sleepOnsetPatterns, ..."""

    agent_type: AgentType
    sol_score: SolMinutes
    confidence: Unit
    key_points: list[str] = Field(default_factory=list)
    risk_factors: list[str] = Field(default_factory=list)
    analysis_result: dict[str, Any] = Field(default_factory=dict)
    evidence: list[Evidence] = Field(default_factory=list)
    response_time_ms: Annotated[int, Field(ge=0)] = Field(default=0, alias="responseTime")
    revised: bool = False
    reasoning: str = ""

    @field_validator("sol_score")
    @classmethod
    def _tenth_of_a_minute(cls, v: float) -> float:
        return round(v, 1)


class RoundRecord(_Wire):
    round_number: Annotated[int, Field(ge=1)]
    start_time: AwareDatetime
    end_time: AwareDatetime
    consensus_score: Unit
    expert_opinions: list[Opinion]

    @property
    def duration_ms(self) -> float:
        """Wall time of the round in milliseconds."""
        return (self.end_time - self.start_time).total_seconds() * 1000


class DebateOutcome(_Wire):
    """The judge's verdict on a finished debate, with the plain average of the last round beside it."""

    sol_score: SolMinutes
    confidence_score: Unit
    consensus_reached: bool
    final_consensus_score: Unit
    total_rounds: Annotated[int, Field(ge=1)]
    key_findings: list[str]
    concern_areas: list[str]
    judge_reasoning: str
    aggregation: str
    baseline_plain_average: SolMinutes
    per_agent_final: dict[AgentType, float]
    interval_low: SolMinutes | None = None  # the 80 % prediction interval (None in results made before it existed)
    interval_high: SolMinutes | None = None
    interval_level: Unit = 0.8
    first_round_sol: SolMinutes | None = None  # the judge's rule on round 1: what the debate changed
    naive_forecasts: dict[str, float] = Field(default_factory=dict)  # lastNight, mean7, median7 of the diary
    expert_weights: dict[AgentType, float] = Field(default_factory=dict)  # each expert's share of the judge's weight

    @field_validator("sol_score", "baseline_plain_average", "interval_low", "interval_high", "first_round_sol")
    @classmethod
    def _tenth_of_a_minute(cls, v: float | None) -> float | None:
        return None if v is None else round(v, 1)


class QualityMetrics(_Wire):
    average_round_time: Annotated[float, Field(ge=0)]
    opinion_variance: Unit
    convergence_rate: Unit
    participation_balance: Unit


class RecommendationCategory(StrEnum):
    STIMULUS_CONTROL = "STIMULUS_CONTROL"
    SLEEP_RESTRICTION = "SLEEP_RESTRICTION"
    RELAXATION = "RELAXATION"
    SLEEP_HYGIENE = "SLEEP_HYGIENE"
    COGNITIVE = "COGNITIVE"
    CBTI = "CBTI"  # a technique taught inside the user's CBT-I course (seed 004's example: relaxation in MID)


class Difficulty(StrEnum):
    EASY = "EASY"
    MODERATE = "MODERATE"
    DIFFICULT = "DIFFICULT"


class Recommendation(_Wire):
    id: str
    category: RecommendationCategory
    priority: Annotated[int, Field(ge=1)]
    title: str
    description: str
    expected_impact: Unit
    difficulty: Difficulty
    estimated_time_to_effect: Annotated[int, Field(ge=0, description="days")]
    action_steps: list[str]
    rationale: str


class RecommendationSummary(_Wire):
    focus_areas: list[str]
    expected_overall_improvement: Unit
    implementation_plan: str


class RecommendationSet(_Wire):
    prediction_id: str
    treatment_phase: TreatmentPhase
    total_recommendations: Annotated[int, Field(ge=0)]
    primary_category: RecommendationCategory
    recommendations: list[Recommendation]
    summary: RecommendationSummary


class DataCompleteness(_Wire):
    sleep_days: Annotated[int, Field(ge=0)]
    questionnaire_available: bool
    mobile_data_available: bool
    treatment_available: bool
    total_score: Unit
