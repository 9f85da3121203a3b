"""Seed 000 §7 `POST /ingest/sync-summaries` (vectors for search) and `GET /search` (keyword + semantic).

Both are tenant-scoped by the same credentials as the job reads: `X-Company-ID` plus that company's key, or a
Bearer token of the tenant. A company never sees another's tickets: each tenant has its own index.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import SearchDep
from api.errors import ApiError
from api.security import CompanyReader as Company
from pipeline.search import search as hybrid_search
from pipeline.search.errors import SearchError
from schemas.platform_api import SearchResults, SyncResult
from schemas.strict import Flag

router = APIRouter(tags=["search (seed 000)"])


class SyncOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force_rebuild: Flag = False
    incremental_only: Flag = True
    embedding_model: str | None = Field(default=None, description="informational: the configured model is used")


class SyncBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    company_id: str | None = None
    sync_options: SyncOptions = Field(default_factory=SyncOptions)


@router.post("/ingest/sync-summaries", response_model=SyncResult)
async def sync_summaries(company: Company, search: SearchDep,
                         body: Annotated[SyncBody, Body(default_factory=SyncBody)]) -> dict[str, Any]:
    """Has the worker embed the company's new or changed summaries and KB articles (all of them with
    `force_rebuild`, or `incremental_only: false`) and answers once they are searchable."""
    if body.company_id is not None and body.company_id != company:
        raise ApiError(403, f"you may sync company {company} only (body company_id {body.company_id!r})")
    o = body.sync_options
    force = o.force_rebuild or not o.incremental_only
    done = await search.sync(company, force)
    note = None
    if o.embedding_model and o.embedding_model != done["model"]:
        note = f"embedding_model {o.embedding_model!r} is not configured here; used {done['model']!r}"
    next_steps = ["Search with GET /search?q=..."]
    if done["status"] != "completed":
        next_steps.insert(0, f"{done['pending']} objects are still being embedded by the worker: call again "
                             "(incremental) to wait for them")
    return {**done, "company_id": company, "force_rebuild": force, "note": note, "next_steps": next_steps}


@router.get("/search", response_model=SearchResults, response_model_exclude_unset=True)
async def search(
    company: Company, service: SearchDep,
    q: Annotated[str, Query(min_length=1, max_length=500)],
    k: Annotated[int, Query(ge=1, le=50)] = 10,
    kind: Literal["ticket", "kb_article"] | None = None,
    mode: Literal["hybrid", "keyword", "semantic"] = "hybrid",
) -> dict[str, Any]:
    """The company's best matches: BM25 and embeddings fused by reciprocal rank, each with a snippet."""
    if service.index is None or service.index.tenant(company) is None:
        return {"query": q, "mode": mode, "hits": [], "total": 0,
                "note": "nothing indexed yet for this company: ingest, then POST /ingest/sync-summaries"}
    try:
        hits = await anyio.to_thread.run_sync(hybrid_search, service.index, company, q,
                                       service.embedder() if mode != "keyword" else None, k,
                                       [kind] if kind else None, mode)
    except SearchError as exc:
        raise ApiError(503, f"semantic search unavailable: {exc}; mode=keyword still works") from None
    return {"query": q, "mode": mode, "total": len(hits), "hits": [
        {"id": h.id, "kind": h.kind, "title": h.title, "score": round(h.score, 6),
         "keyword_score": h.keyword_score, "semantic_score": h.semantic_score, "snippet": h.snippet,
         "updated_at": h.updated_at.isoformat()} for h in hits]}
