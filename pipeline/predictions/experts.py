"""Four experts, each a pure function `(snapshot, context, previous_round) -> Opinion`.

Personas (ChatEval, Chan et al. 2023): SLEEP_PATTERN reads the diary, CBTI the treatment and sleep
efficiency, QUESTIONNAIRE the ISI/PSQI/PSAS/DBAS scores, MOBILE_ANALYTICS the phone signals. Each forms its
own `View` from its own data: the findings, risks and evidence it reports. With a diary, its number is a
measured forecast: the shared level plus its own adjustments, backtested on the user's own nights, and in
later rounds it takes a better-tested peer's adjustments (skill.py). Without a diary there is nothing to
backtest: the view's number stands and `deliberate` moves it toward the others' previous answers
(deliberation.py). Experts never read a clock: `response_time_ms` is 0 here and the round engine fills it.
Text meant for users (key points, risk factors, reasoning) is Korean, as in seed 004.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.predictions import skill
from pipeline.predictions.deliberation import (
    INSOMNIA_SOL,
    NO_DATA_CONFIDENCE,
    PRIOR_SOL,
    View,
    consistency_label,
    deliberate,
    describe,
    no_data,
    onset_label,
    trend_label,
)
from pipeline.predictions.features import (
    FULL_DIARY_DAYS,
    FULL_MOBILE_DAYS,
    Features,
    extract,
    is_weekend_night,
    log_mean,
    slope,
    weekend_gap,
)
from pipeline.predictions.forecast import Diary, Ledger
from schemas.debate import AgentType, DataPoint, Evidence, Opinion, SolConsistency, SolTrend
from schemas.sleep import DataSnapshot, Instrument, MobileAnalytics, TreatmentPhase

TARGET_EFFICIENCY = 0.85  # CBT-I's sleep-efficiency goal (Spielman et al. 1987)
CBTI_SOL_GAIN = 19.0  # CBT-I shortens diary SOL by ~19 min over a course (Trauer et al. 2015 meta-analysis)
COURSE_DAYS = 49  # a 6-8 week course; the gain accrues over about 7 weeks

Expert = Callable[[DataSnapshot, "Context", Sequence[Opinion]], Opinion]


def _clip(v: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, v))


def sleep_pattern_view(snapshot: DataSnapshot, f: Features) -> View:
    """Diary: the last two weeks' weekday-adjusted geometric mean SOL, plus the weekend gap on a weekend night."""
    if not snapshot.diary or f.target_date is None:
        return no_data("수면 일지 없음")
    target = f.target_date
    recent = [d for d in snapshot.diary if (target - d.date).days <= FULL_DIARY_DAYS]
    n_weekend = sum(is_weekend_night(d.date) for d in recent)
    # a gap seen on one or two weekends is mostly noise: shrink it toward 0
    gap = (weekend_gap(recent) or 0.0) * n_weekend / (n_weekend + 2)
    # SOL is right-skewed night to night, so the geometric mean is the robust level. A two-week slope is
    # reported but not extrapolated: night-to-night noise (SD ~ 30-40% of SOL) swamps it.
    level = log_mean(d.data.sol_minutes - (gap if is_weekend_night(d.date) else 0.0) for d in recent)
    weekend_night = is_weekend_night(target)
    sol = max(level + (gap if weekend_night else 0.0), 1.0)
    cv = f.sol_cv or 0.0
    confidence = _clip((0.3 + 0.55 * len(recent) / FULL_DIARY_DAYS) * (1 - 0.35 * min(cv, 1)), NO_DATA_CONFIDENCE, 0.9)
    view = View(sol=sol, confidence=confidence)
    _pattern_notes(view, f, level, gap)
    view.evidence = [Evidence(type="SOL_TREND", relevance_score=0.95, data_points=[
        DataPoint(date=d.date, value=d.data.sol_minutes) for d in recent])]
    view.reasoning = (f"최근 수면 일지 {len(recent)}일의 주말 보정 기하평균 SOL {level:.1f}분"
                      + (f", 주말 밤 보정 {gap:+.1f}분" if weekend_night else "") + f" → {sol:.1f}분.")
    describe(view, trend_label(f.sol_slope), consistency_label(f.sol_cv), recentSolMinutes=round(level, 1),
             slopeMinutesPerDay=None if f.sol_slope is None else round(f.sol_slope, 2),
             weekendGapMinutes=round(gap, 1), lightsOffSdMinutes=None if f.lights_off_sd is None
             else round(f.lights_off_sd, 1))
    return view


