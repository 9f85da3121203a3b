"""The four experts and the features they read: what a clinician reading their opinions would rely on."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest

from pipeline.predictions.experts import opine
from pipeline.predictions.features import build_snapshot, completeness, extract
from schemas.debate import AgentType, Opinion
from schemas.sleep import (
    DataSnapshot,
    Instrument,
    MobileAnalytics,
    Questionnaire,
    SleepDiary,
    SleepRecord,
    TreatmentCycle,
    TreatmentPhase,
)

MONDAY = date(2025, 8, 4)


def night(sol: float, lights_off: time = time(23, 0), tib: float = 480, efficiency: float = 0.9) -> SleepDiary:
    """A diary night with lights off at bedtime and the given SOL, time in bed and efficiency."""
    return SleepDiary(bedtime=lights_off, lights_off=lights_off, sol_minutes=sol, wake_time=time(7, 0),
                      time_in_bed_minutes=tib, total_sleep_minutes=round(tib * efficiency))


def record(kind: str, day: date, data: object, user: str = "u1", tenant: str = "t1") -> SleepRecord:
    return SleepRecord(tenant=tenant, user_id=user, kind=kind, date=day, data=data)  # type: ignore[arg-type]


def diary(sols: list[float], start: date = MONDAY, user: str = "u1", **kw: float) -> list[SleepRecord]:
    return [record("diary", start + timedelta(days=i), night(s, **kw), user=user) for i, s in enumerate(sols)]


def snapshot(records: list[SleepRecord]) -> DataSnapshot:
    return build_snapshot("t1", "u1", records)


def questionnaires(isi: float, cognitive: float, somatic: float = 10, day: date = MONDAY) -> list[SleepRecord]:
    return [
        record("questionnaire", day, Questionnaire(instrument=Instrument.ISI, total_score=isi)),
        record("questionnaire", day, Questionnaire(instrument=Instrument.PSAS, total_score=cognitive + somatic,
                                                   subscales={"cognitive": cognitive, "somatic": somatic})),
    ]


def test_questionnaire_expert_predicts_longer_sol_for_severe_insomnia_and_arousal():
    severe = opine(AgentType.QUESTIONNAIRE, snapshot(diary([30] * 7) + questionnaires(isi=22, cognitive=32)))
    mild = opine(AgentType.QUESTIONNAIRE, snapshot(diary([30] * 7) + questionnaires(isi=4, cognitive=9)))
    # with a week of diary the instruments only pull the level (1.5 nights' worth of weight against 7)
    assert severe.sol_score > 30 > mild.sol_score
    assert severe.sol_score > mild.sol_score + 4
    alone_severe = opine(AgentType.QUESTIONNAIRE, snapshot(questionnaires(isi=22, cognitive=32)))
    alone_mild = opine(AgentType.QUESTIONNAIRE, snapshot(questionnaires(isi=4, cognitive=9)))
    assert alone_severe.sol_score > alone_mild.sol_score + 15  # without a diary they are all there is
    assert any("ISI 22점" in r for r in severe.risk_factors)
    assert any("인지적 각성" in r for r in severe.risk_factors)
    assert severe.analysis_result["sleepOnsetPatterns"] == "POOR"


def test_sleep_pattern_expert_follows_the_diary_level():
    long = opine(AgentType.SLEEP_PATTERN, snapshot(diary([55, 60, 50, 65, 58, 62, 57])))
    short = opine(AgentType.SLEEP_PATTERN, snapshot(diary([10, 12, 9, 14, 11, 10, 13])))
    assert 50 <= long.sol_score <= 65
    assert 9 <= short.sol_score <= 14
    assert any("30분 초과" in r for r in long.risk_factors)


def test_sleep_pattern_expert_adds_the_weekend_delay_on_a_weekend_night():
    # 12 nights from Monday: Fri/Sat nights take 40 min, the others 15; the next night (day 12) is a Saturday
    sols = [40 if (MONDAY + timedelta(days=i)).weekday() in (4, 5) else 15 for i in range(12)]
    weekend = opine(AgentType.SLEEP_PATTERN, snapshot(diary(sols)))
    weekday = opine(AgentType.SLEEP_PATTERN, snapshot(diary(sols[:10])))  # next night is a Thursday
    assert weekend.sol_score > weekday.sol_score + 8
    assert any("주말 입면 지연" in r for r in weekend.risk_factors)


def test_more_diary_nights_give_more_confidence_and_none_gives_almost_none():
    two_weeks = opine(AgentType.SLEEP_PATTERN, snapshot(diary([30, 32] * 7)))
    three_nights = opine(AgentType.SLEEP_PATTERN, snapshot(diary([30, 32, 31])))
    nothing = opine(AgentType.SLEEP_PATTERN, snapshot(questionnaires(isi=10, cognitive=15)))
    assert two_weeks.confidence > three_nights.confidence > nothing.confidence
    assert nothing.confidence <= 0.1
    assert any("없음" in k for k in nothing.key_points)


@pytest.mark.parametrize("agent", [AgentType.QUESTIONNAIRE, AgentType.MOBILE_ANALYTICS, AgentType.CBTI])
def test_an_expert_without_its_data_says_so_with_low_confidence(agent: AgentType):
    opinion = opine(agent, DataSnapshot(tenant="t1", user_id="u1"))
    assert opinion.confidence <= 0.1
    assert any("없음" in k and "낮은 신뢰도" in k for k in opinion.key_points)


def test_mobile_expert_reads_screen_time_and_evening_light():
    def phone(screen: float, lux: float, daylight: float) -> list[SleepRecord]:
        data = MobileAnalytics(screen_time_before_bed_minutes=screen, evening_light_lux=lux,
                               daylight_minutes=daylight, active_minutes=30)
        return [record("mobile", MONDAY + timedelta(days=i), data) for i in range(7)]

    heavy = opine(AgentType.MOBILE_ANALYTICS, snapshot(phone(screen=150, lux=300, daylight=10)))
    light = opine(AgentType.MOBILE_ANALYTICS, snapshot(phone(screen=10, lux=20, daylight=120)))
    assert heavy.sol_score > light.sol_score + 10
    assert any("화면 사용 150분" in r for r in heavy.risk_factors)
    assert any("300 lux" in r for r in heavy.risk_factors)
    assert heavy.confidence <= 0.3


def test_cbti_expert_flags_low_efficiency_and_expects_gains_from_an_adherent_course():
    treatment = TreatmentCycle(phase=TreatmentPhase.EARLY, cycle_week=2, bedtime_goal=time(23, 0),
                               prescribed_time_in_bed_minutes=400)
    records = diary([40] * 7, tib=400, efficiency=0.75) + [record("treatment", MONDAY, treatment)]
    treated = opine(AgentType.CBTI, snapshot(records))
    untreated = opine(AgentType.CBTI, snapshot(diary([40] * 7, tib=400, efficiency=0.75)))
    assert any("수면 효율 75%" in r for r in treated.risk_factors)
    assert treated.sol_score < untreated.sol_score  # sleep restriction builds sleep drive
    assert treated.analysis_result["treatmentPhase"] == "EARLY"
    assert treated.confidence > untreated.confidence


def test_opinions_are_deterministic_and_survive_the_wire():
    snap = snapshot(diary([30, 45, 25, 50, 35]) + questionnaires(isi=16, cognitive=24))
    again = DataSnapshot.model_validate_json(snap.model_dump_json())
    for agent in AgentType:
        assert opine(agent, snap) == opine(agent, again)


def test_in_a_later_round_an_expert_takes_the_evidence_of_a_better_tested_peer_and_says_so():
    # three weeks whose Friday and Saturday nights take 45 min and the rest 15: the weekday pattern is what
    # SLEEP_PATTERN reads, and its backtest beats every peer that only knows the level
    sols = [45 if (MONDAY + timedelta(days=i)).weekday() in (4, 5) else 15 for i in range(18)]  # next: Friday
    snap = snapshot(diary(sols) + questionnaires(isi=12, cognitive=18))
    first = [opine(agent, snap) for agent in AgentType]
    before = {o.agent_type: o for o in first}
    second = {o.agent_type: o for o in (opine(agent, snap, first) for agent in AgentType)}
    assert not any(o.revised for o in first)
    pattern = before[AgentType.SLEEP_PATTERN]
    assert pattern.sol_score > 25  # tonight is a Friday: 19 min level + the shrunk weekend delay
    for agent in (AgentType.QUESTIONNAIRE, AgentType.MOBILE_ANALYTICS):
        mine, theirs = before[agent].analysis_result["backtest"], pattern.analysis_result["backtest"]
        assert theirs["maeMinutes"] < mine["maeMinutes"]
        assert second[agent].revised
        assert "weekday" in second[agent].analysis_result["forecastParts"]
        assert second[agent].sol_score > before[agent].sol_score + 5
        assert "SLEEP_PATTERN" in second[agent].reasoning and "백테스트" in second[agent].reasoning
    assert not second[AgentType.SLEEP_PATTERN].revised  # the best-tested expert holds its view
    assert second[AgentType.SLEEP_PATTERN].sol_score == pattern.sol_score


def test_an_opinion_from_a_diary_carries_its_backtest_interval_and_a_confidence_derived_from_it():
    steady = opine(AgentType.SLEEP_PATTERN, snapshot(diary([30, 31, 29, 30, 32, 30, 29, 31, 30, 30] * 2)))
    erratic = opine(AgentType.SLEEP_PATTERN, snapshot(diary([10, 60, 15, 45, 8, 70, 20, 50, 12, 65] * 2)))
    for o in (steady, erratic):
        low, high = o.analysis_result["interval80"]
        assert low < o.sol_score < high
        assert o.analysis_result["backtest"]["nights"] == 15  # every night from the sixth on
    assert steady.confidence > 0.8 > erratic.confidence  # the chance of landing within 10 minutes
    spread = lambda o: o.analysis_result["interval80"][1] / o.analysis_result["interval80"][0]  # noqa: E731
    assert spread(erratic) > 2 * spread(steady)


def test_opinion_dumps_with_the_seeds_camel_case_keys():
    doc = opine(AgentType.SLEEP_PATTERN, snapshot(diary([30, 35, 28]))).model_dump(by_alias=True, mode="json")
    assert {"agentType", "solScore", "confidence", "keyPoints", "riskFactors", "analysisResult", "evidence",
            "responseTime", "revised", "reasoning"} <= set(doc)
    assert {"solTrend", "solConsistency", "sleepOnsetPatterns", "keyPatterns", "riskFactors"} <= set(
        doc["analysisResult"])
    assert {"type", "dataPoints", "relevanceScore"} <= set(doc["evidence"][0])
    assert doc["evidence"][0]["dataPoints"][0] == {"date": "2025-08-04", "value": 30.0}
    assert Opinion.model_validate(doc) == Opinion.model_validate_json(Opinion.model_validate(doc).model_dump_json())


def test_lights_off_spread_handles_midnight_crossing():
    records = [record("diary", MONDAY + timedelta(days=i), night(20, lights_off=t))
               for i, t in enumerate([time(23, 30), time(0, 30), time(23, 30), time(0, 30)])]
    assert extract(snapshot(records)).lights_off_sd == pytest.approx(34.64, abs=0.01)  # 60-min swings, not 23 h


def test_build_snapshot_keeps_the_last_entry_per_night_and_only_this_user():
    records = (diary([50, 20]) + [record("diary", MONDAY, night(10))]
               + diary([99], user="someone-else") + diary([99], start=MONDAY - timedelta(days=30)))
    snap = build_snapshot("t1", "u1", records, start=MONDAY - timedelta(days=7))
    assert [(d.date, d.data.sol_minutes) for d in snap.diary] == [(MONDAY, 10), (MONDAY + timedelta(days=1), 20)]


def test_build_snapshot_honours_the_scope_and_takes_the_latest_treatment():
    early = TreatmentCycle(phase=TreatmentPhase.EARLY, cycle_week=1)
    mid = TreatmentCycle(phase=TreatmentPhase.MID, cycle_week=3)
    records = (diary([30]) + questionnaires(isi=10, cognitive=12)
               + [record("treatment", MONDAY - timedelta(days=20), mid), record("treatment", MONDAY - timedelta(
                   days=40), early)])
    assert build_snapshot("t1", "u1", records, start=MONDAY).treatment == mid
    bare = build_snapshot("t1", "u1", records, include_treatment=False, include_questionnaires=False)
    assert bare.treatment is None and bare.questionnaires == []
    assert [q.data.instrument for q in snapshot(records).questionnaires] == [Instrument.ISI, Instrument.PSAS]


def test_completeness_weighs_two_weeks_of_diary_and_the_other_sources():
    full_diary = completeness(snapshot(diary([30] * 14)))
    assert full_diary.sleep_days == 14 and full_diary.total_score == pytest.approx(0.5)
    richer = completeness(snapshot(diary([30] * 14) + questionnaires(isi=10, cognitive=12)))
    assert richer.questionnaire_available and richer.total_score == pytest.approx(0.6)
    assert completeness(DataSnapshot(tenant="t1", user_id="u1")).total_score == 0


def test_subscales_the_schema_lets_through_out_of_range_are_read_within_the_instrument():
    odd = [record("questionnaire", MONDAY, Questionnaire(instrument=Instrument.PSAS, total_score=40,
                                                         subscales={"cognitive": -700, "somatic": 900})),
           record("questionnaire", MONDAY, Questionnaire(instrument=Instrument.PSQI, total_score=9,
                                                         subscales={"latency": 42}))]
    opinion = opine(AgentType.QUESTIONNAIRE, snapshot(diary([30] * 3) + odd))
    assert 10 <= opinion.sol_score <= 70  # PSAS read as 8-40, PSQI latency as 0-3
