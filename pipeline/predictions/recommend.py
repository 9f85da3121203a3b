"""CBT-I recommendations chosen from the debate's outcome and the user's features (Korean text, as seed 004).

Each rule fires on measured numbers and quotes them in its rationale. Expected impact is the component's
base effectiveness (AASM practice parameters, Morgenthaler et al. 2006: stimulus control and sleep
restriction strongest, sleep hygiene alone weakest) scaled by how far past its threshold the user is:
impact = base * (0.7 + 0.3 * severity), severity 0-1. Recommendations are ordered by impact, nudged
toward what the current treatment phase works on; priority 1 is the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.predictions.features import Features, extract
from schemas.debate import (
    DebateOutcome,
    Difficulty,
    Recommendation,
    RecommendationCategory,
    RecommendationSet,
    RecommendationSummary,
)
from schemas.sleep import DataSnapshot, TreatmentPhase

Cat = RecommendationCategory
INSOMNIA_SOL = 30.0  # Lichstein et al. 2003
TARGET_EFFICIENCY = 0.85  # Spielman et al. 1987
MIN_WINDOW = 300  # sleep restriction never prescribes less than 5 h in bed (Spielman et al. 1987)
FOCUS_NAMES = {Cat.STIMULUS_CONTROL: "자극 조절", Cat.SLEEP_RESTRICTION: "수면 제한", Cat.RELAXATION: "이완 훈련",
               Cat.SLEEP_HYGIENE: "수면 위생", Cat.COGNITIVE: "인지 재구성", Cat.CBTI: "CBT-I 과정 기법"}
# what each phase of a CBT-I course works on (EARLY: restriction + stimulus control; MID: cognitive work;
# LATE/MAINTENANCE: keeping habits, relapse prevention)
PHASE_FOCUS = {TreatmentPhase.EARLY: {Cat.SLEEP_RESTRICTION, Cat.STIMULUS_CONTROL},
               TreatmentPhase.MID: {Cat.COGNITIVE, Cat.RELAXATION, Cat.CBTI},
               TreatmentPhase.LATE: {Cat.SLEEP_HYGIENE, Cat.COGNITIVE},
               TreatmentPhase.MAINTENANCE: {Cat.SLEEP_HYGIENE}}
PHASE_BOOST = 1.15


@dataclass(frozen=True)
class Candidate:
    category: RecommendationCategory
    title: str
    description: str
    impact: float
    difficulty: Difficulty
    days: int
    steps: list[str]
    rationale: str


def _impact(base: float, severity: float) -> float:
    return round(base * (0.7 + 0.3 * max(0.0, min(1.0, severity))), 2)


def _stimulus_control(f: Features, o: DebateOutcome) -> Candidate | None:
    se = f.efficiency_recent
    if o.sol_score <= INSOMNIA_SOL or se is None or se >= TARGET_EFFICIENCY:
        return None
    return Candidate(
        Cat.STIMULUS_CONTROL, "자극 조절법: 잠이 안 오면 침대에서 나오기",
        "침대를 잠과 다시 연결하기 위해, 졸릴 때만 눕고 잠들지 못하면 침대를 떠나세요.",
        _impact(0.8, (o.sol_score - INSOMNIA_SOL) / 30), Difficulty.MODERATE, 14,
        ["졸릴 때만 침대에 눕기", "20분 안에 잠들지 못하면 다른 방에서 조용한 활동 후 졸릴 때 돌아오기",
         "침대에서는 휴대폰·TV 사용하지 않기", "주말에도 매일 같은 시각에 기상하기"],
        f"예측 SOL이 {o.sol_score:.0f}분으로 불면 기준 30분을 넘고, 최근 수면 효율이 {se * 100:.1f}%로 85% 미만입니다."
        " 침대에서 깨어 있는 시간이 길어 침대와 각성이 연결되어 있습니다 (Bootzin 1972).")


def _sleep_restriction(f: Features, o: DebateOutcome) -> Candidate | None:
    se = f.efficiency_recent
    if se is None or se >= TARGET_EFFICIENCY or f.mean_tst is None:
        return None
    window = max(round(f.mean_tst / 15) * 15, MIN_WINDOW)
    return Candidate(
        Cat.SLEEP_RESTRICTION, "수면 제한: 침대에 있는 시간 줄이기",
        f"침대에 있는 시간을 실제 수면 시간에 맞춰 {window // 60}시간 {window % 60}분으로 줄여 수면 압력을 높이세요.",
        _impact(0.8, (TARGET_EFFICIENCY - se) / 0.2), Difficulty.DIFFICULT, 21,
        [f"침대에 있는 시간을 {window}분으로 제한하기", "기상 시각을 매일 고정하고 취침 시각을 그만큼 늦추기",
         "한 주 수면 효율이 90% 이상이면 15분 늘리고, 85% 미만이면 15분 줄이기",
         "첫 1-2주는 낮 졸음에 주의하고 졸릴 때 운전하지 않기"],
        f"최근 7일 수면 효율이 {se * 100:.1f}%로 목표 85%보다 낮습니다 (평균 총 수면 {f.mean_tst:.0f}분)."
        " 침대 시간을 줄이면 수면 욕구가 커져 입면이 빨라집니다 (Spielman 1987).")


def _relaxation(f: Features, o: DebateOutcome) -> Candidate | None:
    cog, som = f.psas_cognitive, f.psas_somatic
    cog_high, som_high = cog is not None and cog >= 20, som is not None and som >= 14
    if not (cog_high or som_high):
        return None
    severity = max(((cog or 8) - 20) / 12, ((som or 8) - 14) / 10, 0.0)
    title = "점진적 근육 이완법" if som_high else "호흡·심상 이완 훈련"
    # inside a running CBT-I course relaxation is one of the course's techniques: seed 004 files it as CBTI
    in_course = f.phase in (TreatmentPhase.EARLY, TreatmentPhase.MID, TreatmentPhase.LATE) and not f.paused
    return Candidate(
        Cat.CBTI if in_course else Cat.RELAXATION, title, f"SOL 단축을 위해 입면 전 {title}을 실시해보세요.",
        _impact(0.65, severity), Difficulty.MODERATE, 14,
        ["침대에 누워 발가락부터 순차적으로 긴장을 주었다 풀기" if som_high else "4초 들이쉬고 6초 내쉬는 복식호흡",
         "소등 후 10-15분간 실시", "SOL 30분 이내 달성 시까지 매일 지속"],
        "입면 전 각성이 높습니다: " + ", ".join(
            part for part in (f"PSAS 인지 각성 {cog:.0f}점" if cog is not None else "",
                              f"PSAS 신체 각성 {som:.0f}점" if som is not None else "") if part)
        + ". 각성이 높을수록 입면이 늦어집니다 (Nicassio 1985).")


def _screen(f: Features, o: DebateOutcome) -> Candidate | None:
    if f.screen_minutes is None or f.screen_minutes < 60:
        return None
    return Candidate(
        Cat.SLEEP_HYGIENE, "취침 전 화면 사용 줄이기", "소등 전 1시간은 휴대폰과 태블릿을 침실 밖에 두세요.",
        _impact(0.45, (f.screen_minutes - 60) / 90), Difficulty.EASY, 7,
        ["소등 1시간 전 휴대폰 알림 끄기", "충전기를 침실 밖에 두기", "화면 대신 종이책이나 음악"],
        f"최근 취침 전 2시간 화면 사용이 하루 평균 {f.screen_minutes:.0f}분입니다. 취침 전 화면 사용은 입면 지연과"
        " 관련됩니다 (Hale & Guan 2015).")


def _light(f: Features, o: DebateOutcome) -> Candidate | None:
    bright, dark_day = f.evening_lux is not None and f.evening_lux >= 100, (
        f.daylight_minutes is not None and f.daylight_minutes < 30)
    if not (bright or dark_day):
        return None
    facts = [f"저녁 평균 조도 {f.evening_lux:.0f} lux" if bright else "",
             f"낮 일광 노출 하루 {f.daylight_minutes:.0f}분" if dark_day else ""]
    return Candidate(
        Cat.SLEEP_HYGIENE, "빛 관리: 저녁엔 어둡게, 낮엔 밝게",
        "저녁 조명을 낮추고 오전에 햇빛을 쬐어 생체 리듬을 당기세요.",
        _impact(0.45, ((f.evening_lux or 0) - 100) / 200 if bright else 0.5), Difficulty.EASY, 14,
        ["소등 2시간 전부터 간접 조명·따뜻한 색 조명 사용", "오전에 30분 이상 밖에서 햇빛 쬐기"],
        ", ".join(x for x in facts if x) + ". 저녁 빛은 멜라토닌을 억제해 입면을 늦추고 (Chang 2015),"
        " 낮의 햇빛은 생체 리듬을 강화합니다.")


def _schedule(f: Features, o: DebateOutcome) -> Candidate | None:
    irregular = f.lights_off_sd is not None and f.lights_off_sd > 60
    weekend = f.weekend_gap is not None and f.weekend_gap >= 15
    if not (irregular or weekend):
        return None
    facts = [f"소등 시각 표준편차 {f.lights_off_sd:.0f}분" if irregular else "",
             f"주말 밤 SOL 평일 대비 +{f.weekend_gap:.0f}분" if weekend else ""]
    return Candidate(
        Cat.SLEEP_HYGIENE, "주말 입면 패턴 일관성 유지",
        "주말에도 평일과 같은 소등·기상 시각을 지켜 SOL 일관성을 높이세요.",
        _impact(0.5, max((f.lights_off_sd or 0) - 60, 0) / 60 + max(f.weekend_gap or 0, 0) / 30), Difficulty.DIFFICULT,
        21, ["금요일 밤 늦게 자는 습관 개선", "토요일 아침 알람 설정", "주말 활동 계획을 수면 스케줄에 맞춰 조정"],
        ", ".join(x for x in facts if x) + ". 불규칙한 일정은 생체 리듬을 흐트러뜨려 입면을 늦춥니다.")


def _cognitive(f: Features, o: DebateOutcome) -> Candidate | None:
    beliefs, severe = f.dbas is not None and f.dbas >= 3.8, f.isi is not None and f.isi >= 15
    if not (beliefs or severe):
        return None
    facts = [f"DBAS-16 평균 {f.dbas:.1f}점(기준 3.8)" if beliefs else "", f"ISI {f.isi:.0f}점(임상 기준 15)" if severe
             else ""]
    return Candidate(
        Cat.COGNITIVE, "수면에 대한 생각 바꾸기 (인지 재구성)",
        "잠에 대한 걱정과 비현실적 기대를 기록하고 근거를 따져보세요.",
        _impact(0.6, max(((f.dbas or 0) - 3.8) / 3, ((f.isi or 0) - 15) / 13, 0.0)), Difficulty.DIFFICULT, 28,
        ["잠들기 1-2시간 전 '걱정 시간' 15분 갖고 적어두기", "'8시간 못 자면 내일을 망친다' 같은 생각의 근거 점검",
         "잠을 억지로 자려 하지 않기"],
        ", ".join(x for x in facts if x) + ". 수면에 대한 역기능적 신념은 입면 전 각성을 키웁니다 (Morin 2007).")


def _keep_going(f: Features, o: DebateOutcome) -> Candidate:
    se = f"수면 효율 {f.efficiency_recent * 100:.1f}%" if f.efficiency_recent is not None else "수면 효율 자료 없음"
    return Candidate(
        Cat.SLEEP_HYGIENE, "현재 수면 습관 유지", "지금의 규칙적인 수면 습관을 유지하세요.", _impact(0.3, 0.0),
        Difficulty.EASY, 7, ["매일 같은 시각에 소등·기상하기", "수면 일지를 계속 기록하기"],
        f"예측 SOL {o.sol_score:.0f}분, {se}로 개입 기준에 해당하는 항목이 없습니다.")


RULES: tuple[Callable[[Features, DebateOutcome], Candidate | None], ...] = (
    _stimulus_control, _sleep_restriction, _relaxation, _cognitive, _schedule, _screen, _light)


def infer_phase(snapshot: DataSnapshot, f: Features, o: DebateOutcome) -> TreatmentPhase:
    """The treatment record's phase; without one, ASSESSMENT if any insomnia sign, else MAINTENANCE."""
    if snapshot.treatment is not None:
        return snapshot.treatment.phase
    signs = (o.sol_score > INSOMNIA_SOL, f.efficiency_recent is not None and f.efficiency_recent < TARGET_EFFICIENCY,
             f.isi is not None and f.isi >= 15)
    return TreatmentPhase.ASSESSMENT if any(signs) else TreatmentPhase.MAINTENANCE