def _pattern_notes(view: View, f: Features, level: float, gap: float) -> None:
    trend = trend_label(f.sol_slope)
    if trend is SolTrend.IMPROVING:
        view.key_points.append(f"SOL 개선 트렌드 확인 (하루 {f.sol_slope:+.1f}분)")
    elif trend is SolTrend.WORSENING:
        view.risk_factors.append(f"SOL 악화 추세 (하루 {f.sol_slope:+.1f}분)")
    if level <= INSOMNIA_SOL:
        view.key_points.append(f"최근 SOL {level:.0f}분으로 30분 이내 유지")
    else:
        view.risk_factors.append(f"최근 SOL {level:.0f}분: 불면 기준 30분 초과")
    if f.lights_off_sd is not None and f.lights_off_sd <= 30:
        view.key_points.append(f"규칙적인 입면 시간 유지 (소등 시각 편차 {f.lights_off_sd:.0f}분)")
    elif f.lights_off_sd is not None and f.lights_off_sd > 60:
        view.risk_factors.append(f"불규칙한 소등 시각 (편차 {f.lights_off_sd:.0f}분)")
    if gap >= 10:
        view.risk_factors.append(f"주말 입면 지연 패턴 (+{gap:.0f}분)")
    if consistency_label(f.sol_cv) is SolConsistency.ERRATIC:
        view.risk_factors.append("밤마다 입면 시간 변동이 매우 큼")
    if f.diary_days < 7:
        view.key_points.append(f"수면 일지 {f.diary_days}일뿐: 자료 부족")


def cbti_view(snapshot: DataSnapshot, f: Features) -> View:
    """Treatment: last week's median SOL, shifted by the effect the current phase and adherence still predict."""
    t = snapshot.treatment
    if not snapshot.diary:
        if t is None:
            return no_data("수면 일지와 치료 기록 없음")
        # without a diary, a course's typical position: the gain accrues through EARLY and MID
        share = {TreatmentPhase.ASSESSMENT: 0.0, TreatmentPhase.EARLY: 0.2, TreatmentPhase.MID: 0.5,
                 TreatmentPhase.LATE: 0.85, TreatmentPhase.MAINTENANCE: 1.0}[t.phase]
        return no_data(f"수면 일지 없음, 치료 단계 {t.phase.value}", PRIOR_SOL + 10 - CBTI_SOL_GAIN * share, 0.15)
    target = f.target_date or snapshot.diary[-1].date
    week = [d.data.sol_minutes for d in snapshot.diary if (target - d.date).days <= 7]
    base = statistics.median(week)
    adherence = statistics.fmean([a for a in (f.bedtime_adherence, f.tib_adherence) if a is not None] or [0.5])
    active = t is not None and not t.paused and t.phase in (TreatmentPhase.EARLY, TreatmentPhase.MID)
    # the week's median sits ~4 nights before tonight; an active course keeps shortening SOL meanwhile
    course = -CBTI_SOL_GAIN / COURSE_DAYS * adherence * 4 if active else 0.0
    se = f.efficiency_recent or 0.0
    # restricted time in bed with low efficiency builds sleep drive, which shortens SOL (Spielman et al. 1987)
    drive = -20 * (TARGET_EFFICIENCY - se) if active and se < TARGET_EFFICIENCY and adherence >= 0.7 else 0.0
    sol = max(base + course + drive, 1.0)
    # one week of nights: a less reliable level than SLEEP_PATTERN's two weeks, so at most 0.7
    confidence = _clip(0.2 + 0.3 * len(week) / 7 + 0.1 * (t is not None) + 0.1 * (f.bedtime_adherence is not None),
                       NO_DATA_CONFIDENCE, 0.7)
    view = View(sol=sol, confidence=confidence)
    _cbti_notes(view, f, adherence, active)
    view.evidence = [Evidence(type="SLEEP_EFFICIENCY", relevance_score=0.8, data_points=[
        DataPoint(date=d.date, value=round(d.data.sleep_efficiency, 3)) for d in snapshot.diary[-FULL_DIARY_DAYS:]])]
    view.reasoning = (f"최근 7일 SOL 중앙값 {base:.1f}분, 치료 진행 효과 {course:+.1f}분, 수면 압력 효과 {drive:+.1f}분"
                      f" → {sol:.1f}분.")
    describe(view, trend_label(f.sol_slope), consistency_label(f.sol_cv),
             sleepEfficiency=round(se, 3), treatmentPhase=t.phase if t else None,
             cycleWeek=t.cycle_week if t else None, bedtimeAdherence=f.bedtime_adherence,
             timeInBedAdherence=f.tib_adherence)
    return view


