"""The numbers behind the experts: one shared level, each expert's adjustment to it, and rolling-origin backtests.

Everything is in log minutes: night-to-night SOL is right-skewed and its effects are multiplicative, so a
forecast is `exp(level + adjustments)`, and that exponential is a conditional median, the answer that
minimises absolute error. Each function sees only the nights before `upto` (an index into the diary), so the
same code makes tonight's forecast (`upto = len`) and forecasts of nights already in the diary (backtests):

- `level`: the recency-weighted mean log SOL of the last 21 nights, each night winsorised at 2.5 robust SDs
  from the median of its kind of night (weeknight, Friday/Saturday, Sunday).
- SLEEP_PATTERN `weekday_adjustment` (Friday/Saturday and Sunday nights against the rest, each shrunk toward
  0 by 2 pseudo-nights) and `carryover` (last night's deviation times the lag-1 autocorrelation, shrunk
  toward 0.15 from insomnia diaries, Vallieres et al. 2005).
- CBTI `trend`: the window's log-SOL slope, shrunk toward the course's expected slope (an active course
  takes ~19 of ~45 minutes over 7 weeks, Trauer et al. 2015), carried from the window's centre to tonight.
- QUESTIONNAIRE `trait_pull`: the level pulled toward the instruments' SOL, by 1.5 pseudo-nights.
- MOBILE_ANALYTICS `behaviour`: yesterday's evening light and screen use against the user's own means,
  with coefficients fitted on this user's nights by ridge regression toward published effects.

`Ledger` backtests them: every adjustment's value at every night from the fifth on, computed from the nights
before it (rolling origin), so any combination's errors in minutes and log residuals are a sum away. The
debate reads those errors as each expert's measured skill, and the judge reads its interval's spread there.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property

from schemas.sleep import DataSnapshot, MobileAnalytics, TreatmentCycle, TreatmentPhase

WINDOW = 21
HALF_LIFE = 21.0  # nights: a night 10 nights back weighs half as much as last night
WINSOR_SDS = 2.5
MIN_SPREAD = 0.15  # log minutes: a floor under the robust SD, so heaped diaries (all 30s) do not clip everything
WEEKDAY_PSEUDO = 2.0
PRIOR_PHI = 0.15  # lag-1 autocorrelation of diary SOL in insomnia (Vallieres et al. 2005: r 0.1-0.3)
PHI_PSEUDO = 10.0
COURSE_SLOPE = -math.log(45 / 26) / 49  # ~19 of ~45 minutes over a 7-week course, per night
SLOPE_PRIOR_SD = 0.006
TRAIT_PSEUDO = 1.5
LIGHT_PRIOR = 0.05  # log SOL per log lux of yesterday evening's light (Chang et al. 2015, direction and size)
SCREEN_PRIOR = 0.03  # log SOL per hour of yesterday's screen use before bed (Hale & Guan 2015)
RIDGE = 6.0
MIN_HISTORY = 5

Adjustment = Callable[["Diary", "Window", date], float]


def _class(d: date) -> int:
    """0 Monday-Thursday nights, 1 Friday and Saturday nights (a free day follows), 2 Sunday nights."""
    wd = d.weekday()
    return 1 if wd in (4, 5) else 2 if wd == 6 else 0


@dataclass(frozen=True)
class Diary:
    """One user's diary as numbers, in date order, with what the other experts read beside it."""

    days: tuple[date, ...]
    logs: tuple[float, ...]
    mobile: dict[date, MobileAnalytics] = field(default_factory=dict)
    treatment: TreatmentCycle | None = None
    trait_log: float | None = None  # the questionnaires' SOL, log minutes
    trait_since: date | None = None  # the latest questionnaire behind it: a backtest up to it cannot use it

    @cached_property
    def classes(self) -> tuple[int, ...]:
        return tuple(_class(d) for d in self.days)

    @classmethod
    def of(cls, snapshot: DataSnapshot, trait_sol: float | None = None) -> Diary:
        return cls(days=tuple(d.date for d in snapshot.diary),
                   logs=tuple(math.log(max(d.data.sol_minutes, 1.0)) for d in snapshot.diary),
                   mobile={m.date: m.data for m in snapshot.mobile}, treatment=snapshot.treatment,
                   trait_log=None if trait_sol is None else math.log(max(trait_sol, 1.0)),
                   trait_since=max((q.date for q in snapshot.questionnaires), default=None))


