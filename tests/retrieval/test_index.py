from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from retrieval.demo_store import DemoStore
from retrieval.embed import Encoder
from retrieval.index import IndexLoadError, ProductIndex
from retrieval.query import Filters


def test_search_finds_the_described_product(index: ProductIndex, encoder: Encoder) -> None:
    hits = index.search(encoder.encode_query("waterproof trail running shoe"), 5)
    assert len(hits) == 5
    assert hits[0].product.category == "Running Shoes"
    assert sum(h.product.category == "Running Shoes" for h in hits) >= 4
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_filters_never_return_fewer_than_k_when_k_match(index: ProductIndex, encoder: Encoder) -> None:
    # A filter far from the query: the nearest neighbours are all running shoes,
    # so a post-filter over the top results would return nothing.
    q = encoder.encode_query("running shoes")
    f = Filters(categories=("Pet Supplies",), max_price=40.0)
    matching = int(index.mask(f).sum())
    assert 3 <= matching < 60
    hits = index.search(q, 10, f)
    assert len(hits) == min(10, matching)
    assert all(h.product.category == "Pet Supplies" and h.product.price <= 40 for h in hits)


def test_filter_with_no_match_returns_nothing(index: ProductIndex, encoder: Encoder) -> None:
    assert index.search(encoder.encode_query("tent"), 5, Filters(max_price=0.5)) == []


def test_in_stock_filter(index: ProductIndex, encoder: Encoder) -> None:
    hits = index.search(encoder.encode_query("sleeping bag"), 50, Filters(in_stock=True))
    assert len(hits) == 50 and all(h.product.stock > 0 for h in hits)


def test_price_update_is_visible_without_rebuild(index: ProductIndex, encoder: Encoder) -> None:
    q = encoder.encode_query("cast iron skillet")
    top = index.search(q, 1)[0].product
    vectors_before = index.index.ntotal
    index.upsert([replace(top, price=9999.0, stock=0)], None)
    assert index.index.ntotal == vectors_before
    assert index.get(top.sku).price == 9999.0  # type: ignore[union-attr]
    assert top.sku not in {h.product.sku for h in index.search(q, 5, Filters(max_price=1000))}
    assert top.sku not in {h.product.sku for h in index.search(q, 5, Filters(in_stock=True))}


def test_remove_and_add(index: ProductIndex, encoder: Encoder, demo_store: DemoStore) -> None:
    victim = demo_store.products[0]
    assert index.remove([victim.sku, "NOPE-1"]) == 1
    assert victim.sku not in index
    assert all(h.product.sku != victim.sku for h in index.search(index_vector(encoder, victim.embedding_text()), 20))
    index.upsert([victim], index_vector(encoder, victim.embedding_text())[None, :])
    assert index.search(index_vector(encoder, victim.embedding_text()), 1)[0].product.sku == victim.sku


def index_vector(encoder: Encoder, text: str) -> np.ndarray:
    return encoder.encode_documents([text])[0]


def test_new_products_need_vectors(index: ProductIndex, demo_store: DemoStore) -> None:
    with pytest.raises(ValueError, match="need vectors"):
        index.upsert([replace(demo_store.products[0], sku="NEW-1")], None)


def test_save_and_load_round_trip(index: ProductIndex, encoder: Encoder, tmp_path: Path) -> None:
    index.remove([next(iter(index.slot_of))])
    index.save(tmp_path)
    again = ProductIndex.load(tmp_path)
    q = encoder.encode_query("noise cancelling headphones")
    assert [h.product.sku for h in again.search(q, 5)] == [h.product.sku for h in index.search(q, 5)]
    assert len(again) == len(index)


def test_missing_index_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(IndexLoadError, match="aisle index build"):
        ProductIndex.load(tmp_path)


@pytest.fixture(scope="module")
def ivf_parts(demo_store: DemoStore, encoder: Encoder) -> tuple[list, np.ndarray]:  # type: ignore[type-arg]
    docs = demo_store.products
    return docs, encoder.encode_documents([p.embedding_text() for p in docs])


def test_large_catalogs_get_an_ivf_index_tuned_to_the_recall_target(ivf_parts, encoder: Encoder) -> None:  # type: ignore[no-untyped-def]
    from retrieval.index import IndexConfig

    docs, vectors = ivf_parts
    ivf = ProductIndex.build(docs, vectors, IndexConfig(exact_below=500, target_recall=0.95, tune_queries=200))
    flat = ProductIndex.build(docs, vectors, IndexConfig(exact_below=10_000))
    assert ivf.kind.startswith("ivf") and flat.kind == "flat"
    queries = encoder.encode_query(["trail shoes for mud", "espresso machine", "dog bed for a big dog",
                                    "warm down jacket", "kids science kit", "led bike light"])
    recall = np.mean([len({h.product.sku for h in ivf.search(q, 10)} & {h.product.sku for h in flat.search(q, 10)}) / 10
                      for q in queries])
    assert recall >= 0.9


@pytest.mark.parametrize("exact_subset_max", [0, 20_000])
def test_ivf_filters_still_return_k(ivf_parts, encoder: Encoder, exact_subset_max: int) -> None:  # type: ignore[no-untyped-def]
    from retrieval.index import IndexConfig

    docs, vectors = ivf_parts
    ivf = ProductIndex.build(docs, vectors, IndexConfig(exact_below=500, exact_subset_max=exact_subset_max))
    f = Filters(categories=("Pet Supplies",), max_price=40.0)
    matching = int(ivf.mask(f).sum())
    hits = ivf.search(encoder.encode_query("running shoes"), 10, f)
    assert len(hits) == min(10, matching) and all(h.product.category == "Pet Supplies" for h in hits)


def test_ivf_updates_and_persists(ivf_parts, encoder: Encoder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from retrieval.index import IndexConfig

    docs, vectors = ivf_parts
    ivf = ProductIndex.build(docs, vectors, IndexConfig(exact_below=500))
    q = encoder.encode_query("cast iron skillet")
    top = ivf.search(q, 1)[0].product
    ivf.upsert([replace(top, price=1.0)], None)
    assert ivf.search(q, 1, Filters(max_price=1.5))[0].product.sku == top.sku
    ivf.save(tmp_path)
    again = ProductIndex.load(tmp_path)
    assert again.kind == ivf.kind and again.nprobe == ivf.nprobe
    assert [h.product.sku for h in again.search(q, 5)] == [h.product.sku for h in ivf.search(q, 5)]


@pytest.mark.gpu
@pytest.mark.skipif(__import__("retrieval.index", fromlist=["gpu_count"]).gpu_count() == 0,
                    reason="FAISS sees no GPU (faiss-cpu build or no device)")
def test_gpu_search_matches_cpu(index: ProductIndex, encoder: Encoder) -> None:
    q = encoder.encode_query("noise cancelling headphones")
    index.use_gpu = False
    cpu = [h.product.sku for h in index.search(q, 10)]
    index.use_gpu = True
    assert [h.product.sku for h in index.search(q, 10)] == cpu
