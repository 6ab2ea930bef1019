"""Product catalog, embeddings, FAISS index and search. Imports nothing from bot, finetune or web."""

from __future__ import annotations

from retrieval.catalog import ProductDoc
from retrieval.index import Hit, ProductIndex
from retrieval.query import Filters, parse_filters

__all__ = ["Filters", "Hit", "ProductDoc", "ProductIndex", "parse_filters"]
