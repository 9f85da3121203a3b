"""The synthetic cohort: reproducible, valid on the wire, and its stated relations actually hold."""

from __future__ import annotations

import statistics
from dataclasses import replace
from datetime import timedelta

from schemas.sleep import Instrument, MobileAnalytics, Questionnaire, SleepDiary, SleepRecord, TreatmentPhase
from simulators.sleep_cohort import Behaviour, generate_cohort, median_sol

COHORT = generate_cohort(300, days=14, seed=11)


def _mean_screen(records: list[SleepRecord]) -> float | None:
    screens = [r.data.screen_time_before_bed_minutes for r in records if isinstance(r.data, MobileAnalytics)]
    return statistics.fmean(screens) if screens else None


def test_the_same_seed_gives_the_same_cohort_and_another_seed_does_not():
    again = generate_cohort(300, days=14, seed=11)
    assert [(u.user_id, u.records, u.next_night_sol) for u in again] == [
        (u.user_id, u.records, u.next_night_sol) for u in COHORT]
    other = generate_cohort(5, days=14, seed=12)
    assert [u.next_night_sol for u in other] != [u.next_night_sol for u in COHORT[:5]]


def test_every_record_is_valid_on_the_wire_and_belongs_to_its_user():
    for u in COHORT[:50]:
        for r in u.records:
            assert SleepRecord.model_validate_json(r.model_dump_json()) == r
            assert (r.tenant, r.user_id) == ("cohort", u.user_id)


def test_records_cover_the_window_and_the_truth_is_the_night_after():
    for u in COHORT:
        nights = [r.date for r in u.records if r.kind == "diary"]
        start = min(r.date for r in u.records)
        assert len(nights) == len(set(nights)) <= 14
        assert all(start <= d < start + timedelta(days=14) for d in nights)
        assert 0 < u.next_night_sol < 400
    assert sum(any(r.kind == "treatment" for r in u.records) for u in COHORT) > 200


def test_users_with_more_screen_time_have_longer_true_sol_on_average():
    measured = sorted((s, u.next_night_sol) for u in COHORT if (s := _mean_screen(u.records)) is not None)
    third = len(measured) // 3
    low = statistics.fmean(sol for _, sol in measured[:third])
    high = statistics.fmean(sol for _, sol in measured[-third:])
    assert high > low + 3


def test_the_diary_predicts_the_next_night_and_questionnaires_follow_severity():
    diary_mean = [statistics.fmean(r.data.sol_minutes for r in u.records if isinstance(r.data, SleepDiary))
                  for u in COHORT]
    assert statistics.correlation(diary_mean, [u.next_night_sol for u in COHORT]) > 0.5
    isi = [(u.latent.severity, q.total_score) for u in COHORT for r in u.records
           if isinstance(q := r.data, Questionnaire) and q.instrument is Instrument.ISI]
    assert statistics.correlation([s for s, _ in isi], [score for _, score in isi]) > 0.8


def test_sleep_restriction_adherence_in_mid_and_late_phases_shortens_the_true_sol():
    u = next(u for u in COHORT if u.latent.phase is TreatmentPhase.MID)
    b = Behaviour(screen=60, lux=50, daylight=60, active=30)
    night = min(r.date for r in u.records) + timedelta(days=14)
    sols = {adherence: median_sol(replace(u.latent, adherence=adherence), b, 14, night) for adherence in (0.1, 0.9)}
    assert sols[0.9] < sols[0.1] - 5
    assessment = replace(u.latent, phase=TreatmentPhase.ASSESSMENT)
    assert median_sol(replace(assessment, adherence=0.9), b, 14, night) == median_sol(
        replace(assessment, adherence=0.1), b, 14, night)