def _cbti_notes(view: View, f: Features, adherence: float, active: bool) -> None:
    se = f.efficiency_recent or 0.0
    if se >= TARGET_EFFICIENCY:
        view.key_points.append(f"수면 효율 {se:.0%}로 목표 85% 달성")
    else:
        view.risk_factors.append(f"수면 효율 {se:.0%}: 목표 85% 미만 (침대와 각성의 조건화 위험)")
    if f.phase is None:
        view.key_points.append("CBT-I 치료 기록 없음: 수면 일지만으로 판단")
        return
    view.key_points.append(f"치료 단계 {f.phase.value} {f.cycle_week}주차")
    if f.paused:
        view.risk_factors.append("치료 일시정지 상태")
    if f.bedtime_adherence is not None and f.bedtime_adherence >= 0.7:
        view.key_points.append(f"취침 목표 시간 준수율 {f.bedtime_adherence:.0%}")
    elif f.bedtime_adherence is not None:
        view.risk_factors.append(f"취침 목표 시간 준수 미흡 ({f.bedtime_adherence:.0%})")
    if active and adherence >= 0.7:
        view.key_points.append("수면 제한·자극 조절 효과로 SOL 단축 기법 효과 예상")


# Questionnaire -> SOL maps, anchored on each instrument's published bands.
PSQI_LATENCY_SOL = {0: 10.0, 1: 23.0, 2: 45.0, 3: 70.0}  # component 2 bands <=15, 16-30, 31-60, >60 (Buysse 1989)
QUESTIONNAIRE_WEIGHTS = {Instrument.PSQI: 0.35, Instrument.ISI: 0.3, Instrument.PSAS: 0.25, Instrument.DBAS16: 0.1}


def _instrument_sols(f: Features) -> dict[Instrument, float]:
    out: dict[Instrument, float] = {}
    if f.isi is not None:  # ISI 15 (clinical insomnia, Morin et al. 2011) maps to ~32 min, past the 30-min criterion
        out[Instrument.ISI] = 8 + 1.6 * f.isi
    if f.psqi_latency is not None:
        out[Instrument.PSQI] = PSQI_LATENCY_SOL[int(_clip(round(f.psqi_latency), 0, 3))]
    elif f.psqi is not None:  # global > 5 marks a poor sleeper (Buysse et al. 1989)
        out[Instrument.PSQI] = 8 + 2.5 * f.psqi
    if f.psas_cognitive is not None:  # cognitive arousal prolongs SOL more than somatic (Nicassio et al. 1985)
        cognitive, somatic = _clip(f.psas_cognitive, 8, 40), _clip(f.psas_somatic or 8, 8, 40)
        out[Instrument.PSAS] = 10 + 1.2 * (cognitive - 8) + 0.4 * (somatic - 8)
    if f.dbas is not None:  # mean item >= 3.8 separates clinical insomnia (Carney et al. 2010)
        out[Instrument.DBAS16] = 10 + 5 * f.dbas
    return out


