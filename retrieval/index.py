"""FAISS inner-product index over product embeddings, keyed by SKU.

Each product keeps a stable int64 id (its slot). Below ``exact_below``
products the index is exact (``IndexIDMap2`` over ``IndexFlatIP``); above it,
an ``IndexIVFFlat`` whose ``nprobe`` is tuned at build time until recall@10
against exact search reaches the target. Filter metadata (price, category,
brand, stock) lives in numpy arrays beside it, so a filter becomes a FAISS id
selector; a very selective filter is answered exactly over the allowed
vectors. Either way a filter never returns fewer than k results when k
products match.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from retrieval.catalog import ProductDoc
from retrieval.query import Filters

INDEX_FILE = "products.faiss"
META_FILE = "meta.npz"
DOCS_FILE = "products.jsonl"


class IndexLoadError(RuntimeError):
    """The index on disk is missing or does not match its metadata."""


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result."""

    product: ProductDoc
    score: float


@dataclass(frozen=True)
class IndexConfig:
    """How the index is chosen and tuned."""

    exact_below: int = 50_000
    target_recall: float = 0.96
    exact_subset_max: int = 20_000
    tune_queries: int = 300

    def __post_init__(self) -> None:
        if not 0 < self.target_recall <= 1 or self.exact_below < 1:
            raise ValueError("invalid index config")


def gpu_count() -> int:
    """GPUs visible to FAISS (always 0 with the faiss-cpu build)."""
    return int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0


def _ivf(dim: int, n: int) -> faiss.IndexIVFFlat:
    nlist = 2 ** max(4, round(math.log2(2 * math.sqrt(n))))
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    return ivf


