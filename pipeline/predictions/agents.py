"""The predictions stream's Faust agents: thin — decode, call a pure function, send.

Low-volume streams, so ordinary per-event agents (docs/decisions.md "The hot path"): sleep records are validated
at entry; a prediction request becomes round 1; each round message is one debate round. What each agent does
to one message is a module-level handler (`validate_sleep_message`, `start_debate`, `debate_round`) that takes
what it sends to, so it can be imported and tested without a worker (tests/unit/test_agent_handlers.py);
`register_prediction_agents` only binds them to this worker's topics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial

import faust
import httpx
import orjson
import structlog

from pipeline.broker.agent_topics import AgentTopics
from pipeline.broker.records import Message, Sender
from pipeline.broker.topics import (
    PREDICTIONS_REQUESTS,
    PREDICTIONS_RESULTS,
    PREDICTIONS_ROUNDS,
    SLEEP_NORMALIZED,
    SLEEP_RECORDS,
)
from pipeline.dlq import SendLetter
from pipeline.metrics import EVENTS
from pipeline.predictions.flow import P004_LLM_UNAVAILABLE, advance, failed, first_round
from pipeline.predictions.llm_wording import LlmUnavailable, voice_round
from pipeline.predictions.records import validate_messages
from pipeline.settings import Settings
from schemas.predictions import PredictionEvent, PredictionRequest, RoundMessage

log = structlog.get_logger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


Clock = Callable[[], datetime]
Voice = Callable[[RoundMessage, list[PredictionEvent], "RoundMessage | None"],
                 Awaitable[tuple[list[PredictionEvent], "RoundMessage | None"]]]


async def validate_sleep_message(topic: str, m: Message, out: Sender, dead_letter: SendLetter) -> None:
    """One `sleep.records` message: each valid record to `sleep.normalized` (keyed by user), the rest dead-lettered."""
    rows, letters = validate_messages(topic, [m])
    for row in rows:
        await out.send(key=f"{row['tenant']}/{row['user_id']}".encode(), value=orjson.dumps(row))
    for letter in letters:
        await dead_letter(letter)
    EVENTS.labels(topic, "in").inc(len(rows) + len(letters))
    EVENTS.labels(topic, "out").inc(len(rows))


async def start_debate(req: PredictionRequest, rounds: Sender) -> None:
    """A prediction request becomes round 1's message, keyed by its debate session."""
    log.info("debate_started", prediction_id=req.prediction_id, session_id=req.session_id)
    await rounds.send(key=req.session_id.encode(), value=first_round(req).model_dump_json().encode())


async def debate_round(msg: RoundMessage, rounds: Sender, results: Sender, now: Clock = _now,
                       voice: Voice | None = None) -> None:
    """One round (flow.advance): its events to `predictions.results`, the next round's message if the debate goes
    on. `voice` words the round through an LLM, if one is configured."""
    events, nxt = advance(msg, now)
    if voice is not None:
        events, nxt = await voice(msg, events, nxt)
    for e in events:
        await results.send(key=e.prediction_id.encode(), value=e.model_dump_json().encode())
    if nxt is not None:
        await rounds.send(key=msg.request.session_id.encode(), value=nxt.model_dump_json().encode())
    log.info("debate_round_done", session_id=msg.request.session_id, round=len(msg.transcript) + 1,
             outcome=events[-1].kind)


def register_prediction_agents(app: faust.App, settings: Settings, topics: AgentTopics) -> None:
    """Bind the handlers above to this worker's topics (names carry the settings' prefix)."""
    sleep_out, rounds, results = topics(SLEEP_NORMALIZED), topics(PREDICTIONS_ROUNDS), topics(PREDICTIONS_RESULTS)
    llm = httpx.AsyncClient(timeout=settings.llm_timeout_s) if settings.llm_url else None
    voice = None if llm is None else partial(_voiced, llm, settings)

    @app.agent(topics(SLEEP_RECORDS))
    async def validate_sleep_records(stream: faust.StreamT) -> None:
        async for ev in stream.events():
            m = ev.message
            await validate_sleep_message(m.topic, Message(m.partition, m.offset, int(m.timestamp * 1000), m.value),
                                         sleep_out, topics.dead_letter)

    @app.agent(topics(PREDICTIONS_REQUESTS))
    async def start_debates(stream: faust.StreamT) -> None:
        async for _, req in topics.decoded(PREDICTIONS_REQUESTS, stream):
            await start_debate(req, rounds)

    @app.agent(rounds)
    async def debate_rounds(stream: faust.StreamT) -> None:
        async for _, msg in topics.decoded(PREDICTIONS_ROUNDS, stream):
            await debate_round(msg, rounds, results, voice=voice)


async def _voiced(client: httpx.AsyncClient, settings: Settings, msg: RoundMessage, events: list[PredictionEvent],
                  nxt: RoundMessage | None) -> tuple[list[PredictionEvent], RoundMessage | None]:
    """The round's opinions worded by the LLM (numbers unchanged); unreachable -> the prediction fails, COD_P004."""
    record = next((e.round for e in events if e.kind == "round"), None)
    if record is None:
        return events, nxt
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    try:
        voiced, info = await voice_round(client, settings.llm_url or "", settings.llm_model, key, record)
    except LlmUnavailable as exc:
        log.error("llm_unavailable", session_id=msg.request.session_id, error=str(exc))
        return [failed(msg.request, P004_LLM_UNAVAILABLE, f"외부 LLM 서비스 연결 실패: {exc}", _now())], None
    out = [e.model_copy(update={"round": voiced if e.round == record else e.round, "llm_info": info})
           for e in events]
    if nxt is not None:
        nxt = nxt.model_copy(update={"transcript": [*msg.transcript, voiced]})
    return out, nxt