@dataclass(frozen=True)
class Window:
    """The nights a forecast for `target` reads: indices, kinds of night, recency weights, winsorised logs, level."""

    idx: tuple[int, ...]
    classes: tuple[int, ...]
    weights: tuple[float, ...]
    values: tuple[float, ...]
    level: float

    @cached_property
    def effects(self) -> dict[int, float]:
        """Each kind of night's mean deviation from the level, shrunk toward 0, centred on the window's mix."""
        sums: dict[int, float] = {0: 0.0, 1: 0.0, 2: 0.0}
        counts: dict[int, int] = {0: 0, 1: 0, 2: 0}
        for c, v in zip(self.classes, self.values, strict=True):
            sums[c] += v - self.level
            counts[c] += 1
        effects = {c: sums[c] / (counts[c] + WEEKDAY_PSEUDO) for c in sums}
        n = len(self.idx)
        mix = sum(counts[c] / n * effects[c] for c in effects)
        return {c: effects[c] - mix for c in effects}

    @cached_property
    def residuals(self) -> tuple[float, ...]:
        """Each night's deviation from the level and its kind of night's effect."""
        return tuple(v - self.level - self.effects[c] for c, v in zip(self.classes, self.values, strict=True))


def window(diary: Diary, upto: int, target: date) -> Window | None:
    idx = tuple(range(max(0, upto - WINDOW), upto))
    if not idx:
        return None
    raw = diary.logs[idx[0]:upto]
    classes = diary.classes[idx[0]:upto]
    # centre each night on its own kind of night, so a steady weekend delay is a pattern, not an outlier
    overall = statistics.median(raw)
    centres = {c: statistics.median([v for v, k in zip(raw, classes, strict=True) if k == c])
               if classes.count(c) >= 2 else overall for c in set(classes)}
    deviations = [v - centres[c] for v, c in zip(raw, classes, strict=True)]
    spread = max(1.4826 * statistics.median([abs(d) for d in deviations]), MIN_SPREAD)
    bound = WINSOR_SDS * spread
    values = tuple(centres[c] + min(max(d, -bound), bound) for d, c in zip(deviations, classes, strict=True))
    # relative to the window's newest night, so the newest weighs 1 however far back the window lies (a night
    # decades old would underflow every weight to 0 if counted from the target)
    newest = diary.days[idx[-1]]
    weights = tuple(0.5 ** ((newest - diary.days[i]).days / HALF_LIFE) for i in idx)
    level = sum(w * v for w, v in zip(weights, values, strict=True)) / sum(weights)
    return Window(idx=idx, classes=classes, weights=weights, values=values, level=level)


def weekday_adjustment(diary: Diary, w: Window, target: date) -> float:
    return w.effects[_class(target)]


def carryover(diary: Diary, w: Window, target: date) -> float:
    """Last night's deviation from its expected value, times the user's shrunk lag-1 autocorrelation."""
    last = w.idx[-1]
    if diary.days[last] != target - timedelta(days=1):
        return 0.0
    resid = w.residuals
    pairs = [(resid[j], resid[j - 1]) for j in range(1, len(w.idx))
             if (diary.days[w.idx[j]] - diary.days[w.idx[j - 1]]).days == 1]
    ss = sum(r * r for r in resid)
    phi_user = sum(a * b for a, b in pairs) / ss if pairs and ss > 0 else PRIOR_PHI
    phi = (len(pairs) * phi_user + PHI_PSEUDO * PRIOR_PHI) / (len(pairs) + PHI_PSEUDO)
    return min(max(phi, 0.0), 0.6) * resid[-1]


def _active_course(t: TreatmentCycle | None) -> bool:
    return t is not None and not t.paused and t.phase in (TreatmentPhase.EARLY, TreatmentPhase.MID)


def trend(diary: Diary, w: Window, target: date) -> float:
    """The window's slope shrunk toward the course's (or 0 without an active course), from its centre to tonight."""
    prior = COURSE_SLOPE if _active_course(diary.treatment) else 0.0
    x = [(diary.days[i] - target).days for i in w.idx]
    total = sum(w.weights)
    mx = sum(wt * xi for wt, xi in zip(w.weights, x, strict=True)) / total
    sxx = sum(wt * (xi - mx) ** 2 for wt, xi in zip(w.weights, x, strict=True))
    if len(x) < 3 or sxx == 0:
        return prior * (0 - mx)
    slope = sum(wt * (xi - mx) * (v - w.level) for wt, xi, v in zip(w.weights, x, w.values, strict=True)) / sxx
    resid_var = max(sum(wt * (v - w.level - slope * (xi - mx)) ** 2 for wt, xi, v in
                        zip(w.weights, x, w.values, strict=True)) / total, MIN_SPREAD**2)
    precision_data, precision_prior = sxx / resid_var, 1 / SLOPE_PRIOR_SD**2
    shrunk = (precision_data * slope + precision_prior * prior) / (precision_data + precision_prior)
    return shrunk * (0 - mx)


def trait_pull(diary: Diary, w: Window, target: date) -> float:
    """The level moved toward the questionnaires' SOL by TRAIT_PSEUDO nights' worth of weight."""
    if diary.trait_log is None or (diary.trait_since is not None and target <= diary.trait_since):
        return 0.0
    return (diary.trait_log - w.level) * TRAIT_PSEUDO / (len(w.idx) + TRAIT_PSEUDO)


def _lagged(diary: Diary, night: date) -> tuple[float, float] | None:
    """Yesterday's (log evening lux, screen hours) for `night`: the evening before it."""
    m = diary.mobile.get(night - timedelta(days=1))
    if m is None:
        return None
    return math.log(max(m.evening_light_lux or 0.0, 1.0)) if m.evening_light_lux is not None else math.nan, \
        m.screen_time_before_bed_minutes / 60


