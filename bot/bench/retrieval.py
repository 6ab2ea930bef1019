"""``aisle bench retrieval``: ANN vs exact at scale, recommend() latency, offline ranking quality.

Vectors at scale are derived from real MiniLM embeddings of ~51k product
texts (48k generated demo products + the Online Retail catalog): each
derived vector mixes a product with one of its 8 nearest neighbours and adds
small noise, so the set keeps the clustered shape of real embeddings. They
are cached on disk between runs. Recall of the ANN index is measured against
exact search on the same vectors, in the same run.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bot.bench.stats import percentiles


@dataclass(frozen=True)
class RetrievalBenchArgs:
    json_out: Path = field(metadata={"help": "Where to write the figures."})
    data_dir: Path = field(metadata={"help": "The public datasets folder (AISLE_DATA)."})
    products: int = field(default=1_000_000, metadata={"help": "Catalog size for the search test."})
    recommend_products: int = field(default=100_000, metadata={"help": "Catalog size for recommend()."})
    queries: int = field(default=300, metadata={"help": "Timed queries."})

    def __post_init__(self) -> None:
        if self.products < 1000 or self.queries < 10:
            raise ValueError("use at least 1000 products and 10 queries")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def base_catalog(data_dir: Path) -> list[Any]:
    from retrieval.demo_store import generate
    from retrieval.importers import import_catalog

    demo = generate(seed=101, n_products=48_000, n_shoppers=1).products
    retail = import_catalog(data_dir / "online_retail" / "transactions_until_2011-09-09.csv.gz",
                            file_format="online-retail").products
    return demo + retail


def derive(base: np.ndarray, n: int, cache: Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` vectors mixed from neighbour pairs of ``base`` plus noise; returns (vectors, base index)."""
    import faiss

    path = cache / f"derived-{len(base)}-{n}-{seed}.npy"
    src_path = cache / f"derived-{len(base)}-{n}-{seed}-src.npy"
    if path.is_file() and src_path.is_file():
        return np.load(path, mmap_mode="r"), np.load(src_path)
    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(base)
    _, nbrs = flat.search(base, 9)
    rng = np.random.default_rng(seed)
    src = rng.integers(0, len(base), n)
    out = np.lib.format.open_memmap(path.with_suffix(".tmp.npy"), mode="w+", dtype=np.float32,
                                    shape=(n, base.shape[1]))
    for start in tqdm(range(0, n, 100_000), desc="deriving vectors", file=sys.stderr):
        i = src[start: start + 100_000]
        j = nbrs[i, rng.integers(1, 9, len(i))]
        a = rng.uniform(0.3, 0.7, (len(i), 1)).astype(np.float32)
        v = a * base[i] + (1 - a) * base[j] + rng.normal(0, 0.015, (len(i), base.shape[1])).astype(np.float32)
        out[start: start + len(i)] = v / np.linalg.norm(v, axis=1, keepdims=True)
    out.flush()
    del out
    path.with_suffix(".tmp.npy").replace(path)
    np.save(src_path, src)
    return np.load(path, mmap_mode="r"), src


def derived_docs(base_docs: list[Any], src: np.ndarray, prices: np.random.Generator) -> list[Any]:
    factors = prices.uniform(0.8, 1.25, len(src))
    return [replace(base_docs[s], sku=f"D{n:07d}", price=round(base_docs[s].price * f, 2), image_url=None)
            for n, (s, f) in enumerate(zip(src, factors, strict=True))]


def query_vectors(encoder: Any, n: int, seed: int = 3) -> np.ndarray:
    import random

    from retrieval.demo_store import CATEGORIES

    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        c = rng.choice(CATEGORIES)
        texts.append(f"{rng.choice(c.features)} {rng.choice(c.kinds).lower()} for {rng.choice(c.uses)}")
    return encoder.encode_query(texts)


