"""Seed 004 §4: system performance overview and per-agent performance, from stored results."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api.cod_envelope import ok, tenant_filter
from api.deps import StoreDep
from api.security import matrix
from api.wire import iso_z
from pipeline.storage.queries import performance as perf
from schemas.cod_api import AgentsPerformance, Envelope, PerformanceOverview
from schemas.debate import AgentType

router = APIRouter(tags=["performance (seed 004)"])
OverviewAuth = matrix("performance_overview")
AgentsAuth = matrix("performance_agents")
Period = Literal["1d", "7d", "30d"]
SLOW_MS = 1000  # our own target: POST predict -> COMPLETED p95 under 1 s


def _r(v: float | None, digits: int = 3) -> float | None:
    return None if v is None else round(v, digits)


def _alerts(o: dict[str, Any]) -> list[dict[str, Any]]:
    now = iso_z(datetime.now(UTC))
    alerts = []
    times = [t for _, _, t in o["trend"] if t is not None]
    if len(times) >= 3 and times[-3] < times[-2] < times[-1]:
        alerts.append({"level": "WARNING", "message": "평균 처리 시간이 지난 3일간 증가 추세", "timestamp": now})
    if o["total"] and (o["error_rate"] or 0) > 0.05:
        alerts.append({"level": "CRITICAL", "message": f"오류율 {o['error_rate']:.1%}: 5% 초과", "timestamp": now})
    if o["avg_time"] is not None and o["avg_time"] > SLOW_MS:
        alerts.append({"level": "WARNING", "message": f"평균 처리 시간 {o['avg_time']:.0f}ms: 목표 {SLOW_MS}ms 초과",
                       "timestamp": now})
    if o["observed"] >= 10 and (o["accuracy"] or 0) < 0.7:
        alerts.append({"level": "WARNING", "message": f"예측 정확도 {o['accuracy']:.0%}: 70% 미만", "timestamp": now})
    return alerts


@router.get("/performance/overview", response_model=Envelope[PerformanceOverview])
async def performance_overview(request: Request, principal: OverviewAuth, store: StoreDep,
                               period: Period = "7d") -> JSONResponse:
    o = await store.run(perf.overview, tenant_filter(principal), period)
    return ok(request, {
        "period": period,
        "overall": {"totalPredictions": o["total"], "successRate": _r(o["success_rate"]),
                    "averageProcessingTime": _r(o["avg_time"], 0), "averageAccuracy": _r(o["accuracy"]),
                    "observedPredictions": o["observed"], "errorRate": _r(o["error_rate"])},
        "trends": {"predictionVolume": [{"date": d.isoformat(), "count": n} for d, n, _ in o["trend"]],
                   "processingTime": [{"date": d.isoformat(), "avgTime": _r(t, 0)} for d, _, t in o["trend"]]},
        "alerts": _alerts(o),
    })


def _agent_public(a: dict[str, Any]) -> dict[str, Any]:
    consistency = None if a["error_sd"] is None else max(0.0, 1 - a["error_sd"] / 30)
    return {"agentType": a["agent_type"],
            "metrics": {"totalAnalyses": a["n"], "successRate": _r(a["had_data"]),
                        "averageResponseTime": _r(a["avg_time"], 1), "averageConfidence": _r(a["avg_confidence"]),
                        "consistencyScore": _r(consistency)},
            "performance": {"accuracy": _r(a["accuracy"]), "reliability": _r(a["agreement"]),
                            "debateParticipation": _r(a["n"] / a["completed"] if a["completed"] else None)}}


@router.get("/performance/agents", response_model=Envelope[AgentsPerformance])
async def performance_agents(
    request: Request, principal: AgentsAuth, store: StoreDep, period: Period = "7d",
    agent_type: Annotated[AgentType | None, Query(alias="agentType")] = None,
) -> JSONResponse:
    """successRate: share of analyses that had data to work on; reliability: agreement (±15 min) with the panel's
    final answer; consistencyScore: 1 - SD of the error / 30 min; accuracy: as in the overview."""
    rows = await store.run(perf.agents, tenant_filter(principal), period, agent_type.value if agent_type else None)
    agents = [_agent_public(a) for a in rows]

    def score(a: dict[str, Any]) -> float:
        p = a["performance"]
        return p["accuracy"] if p["accuracy"] is not None else (p["reliability"] or 0)

    ranked = sorted(agents, key=score, reverse=True)
    return ok(request, {"period": period, "agents": agents, "comparison": {
        "bestPerforming": ranked[0]["agentType"] if ranked else None,
        "improvementNeeded": ranked[-1]["agentType"] if len(ranked) > 1 else None,
        "overallRanking": [a["agentType"] for a in ranked]}})
