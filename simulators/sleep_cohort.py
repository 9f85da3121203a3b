"""A synthetic cohort with a known truth, for tests and benchmarks: `generate_cohort(n_users, days, seed)`.

Each user has a latent insomnia severity s ~ Beta(2, 2) in 0-1. The median SOL (minutes) of night t is

    mu_t = 8 + 26*s                                  base SOL of a neutral night
         + 0.5  * (cog - 13)                         cognitive pre-sleep arousal, cog = PSAS cognitive (8-40)
         + 0.08 * screen_t                           minutes of screen use in the 2 h before lights off
         + 3.0  * lux_t / 100                        mean evening light, lux
         - 2.5  * daylight_t / 60                    minutes outdoors in daylight
         - 1.5  * active_t / 30                      active minutes
         - R(phase) * adherence                      sleep restriction: R = 3 EARLY, 8 MID, 12 LATE, else 0
         + trend * t                                 EARLY/MID: -0.35 * adherence min/day; else N(0, 0.15)
         + W * weekend_t                             W ~ U(0, 12) on Friday and Saturday nights
    SOL_t = max(mu_t, 3) * exp(sigma * N(0, 1))      lognormal night-to-night noise, sigma ~ U(0.15, 0.4)

with cog = 10 + 20*s + N(0, 3). Behaviour varies around per-user means: screen U(5, 150) min (+- N(0, 20)
nightly), lux 60 * LogN(0, 0.7) (x LogN(0, 0.3)), daylight U(5, 180) and active U(0, 90) min (+- N(0, 20),
N(0, 15)). The diary records SOL_t in whole minutes for nights 0..days-1 (each kept with the user's diary
completion rate, U(0.55, 1)); `next_night_sol` is SOL_days, the night after the data, drawn from
the same relation with that day's (unrecorded) behaviour. Questionnaires follow s: ISI = 3 + 20s + N(0, 2.5),
PSQI = 2 + 13s + N(0, 1.5) (latency component from the first week's median SOL, misjudged by one band for
20% of users), PSAS = cog + somatic (somatic = 9 + 10s + N(0, 2.5)), DBAS-16 = 1.5 + 5s + N(0, 0.8),
completed on day 7; each is present with probability 0.85. 85% of users have a treatment record (phase
uniform, adherence ~ Beta(3, 2)); an adherent night keeps the prescribed lights-off and time in bed, other
weekend nights start 40 min later. 80% of users have phone data on 90% of days (evening lux for 70% of
users). Deterministic for a seed: one random.Random(seed) draws everything in order.
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

START = date(2025, 8, 1)
RESTRICTION: dict[TreatmentPhase | None, float] = {
    TreatmentPhase.EARLY: 3.0, TreatmentPhase.MID: 8.0, TreatmentPhase.LATE: 12.0}
PHASE_WEEKS = {TreatmentPhase.ASSESSMENT: (0, 0), TreatmentPhase.EARLY: (1, 2), TreatmentPhase.MID: (3, 5),
               TreatmentPhase.LATE: (6, 8), TreatmentPhase.MAINTENANCE: (9, 12)}


@dataclass(frozen=True)
class Latent:
    """The hidden parameters one user's data was drawn from."""

    severity: float
    cognitive_arousal: float
    somatic_arousal: float
    screen_mean: float
    lux_mean: float
    daylight_mean: float
    active_mean: float
    phase: TreatmentPhase | None
    adherence: float
    trend_per_day: float
    weekend_effect: float
    noise_sigma: float
    lights_off: float  # habitual lights-off, minutes after noon
    lights_off_sd: float
    sleep_need: float  # minutes of sleep on a free night
    diary_completion: float
    has_mobile: bool
    has_lux: bool


@dataclass(frozen=True)
class SyntheticUser:
    user_id: str
    records: list[SleepRecord]
    next_night_sol: float
    latent: Latent


@dataclass(frozen=True)
class Behaviour:
    """One day's phone-measurable behaviour."""

    screen: float
    lux: float
    daylight: float
    active: float


def _clip(v: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, v))