def search_figures(args: RetrievalBenchArgs, encoder: Any, base_docs: list[Any], base: np.ndarray,
                   cache: Path) -> dict[str, Any]:
    import faiss

    from retrieval.index import ProductIndex
    from retrieval.query import Filters

    vectors, src = derive(base, args.products, cache)
    docs = derived_docs(base_docs, src, np.random.default_rng(5))
    rss0 = _rss_mb()
    t = time.perf_counter()
    tuning = query_vectors(encoder, 300, seed=11)  # tuning queries differ from the measured ones
    index = ProductIndex.build(docs, np.ascontiguousarray(vectors), queries=tuning)
    build_s = time.perf_counter() - t
    queries = query_vectors(encoder, args.queries)
    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(np.ascontiguousarray(vectors))
    t = time.perf_counter()
    _, truth = flat.search(queries, 10)
    exact_batch_ms = (time.perf_counter() - t) * 1000 / len(queries)
    exact_ms = []
    for q in queries[:50]:
        t0 = time.perf_counter()
        flat.search(q[None, :], 10)
        exact_ms.append((time.perf_counter() - t0) * 1000)
    del flat
    times, recalls = [], []
    for q, tr in zip(queries, truth, strict=True):
        t0 = time.perf_counter()
        hits = index.search(q, 10)
        times.append((time.perf_counter() - t0) * 1000)
        got = {index.slot_of[h.product.sku] for h in hits}
        recalls.append(len(got & set(int(x) for x in tr)) / 10)
    # a filter that matches about 0.1% of the catalog
    cat = docs[0].category
    prices = np.sort(index.price[index.category == index.category[0]])
    hi = float(prices[min(len(prices) - 1, max(10, args.products // 1000) - 1)])
    f = Filters(categories=(cat,), max_price=hi)
    matching = int(index.mask(f).sum())
    filtered_ms, filtered_ok = [], True
    for q in queries[:100]:
        t0 = time.perf_counter()
        hits = index.search(q, 10, f)
        filtered_ms.append((time.perf_counter() - t0) * 1000)
        filtered_ok &= len(hits) == min(10, matching)
    # an update is visible to the next search
    target = docs[int(truth[0][0])]
    t0 = time.perf_counter()
    index.upsert([replace(target, price=0.5, stock=3)], None)
    seen = index.search(queries[0], 1, Filters(max_price=0.6))
    update_ms = (time.perf_counter() - t0) * 1000
    if not seen or seen[0].product.sku != target.sku:
        raise RuntimeError("the price update was not visible to the next search")
    return {
        "products": len(index), "index": index.kind, "nprobe": index.nprobe,
        "build_s": round(build_s, 1), "memory_mb": round(_rss_mb() - rss0, 1),
        "index_bytes_mb": round(vectors.shape[0] * vectors.shape[1] * 4 / 2**20, 1),
        "search_ms": percentiles(times), "recall_at_10": round(float(np.mean(recalls)), 4),
        "exact_search_ms": {**percentiles(exact_ms), "batched_per_query": round(exact_batch_ms, 2)},
        "filtered": {"fraction": round(matching / len(index), 5), "matching": matching,
                     "search_ms": percentiles(filtered_ms), "always_k": bool(filtered_ok)},
        "update_visible_ms": round(update_ms, 2),
        "base_texts": len(base_docs),
    }


def recommend_figures(args: RetrievalBenchArgs, encoder: Any, base_docs: list[Any], base: np.ndarray,
                      cache: Path) -> dict[str, Any]:
    from retrieval.demo_store import EPOCH, HISTORY_DAYS
    from retrieval.evaluate import demo_dataset, make_split, profile_of
    from retrieval.index import ProductIndex
    from retrieval.recommend import Recommender, SignalTables

    vectors, src = derive(base, args.recommend_products, cache, seed=1)
    docs = base_docs[:2400] + derived_docs(base_docs, src, np.random.default_rng(6))[: args.recommend_products - 2400]
    vecs = np.concatenate([base[:2400], np.asarray(vectors[: len(docs) - 2400])])
    index = ProductIndex.build(docs, vecs, queries=query_vectors(encoder, 200, seed=12))
    demo = demo_dataset()
    split = make_split(demo, base[:2400], EPOCH + timedelta(days=HISTORY_DAYS), timedelta(days=1), min_test_users=0)
    t = split.tables
    popularity = np.concatenate([t.popularity, np.zeros(len(docs) - 2400)])
    from scipy import sparse

    cooc = sparse.block_diag([t.cooc, sparse.csr_matrix((len(docs) - 2400, len(docs) - 2400))]).tocsr()
    item2vec = t.item2vec
    item2vec.vectors = np.concatenate([item2vec.vectors, np.zeros((len(docs) - 2400, item2vec.vectors.shape[1]),
                                                                   dtype=np.float32)])
    item2vec.n_items = len(docs)
    tables = SignalTables([d.sku for d in docs], docs, vecs, popularity, cooc, item2vec)
    rec = Recommender(index, tables)
    users = sorted(split.histories)[:50]
    profiles = [profile_of(split, u) for u in users]
    questions = ["gift for a runner", "something for my kitchen", "warm clothes for hiking", None]
    times = []
    for n in range(200):
        q = questions[n % len(questions)]
        t0 = time.perf_counter()
        qv = encoder.encode_query(q) if q else None
        out = rec.recommend(qv, profiles[n % len(profiles)], 10)
        times.append((time.perf_counter() - t0) * 1000)
        assert len(out) == 10
    return {"recommend_products": len(docs), "recommend_index": index.kind, "recommend_ms": percentiles(times)}


def ranking_figures(encoder: Any, data_dir: Path, cache: Path) -> dict[str, Any]:
    from retrieval.demo_store import EPOCH
    from retrieval.embed import encode_cached
    from retrieval.evaluate import (
        baseline_scorers,
        demo_dataset,
        evaluate,
        make_split,
        online_retail_dataset,
        personalized_scorer,
        tune_weights,
    )
    from retrieval.recommend import RankWeights

    out: dict[str, Any] = {}
    setups = {
        "demo": (demo_dataset, lambda p: p.embedding_text(), EPOCH + timedelta(days=160), EPOCH + timedelta(days=200),
                 timedelta(days=40)),
        "online_retail": (lambda: online_retail_dataset(data_dir / "online_retail" / "transactions_until_2011-09-09.csv.gz"),
                          lambda p: p.title, datetime(2011, 5, 1), datetime(2011, 7, 10), timedelta(days=61)),
    }
    for name, (load, text, val_cut, test_cut, horizon) in setups.items():
        _say(f"[bench] ranking on {name}")
        data = load()
        vectors = encode_cached(encoder, [text(p) for p in data.products], cache, progress=True)
        val = make_split(data, vectors, val_cut, horizon)
        test = make_split(data, vectors, test_cut, horizon)
        weights = tune_weights(val, iterations=30)
        scores = {k: evaluate(test, s) for k, s in baseline_scorers(test).items()}
        scores["personalized"] = evaluate(test, personalized_scorer(test, weights))
        seq_only = RankWeights(**{k: 0.0 for k in RankWeights().as_dict()} | {"sequence": 1.0})
        scores["sequence_only"] = evaluate(test, personalized_scorer(test, seq_only))
        out[name] = {
            "products": len(data.products), "test_users": len(test.relevant),
            "cutoff": test_cut.isoformat(), "horizon_days": horizon.days,
            "ndcg_at_10": {k: v["ndcg"] for k, v in scores.items()},
            "recall_at_10": {k: v["recall"] for k, v in scores.items()},
            "coverage_at_10": {k: v["coverage"] for k, v in scores.items()},
            "weights": {k: round(v, 3) for k, v in weights.as_dict().items()},
        }
    return out


def main(args: RetrievalBenchArgs) -> int:
    from bot.config import get_settings
    from bot.model_store import encoder_dir
    from retrieval.embed import Encoder, encode_cached

    cache = get_settings().home / "cache"
    encoder = Encoder(encoder_dir())
    _say("[bench] embedding the base product texts (cached after the first run)")
    base_docs = base_catalog(args.data_dir)
    base = encode_cached(encoder, [d.embedding_text() for d in base_docs], cache, progress=True)
    result: dict[str, Any] = {}
    _say(f"[bench] search at {args.products} products")
    result.update(search_figures(args, encoder, base_docs, base, cache))
    _say(f"[bench] recommend() at {args.recommend_products} products")
    result.update(recommend_figures(args, encoder, base_docs, base, cache))
    result["datasets"] = ranking_figures(encoder, args.data_dir, cache)
    result["cpu_count"] = os.cpu_count()
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0
