"""Integrated objects -> vector rows -> `ticket_vectors`, without a broker: the wire form keeps every bit, the
worker's cache spares re-embedding a text it has just embedded (but not on a rebuild), and the materializer's
upsert keeps the newest version, replaces an equal one (a rebuild) and gives every write the next seq."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from api.search_service import SearchService
from pipeline.search import LocalEmbedder
from pipeline.search.vectors import VectorCache, decode_vector, embed_text, encode_vector, vector_rows
from pipeline.settings import Settings
from pipeline.storage.materializer import Materializer
from pipeline.storage.store import Store

TOPIC = "tickets.vectors"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


class CountingEmbedder:
    """The real local model, counting the texts it is asked to embed."""

    def __init__(self, inner: LocalEmbedder) -> None:
        self.inner, self.texts = inner, 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.embed(texts)


@pytest.fixture(scope="module")
def embedder():
    return LocalEmbedder(cache_dir=Settings(_env_file=None).models_path)  # tests/conftest.py: one shared copy


def obj(key: str, title: str, updated: datetime = T0, tenant: str = "acme") -> dict:
    return {"tenant": tenant, "key": f"{tenant}:freshdesk:ticket:{key}", "object_type": "ticket", "title": title,
            "summary": "The parcel never arrived.", "text": f"{title}. The parcel never arrived.",
            "updated_at": updated.isoformat()}


def test_a_vector_survives_the_wire_bit_for_bit():
    v = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    assert np.array_equal(decode_vector(encode_vector(v)), v)
    assert len(encode_vector(v)) < 2800  # base64 float32, not a JSON list of decimals
    assert embed_text("T", "", "x" * 5000).startswith("T\nx") and len(embed_text("T", "S", "x" * 5000)) == 2000


def test_the_cache_spares_a_repeated_text_but_a_rebuild_embeds_again(embedder):
    counting, cache = CountingEmbedder(embedder), VectorCache()
    first = vector_rows([obj("1", "Order lost"), obj("2", "Refund please")], counting, cache)
    assert counting.texts == 2 and [r["kind"] for r in first] == ["ticket", "ticket"]
    again = vector_rows([obj("1", "Order lost", T0 + timedelta(hours=1)), obj("3", "Password reset")], counting, cache)
    assert counting.texts == 3  # only the new text
    assert again[0]["vector"] == first[0]["vector"] and again[0]["updated_at"] == (T0 + timedelta(hours=1)).isoformat()
    vector_rows([obj("1", "Order lost")], counting, cache, force=True)
    assert counting.texts == 4
    vec = decode_vector(first[0]["vector"])
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-4 and vec.shape == (embedder.dim,)


def message(offset: int, rows: list[dict]) -> ConsumerRecord:
    return ConsumerRecord(TOPIC, 0, offset, 0, 0, None, orjson.dumps({"vectors": rows}), None, 0, 0, [])


def stored(m: Materializer) -> dict[str, tuple]:
    rows = m.con.cursor().execute("SELECT key, updated_at, text_hash, seq, vector FROM ticket_vectors").fetchall()
    return {r[0].rsplit(":", 1)[1]: r[1:] for r in rows}


def test_the_newest_version_wins_an_equal_one_replaces_and_every_write_takes_the_next_seq(materializer, embedder):
    m, tp = materializer, TopicPartition(TOPIC, 0)
    v1 = vector_rows([obj("1", "Order lost"), obj("2", "Refund please")], embedder)
    m._write({tp: [message(0, v1)]})
    first = stored(m)
    assert set(first) == {"1", "2"} and first["1"][0] == T0
    assert np.allclose(first["1"][3], decode_vector(v1[0]["vector"]))

    newer = vector_rows([obj("1", "Order lost and found", T0 + timedelta(hours=1))], embedder)
    older = vector_rows([obj("2", "Stale copy", T0 - timedelta(hours=1))], embedder)
    m._write({tp: [message(1, newer + older)]})
    after = stored(m)
    assert after["1"][0] == T0 + timedelta(hours=1) and after["1"][1] == newer[0]["text_hash"]
    assert after["1"][2] > max(first["1"][2], first["2"][2])  # a write takes the next seq
    assert after["2"] == first["2"]  # the older copy changed nothing, seq included

    rebuilt = vector_rows([obj("2", "Refund please")], embedder, force=True)
    m._write({tp: [message(2, rebuilt + rebuilt)]})  # the same object twice in one batch: one write
    assert stored(m)["2"][2] > after["1"][2]  # an equal version replaces (a rebuild) and the api sees it


def test_a_message_that_is_not_a_vectors_batch_is_a_dead_letter_and_the_rest_is_stored(materializer, embedder):
    m, tp = materializer, TopicPartition(TOPIC, 0)
    good = vector_rows([obj("9", "Shipping delay")], embedder)
    bad = ConsumerRecord(TOPIC, 0, 1, 0, 0, None, orjson.dumps({"vectors": [{"tenant": "acme"}]}), None, 0, 0, [])
    m._write({tp: [message(0, good), bad]})
    assert set(stored(m)) == {"9"}
    reason, offset = m.con.cursor().execute('SELECT error, "offset" FROM dead_letters').fetchone()
    assert "not a vectors batch" in reason and offset == 1


def test_the_api_indexes_stored_vectors_and_waits_for_an_object_that_is_not_stored_yet(materializer, embedder):
    m, tp = materializer, TopicPartition(TOPIC, 0)
    service = SearchService(m.settings, Store(m.con))
    first, second = obj("1", "Parcel lost"), obj("2", "Refund for a parcel")
    m._write({tp: [message(0, vector_rows([first, second], embedder))]})
    assert service.refresh() == 0 and service.seq == 0  # vectors ahead of their objects: nothing indexed, held

    cur = m.con.cursor()
    cur.execute("INSERT INTO integrated_objects (key, tenant, platform, domain, source_id, object_type, title, text, "
                "summary, updated_at) VALUES (?, 'acme', 'freshdesk', 'acme.freshdesk.com', '1', 'ticket', ?, ?, ?, ?)",
                [first["key"], first["title"], first["text"], first["summary"], T0])
    assert service.refresh() == 1  # the first is indexed; the second still holds the watermark
    assert service.index.tenant("acme").get(first["key"]) is not None and service.index.tenant("acme").get(
        second["key"]) is None
    cur.execute("UPDATE ticket_vectors SET embedded_at = embedded_at - INTERVAL 2 MINUTE WHERE key = ?",
                [second["key"]])
    service.refresh()  # an object that never came (refused, purged) no longer holds the others back
    assert service.seq == cur.execute("SELECT max(seq) FROM ticket_vectors").fetchone()[0]
    assert service.refresh() == 0


def test_a_jobs_end_mark_is_stored_with_the_rows_before_it(materializer, embedder):
    from pipeline.ingest.marks import MARK_HEADER, mark_headers, marks_of

    mark = {"job_id": "job-1", "tenant": "acme"}
    assert marks_of(mark_headers("job-1", "acme")) == [mark]
    assert marks_of([(MARK_HEADER, b"not json"), ("other", b"{}")]) == []
    m = materializer
    normalized = ConsumerRecord("tickets.normalized", 0, 0, 0, 0, None, orjson.dumps({"tables": {}, "marks": [mark]}),
                                None, 0, 0, [])
    vectors = message(0, vector_rows([obj("5", "Parcel lost")], embedder))
    end = ConsumerRecord(TOPIC, 0, 1, 0, 0, None, orjson.dumps({"vectors": [], "marks": [mark]}), None, 0, 0, [])
    m._write({TopicPartition("tickets.normalized", 0): [normalized], TopicPartition(TOPIC, 0): [vectors, end]})
    cur = m.con.cursor()
    assert sorted(cur.execute("SELECT stage FROM ingest_marks WHERE job_id = 'job-1'").fetchall()) == [
        ("embedded",), ("stored",)]
    assert set(stored(m)) == {"5"}