def _latent(rng: random.Random) -> Latent:
    s = rng.betavariate(2, 2)
    has_treatment = rng.random() < 0.85
    phase = rng.choice(list(TreatmentPhase)) if has_treatment else None
    adherence = rng.betavariate(3, 2) if phase not in (None, TreatmentPhase.ASSESSMENT) else 0.0
    active_course = phase in (TreatmentPhase.EARLY, TreatmentPhase.MID)
    return Latent(
        severity=s,
        cognitive_arousal=_clip(10 + 20 * s + rng.gauss(0, 3), 8, 40),
        somatic_arousal=_clip(9 + 10 * s + rng.gauss(0, 2.5), 8, 40),
        screen_mean=rng.uniform(5, 150),
        lux_mean=_clip(60 * math.exp(rng.gauss(0, 0.7)), 1, 1000),
        daylight_mean=rng.uniform(5, 180),
        active_mean=rng.uniform(0, 90),
        phase=phase,
        adherence=adherence,
        trend_per_day=-0.35 * adherence if active_course else rng.gauss(0, 0.15),
        weekend_effect=rng.uniform(0, 12),
        noise_sigma=rng.uniform(0.15, 0.4),
        lights_off=rng.uniform(600, 750),
        lights_off_sd=rng.uniform(10, 75),
        sleep_need=rng.gauss(420, 30),
        diary_completion=rng.uniform(0.55, 1.0),
        has_mobile=rng.random() < 0.8,
        has_lux=rng.random() < 0.7,
    )


def _behaviour(rng: random.Random, u: Latent) -> Behaviour:
    return Behaviour(
        screen=_clip(rng.gauss(u.screen_mean, 20), 0, 240),
        lux=_clip(u.lux_mean * math.exp(rng.gauss(0, 0.3)), 0, 100_000),
        daylight=_clip(rng.gauss(u.daylight_mean, 20), 0, 600),
        active=_clip(rng.gauss(u.active_mean, 15), 0, 600),
    )


def median_sol(u: Latent, b: Behaviour, t: int, night: date) -> float:
    """mu_t of the module docstring."""
    mu = (8 + 26 * u.severity + 0.5 * (u.cognitive_arousal - 13) + 0.08 * b.screen + 3.0 * b.lux / 100
          - 2.5 * b.daylight / 60 - 1.5 * b.active / 30 - RESTRICTION.get(u.phase, 0.0) * u.adherence
          + u.trend_per_day * t + (u.weekend_effect if night.weekday() in (4, 5) else 0.0))
    return max(mu, 3.0)