def _recency(days: int) -> float:
    """ISI asks about the last 2 weeks, PSQI the last month: a score weighs less as it ages (e-folding 4 weeks)."""
    return math.exp(-max(days, 0) / 28)


def questionnaire_view(snapshot: DataSnapshot, f: Features) -> View:
    """Questionnaires: a recency-weighted blend of instrument-to-SOL maps; trait-level, so at most 0.5 confident."""
    sols = _instrument_sols(f)
    if not sols:
        return no_data("설문 자료 없음")
    age = f.questionnaire_age or {}
    weights = {k: QUESTIONNAIRE_WEIGHTS[k] * _recency(age.get(k, 0)) for k in sols}
    sol = sum(weights[k] * v for k, v in sols.items()) / sum(weights.values())
    # retrospective scales agree with diary SOL only in part (PSQI against diaries: Backhaus et al. 2002)
    view = View(sol=sol, confidence=_clip(0.1 + 0.4 * sum(weights.values()), NO_DATA_CONFIDENCE, 0.5))
    _questionnaire_notes(view, f)
    target = f.target_date or snapshot.questionnaires[-1].date
    view.evidence = [Evidence(type=f"{q.data.instrument.value}_SCORE", relevance_score=round(
        _recency((target - q.date).days), 2), data_points=[DataPoint(date=q.date, value=q.data.total_score)])
        for q in snapshot.questionnaires]
    view.reasoning = "설문별 SOL 추정 " + ", ".join(f"{k.value} {v:.0f}분" for k, v in sols.items()) + (
        f"을 최신성 가중 평균하여 {sol:.1f}분.")
    change = f.isi_change
    trend = None if change is None else SolTrend.IMPROVING if change <= -3 else (
        SolTrend.WORSENING if change >= 3 else SolTrend.STABLE)
    describe(view, trend, None, isi=f.isi, psqi=f.psqi, psasCognitive=f.psas_cognitive,
             psasSomatic=f.psas_somatic, dbas=f.dbas,
             instrumentEstimates={k.value: round(v, 1) for k, v in sols.items()})
    return view


def _questionnaire_notes(view: View, f: Features) -> None:
    if f.isi is not None:
        band = ("임상적 불면 없음" if f.isi < 8 else "역치하 불면" if f.isi < 15
                else "중등도 임상적 불면" if f.isi < 22 else "중증 임상적 불면")
        (view.key_points if f.isi < 15 else view.risk_factors).append(f"ISI {f.isi:.0f}점: {band}")
    if f.isi_change is not None and f.isi_change <= -6:  # minimal important difference ~6 points (Yang et al. 2009)
        view.key_points.append(f"ISI {f.isi_change:.0f}점 감소: 의미 있는 개선")
    if f.psqi is not None and f.psqi > 5:
        view.risk_factors.append(f"PSQI {f.psqi:.0f}점: 수면의 질 저하")
    if f.psas_cognitive is not None and f.psas_cognitive >= 20:
        view.risk_factors.append(f"입면 전 과도한 인지적 각성 (PSAS 인지 {f.psas_cognitive:.0f}점)")
    elif f.psas_cognitive is not None:
        view.key_points.append(f"입면 전 불안 수준 낮음 (PSAS 인지 {f.psas_cognitive:.0f}점)")
    if f.psas_somatic is not None and f.psas_somatic >= 14:
        view.risk_factors.append(f"입면 전 신체적 각성 (PSAS 신체 {f.psas_somatic:.0f}점)")
    if f.dbas is not None and f.dbas >= 3.8:
        view.risk_factors.append(f"수면에 대한 역기능적 신념 (DBAS-16 {f.dbas:.1f}점)")


