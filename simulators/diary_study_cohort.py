"""A second synthetic cohort, written apart from `sleep_cohort` with other functional forms: `generate_cohort`.

The debate is tuned on `simulators.sleep_cohort` (additive minutes, independent nights). This generator is
for held-out evaluation only: nothing in `pipeline/` was fitted to it. It models a diary study instead,
multiplicative in log space, so a forecaster that only learned the first generator's shapes is tested on
shapes it has not seen. For user u and night t (log minutes):

    log SOL_t = b_u                                  the user's baseline, b_u ~ N(log 22, 0.5)
              - D_u * (1 - exp(-(t - t0_u) / tau_u)) treatment response from the course's start t0_u:
                                                     D_u = adherence * U(0.25, 0.7) for responders (70 %),
                                                     0 otherwise; tau_u ~ U(7, 21) nights (most of the
                                                     CBT-I gain comes in the first weeks, Trauer et al. 2015)
              + k_u * weekend_t                      Friday/Saturday nights, k_u ~ N(0.08, 0.1)
              + 0.15 * sunday_t                      "Sunday-night insomnia" after a weekend's phase delay
                                                     (Taylor, Wright & Lack 2008)
              + 0.06 * log(lux_{t-1} / lux_u)        the previous evening's light still delays onset
                                                     (Chang et al. 2015, over consecutive evenings)
              + 0.002 * (screen_t - screen_u)        tonight's screen use (unknown when forecasting)
              + e_t,  e_t = phi_u * e_{t-1} + eta_t  AR(1): phi_u ~ U(0.1, 0.5), marginal SD sigma_u ~
                                                     U(0.2, 0.5) (lag-1 r 0.1-0.3 in insomnia diaries,
                                                     Vallieres et al. 2005; night-to-night CV 40-60 %)
              + log U(2, 4) on 3 % of nights         outliers: an illness or a stressful day

Diaries are reported as people write them: 60 % of users round SOL to 5 minutes, and nights go missing in
runs (a Markov chain: a recorded night is followed by a missing one with probability m_u ~ U(0.03, 0.3),
a missing one by another with 0.5). Questionnaires are baseline instruments completed on day 0 with
probability 0.7 each: ISI = 28 * logistic((b_u - log 25) / 0.45 + N(0, 0.5)), PSQI latency from the
person's perceived SOL (1.3 x the diary's, the misperception of insomnia), PSAS cognitive rising with
sigma_u, DBAS-16 with b_u. Phones (65 % of users, 80 % of days) log screen use (per-user LogN mean),
evening light (lux_u ~ 40 * LogN(0, 0.8)), daylight and activity; the treatment record (60 % of users)
gives the course's phase from the weeks since t0_u. `next_night_sol` is night `days`, drawn from the same
process; `reference_sol` is its conditional median given everything latent and e_{days-1} (a floor no
forecast from the records can reach). Deterministic for a seed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, time, timedelta

from schemas.sleep import (
    Instrument,
    MobileAnalytics,
    Questionnaire,
    RecordKind,
    SleepDiary,
    SleepRecord,
    TreatmentCycle,
    TreatmentPhase,
)

START = date(2026, 3, 2)
OUTLIER_RATE = 0.03
SUNDAY_EFFECT = 0.15
LAGGED_LIGHT = 0.06
SCREEN_EFFECT = 0.002


@dataclass(frozen=True)
class DiaryStudyUser:
    user_id: str
    records: list[SleepRecord]
    next_night_sol: float
    reference_sol: float


@dataclass(frozen=True)
class _Person:
    baseline: float  # log minutes
    responder_drop: float  # D_u, log minutes
    tau: float
    course_start: int  # t0_u, nights from the first diary night (negative: began before the window)
    weekend: float
    phi: float
    sigma: float
    screen_mean: float
    lux_mean: float
    daylight_mean: float
    active_mean: float
    rounds_to_five: bool
    miss_after_present: float
    has_phone: bool
    has_treatment: bool
    lights_off: float  # minutes after noon
    sleep_need: float


def _clip(v: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, v))


def _person(rng: random.Random, days: int) -> _Person:
    has_treatment = rng.random() < 0.6
    adherence = rng.betavariate(4, 2)
    responder = has_treatment and rng.random() < 0.7
    return _Person(
        baseline=rng.gauss(math.log(22), 0.5),
        responder_drop=adherence * rng.uniform(0.25, 0.7) if responder else 0.0,
        tau=rng.uniform(7, 21),
        course_start=rng.randint(-35, days - 3) if has_treatment else 10**6,
        weekend=rng.gauss(0.08, 0.1),
        phi=rng.uniform(0.1, 0.5),
        sigma=rng.uniform(0.2, 0.5),
        screen_mean=40 * math.exp(rng.gauss(0, 0.6)),
        lux_mean=40 * math.exp(rng.gauss(0, 0.8)),
        daylight_mean=60 * math.exp(rng.gauss(0, 0.5)),
        active_mean=25 * math.exp(rng.gauss(0, 0.6)),
        rounds_to_five=rng.random() < 0.6,
        miss_after_present=rng.uniform(0.03, 0.3),
        has_phone=rng.random() < 0.65,
        has_treatment=has_treatment,
        lights_off=rng.uniform(620, 760),
        sleep_need=rng.gauss(410, 35),
    )


def _treatment_effect(p: _Person, t: int) -> float:
    if t < p.course_start:
        return 0.0
    return p.responder_drop * (1 - math.exp(-(t - p.course_start) / p.tau))


def _median_log(p: _Person, t: int, night: date, prev_lux: float | None) -> float:
    """Everything but tonight's screen deviation and the AR noise: the deterministic part of log SOL_t."""
    weekday = night.weekday()
    light = LAGGED_LIGHT * math.log(prev_lux / p.lux_mean) if prev_lux else 0.0
    return (p.baseline - _treatment_effect(p, t) + (p.weekend if weekday in (4, 5) else 0.0)
            + (SUNDAY_EFFECT if weekday == 6 else 0.0) + light)