class ProductIndex:
    """Inner-product search with filters, incremental updates and persistence.

    Args:
        dim: embedding dimension.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.nprobe = 0  # 0 = exact index
        self.config = IndexConfig()
        self.use_gpu = gpu_count() > 0
        self._gpu: faiss.Index | None = None  # GPU clone for unfiltered search, rebuilt after writes
        self.docs: list[ProductDoc | None] = []
        self.slot_of: dict[str, int] = {}
        self.price = np.zeros(0, dtype=np.float32)
        self.stock = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.category = np.zeros(0, dtype=np.int32)
        self.brand = np.zeros(0, dtype=np.int32)
        self._codes: dict[str, dict[str, int]] = {"category": {}, "brand": {}}

    def __len__(self) -> int:
        return len(self.slot_of)

    @property
    def kind(self) -> str:
        return "flat" if self.nprobe == 0 else f"ivf{self.index.nlist}"

    @classmethod
    def build(cls, docs: Sequence[ProductDoc], vectors: np.ndarray, config: IndexConfig | None = None,
              seed: int = 0, queries: np.ndarray | None = None) -> ProductIndex:
        """Build the index that fits the catalog size (exact, or IVF tuned to the recall target).

        Args:
            docs: the products.
            vectors: their embeddings.
            config: size threshold and recall target.
            seed: random seed for training and tuning samples.
            queries: representative query embeddings to tune ``nprobe`` on; by default,
                points between random pairs of products (harder than the products themselves).
        """
        config = config or IndexConfig()
        self = cls(vectors.shape[1])
        self.config = config
        n = len(docs)
        if n >= config.exact_below:
            rng = np.random.default_rng(seed)
            ivf = _ivf(self.dim, n)
            sample = vectors[rng.choice(n, size=min(n, 64 * ivf.nlist), replace=False)]
            ivf.train(np.ascontiguousarray(sample, dtype=np.float32))
            self.index = ivf
            self.nprobe = 16
        self.upsert(docs, vectors)
        if self.nprobe:
            if queries is None:
                rng = np.random.default_rng(seed + 1)
                a = vectors[rng.choice(n, config.tune_queries)]
                b = vectors[rng.choice(n, config.tune_queries)]
                queries = a + 0.6 * b + rng.normal(0, 0.03, a.shape).astype(np.float32)
                queries /= np.linalg.norm(queries, axis=1, keepdims=True)
            self.tune(np.asarray(queries, dtype=np.float32), vectors)
        return self

    def tune(self, queries: np.ndarray, vectors: np.ndarray, k: int = 10) -> float:
        """Pick the smallest ``nprobe`` whose recall@k against exact search meets the target."""
        flat = faiss.IndexFlatIP(self.dim)
        flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
        noisy = np.ascontiguousarray(queries, dtype=np.float32)
        _, truth = flat.search(noisy, k)
        del flat
        recall = 0.0
        for nprobe in (4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512):
            if nprobe > self.index.nlist:
                break
            self.nprobe = nprobe
            _, got = self.index.search(noisy, k, params=faiss.SearchParametersIVF(nprobe=nprobe))
            recall = float(np.mean([len(set(g) & set(t)) / k for g, t in zip(got, truth, strict=True)]))
            if recall >= self.config.target_recall:
                break
        return recall

    def __contains__(self, sku: str) -> bool:
        return sku in self.slot_of

    def get(self, sku: str) -> ProductDoc | None:
        slot = self.slot_of.get(sku)
        return None if slot is None else self.docs[slot]

    def _code(self, kind: str, value: str) -> int:
        table = self._codes[kind]
        return table.setdefault(value.lower(), len(table))

    def _grow(self, n: int) -> None:
        self.price = np.concatenate([self.price, np.zeros(n, np.float32)])
        self.stock = np.concatenate([self.stock, np.zeros(n, np.int64)])
        self.alive = np.concatenate([self.alive, np.zeros(n, bool)])
        self.category = np.concatenate([self.category, np.zeros(n, np.int32)])
        self.brand = np.concatenate([self.brand, np.zeros(n, np.int32)])

    def _set_meta(self, slot: int, doc: ProductDoc) -> None:
        self.docs[slot] = doc
        self.price[slot] = doc.price
        self.stock[slot] = doc.stock
        self.alive[slot] = True
        self.category[slot] = self._code("category", doc.category)
        self.brand[slot] = self._code("brand", doc.brand)

    def upsert(self, docs: Sequence[ProductDoc], vectors: np.ndarray | None) -> None:
        """Add new products or update existing ones, without a rebuild.

        Args:
            docs: products to write.
            vectors: their embeddings, shape (len(docs), dim); ``None`` keeps the
                stored vectors of existing products (a price or stock change).
        """
        if vectors is not None and vectors.shape != (len(docs), self.dim):
            raise ValueError(f"expected vectors of shape ({len(docs)}, {self.dim}), got {vectors.shape}")
        new = [d for d in docs if d.sku not in self.slot_of]
        if vectors is None and new:
            raise ValueError(f"new products need vectors: {[d.sku for d in new[:5]]}")
        if new:
            start = len(self.docs)
            self.docs.extend([None] * len(new))
            self._grow(len(new))
            for offset, doc in enumerate(new):
                self.slot_of[doc.sku] = start + offset
        for doc in docs:
            self._set_meta(self.slot_of[doc.sku], doc)
        if vectors is None:
            return
        self._gpu = None
        ids = np.array([self.slot_of[d.sku] for d in docs], dtype=np.int64)
        self.index.remove_ids(ids)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def remove(self, skus: Iterable[str]) -> int:
        """Remove products by SKU; returns how many were present."""
        slots = [self.slot_of.pop(s) for s in skus if s in self.slot_of]
        if slots:
            self._gpu = None
            ids = np.array(slots, dtype=np.int64)
            self.index.remove_ids(ids)
            self.alive[ids] = False
            for slot in slots:
                self.docs[slot] = None
        return len(slots)

    def mask(self, filters: Filters) -> np.ndarray:
        """Boolean mask over slots of the products that pass ``filters``."""
        keep = self.alive.copy()
        if filters.min_price is not None:
            keep &= self.price >= filters.min_price
        if filters.max_price is not None:
            keep &= self.price <= filters.max_price
        if filters.in_stock:
            keep &= self.stock > 0
        for kind, values, column in (
            ("category", filters.categories, self.category),
            ("brand", filters.brands, self.brand),
        ):
            if values:
                codes = [self._codes[kind].get(v.lower(), -1) for v in values]
                keep &= np.isin(column, codes)
        return keep

    def search(self, query: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        """Top-``k`` products by inner product that pass ``filters``.

        Returns ``min(k, number of matching products)`` hits, best first.
        """
        if k <= 0 or not self.slot_of:
            return []
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        if filters is None or filters.unconstrained:
            if self.use_gpu:
                if self._gpu is None:
                    self._gpu = faiss.index_cpu_to_all_gpus(self.index)
                    if self.nprobe:
                        faiss.GpuParameterSpace().set_index_parameter(self._gpu, "nprobe", self.nprobe)
                scores, ids = self._gpu.search(q, min(k, self.index.ntotal))
                return self._hits(scores[0], ids[0])
            params = faiss.SearchParametersIVF(nprobe=self.nprobe) if self.nprobe else None
            scores, ids = self.index.search(q, min(k, self.index.ntotal), params=params)
            return self._hits(scores[0], ids[0])
        allowed = np.flatnonzero(self.mask(filters)).astype(np.int64)
        if allowed.size == 0:
            return []
        k = min(k, int(allowed.size))
        if self.nprobe == 0:
            sel = faiss.IDSelectorBatch(allowed)
            scores, ids = self.index.search(q, k, params=faiss.SearchParameters(sel=sel))
            return self._hits(scores[0], ids[0])
        if allowed.size <= self.config.exact_subset_max:
            exact = self.index.reconstruct_batch(allowed) @ q[0]
            top = np.argsort(-exact)[:k]
            return self._hits(exact[top], allowed[top])
        fraction = allowed.size / max(len(self.slot_of), 1)
        nprobe = min(self.index.nlist, math.ceil(self.nprobe / fraction))
        sel = faiss.IDSelectorBatch(allowed)
        for probe in (nprobe, self.index.nlist):
            scores, ids = self.index.search(q, k, params=faiss.SearchParametersIVF(sel=sel, nprobe=probe))
            hits = self._hits(scores[0], ids[0])
            if len(hits) >= k:
                break
        return hits

    def _hits(self, scores: np.ndarray, ids: np.ndarray) -> list[Hit]:
        hits = []
        for score, slot in zip(scores, ids, strict=True):
            doc = self.docs[slot] if slot >= 0 else None
            if doc is not None:
                hits.append(Hit(doc, float(score)))
        return hits

    def vector(self, sku: str) -> np.ndarray:
        return self.index.reconstruct(int(self.slot_of[sku]))

    def save(self, directory: Path) -> None:
        """Write the index atomically: files go to a temp name, then are renamed."""
        directory.mkdir(parents=True, exist_ok=True)
        tmp = {name: directory / f".{name}.tmp" for name in (INDEX_FILE, META_FILE, DOCS_FILE)}
        faiss.write_index(self.index, str(tmp[INDEX_FILE]))
        with tmp[DOCS_FILE].open("w") as fh:
            for doc in self.docs:
                fh.write(json.dumps(doc.to_dict() if doc else None) + "\n")
        with tmp[META_FILE].open("wb") as fh:
            np.savez(fh, dim=np.array([self.dim]), nprobe=np.array([self.nprobe]))
        for name, path in tmp.items():
            os.replace(path, directory / name)

    @classmethod
    def load(cls, directory: Path) -> ProductIndex:
        """Load an index written by :meth:`save`."""
        files = [directory / n for n in (INDEX_FILE, META_FILE, DOCS_FILE)]
        if not all(f.is_file() for f in files):
            raise IndexLoadError(f"no product index in {directory}; run `aisle index build`")
        meta = np.load(files[1])
        self = cls(int(meta["dim"][0]))
        self.index = faiss.read_index(str(files[0]))
        self.nprobe = int(meta["nprobe"][0]) if "nprobe" in meta else 0
        with files[2].open() as fh:
            docs = [json.loads(line) for line in fh]
        self.docs = [None] * len(docs)
        self._grow(len(docs))
        for slot, raw in enumerate(docs):
            if raw is not None:
                doc = ProductDoc(**raw)
                self.slot_of[doc.sku] = slot
                self._set_meta(slot, doc)
        if self.index.ntotal != len(self.slot_of):
            raise IndexLoadError(
                f"index in {directory} has {self.index.ntotal} vectors for {len(self.slot_of)} "
                "products; rebuild it with `aisle index build`"
            )
        return self
