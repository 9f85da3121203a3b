"""What seed 004's routes answer: the envelope and each route's `data`, as the OpenAPI document states them.

Every answer is `{"success": true, "data": ..., "meta": {"requestId", "timestamp", "version"}}` (seed 004's
"API 응답 형식"); errors are `CodErrorEnvelope` (api/responses.py). Attributes are snake_case, the wire is the
seed's camelCase. Times are ISO 8601 strings in UTC with a `Z`. The Schemathesis run
(tests/security/test_openapi_fuzz.py) checks real answers against these.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from schemas.debate import AgentType, Evidence, Opinion, QualityMetrics, RecommendationSet

T = TypeVar("T")


class _Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class CodMeta(BaseModel):
    requestId: str  # noqa: N815 - the seed's field names
    timestamp: str
    version: str


class Envelope(BaseModel, Generic[T]):
    success: Literal[True]
    data: T
    meta: CodMeta


# --- §1 predictions ---------------------------------------------------------------------------------------


class Completeness(_Out):
    sleep_days: int
    questionnaire_available: bool
    mobile_data_available: bool
    total_score: float


class PredictAccepted(_Out):
    prediction_id: str
    status: Literal["IN_PROGRESS"]
    estimated_completion_time: str
    participating_agents: int
    data_completeness: Completeness


class RecordsAccepted(_Out):
    accepted: int
    topic: str


class PredictionInterval(_Out):
    """Where tonight's SOL falls with probability `level`, from the debate's backtested spread."""

    lower: float
    upper: float
    level: float


class Baselines(_Out):
    """What the debate is measured against: the last round's plain average and the diary's naive forecasts."""

    plain_average: float | None = None
    last_night: float | None = None
    mean7: float | None = None
    median7: float | None = None


class PredictionResult(_Out):
    sol_score: int | None
    confidence_score: float | None
    participating_agents: int
    consensus_reached: bool | None
    key_findings: list[str] | None
    concern_areas: list[str] | None
    prediction_interval: PredictionInterval | None = None
    baselines: Baselines | None = None


class DataUsed(_Out):
    sleep_data_days: int | None
    questionnaire_included: bool | None
    mobile_data_available: bool | None
    data_quality_score: float | None


class DebateInfo(_Out):
    session_id: str | None
    total_rounds: int | None
    final_consensus_score: float | None
    debate_time: float | None


class PredictionError(_Out):
    code: str | None
    message: str | None


class Prediction(_Out):
    prediction_id: str
    user_id: str
    prediction_date: str = Field(description="the day it was requested (YYYY-MM-DD)")
    status: Literal["IN_PROGRESS", "COMPLETED", "FAILED"]
    processing_time: float | None
    trigger_type: str | None
    result: PredictionResult | None = Field(description="set once COMPLETED")
    data_used: DataUsed
    debate_info: DebateInfo
    error: PredictionError | None = Field(default=None, description="present when FAILED")


class HistoryItem(_Out):
    prediction_id: str
    prediction_date: str
    status: str
    sol_score: int | None
    confidence_score: float | None
    processing_time: float | None
    participating_agents: int
    trigger_type: str | None


class Pagination(_Out):
    total: int
    limit: int
    offset: int
    has_next: bool


class HistorySummary(_Out):
    average_sol_score: int | None = Field(alias="averageSOLScore")
    average_confidence_score: float | None
    total_predictions: int
    last_prediction_date: str | None


class History(_Out):
    predictions: list[HistoryItem]
    pagination: Pagination
    summary: HistorySummary


# --- §3 analyses -------------------------------------------------------------------------------------------


class Round(_Out):
    round_number: int
    start_time: str
    end_time: str
    consensus_score: float
    expert_opinions: list[Opinion]


class AnalysisRef(_Out):
    analysis_id: str
    agent_type: AgentType
    sol_score: float | None
    confidence: float | None


class Judge(_Out):
    aggregation: str | None
    judge_reasoning: str | None
    baseline_plain_average: float | None
    interval_low: float | None = None
    interval_high: float | None = None
    interval_level: float | None = None
    first_round_sol: float | None = Field(default=None, description="the judge's rule applied to round 1")
    naive_forecasts: dict[str, float] | None = None
    expert_weights: dict[str, float] | None = Field(default=None, description="each expert's share of the weight")


class Debate(_Out):
    session_id: str
    prediction_id: str
    status: str
    participating_agents: int
    total_rounds: int | None
    consensus_reached: bool | None
    final_consensus_score: float | None
    total_debate_time: float | None
    judge: Judge
    rounds: list[Round]
    quality_metrics: QualityMetrics | None
    analyses: list[AnalysisRef]


class ExpertAnalysis(_Out):
    analysis_id: str
    prediction_id: str
    agent_type: AgentType
    sol_score: float | None
    confidence_score: float | None
    processing_time: float | None
    analysis_result: dict[str, Any] = Field(description="solTrend, solConsistency, sleepOnsetPatterns, …, "
                                                        "keyPatterns, riskFactors")
    evidence_data: list[Evidence]
    reasoning: str | None
    llm_info: dict[str, Any] = Field(description="model, version, promptVersion, tokenUsage")


# --- §2 schedules ------------------------------------------------------------------------------------------


class Schedule(_Out):
    schedule_id: str
    user_id: str
    bedtime_goal: str
    scheduled_trigger_time: str
    status: str
    retry_count: int
    next_execution: str | None
    timezone: str | None
    last_prediction_id: str | None


class ScheduleUpdated(Schedule):
    previous_schedule_id: str | None
    reason: str


# --- §4 performance ----------------------------------------------------------------------------------------


class Overall(_Out):
    total_predictions: int
    success_rate: float | None
    average_processing_time: float | None
    average_accuracy: float | None
    observed_predictions: int
    error_rate: float | None


class DailyCount(_Out):
    date: str
    count: int


class DailyTime(_Out):
    date: str
    avg_time: float | None


class Trends(_Out):
    prediction_volume: list[DailyCount]
    processing_time: list[DailyTime]


class Alert(_Out):
    level: Literal["WARNING", "CRITICAL"]
    message: str
    timestamp: str


class PerformanceOverview(_Out):
    period: Literal["1d", "7d", "30d"]
    overall: Overall
    trends: Trends
    alerts: list[Alert]


class AgentMetrics(_Out):
    total_analyses: int
    success_rate: float | None
    average_response_time: float | None
    average_confidence: float | None
    consistency_score: float | None


class AgentPerformanceFigures(_Out):
    accuracy: float | None
    reliability: float | None
    debate_participation: float | None


class AgentPerformance(_Out):
    agent_type: AgentType
    metrics: AgentMetrics
    performance: AgentPerformanceFigures


class Comparison(_Out):
    best_performing: AgentType | None
    improvement_needed: AgentType | None
    overall_ranking: list[AgentType]


class AgentsPerformance(_Out):
    period: Literal["1d", "7d", "30d"]
    agents: list[AgentPerformance]
    comparison: Comparison


# --- §5 data management ------------------------------------------------------------------------------------


class PredictionDetails(Prediction):
    debate_rounds: list[Round]
    analyses: list[AnalysisRef]
    recommendations: RecommendationSet | None


class UserPredictions(_Out):
    user_id: str
    predictions: list[PredictionDetails | Prediction]
    total: int
    limit: int
    include_details: bool


class Archived(_Out):
    user_id: str
    status: Literal["ARCHIVED"]
    reason: str
    retention_policy: str
    rows_archived: dict[str, int]
    archived_at: str
    restore_url: str


class Restored(_Out):
    user_id: str
    status: Literal["RESTORED"]
    rows_restored: dict[str, int]
    reason: str


class Erased(_Out):
    user_id: str
    status: Literal["DELETED"]
    reason: str
    rows_deleted: dict[str, int]
    deleted_at: str


class Export(_Out):
    export_id: str
    status: Literal["IN_PROGRESS", "COMPLETED", "FAILED"]
    format: Literal["JSON", "CSV"]
    requested_at: str
    estimated_completion_time: str
    download_url: str | None
    expires_at: str | None