def _phase(p: _Person, t: int) -> tuple[TreatmentPhase, int]:
    weeks = max((t - p.course_start) // 7, 0) if t >= p.course_start else -1
    if weeks < 0:
        return TreatmentPhase.ASSESSMENT, 0
    if weeks < 2:
        return TreatmentPhase.EARLY, weeks + 1
    if weeks < 5:
        return TreatmentPhase.MID, weeks + 1
    if weeks < 8:
        return TreatmentPhase.LATE, weeks + 1
    return TreatmentPhase.MAINTENANCE, min(weeks + 1, 52)


def _clock(minutes_after_noon: float) -> time:
    m = round(minutes_after_noon + 720) % 1440
    return time(m // 60, m % 60)


def _diary(rng: random.Random, p: _Person, sol: float) -> SleepDiary:
    reported = 5 * round(sol / 5) if p.rounds_to_five else round(sol)
    reported = _clip(reported, 1, 300)
    lights = p.lights_off + rng.gauss(0, 35)
    settle = rng.uniform(0, 25)
    waso = _clip(round(20 * math.exp(p.baseline - math.log(22)) * math.exp(rng.gauss(0, 0.5))), 0, 200)
    asleep = _clip(rng.gauss(p.sleep_need, 40), 180, 600)
    tib = round(settle + reported + waso + asleep + rng.uniform(0, 15))
    return SleepDiary(bedtime=_clock(lights - settle), lights_off=_clock(lights), sol_minutes=reported,
                      awakenings=max(round(1 + waso / 15 + rng.gauss(0, 1)), 0), waso_minutes=waso,
                      wake_time=_clock(lights - settle + tib), time_in_bed_minutes=tib,
                      total_sleep_minutes=round(asleep))


def _questionnaires(rng: random.Random, p: _Person) -> list[Questionnaire]:
    isi = 28 / (1 + math.exp(-((p.baseline - math.log(25)) / 0.45 + rng.gauss(0, 0.5))))
    perceived = 1.3 * math.exp(p.baseline + rng.gauss(0, 0.25))
    latency = 0 if perceived <= 15 else 1 if perceived <= 30 else 2 if perceived <= 60 else 3
    cognitive = _clip(round(12 + 30 * (p.sigma - 0.2) + 6 * (p.baseline - math.log(22)) + rng.gauss(0, 3)), 8, 40)
    somatic = _clip(round(10 + 3 * (p.baseline - math.log(22)) + rng.gauss(0, 2.5)), 8, 40)
    items = [
        Questionnaire(instrument=Instrument.ISI, total_score=round(_clip(isi, 0, 28))),
        Questionnaire(instrument=Instrument.PSQI, total_score=round(_clip(4 + 2.5 * latency + rng.gauss(2, 2), 0, 21)),
                      subscales={"latency": latency}),
        Questionnaire(instrument=Instrument.PSAS, total_score=cognitive + somatic,
                      subscales={"cognitive": cognitive, "somatic": somatic}),
        Questionnaire(instrument=Instrument.DBAS16,
                      total_score=round(_clip(4 + 2.2 * (p.baseline - math.log(22)) + rng.gauss(0, 1.1), 0, 10), 1)),
    ]
    return [q for q in items if rng.random() < 0.7]


def _treatment(p: _Person, days: int) -> TreatmentCycle:
    phase, week = _phase(p, days)
    prescribing = phase is not TreatmentPhase.ASSESSMENT
    return TreatmentCycle(phase=phase, cycle_week=week, timezone="Asia/Seoul",
                          bedtime_goal=_clock(p.lights_off) if prescribing else None,
                          prescribed_time_in_bed_minutes=round(_clip(p.sleep_need + 30, 330, 540)) if prescribing
                          else None)


def _phone(rng: random.Random, p: _Person, screen: float, lux: float) -> MobileAnalytics:
    return MobileAnalytics(screen_time_before_bed_minutes=round(_clip(screen, 0, 240)),
                           evening_light_lux=round(_clip(lux, 0, 100_000), 1),
                           daylight_minutes=round(_clip(p.daylight_mean * math.exp(rng.gauss(0, 0.4)), 0, 900)),
                           active_minutes=round(_clip(p.active_mean * math.exp(rng.gauss(0, 0.5)), 0, 900)),
                           steps=round(1500 + 120 * p.active_mean * math.exp(rng.gauss(0, 0.3))))


def generate_user(rng: random.Random, user_id: str, days: int, tenant: str) -> DiaryStudyUser:
    """One user: `days` nights of records and the true SOL of the night after."""
    p = _person(rng, days)
    start = START + timedelta(days=rng.randrange(7))
    records: list[SleepRecord] = []

    def rec(kind: RecordKind, day: date, data: SleepDiary | Questionnaire | MobileAnalytics | TreatmentCycle) -> None:
        records.append(SleepRecord(tenant=tenant, user_id=user_id, kind=kind, date=day, data=data))

    if p.has_treatment:
        rec("treatment", start, _treatment(p, days))
    for q in _questionnaires(rng, p):
        rec("questionnaire", start, q)
    e, prev_lux, missing = 0.0, None, False
    innovation = p.sigma * math.sqrt(1 - p.phi**2)
    for t in range(days + 1):
        night = start + timedelta(days=t)
        screen = p.screen_mean * math.exp(rng.gauss(0, 0.4))
        lux = p.lux_mean * math.exp(rng.gauss(0, 0.5))
        e_prev = e
        e = p.phi * e + rng.gauss(0, innovation)
        deterministic = _median_log(p, t, night, prev_lux)
        log_sol = deterministic + SCREEN_EFFECT * (screen - p.screen_mean) + e
        if rng.random() < OUTLIER_RATE:
            log_sol += math.log(rng.uniform(2, 4))
        sol = _clip(math.exp(log_sol), 1, 300)
        if t == days:
            reference = _clip(math.exp(deterministic + p.phi * e_prev), 1, 300)
            return DiaryStudyUser(user_id=user_id, records=records, next_night_sol=round(sol, 1),
                                  reference_sol=round(reference, 1))
        missing = rng.random() < (0.5 if missing else p.miss_after_present)
        if not missing:
            rec("diary", night, _diary(rng, p, sol))
        if p.has_phone and rng.random() < 0.8:
            rec("mobile", night, _phone(rng, p, screen, lux))
        prev_lux = lux
    raise AssertionError("unreachable: the loop returns on night `days`")


def generate_cohort(n_users: int, days: int = 21, seed: int = 0, tenant: str = "cohort") -> list[DiaryStudyUser]:
    """`n_users` users with `days` nights each, the same for the same seed."""
    if days < 1:
        raise ValueError("days must be at least 1")
    rng = random.Random(f"diary-study-{seed}")
    return [generate_user(rng, f"study_{seed}_{i:05d}", days, tenant) for i in range(n_users)]
