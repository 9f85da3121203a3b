"""The predictions stream's messages between api and worker, and the seed-004 request bodies.

Topics (all keyed so one user's or one session's messages stay in order on one partition):
* `predictions.requests` (key user id): a `PredictionRequest`, carrying the user's data snapshot.
* `predictions.rounds` (key session id): a `RoundMessage`, the request plus the transcript so far; one
  message per debate round, so a worker killed mid-debate loses at most the round in flight.
* `predictions.results` (key prediction id): `PredictionEvent`s (a round recorded, the prediction completed
  or failed) that the api materializes.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from schemas.debate import DataCompleteness, DebateOutcome, QualityMetrics, RecommendationSet, RoundRecord
from schemas.sleep import DataSnapshot
from schemas.strict import Flag

PREDICTION_TIMEOUT_S = 25.0  # seed 004: COD_P002 past 25 s


class TriggerType(StrEnum):
    MANUAL_REQUEST = "MANUAL_REQUEST"
    AUTO_SCHEDULE = "AUTO_SCHEDULE"


class Priority(StrEnum):
    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    URGENT = "URGENT"


class PredictionStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class _Body(BaseModel):
    """Request bodies: the seed's camelCase names, unknown fields refused (a typo is a COD_001, not ignored)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class DateRange(_Body):
    start_date: date
    end_date: date

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.start_date > self.end_date:
            raise ValueError("startDate must not be after endDate")
        return self


class AnalysisScope(_Body):
    include_treatment_cycle_data: Flag = True
    include_questionnaire_data: Flag = True
    custom_date_range: DateRange | None = None


class PredictOptions(_Body):
    force_execution: Flag = False
    priority: Priority = Priority.NORMAL


class PredictBody(_Body):
    """`POST …/predict` (seed 004 §1.1)."""

    trigger_type: TriggerType = TriggerType.MANUAL_REQUEST
    user_id: Annotated[str, Field(min_length=1, max_length=128)]
    analysis_scope: AnalysisScope = Field(default_factory=AnalysisScope)
    options: PredictOptions = Field(default_factory=PredictOptions)


class ScheduleUpdateBody(_Body):
    """`PUT …/schedules/update` (seed 004 §2.2)."""

    user_id: Annotated[str, Field(min_length=1, max_length=128)]
    new_bedtime_goal: AwareDatetime
    reason: Annotated[str, Field(min_length=1, max_length=200)] = "BEDTIME_GOAL_CHANGED"
    force_reschedule: bool = False


class ArchiveBody(_Body):
    """`POST …/admin/users/{userId}/archive` (seed 004 §5.2)."""

    reason: Annotated[str, Field(min_length=1, max_length=200)]
    archive_date: date | None = None
    retention_policy: Literal["STANDARD_5_YEARS", "EXTENDED_10_YEARS", "LEGAL_HOLD"] = "STANDARD_5_YEARS"


class RestoreBody(_Body):
    """`POST …/admin/users/{userId}/restore` (added beside archive, docs/decisions.md)."""

    reason: Annotated[str, Field(min_length=1, max_length=200)] = "RESTORE_REQUESTED"


class EraseBody(_Body):
    """`DELETE …/admin/users/{userId}/data` (seed 004 §5.3): the second call carries the confirmation code."""

    reason: Annotated[str, Field(min_length=1, max_length=200)]
    confirmation_code: str | None = None
    cascade_delete: bool = True


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True)


class PredictionRequest(_Wire):
    """What the api publishes on `predictions.requests`: everything a worker needs, no DuckDB reads."""

    prediction_id: str
    session_id: str
    tenant: str
    user_id: str
    trigger_type: TriggerType
    priority: Priority = Priority.NORMAL
    requested_by: str
    requested_at: AwareDatetime
    deadline: AwareDatetime
    schedule_id: str | None = None
    completeness: DataCompleteness
    snapshot: DataSnapshot


class RoundMessage(_Wire):
    """One debate round to run: the request and the transcript of the rounds before it."""

    request: PredictionRequest
    transcript: list[RoundRecord] = Field(default_factory=list)


EventKind = Literal["round", "completed", "failed"]


class PredictionEvent(_Wire):
    """What the worker reports on `predictions.results`; the api turns these into rows."""

    kind: EventKind
    prediction_id: str
    session_id: str
    tenant: str
    user_id: str
    trigger_type: TriggerType
    requested_at: AwareDatetime
    priority: Priority = Priority.NORMAL
    requested_by: str = ""
    schedule_id: str | None = None
    target_date: date | None = Field(default=None, description="the night predicted: the day after the last diary")
    at: datetime
    round: RoundRecord | None = Field(default=None, description="the round recorded; on `completed`, the last one")
    outcome: DebateOutcome | None = None
    recommendations: RecommendationSet | None = None
    quality: QualityMetrics | None = None
    completeness: DataCompleteness | None = None
    error_code: str | None = None
    error_message: str | None = None
    llm_info: dict[str, Any] | None = Field(default=None, description="who worded the opinions (seed: llmInfo)")