def behaviour(diary: Diary, w: Window, target: date) -> float:
    today = _lagged(diary, target)
    if today is None or not diary.mobile:
        return 0.0
    rows = [(c, r) for i, r in zip(w.idx, w.residuals, strict=True) if (c := _lagged(diary, diary.days[i])) is not None]
    out = 0.0
    for k, prior in ((0, LIGHT_PRIOR), (1, SCREEN_PRIOR)):
        pts = [(c[k], r) for c, r in rows if not math.isnan(c[k])]
        if math.isnan(today[k]) or len(pts) < 3:
            continue
        mean = statistics.fmean(p[0] for p in pts)
        sxy = sum((p[0] - mean) * p[1] for p in pts)
        sxx = sum((p[0] - mean) ** 2 for p in pts)
        beta = (sxy + RIDGE * prior * _scale(k)) / (sxx + RIDGE * _scale(k))
        out += beta * (today[k] - mean)
    return out


def _scale(k: int) -> float:
    """A typical per-night variance of each covariate, so RIDGE reads as pseudo-nights for both."""
    return 0.25 if k == 0 else 0.5


@dataclass(frozen=True)
class Backtest:
    """Rolling-origin errors of one forecaster on this user's own nights."""

    abs_errors: tuple[float, ...]  # minutes
    log_residuals: tuple[float, ...]  # log truth - log forecast

    @property
    def n(self) -> int:
        return len(self.abs_errors)

    @property
    def mae(self) -> float | None:
        return statistics.fmean(self.abs_errors) if self.abs_errors else None


ADJUSTMENTS: dict[str, Adjustment] = {
    "weekday": weekday_adjustment, "carryover": carryover, "trend": trend, "trait": trait_pull,
    "behaviour": behaviour,
}


@dataclass(frozen=True)
class Ledger:
    """Every adjustment's value at every backtest origin and at tonight, computed once per round.

    A forecaster is a set of adjustment names; its forecast and its backtest are sums over this table, so the
    debate can try any combination an expert considers without recomputing a window.
    """

    level: float | None  # tonight's level, log minutes (None: no diary)
    tonight: dict[str, float]
    origin_levels: tuple[float, ...]
    origin_truths: tuple[float, ...]  # log SOL of each backtested night
    origin_adjustments: dict[str, tuple[float, ...]]

    @classmethod
    def empty(cls) -> Ledger:
        return cls(level=None, tonight={}, origin_levels=(), origin_truths=(), origin_adjustments={})

    @classmethod
    def of(cls, diary: Diary, target: date) -> Ledger:
        n = len(diary.days)
        tonight_w = window(diary, n, target)
        if tonight_w is None:
            return cls.empty()
        uptos = range(MIN_HISTORY, n)
        windows = [window(diary, u, diary.days[u]) for u in uptos]
        return cls(level=tonight_w.level,
                   tonight={k: adj(diary, tonight_w, target) for k, adj in ADJUSTMENTS.items()},
                   origin_levels=tuple(w.level for w in windows),  # type: ignore[union-attr]
                   origin_truths=tuple(diary.logs[u] for u in uptos),
                   origin_adjustments={k: tuple(adj(diary, w, diary.days[u]) for u, w in  # type: ignore[arg-type]
                                                zip(uptos, windows, strict=True)) for k, adj in ADJUSTMENTS.items()})

    def forecast_log(self, parts: frozenset[str]) -> float | None:
        if self.level is None:
            return None
        return self.level + sum(self.tonight[k] for k in parts)

    def origin_forecasts(self, parts: frozenset[str]) -> list[float]:
        return [lv + sum(self.origin_adjustments[k][i] for k in parts) for i, lv in enumerate(self.origin_levels)]

    def backtest(self, parts: frozenset[str]) -> Backtest:
        """The backtest of `parts`, computed once per ledger."""
        cache: dict[frozenset[str], Backtest] = self.__dict__.setdefault("_backtests", {})
        if parts not in cache:
            cache[parts] = backtest_of(self.origin_forecasts(parts), self.origin_truths)
        return cache[parts]


def backtest_of(forecasts: Sequence[float], truths: Sequence[float]) -> Backtest:
    """Absolute errors (minutes) and log residuals of log forecasts against log truths."""
    return Backtest(tuple(abs(math.exp(t) - math.exp(f)) for f, t in zip(forecasts, truths, strict=True)),
                    tuple(t - f for f, t in zip(forecasts, truths, strict=True)))


def naive_forecasts(sols: Sequence[float]) -> dict[str, float]:
    """What a clinician with the diary and a calculator would say: last night, mean and median of the last 7."""
    if not sols:
        return {}
    week = list(sols[-7:])
    return {"lastNight": float(sols[-1]), "mean7": statistics.fmean(week), "median7": float(statistics.median(week))}
