"""CBT-I recommendations: the right component for the measured problem, with the numbers that triggered it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from pipeline.predictions.debate import run_debate
from pipeline.predictions.features import build_snapshot
from pipeline.predictions.recommend import recommend
from schemas.debate import AgentType, DebateOutcome, RecommendationCategory, RecommendationSet
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
Cat = RecommendationCategory


def user(sol: float = 15, efficiency: float = 0.92, screen: float | None = None, isi: float | None = None,
         psas: tuple[float, float] | None = None, dbas: float | None = None,
         treatment: TreatmentCycle | None = None) -> DataSnapshot:
    """Two weeks of identical nights plus whatever else is given."""
    records = [SleepRecord(tenant="t1", user_id="u1", kind="diary", date=MONDAY + timedelta(days=i), data=SleepDiary(
        bedtime=time(23, 0), lights_off=time(23, 0), sol_minutes=sol, wake_time=time(7, 0), time_in_bed_minutes=480,
        total_sleep_minutes=round(480 * efficiency))) for i in range(14)]
    extra: list[tuple[str, object]] = []
    if screen is not None:
        extra += [("mobile", MobileAnalytics(screen_time_before_bed_minutes=screen))] * 7
    if isi is not None:
        extra.append(("questionnaire", Questionnaire(instrument=Instrument.ISI, total_score=isi)))
    if psas is not None:
        extra.append(("questionnaire", Questionnaire(instrument=Instrument.PSAS, total_score=sum(psas),
                                                     subscales={"cognitive": psas[0], "somatic": psas[1]})))
    if dbas is not None:
        extra.append(("questionnaire", Questionnaire(instrument=Instrument.DBAS16, total_score=dbas)))
    if treatment is not None:
        extra.append(("treatment", treatment))
    records += [SleepRecord(tenant="t1", user_id="u1", kind=kind, date=MONDAY + timedelta(days=i), data=data)
                for i, (kind, data) in enumerate(extra)]  # type: ignore[arg-type]
    return build_snapshot("t1", "u1", records)


def advise(snap: DataSnapshot) -> tuple[DebateOutcome, RecommendationSet]:
    _, outcome = run_debate(snap, lambda: datetime(2025, 8, 18, 21, 0, tzinfo=UTC))
    return outcome, recommend(snap, outcome, "pred_1")


def by_category(recs: RecommendationSet) -> dict[RecommendationCategory, list[str]]:
    out: dict[RecommendationCategory, list[str]] = {}
    for r in recs.recommendations:
        out.setdefault(r.category, []).append(r.rationale)
    return out


def test_low_efficiency_gets_sleep_restriction_quoting_the_efficiency():
    _, recs = advise(user(sol=25, efficiency=0.7))
    restriction = next(r for r in recs.recommendations if r.category is Cat.SLEEP_RESTRICTION)
    assert "70.0%" in restriction.rationale
    assert restriction.difficulty == "DIFFICULT"
    assert restriction.estimated_time_to_effect > 0 and restriction.action_steps
    # 336 min of sleep a night: time in bed cut to that, in 15-min steps
    assert any("330분" in step for step in restriction.action_steps)


def test_long_sol_with_low_efficiency_gets_stimulus_control():
    outcome, recs = advise(user(sol=60, efficiency=0.75))
    assert outcome.sol_score > 30
    control = next(r for r in recs.recommendations if r.category is Cat.STIMULUS_CONTROL)
    assert f"{outcome.sol_score:.0f}분" in control.rationale and "75.0%" in control.rationale


def test_arousal_screens_and_beliefs_each_get_their_component():
    _, recs = advise(user(sol=35, screen=150, isi=20, psas=(30, 20), dbas=6.0))
    found = by_category(recs)
    assert any("PSAS 인지 각성 30점" in r for r in found[Cat.RELAXATION])
    assert any("150분" in r for r in found[Cat.SLEEP_HYGIENE])
    assert any("DBAS-16 평균 6.0점" in r and "ISI 20점" in r for r in found[Cat.COGNITIVE])


def test_a_good_sleeper_is_told_to_keep_going_not_to_restrict_sleep():
    outcome, recs = advise(user(sol=12, efficiency=0.93, screen=20, isi=3))
    assert outcome.sol_score < 20
    assert [r.category for r in recs.recommendations] == [Cat.SLEEP_HYGIENE]
    assert recs.treatment_phase is TreatmentPhase.MAINTENANCE
    assert "12분" in recs.recommendations[0].rationale


def test_priorities_ids_and_summary_are_consistent():
    _, recs = advise(user(sol=50, efficiency=0.72, screen=120, isi=22, psas=(28, 16), dbas=5))
    assert [r.priority for r in recs.recommendations] == list(range(1, recs.total_recommendations + 1))
    assert len({r.id for r in recs.recommendations}) == recs.total_recommendations == len(recs.recommendations)
    assert recs.primary_category is recs.recommendations[0].category
    assert recs.recommendations[0].title in recs.summary.implementation_plan
    assert 0 < recs.summary.expected_overall_improvement <= 1
    assert recs.summary.focus_areas and len(recs.summary.focus_areas) <= 3
    assert recs.treatment_phase is TreatmentPhase.ASSESSMENT  # no treatment record, insomnia signs


def test_the_treatment_phase_comes_from_the_record_and_steers_the_order():
    early = TreatmentCycle(phase=TreatmentPhase.EARLY, cycle_week=1)
    _, recs = advise(user(sol=40, efficiency=0.8, psas=(30, 20), treatment=early))
    assert recs.treatment_phase is TreatmentPhase.EARLY
    assert recs.primary_category in (Cat.SLEEP_RESTRICTION, Cat.STIMULUS_CONTROL)


def test_recommendations_dump_with_the_seeds_camel_case_keys():
    outcome, recs = advise(user(sol=40, efficiency=0.75))
    doc = recs.model_dump(by_alias=True, mode="json")
    assert {"predictionId", "treatmentPhase", "totalRecommendations", "primaryCategory", "recommendations",
            "summary"} <= set(doc)
    assert {"id", "category", "priority", "title", "description", "expectedImpact", "difficulty",
            "estimatedTimeToEffect", "actionSteps", "rationale"} <= set(doc["recommendations"][0])
    assert set(doc["summary"]) == {"focusAreas", "expectedOverallImprovement", "implementationPlan"}
    assert RecommendationSet.model_validate(doc) == recs
    assert recommend(user(sol=40, efficiency=0.75), outcome, "pred_1") == recs  # deterministic
    assert outcome.per_agent_final[AgentType.SLEEP_PATTERN] > 0


def test_relaxation_inside_a_running_cbti_course_is_filed_as_cbti_as_in_the_seed():
    course = TreatmentCycle(phase=TreatmentPhase.MID, cycle_week=4)
    _, recs = advise(user(sol=40, psas=(30, 20), treatment=course))
    found = by_category(recs)
    assert Cat.RELAXATION not in found
    assert any("PSAS 인지 각성 30점" in r for r in found[Cat.CBTI])
    wire = recs.model_dump(by_alias=True, mode="json")
    assert "CBTI" in {r["category"] for r in wire["recommendations"]}
    paused = TreatmentCycle(phase=TreatmentPhase.MID, cycle_week=4, paused=True)
    assert Cat.RELAXATION in by_category(advise(user(sol=40, psas=(30, 20), treatment=paused))[1])