def _clock(minutes_after_noon: float) -> time:
    m = round(minutes_after_noon + 720) % 1440
    return time(m // 60, m % 60)


def _diary(rng: random.Random, u: Latent, sol: float, night: date) -> SleepDiary:
    weekend = night.weekday() in (4, 5)
    restricted = u.phase not in (None, TreatmentPhase.ASSESSMENT) and rng.random() < u.adherence
    # keeping the prescribed schedule means the same lights-off every night, weekends included
    shift = 0 if restricted else 40 if weekend else 0
    lights = u.lights_off + rng.gauss(0, 10 if restricted else u.lights_off_sd) + shift
    settle = rng.uniform(0, 30)  # in bed before lights off
    sol = _clip(round(sol), 1, 240)
    waso = _clip(round((5 + 45 * u.severity) * math.exp(rng.gauss(0, 0.4))), 0, 240)
    rise_delay = rng.uniform(0, 20)
    if restricted:
        tib = _clip(u.sleep_need + 30, 330, 540)
        waso = min(waso, max(tib - settle - sol - rise_delay, 0))
    else:
        tib = settle + sol + waso + _clip(rng.gauss(u.sleep_need, 30), 180, 600) + rise_delay
    tst = max(tib - settle - sol - waso - rise_delay, 0)
    tib = round(tib)
    return SleepDiary(bedtime=_clock(lights - settle), lights_off=_clock(lights), sol_minutes=sol,
                      awakenings=max(round(1 + 3 * u.severity + rng.gauss(0, 1)), 0), waso_minutes=waso,
                      wake_time=_clock(lights - settle + tib), time_in_bed_minutes=tib,
                      total_sleep_minutes=min(round(tst), tib))


def _questionnaires(rng: random.Random, u: Latent, first_week_sol: float) -> list[Questionnaire]:
    s = u.severity
    latency = 0 if first_week_sol <= 15 else 1 if first_week_sol <= 30 else 2 if first_week_sol <= 60 else 3
    if rng.random() < 0.2:  # people misjudge their own latency
        latency = int(_clip(latency + rng.choice((-1, 1)), 0, 3))
    items = [
        Questionnaire(instrument=Instrument.ISI, total_score=round(_clip(3 + 20 * s + rng.gauss(0, 2.5), 0, 28))),
        Questionnaire(instrument=Instrument.PSQI, total_score=round(_clip(2 + 13 * s + rng.gauss(0, 1.5), 0, 21)),
                      subscales={"latency": latency}),
        Questionnaire(instrument=Instrument.PSAS, total_score=round(u.cognitive_arousal + u.somatic_arousal),
                      subscales={"cognitive": round(u.cognitive_arousal), "somatic": round(u.somatic_arousal)}),
        Questionnaire(instrument=Instrument.DBAS16,
                      total_score=round(_clip(1.5 + 5 * s + rng.gauss(0, 0.8), 0, 10), 1)),
    ]
    return [q for q in items if rng.random() < 0.85]


def _mobile(rng: random.Random, u: Latent, b: Behaviour) -> MobileAnalytics:
    return MobileAnalytics(screen_time_before_bed_minutes=round(b.screen), steps=round(2000 + 90 * b.active
                           + rng.uniform(0, 3000)), active_minutes=round(b.active), daylight_minutes=round(b.daylight),
                           evening_light_lux=round(b.lux, 1) if u.has_lux else None)


def _treatment(rng: random.Random, u: Latent) -> TreatmentCycle | None:
    if u.phase is None:
        return None
    lo, hi = PHASE_WEEKS[u.phase]
    prescribing = u.phase is not TreatmentPhase.ASSESSMENT
    return TreatmentCycle(phase=u.phase, cycle_week=rng.randint(lo, hi), timezone="Asia/Seoul",
                          bedtime_goal=_clock(u.lights_off) if prescribing else None,
                          prescribed_time_in_bed_minutes=round(_clip(u.sleep_need + 30, 330, 540)) if prescribing
                          else None)


def generate_user(rng: random.Random, user_id: str, days: int, tenant: str) -> SyntheticUser:
    """One user: `days` nights of records and the true SOL of the night after."""
    u = _latent(rng)
    start = START + timedelta(days=rng.randrange(7))
    records: list[SleepRecord] = []

    def rec(kind: RecordKind, day: date, data: SleepDiary | Questionnaire | MobileAnalytics | TreatmentCycle) -> None:
        records.append(SleepRecord(tenant=tenant, user_id=user_id, kind=kind, date=day, data=data))

    treatment = _treatment(rng, u)
    if treatment is not None:
        rec("treatment", start, treatment)
    week_sols: list[float] = []
    for t in range(days):
        night = start + timedelta(days=t)
        b = _behaviour(rng, u)
        sol = median_sol(u, b, t, night) * math.exp(u.noise_sigma * rng.gauss(0, 1))
        if t < 7:
            week_sols.append(sol)
        if rng.random() < u.diary_completion:
            rec("diary", night, _diary(rng, u, sol, night))
        if u.has_mobile and rng.random() < 0.9:
            rec("mobile", night, _mobile(rng, u, b))
    week_sols.sort()
    for q in _questionnaires(rng, u, week_sols[len(week_sols) // 2] if week_sols else 30.0):
        rec("questionnaire", start + timedelta(days=min(6, days - 1)), q)
    target = start + timedelta(days=days)
    truth = median_sol(u, _behaviour(rng, u), days, target) * math.exp(u.noise_sigma * rng.gauss(0, 1))
    return SyntheticUser(user_id=user_id, records=records, next_night_sol=round(truth, 1), latent=u)


def generate_cohort(n_users: int, days: int = 14, seed: int = 0, tenant: str = "cohort") -> list[SyntheticUser]:
    """`n_users` synthetic users with `days` nights each, the same for the same seed."""
    if days < 1:
        raise ValueError("days must be at least 1")
    rng = random.Random(seed)
    return [generate_user(rng, f"user_{seed}_{i:05d}", days, tenant) for i in range(n_users)]