def _summary(recs: list[Recommendation]) -> RecommendationSummary:
    """Overall improvement: the impacts' mean weighted by 1 / priority."""
    weights = [1 / r.priority for r in recs]
    overall = sum(w * r.expected_impact for w, r in zip(weights, recs, strict=True)) / sum(weights)
    focus = list(dict.fromkeys(FOCUS_NAMES[r.category] for r in recs))[:3]
    plan = (f"첫 2주간은 '{recs[0].title}'에 집중하고, 3주차부터 '{recs[1].title}'을(를) 병행하세요."
            if len(recs) > 1 else f"앞으로 2주간 '{recs[0].title}'에 집중하세요.")
    return RecommendationSummary(focus_areas=focus, expected_overall_improvement=round(overall, 2),
                                 implementation_plan=plan)


def recommend(snapshot: DataSnapshot, outcome: DebateOutcome, prediction_id: str) -> RecommendationSet:
    """The CBT-I recommendations for one prediction, most effective first."""
    f = extract(snapshot)
    phase = infer_phase(snapshot, f, outcome)
    found = [c for rule in RULES if (c := rule(f, outcome)) is not None] or [_keep_going(f, outcome)]
    focus = PHASE_FOCUS.get(phase, set())
    found.sort(key=lambda c: -c.impact * (PHASE_BOOST if c.category in focus else 1.0))
    recs = [Recommendation(id=f"rec_{i:03d}", category=c.category, priority=i, title=c.title,
                           description=c.description, expected_impact=c.impact, difficulty=c.difficulty,
                           estimated_time_to_effect=c.days, action_steps=c.steps, rationale=c.rationale)
            for i, c in enumerate(found, start=1)]
    return RecommendationSet(prediction_id=prediction_id, treatment_phase=phase, total_recommendations=len(recs),
                             primary_category=recs[0].category, recommendations=recs, summary=_summary(recs))
