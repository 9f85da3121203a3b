"""Where streamdesk reaches into Faust's internals, applied by `apply_faust_tunings()` (the only other reach into a
library's internals is broker/offset_gaps.py, into aiokafka's fetcher; this applies it to Faust's consumers too).

Faust builds its consumer with aiokafka's `fetch_max_wait_ms` fixed at 1500 ms, and the embedded broker answers
an idle fetch only when that wait runs out, not when a message arrives: every agent hop then cost 0-1.5 s
(measured: 330 and 750 ms on the two hops of one prediction). There is no setting for it, so the worker wraps
Faust's private `AIOKafkaConsumerThread._create_worker_consumer` and sets aiokafka's private
`AIOKafkaConsumer._fetch_max_wait_ms` (read by `AIOKafkaConsumer.start()` when it builds its fetcher) to 50 ms,
which bounds a hop; an idle worker pays ~20 small fetches a second.

tests/unit/test_faust_tuning.py fails when an upgrade of either library removes or renames what this relies on.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from pipeline.broker import offset_gaps

FETCH_MAX_WAIT_MS = 50
_faust_create_consumer: Any = None  # Faust's own method, once wrapped


def apply_faust_tunings() -> None:
    """Wrap Faust's consumer factory so every worker consumer waits at most FETCH_MAX_WAIT_MS; idempotent."""
    global _faust_create_consumer
    if _faust_create_consumer is not None:
        return
    _faust_create_consumer = AIOKafkaConsumerThread._create_worker_consumer

    def _create_worker_consumer(self: AIOKafkaConsumerThread, transport: Any) -> Any:
        consumer = _faust_create_consumer(self, transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer

    AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer
    offset_gaps.install()