def mobile_night_sol(m: MobileAnalytics) -> float:
    """One day's SOL from phone signals: deviations from typical use (60 min screen, 50 lux, 60 min daylight)."""
    sol = PRIOR_SOL + _clip(5 * (m.screen_time_before_bed_minutes - 60) / 60, -4, 12)  # Hale & Guan 2015
    if m.evening_light_lux is not None:  # evening light suppresses melatonin, delays onset (Chang et al. 2015)
        sol += _clip(4 * (m.evening_light_lux - 50) / 100, -2, 12)
    if m.daylight_minutes is not None:  # daytime light strengthens the circadian signal (Wams et al. 2017)
        sol -= _clip(3 * (m.daylight_minutes - 60) / 60, -4, 8)
    if m.active_minutes is not None:  # exercise shortens SOL, a small-to-moderate effect (Kredlow et al. 2015)
        sol -= _clip(2 * (m.active_minutes - 30) / 30, -3, 6)
    return max(sol, 1.0)


def mobile_view(snapshot: DataSnapshot, f: Features) -> View:
    """Phone signals: the last week's behaviour mapped to SOL; no level anchor, so at most 0.3 confident."""
    if not snapshot.mobile:
        return no_data("모바일 자료 없음")
    nights = [mobile_night_sol(m.data) for m in snapshot.mobile]
    sol = statistics.fmean(nights[-7:])
    fields = sum(v is not None for v in (f.evening_lux, f.daylight_minutes, f.active_minutes)) + 1
    # behaviour explains little of the spread between people and says nothing of their level: at most 0.3
    view = View(sol=sol, confidence=_clip(0.1 + 0.2 * min(f.mobile_days, FULL_MOBILE_DAYS) / FULL_MOBILE_DAYS
                                          * fields / 4, NO_DATA_CONFIDENCE, 0.3))
    _mobile_notes(view, f)
    view.evidence = [Evidence(type="SCREEN_TIME", relevance_score=0.7, data_points=[
        DataPoint(date=m.date, value=m.data.screen_time_before_bed_minutes) for m in snapshot.mobile[-7:]])]
    view.reasoning = f"최근 {len(nights[-7:])}일 화면 사용·저녁 조도·일광·활동으로 추정한 SOL 평균 {sol:.1f}분."
    offsets = [float((m.date - snapshot.mobile[0].date).days) for m in snapshot.mobile]
    cv = statistics.stdev(nights) / statistics.fmean(nights) if len(nights) > 1 else None
    describe(view, trend_label(slope(offsets, nights)), consistency_label(cv), screenTimeMinutes=f.screen_minutes,
             eveningLightLux=f.evening_lux, daylightMinutes=f.daylight_minutes, activeMinutes=f.active_minutes)
    return view


def _mobile_notes(view: View, f: Features) -> None:
    screen = f.screen_minutes or 0.0
    if screen >= 60:
        view.risk_factors.append(f"취침 전 화면 사용 {screen:.0f}분")
    else:
        view.key_points.append(f"취침 전 화면 사용 적음 ({screen:.0f}분)")
    if f.evening_lux is not None and f.evening_lux >= 100:
        view.risk_factors.append(f"저녁 조도 {f.evening_lux:.0f} lux: 멜라토닌 억제로 입면 지연")
    if f.daylight_minutes is not None and f.daylight_minutes < 30:
        view.risk_factors.append(f"낮 시간 일광 노출 부족 ({f.daylight_minutes:.0f}분)")
    elif f.daylight_minutes is not None and f.daylight_minutes >= 60:
        view.key_points.append(f"충분한 일광 노출 ({f.daylight_minutes:.0f}분)")
    if f.active_minutes is not None and f.active_minutes >= 30:
        view.key_points.append(f"규칙적인 신체 활동 ({f.active_minutes:.0f}분)")


@dataclass(frozen=True)
class Context:
    """What every expert of one round reads besides the snapshot: its features and the backtest ledger."""

    features: Features
    ledger: Ledger


def context(snapshot: DataSnapshot) -> Context:
    """Features and the ledger of one snapshot; the questionnaires' SOL is the trait the QUESTIONNAIRE pull uses."""
    f = extract(snapshot)
    sols = _instrument_sols(f)
    if not snapshot.diary or f.target_date is None:
        return Context(f, Ledger.empty())
    trait = questionnaire_view(snapshot, f).sol if sols else None
    return Context(f, Ledger.of(Diary.of(snapshot, trait), f.target_date))


