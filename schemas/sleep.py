"""The predictions stream's wire contract: what arrives on `sleep.records` (docs/architecture.md "Topics", seed 004).

One message: `{"tenant": ..., "user_id": ..., "kind": "diary|questionnaire|mobile|treatment",
"date": "YYYY-MM-DD", "data": {...}}`; `data` is the model of its kind below. Clock times are the user's
local wall-clock times ("HH:MM", 24 h), as a sleep diary records them; the treatment record names the
user's IANA time zone. A message may also be a JSON array of such objects (a batch).
"""

from __future__ import annotations

from datetime import date, time
from enum import StrEnum
from typing import Annotated, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Minutes = Annotated[float, Field(ge=0, le=24 * 60)]
Ident = Annotated[str, Field(min_length=1, max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SleepDiary(_Strict):
    """One night of a consensus sleep diary (Carney et al. 2012): the night that starts on `date`."""

    bedtime: time = Field(description="got into bed, local HH:MM")
    lights_off: time = Field(description="tried to sleep, local HH:MM")
    sol_minutes: Minutes = Field(description="sleep-onset latency: lights off to sleep")
    awakenings: Annotated[int, Field(ge=0, le=100)] = 0
    waso_minutes: Minutes = Field(default=0, description="minutes awake after sleep onset")
    wake_time: time = Field(description="final awakening, local HH:MM")
    time_in_bed_minutes: Minutes
    total_sleep_minutes: Minutes

    @model_validator(mode="after")
    def _consistent(self) -> SleepDiary:
        if self.total_sleep_minutes > self.time_in_bed_minutes:
            raise ValueError("total_sleep_minutes cannot exceed time_in_bed_minutes")
        if self.sol_minutes + self.waso_minutes > self.time_in_bed_minutes:
            raise ValueError("sol_minutes + waso_minutes cannot exceed time_in_bed_minutes")
        return self

    @property
    def sleep_efficiency(self) -> float:
        """Total sleep time / time in bed (0-1); CBT-I aims at >= 0.85."""
        return self.total_sleep_minutes / self.time_in_bed_minutes if self.time_in_bed_minutes else 0.0


class Instrument(StrEnum):
    ISI = "ISI"  # Insomnia Severity Index, 0-28 (Bastien et al. 2001)
    PSQI = "PSQI"  # Pittsburgh Sleep Quality Index, 0-21 (Buysse et al. 1989)
    PSAS = "PSAS"  # Pre-Sleep Arousal Scale, 16-80: cognitive + somatic, 8-40 each (Nicassio et al. 1985)
    DBAS16 = "DBAS16"  # Dysfunctional Beliefs and Attitudes about Sleep, mean item 0-10 (Morin et al. 2007)


SCORE_RANGE: dict[Instrument, tuple[float, float]] = {
    Instrument.ISI: (0, 28),
    Instrument.PSQI: (0, 21),
    Instrument.PSAS: (16, 80),
    Instrument.DBAS16: (0, 10),
}


class Questionnaire(_Strict):
    """One completed questionnaire; `subscales` e.g. PSAS `cognitive`/`somatic`, PSQI `latency` (0-3)."""

    instrument: Instrument
    total_score: float
    subscales: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _in_range(self) -> Questionnaire:
        lo, hi = SCORE_RANGE[self.instrument]
        if not lo <= self.total_score <= hi:
            raise ValueError(f"{self.instrument.value} total_score must be within {lo:g}-{hi:g}")
        return self


class MobileAnalytics(_Strict):
    """One day of phone-derived signals."""

    screen_time_before_bed_minutes: Annotated[float, Field(ge=0, le=240)] = Field(
        description="screen use in the 2 h before lights off")
    steps: Annotated[int, Field(ge=0, le=200_000)] | None = None
    active_minutes: Minutes | None = None
    daylight_minutes: Minutes | None = Field(default=None, description="time outdoors in daylight")
    evening_light_lux: Annotated[float, Field(ge=0, le=100_000)] | None = Field(
        default=None, description="mean ambient light in the 2 h before lights off")


class TreatmentPhase(StrEnum):
    ASSESSMENT = "ASSESSMENT"
    EARLY = "EARLY"  # weeks 1-2: sleep restriction and stimulus control start
    MID = "MID"  # weeks 3-5: titration, cognitive work
    LATE = "LATE"  # weeks 6-8: relapse prevention
    MAINTENANCE = "MAINTENANCE"


class TreatmentCycle(_Strict):
    """The user's current CBT-I cycle, as the treatment service knows it (latest record wins)."""

    phase: TreatmentPhase
    cycle_week: Annotated[int, Field(ge=0, le=52)] = 0
    bedtime_goal: time | None = Field(default=None, description="prescribed lights-off time, local HH:MM")
    wake_goal: time | None = None
    prescribed_time_in_bed_minutes: Minutes | None = None
    timezone: str = "UTC"
    paused: bool = False

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {v!r}") from None
        return v


RecordKind = Literal["diary", "questionnaire", "mobile", "treatment"]
KIND_MODELS: dict[str, type[BaseModel]] = {
    "diary": SleepDiary,
    "questionnaire": Questionnaire,
    "mobile": MobileAnalytics,
    "treatment": TreatmentCycle,
}


class SleepRecord(_Strict):
    """One message on `sleep.records` (or one element of a batch); `data` is checked against its kind."""

    tenant: Ident
    user_id: Ident
    kind: RecordKind
    date: date
    data: SleepDiary | Questionnaire | MobileAnalytics | TreatmentCycle

    @model_validator(mode="before")
    @classmethod
    def _data_of_kind(cls, raw: object) -> object:
        if not isinstance(raw, dict):
            return raw
        kind = raw.get("kind")
        # A kind that is a list or an object is unhashable: `in` would raise TypeError, which pydantic passes on.
        if isinstance(kind, str) and kind in KIND_MODELS and isinstance(raw.get("data"), dict):
            raw = {**raw, "data": KIND_MODELS[kind].model_validate(raw["data"])}
        return raw

    @model_validator(mode="after")
    def _kind_matches(self) -> SleepRecord:
        if not isinstance(self.data, KIND_MODELS[self.kind]):
            raise ValueError(f"data is not a {self.kind} record")
        return self


T = TypeVar("T")


class Dated(BaseModel, Generic[T]):
    """A record with the date it belongs to, as held in a data snapshot."""

    model_config = ConfigDict(frozen=True)
    date: date
    data: T


class DataSnapshot(BaseModel):
    """Everything the debate may use about one user, copied into the prediction request.

    State travels in messages (docs/decisions.md "Who owns what state"): the experts never read DuckDB,
    so any worker can run a round.
    Lists are sorted by date, oldest first; `treatment` is the latest treatment record, if any.
    """

    model_config = ConfigDict(frozen=True)
    tenant: str
    user_id: str
    diary: list[Dated[SleepDiary]] = Field(default_factory=list)
    questionnaires: list[Dated[Questionnaire]] = Field(default_factory=list)
    mobile: list[Dated[MobileAnalytics]] = Field(default_factory=list)
    treatment: TreatmentCycle | None = None
