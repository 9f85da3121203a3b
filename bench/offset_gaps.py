"""Offset gaps on the embedded broker (run by hand, not a test): `.venv/bin/python bench/offset_gaps.py`.

Tansu 0.6 takes a produce request's offsets before it stores the batch, so while several producers write one
partition a fetch can answer with a later batch first (pipeline/broker/offset_gaps.py). Each round here: one
producer writes --events ~500 B messages in 1 MiB batches (as bench/calls.py does), --tricklers others send
single messages meanwhile (as the api's own call records do), and three consumers tail the topic from offset 0:

* control: a plain librdkafka consumer, no guard; every offset it never saw is counted as skipped;
* batch consumer: pipeline/broker/batch_consumer.py with hold_gaps (the calls normalizer's consumer);
* aiokafka: pipeline/broker/kafka.py make_consumer (the materializer's; Faust's agents read the same way).

Each must end with every offset of every partition exactly once. --burn N keeps N cores busy meanwhile (the
race needs a loaded machine: both losses seen in bench/calls.py were under load).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import confluent_kafka as ck
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from calls import make_producer, produce_fast  # noqa: E402

from pipeline.broker.batch_consumer import BatchConsumer  # noqa: E402
from pipeline.broker.embedded import start_embedded_broker  # noqa: E402
from pipeline.broker.kafka import ensure_topics, make_consumer, wait_for_broker  # noqa: E402
from pipeline.broker.topics import TopicSpec  # noqa: E402
from pipeline.metrics import OFFSET_GAPS  # noqa: E402
from pipeline.settings import Settings  # noqa: E402

VALUE = b'{"x":"' + b"a" * 480 + b'"}'


class Tail:
    """Offsets one consumer saw, per partition, and whether any came twice or out of order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: dict[int, list[int]] = {}

    def add(self, partition: int, offsets: list[int]) -> None:
        self.seen.setdefault(partition, []).extend(offsets)

    def count(self) -> int:
        return sum(len(v) for v in self.seen.values())

    def missing(self, ends: dict[int, int]) -> int:
        return sum(end - len(set(self.seen.get(p, ()))) for p, end in ends.items())

    def repeated(self) -> int:
        return sum(len(v) - len(set(v)) for v in self.seen.values())


def control(bootstrap: str, topic: str, tail: Tail, stop: threading.Event, ready: threading.Event) -> None:
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": f"control-{topic}", "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100, "session.timeout.ms": 10000})
    c.subscribe([topic])
    while not stop.is_set():
        msgs = c.consume(5000, 0.2)
        if c.assignment():
            ready.set()
        for m in msgs:
            if not m.error():
                tail.add(m.partition(), [m.offset()])
    c.close()


async def batch_tail(settings: Settings, topic: str, tail: Tail, stop: asyncio.Event, ready: asyncio.Event) -> None:
    consumer = BatchConsumer(settings, topic, f"batch-{topic}", hold_gaps=True)
    await consumer.start()
    try:
        while not stop.is_set():
            got = await consumer.getmany(timeout_ms=200, max_records=5000)
            if await consumer.assignment():
                ready.set()
            for tp, batch in got.items():
                tail.add(tp.partition, batch.offsets)
    finally:
        await consumer.stop()


async def aiokafka_tail(settings: Settings, topic: str, tail: Tail, stop: asyncio.Event) -> None:
    consumer = make_consumer(settings, topic, group=f"aiokafka-{topic}")
    await consumer.start()
    try:
        while not stop.is_set():
            for tp, msgs in (await consumer.getmany(timeout_ms=200, max_records=5000)).items():
                tail.add(tp.partition, [m.offset for m in msgs])
    finally:
        await consumer.stop()


async def trickle(bootstrap: str, topic: str, stop: asyncio.Event) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        i = 0
        while not stop.is_set():
            await producer.send(topic, VALUE, key=str(i).encode())
            i += 1
            await asyncio.sleep(random.random() * 0.01)
    finally:
        await producer.stop()


