"""Pure feature extraction from a user's DataSnapshot, its completeness score, and building the snapshot.

Conventions: a diary entry dated D is the night that starts on D, so the night to predict (`target_date`)
is the day after the latest diary night. Weekend nights are Friday and Saturday nights (a free day follows).
Clock times are local; they are measured in minutes after noon so 23:30 and 00:30 are 60 minutes apart.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta

from schemas.debate import DataCompleteness
from schemas.sleep import (
    DataSnapshot,
    Dated,
    Instrument,
    MobileAnalytics,
    Questionnaire,
    SleepDiary,
    SleepRecord,
    TreatmentCycle,
    TreatmentPhase,
)

WEEKEND_NIGHTS = (4, 5)  # Friday, Saturday
RECENT_DAYS = 7
ON_TIME_MINUTES = 30  # lights off within 30 min of the prescribed time counts as keeping the schedule
FULL_DIARY_DAYS = 14  # two weeks of diary: the usual CBT-I baseline (Buysse et al. 2006)
FULL_MOBILE_DAYS = 7

# completeness(): the diary carries the prediction, the rest refines it.
COMPLETENESS_WEIGHTS = {"diary": 0.5, "questionnaires": 0.2, "mobile": 0.2, "treatment": 0.1}


@dataclass(frozen=True)
class Features:
    """Summary numbers of one snapshot; None where the data to compute them is missing."""

    target_date: date | None
    diary_days: int = 0
    sol_mean: float | None = None
    sol_median: float | None = None
    sol_sd: float | None = None
    sol_cv: float | None = None
    sol_slope: float | None = None  # minutes per day, least squares over the diary
    weekend_gap: float | None = None  # mean weekend-night SOL minus mean weekday-night SOL
    lights_off_sd: float | None = None
    sleep_efficiency: float | None = None  # sum TST / sum TIB over the diary
    efficiency_recent: float | None = None  # the same over the last 7 nights
    mean_tst: float | None = None
    waso_mean: float | None = None
    isi: float | None = None
    isi_change: float | None = None  # latest minus earliest ISI
    psqi: float | None = None
    psqi_latency: float | None = None  # PSQI component 2, 0-3
    psas_cognitive: float | None = None
    psas_somatic: float | None = None
    dbas: float | None = None
    questionnaire_age: dict[Instrument, int] | None = None  # days from the latest completion to target_date
    mobile_days: int = 0
    screen_minutes: float | None = None  # means over the last 7 days with mobile data
    evening_lux: float | None = None
    daylight_minutes: float | None = None
    active_minutes: float | None = None
    steps: float | None = None
    phase: TreatmentPhase | None = None
    cycle_week: int | None = None
    paused: bool = False
    bedtime_adherence: float | None = None  # share of nights with lights off within 30 min of the goal
    tib_adherence: float | None = None  # share of nights with time in bed within 30 min of the prescription
    prescribed_tib: float | None = None


def clock_minutes(t: time) -> float:
    """Minutes after noon, so a bedtime that crosses midnight stays continuous."""
    return (t.hour * 60 + t.minute + t.second / 60 - 720) % 1440


def slope(days: Sequence[float], values: Sequence[float]) -> float | None:
    """Least-squares slope of values over days; None with fewer than 3 points or no spread."""
    if len(values) < 3:
        return None
    mx, my = statistics.fmean(days), statistics.fmean(values)
    sxx = sum((x - mx) ** 2 for x in days)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(days, values, strict=True)) / sxx


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def is_weekend_night(d: date) -> bool:
    """True for Friday and Saturday nights."""
    return d.weekday() in WEEKEND_NIGHTS


def target_date(snapshot: DataSnapshot) -> date | None:
    """The night to predict: the day after the latest diary night, else after the latest record of any kind."""
    if snapshot.diary:
        return snapshot.diary[-1].date + timedelta(days=1)
    dates = [r.date for r in (*snapshot.questionnaires, *snapshot.mobile)]
    return max(dates) + timedelta(days=1) if dates else None


def weekend_gap(diary: Sequence[Dated[SleepDiary]]) -> float | None:
    """Mean weekend-night SOL minus mean weekday-night SOL; None without both kinds of night."""
    weekend = [d.data.sol_minutes for d in diary if is_weekend_night(d.date)]
    weekday = [d.data.sol_minutes for d in diary if not is_weekend_night(d.date)]
    return statistics.fmean(weekend) - statistics.fmean(weekday) if weekend and weekday else None


def _diary_features(diary: Sequence[Dated[SleepDiary]]) -> dict[str, object]:
    if not diary:
        return {}
    sols = [d.data.sol_minutes for d in diary]
    mean = statistics.fmean(sols)
    sd = statistics.stdev(sols) if len(sols) > 1 else None
    offsets = [(d.date - diary[0].date).days for d in diary]
    lights = [clock_minutes(d.data.lights_off) for d in diary]
    recent = diary[-RECENT_DAYS:]
    return {
        "diary_days": len(diary),
        "sol_mean": mean,
        "sol_median": statistics.median(sols),
        "sol_sd": sd,
        "sol_cv": sd / mean if sd is not None and mean > 0 else None,
        "sol_slope": slope(offsets, sols),
        "weekend_gap": weekend_gap(diary),
        "lights_off_sd": statistics.stdev(lights) if len(lights) > 1 else None,
        "sleep_efficiency": _efficiency(diary),
        "efficiency_recent": _efficiency(recent),
        "mean_tst": statistics.fmean(d.data.total_sleep_minutes for d in diary),
        "waso_mean": statistics.fmean(d.data.waso_minutes for d in diary),
    }


def _efficiency(diary: Sequence[Dated[SleepDiary]]) -> float | None:
    tib = sum(d.data.time_in_bed_minutes for d in diary)
    return sum(d.data.total_sleep_minutes for d in diary) / tib if tib else None


def _questionnaire_features(items: Sequence[Dated[Questionnaire]], target: date | None) -> dict[str, object]:
    latest: dict[Instrument, Dated[Questionnaire]] = {q.data.instrument: q for q in items}
    if not latest:
        return {}
    isis = [q.data.total_score for q in items if q.data.instrument is Instrument.ISI]
    psqi, psas = latest.get(Instrument.PSQI), latest.get(Instrument.PSAS)
    dbas, isi = latest.get(Instrument.DBAS16), latest.get(Instrument.ISI)
    return {
        "isi": isi.data.total_score if isi else None,
        "isi_change": isis[-1] - isis[0] if len(isis) > 1 else None,
        "psqi": psqi.data.total_score if psqi else None,
        "psqi_latency": psqi.data.subscales.get("latency") if psqi else None,
        "psas_cognitive": psas.data.subscales.get("cognitive") if psas else None,
        "psas_somatic": psas.data.subscales.get("somatic") if psas else None,
        "dbas": dbas.data.total_score if dbas else None,
        "questionnaire_age": {k: (target - q.date).days if target else 0 for k, q in latest.items()},
    }


def _mobile_features(mobile: Sequence[Dated[MobileAnalytics]]) -> dict[str, object]:
    if not mobile:
        return {}
    recent = [m.data for m in mobile[-RECENT_DAYS:]]
    return {
        "mobile_days": len(mobile),
        "screen_minutes": statistics.fmean(m.screen_time_before_bed_minutes for m in recent),
        "evening_lux": _mean(m.evening_light_lux for m in recent),
        "daylight_minutes": _mean(m.daylight_minutes for m in recent),
        "active_minutes": _mean(m.active_minutes for m in recent),
        "steps": _mean(m.steps for m in recent),
    }


def _treatment_features(treatment: TreatmentCycle | None, diary: Sequence[Dated[SleepDiary]]) -> dict[str, object]:
    if treatment is None:
        return {}
    out: dict[str, object] = {"phase": treatment.phase, "cycle_week": treatment.cycle_week,
                              "paused": treatment.paused, "prescribed_tib": treatment.prescribed_time_in_bed_minutes}
    if diary and treatment.bedtime_goal is not None:
        goal = clock_minutes(treatment.bedtime_goal)
        out["bedtime_adherence"] = statistics.fmean(
            abs(clock_minutes(d.data.lights_off) - goal) <= ON_TIME_MINUTES for d in diary)
    if diary and treatment.prescribed_time_in_bed_minutes is not None:
        tib = treatment.prescribed_time_in_bed_minutes
        out["tib_adherence"] = statistics.fmean(
            abs(d.data.time_in_bed_minutes - tib) <= ON_TIME_MINUTES for d in diary)
    return out


def extract(snapshot: DataSnapshot) -> Features:
    """All features of one snapshot."""
    target = target_date(snapshot)
    parts = {
        **_diary_features(snapshot.diary),
        **_questionnaire_features(snapshot.questionnaires, target),
        **_mobile_features(snapshot.mobile),
        **_treatment_features(snapshot.treatment, snapshot.diary),
    }
    return Features(target_date=target, **parts)  # type: ignore[arg-type]


def completeness(snapshot: DataSnapshot) -> DataCompleteness:
    """How much of what the experts use is present, 0-1.

    total = 0.5 * min(diary nights, 14) / 14 + 0.2 * (distinct instruments of ISI/PSQI/PSAS/DBAS16) / 4
          + 0.2 * min(mobile days, 7) / 7 + 0.1 * (treatment record present).
    """
    w = COMPLETENESS_WEIGHTS
    instruments = {q.data.instrument for q in snapshot.questionnaires}
    total = (w["diary"] * min(len(snapshot.diary), FULL_DIARY_DAYS) / FULL_DIARY_DAYS
             + w["questionnaires"] * len(instruments) / len(Instrument)
             + w["mobile"] * min(len(snapshot.mobile), FULL_MOBILE_DAYS) / FULL_MOBILE_DAYS
             + w["treatment"] * (snapshot.treatment is not None))
    return DataCompleteness(
        sleep_days=len(snapshot.diary),
        questionnaire_available=bool(instruments),
        mobile_data_available=bool(snapshot.mobile),
        treatment_available=snapshot.treatment is not None,
        total_score=round(min(total, 1.0), 3),
    )


def build_snapshot(
    tenant: str,
    user_id: str,
    records: Iterable[SleepRecord],
    start: date | None = None,
    end: date | None = None,
    include_treatment: bool = True,
    include_questionnaires: bool = True,
) -> DataSnapshot:
    """One user's snapshot: records of other users ignored, one per (kind, date[, instrument]), the last one winning.

    The date range applies to diary, questionnaires and mobile; the treatment record is the latest one
    dated on or before `end` (a cycle that began before `start` is still the current one).
    """
    latest: dict[tuple[str, date, str], SleepRecord] = {}
    for r in records:
        if r.tenant != tenant or r.user_id != user_id or (end is not None and r.date > end):
            continue
        if r.kind == "treatment":
            if include_treatment:
                latest[("treatment", r.date, "")] = r
            continue
        if r.kind == "questionnaire" and not include_questionnaires:
            continue
        if start is not None and r.date < start:
            continue
        instrument = r.data.instrument.value if isinstance(r.data, Questionnaire) else ""
        latest[(r.kind, r.date, instrument)] = r
    by_kind: dict[str, list[SleepRecord]] = {"diary": [], "questionnaire": [], "mobile": [], "treatment": []}
    for key in sorted(latest, key=lambda k: (k[1], k[2])):
        by_kind[key[0]].append(latest[key])
    treatments = by_kind["treatment"]
    return DataSnapshot(
        tenant=tenant,
        user_id=user_id,
        diary=[Dated[SleepDiary](date=r.date, data=r.data) for r in by_kind["diary"]],
        questionnaires=[Dated[Questionnaire](date=r.date, data=r.data) for r in by_kind["questionnaire"]],
        mobile=[Dated[MobileAnalytics](date=r.date, data=r.data) for r in by_kind["mobile"]],
        treatment=treatments[-1].data if treatments else None,  # type: ignore[arg-type]
    )


def log_mean(values: Iterable[float], floor: float = 1.0) -> float:
    """Geometric mean (values floored at `floor` minutes): SOL is right-skewed night to night."""
    logs = [math.log(max(v, floor)) for v in values]
    return math.exp(statistics.fmean(logs))
