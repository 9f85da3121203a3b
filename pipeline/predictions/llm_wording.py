"""Optional: an OpenAI-compatible LLM voices the experts' key points (STREAMDESK_LLM_URL).

The LLM only words what the rules found: scores, confidences and the consensus stay the rules' own, so
a prediction is reproducible with or without it. One chat-completions call per round, all four experts in
it. Unreachable (connection refused, timeout, 5xx) -> `LlmUnavailable`, which fails the prediction with
COD_P004. A reply that is not the JSON asked for keeps the rules' wording and says so in `llmInfo.fallback`.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import structlog

from schemas.debate import RoundRecord

log = structlog.get_logger(__name__)
PROMPT_VERSION = "v1"
RULES_INFO: dict[str, Any] = {"model": "rules", "version": "1", "promptVersion": None,
                              "tokenUsage": {"input": 0, "output": 0, "total": 0}}
SYSTEM = ("You voice four sleep-medicine experts in a debate about a patient's sleep-onset latency (SOL). "
          "For each expert you get its findings. Rewrite each expert's key points in its own professional voice, "
          "in Korean, 2-4 short points, and one sentence of reasoning. Do not change any number. Answer with JSON "
          'only: {"<AGENT_TYPE>": {"keyPoints": [...], "reasoning": "..."}, ...}.')


class LlmUnavailable(Exception):
    """The LLM endpoint could not be reached or failed; the prediction fails with COD_P004."""


def _prompt(record: RoundRecord) -> str:
    return orjson.dumps([{"agentType": o.agent_type.value, "solScore": o.sol_score, "confidence": o.confidence,
                          "keyPoints": o.key_points, "riskFactors": o.risk_factors} for o in record.expert_opinions]
                        ).decode()


def _info(reply: dict[str, Any], fallback: str | None = None) -> dict[str, Any]:
    usage = reply.get("usage") or {}
    info = {"model": reply.get("model", "unknown"), "version": reply.get("system_fingerprint") or "",
            "promptVersion": PROMPT_VERSION,
            "tokenUsage": {"input": usage.get("prompt_tokens", 0), "output": usage.get("completion_tokens", 0),
                           "total": usage.get("total_tokens", 0)}}
    if fallback:
        info["fallback"] = fallback
    return info


def apply(record: RoundRecord, voiced: dict[str, Any]) -> RoundRecord:
    """The rules' opinions with the LLM's wording of key points and reasoning, numbers untouched."""
    opinions = []
    for o in record.expert_opinions:
        v = voiced.get(o.agent_type.value) or {}
        points = [str(p) for p in v.get("keyPoints", []) if str(p).strip()][:6] or o.key_points
        opinions.append(o.model_copy(update={"key_points": points, "reasoning": str(v.get("reasoning") or
                                                                                     o.reasoning)}))
    return record.model_copy(update={"expert_opinions": opinions})


async def voice_round(client: httpx.AsyncClient, url: str, model: str, api_key: str | None,
                      record: RoundRecord) -> tuple[RoundRecord, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    body = {"model": model, "temperature": 0, "response_format": {"type": "json_object"},
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": _prompt(record)}]}
    try:
        resp = await client.post(f"{url.rstrip('/')}/chat/completions", json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise LlmUnavailable(f"LLM at {url} unreachable: {type(exc).__name__}") from None
    if resp.status_code >= 500 or resp.status_code in (401, 403, 404, 429):
        raise LlmUnavailable(f"LLM at {url} answered {resp.status_code}")
    try:
        reply = resp.json()
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        return record, _info({}, "the reply was not JSON")
    try:
        voiced = orjson.loads(reply["choices"][0]["message"]["content"])
        if not isinstance(voiced, dict):
            raise TypeError("not an object")
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        log.warning("llm_reply_unusable", error=str(exc))
        return record, _info(reply, f"unusable reply: {exc}")
    return apply(record, voiced), _info(reply)