def argued(agent: AgentType, view: View, ctx: Context, previous: Sequence[Opinion]) -> Opinion:
    """The opinion of an expert: measured forecast and revision with a diary (skill.py), else deliberation."""
    ledger = ctx.ledger
    if ledger.level is None:
        return deliberate(agent, view, previous)
    parts, notes = skill.argue(agent, ledger, previous)
    relative, bt = skill.relative_skill(ledger, parts)
    sd = skill.spread(bt)
    sol = min(max(math.exp(ledger.forecast_log(parts)), 1.0), skill.MAX_SOL)  # type: ignore[arg-type]
    low, high = skill.interval(math.log(sol), sd)
    own = next((o for o in previous if o.agent_type is agent), None)
    key_points = view.key_points if view.missing is None else [f"{view.missing}: 수면 일지 수준으로만 예측"]
    analysis = {**view.analysis, "sleepOnsetPatterns": onset_label(sol), "forecastParts": sorted(parts),
                "ownData": view.missing is None,
                "backtest": {"nights": bt.n, "maeMinutes": None if bt.mae is None else round(bt.mae, 2),
                             "relativeToLevel": round(relative, 3), "logSpread": round(sd, 3)},
                "interval80": [round(low, 1), round(high, 1)]}
    return Opinion(agent_type=agent, sol_score=sol, confidence=round(skill.within_ten(sol, sd), 3),
                   key_points=key_points, risk_factors=view.risk_factors, analysis_result=analysis,
                   evidence=view.evidence, revised=own is not None and parts != skill.parts_of(own),
                   reasoning=" ".join([skill.describe_forecast(ledger, parts, bt), *notes]))


def sleep_pattern_expert(snapshot: DataSnapshot, ctx: Context, previous_round: Sequence[Opinion]) -> Opinion:
    """SLEEP_PATTERN: the diary's recent level, trend, variability and weekend gap."""
    return argued(AgentType.SLEEP_PATTERN, sleep_pattern_view(snapshot, ctx.features), ctx, previous_round)


def cbti_expert(snapshot: DataSnapshot, ctx: Context, previous_round: Sequence[Opinion]) -> Opinion:
    """CBTI: treatment phase, adherence and sleep efficiency."""
    return argued(AgentType.CBTI, cbti_view(snapshot, ctx.features), ctx, previous_round)


def questionnaire_expert(snapshot: DataSnapshot, ctx: Context, previous_round: Sequence[Opinion]) -> Opinion:
    """QUESTIONNAIRE: ISI, PSQI, PSAS and DBAS-16."""
    return argued(AgentType.QUESTIONNAIRE, questionnaire_view(snapshot, ctx.features), ctx, previous_round)


def mobile_analytics_expert(snapshot: DataSnapshot, ctx: Context, previous_round: Sequence[Opinion]) -> Opinion:
    """MOBILE_ANALYTICS: screen time, evening light, daylight and activity."""
    return argued(AgentType.MOBILE_ANALYTICS, mobile_view(snapshot, ctx.features), ctx, previous_round)


EXPERTS: dict[AgentType, Expert] = {
    AgentType.SLEEP_PATTERN: sleep_pattern_expert,
    AgentType.CBTI: cbti_expert,
    AgentType.QUESTIONNAIRE: questionnaire_expert,
    AgentType.MOBILE_ANALYTICS: mobile_analytics_expert,
}


def has_any_data(snapshot: DataSnapshot) -> bool:
    """True when at least one expert has something of its own to read."""
    return bool(snapshot.diary or snapshot.questionnaires or snapshot.mobile or snapshot.treatment)


def opine(agent: AgentType, snapshot: DataSnapshot, previous: Sequence[Opinion] = ()) -> Opinion:
    """One expert's opinion on `snapshot`, having heard `previous` (the last round's opinions, if any)."""
    return EXPERTS[agent](snapshot, context(snapshot), previous)