async def produce(bootstrap: str, topic: str, n: int, partitions: int) -> None:
    """As bench/calls.py produces: 1 MiB batches per partition, as fast as aiokafka goes."""
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        await produce_fast(producer, topic, [(b"", VALUE)] * n, [i % partitions for i in range(n)])
    finally:
        await producer.stop()


async def ends_of(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """Each partition's end, read as a consumer from 0 (the embedded broker's end offsets are not reliable)."""
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": f"ends-{topic}", "enable.auto.commit": False})
    c.assign([ck.TopicPartition(topic, p, 0) for p in range(partitions)])
    last: dict[int, int] = {}
    idle = 0
    while idle < 5:
        msgs = await asyncio.to_thread(c.consume, 10000, 0.3)
        idle = 0 if msgs else idle + 1
        for m in msgs:
            if not m.error():
                last[m.partition()] = m.offset()
    c.close()
    return {p: last.get(p, -1) + 1 for p in range(partitions)}


async def one_round(bootstrap: str, settings: Settings, topic: str, args: argparse.Namespace) -> dict:
    await ensure_topics(bootstrap, [TopicSpec(topic, args.partitions)])
    tails = {name: Tail(name) for name in ("control", "batch consumer", "aiokafka")}
    stop_threads, ready_thread = threading.Event(), threading.Event()
    stop, ready = asyncio.Event(), asyncio.Event()
    thread = threading.Thread(target=control, args=(bootstrap, topic, tails["control"], stop_threads, ready_thread))
    thread.start()
    tasks = [asyncio.create_task(batch_tail(settings, topic, tails["batch consumer"], stop, ready)),
             asyncio.create_task(aiokafka_tail(settings, topic, tails["aiokafka"], stop))]
    while not (ready.is_set() and ready_thread.is_set()):
        await asyncio.sleep(0.1)
    stop_trickle = asyncio.Event()
    tricklers = [asyncio.create_task(trickle(bootstrap, topic, stop_trickle)) for _ in range(args.tricklers)]
    await produce(bootstrap, topic, args.events, args.partitions)
    stop_trickle.set()
    await asyncio.gather(*tricklers)
    ends = await ends_of(bootstrap, topic, args.partitions)
    total = sum(ends.values())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(t.count() < total for t in tails.values() if t.name != "control"):
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    stop.set()
    stop_threads.set()
    await asyncio.gather(*tasks)
    thread.join()
    return {"total": total, **{name: (t.missing(ends), t.repeated()) for name, t in tails.items()}}


async def run(args: argparse.Namespace) -> int:
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.burn)]
    broker = start_embedded_broker(None)
    try:
        bootstrap = broker.bootstrap
        await wait_for_broker(bootstrap)
        settings = Settings(kafka_bootstrap=bootstrap, session_timeout_s=6)
        skipped = {"control": 0, "batch consumer": 0, "aiokafka": 0}
        for r in range(args.rounds):
            topic = f"gaps{r}"
            got = await one_round(bootstrap, settings, topic, args)
            held = OFFSET_GAPS.labels(topic, "held")._value.get()
            stepped = OFFSET_GAPS.labels(topic, "skipped")._value.get()
            for name in skipped:
                skipped[name] += got[name][0]
            print(f"round {r + 1}: {got['total']:,} messages; never seen (repeated): "
                  + ", ".join(f"{name} {got[name][0]:,} ({got[name][1]:,})" for name in skipped)
                  + f"; gaps held {held:.0f}, stepped over {stepped:.0f}", flush=True)
        print(f"\n{args.rounds} rounds of {args.events:,} + trickle, {args.tricklers} tricklers, {args.burn} busy "
              f"cores: never seen " + ", ".join(f"{n} {v:,}" for n, v in skipped.items()))
        return 0 if not skipped["batch consumer"] and not skipped["aiokafka"] else 1
    finally:
        broker.stop()
        for p in burners:
            p.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--tricklers", type=int, default=3)
    ap.add_argument("--burn", type=int, default=2, help="busy processes meanwhile")
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
