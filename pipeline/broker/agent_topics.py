"""The registry's topics bound to a Faust app, and the one way an agent decodes a message or dead-letters it.

Every agent takes its topics from `AgentTopics`: raw bytes in and out (keys and values are serialised by the
code that owns the format, never by Faust's codecs), each name prefixed once. `decoded(name, stream)` yields
the messages that are the topic's model; one that is not goes to `<topic>.dlq` through `dead_letter`, which
every agent also uses for the letters its own validation makes: counted as `dlq` in the worker's counters,
logged once as `dead_letter`, sent with its reason and source offset.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import faust
import structlog
from pydantic import BaseModel, ValidationError

from pipeline.broker.topics import SPECS, dlq
from pipeline.dlq import DeadLetter
from pipeline.metrics import EVENTS
from pipeline.settings import Settings

log = structlog.get_logger(__name__)


class AgentTopics:
    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self._bound: dict[str, faust.TopicT] = {}

    def __call__(self, name: str) -> faust.TopicT:
        """The Faust topic of a registered name (or of a registered name's `.dlq`), prefixed, raw bytes."""
        if name not in SPECS and not (name.endswith(".dlq") and name.removesuffix(".dlq") in SPECS):
            raise KeyError(f"{name} is not in pipeline/broker/topics.py TOPICS")
        return self._raw(self.settings.topic(name))

    def _raw(self, full_name: str) -> faust.TopicT:
        if full_name not in self._bound:
            self._bound[full_name] = self.app.topic(full_name, key_serializer="raw", value_serializer="raw")
        return self._bound[full_name]

    async def dead_letter(self, letter: DeadLetter) -> None:
        """Count, log and send a letter to its source topic's `.dlq` (the letter names the prefixed source)."""
        EVENTS.labels(letter.topic, "dlq").inc()
        log.warning("dead_letter", topic=letter.topic, partition=letter.partition, offset=letter.offset,
                    index=letter.index, error=letter.error)
        await self._raw(dlq(letter.topic)).send(value=letter.to_json())

    async def decoded(self, name: str, stream: faust.StreamT) -> AsyncIterator[tuple[Any, BaseModel]]:
        """(event, message as the topic's model) for each message of `stream`; the rest are dead-lettered."""
        model = SPECS[name].model
        if model is None:
            raise TypeError(f"{name} carries no model to decode: {SPECS[name].carries}")
        async for ev in stream.events():
            m = ev.message
            try:
                value = model.model_validate_json(m.value)
            except ValidationError as exc:
                await self.dead_letter(DeadLetter.not_a(model, exc, m))
                continue
            yield ev, value
