"""A refinement of the need: "got those in navy?", "in stock ones only pls", "need it under $50 actually".

Such a message names no product of its own, so searching its words alone finds navy anything. The search runs
on the need (the shopper's words that asked for the cards on screen) with the message's words: the kind comes
from the need, the colour, budget or stock from the message (its price bounds replace the need's; stock only
adds). Products in a colour the message names come first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.turn.acts import ActGuess
from bot.turn.assortment import product_words, stem
from retrieval.catalog import ProductDoc
from retrieval.query import Filters, parse_filters
from retrieval.search import ProductSearch

COLOURS = frozenset((
    "black", "white", "red", "blue", "green", "pink", "navy", "grey", "gray", "sand", "olive", "teal", "charcoal",
    "purple", "yellow", "orange", "brown", "ivory", "gold", "silver", "beige", "cream", "khaki", "burgundy", "maroon",
    "turquoise", "lilac", "lavender", "mint", "coral", "tan", "copper", "bronze", "rose", "cyan", "magenta"))
REFINE_CONFIDENCE = 0.5
"""How sure the act classifier must be that a message with no colour and no limit refines the need."""
_TITLE_WORDS: dict[int, tuple[int, frozenset[str]]] = {}


def title_words(search: ProductSearch) -> frozenset[str]:
    """The stems of every word in the catalog's titles, computed once per catalog size."""
    key, size = id(search), len(search.index.docs)
    cached = _TITLE_WORDS.get(key)
    if cached is not None and cached[0] == size:
        return cached[1]
    words = frozenset(stem(w) for p in search.index.docs if p is not None
                      for w in re.findall(r"[a-z][a-z0-9'-]*", p.title.lower()))
    _TITLE_WORDS[key] = (size, words)
    return words


def colours_in(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]+", text.lower()) if w in COLOURS]


@dataclass(frozen=True)
class Refinement:
    text: str  # what to search for: the need's words and the message's
    filters: Filters  # the message's price bounds, else the need's; in stock or cheapest if either says so


def refinement(text: str, need: str | None, search: ProductSearch, act: ActGuess | None = None
               ) -> Refinement | None:
    """The search for ``text`` as a refinement of ``need``; None when there is no need, or the message names a
    product of its own ("what about tents?") or refines nothing."""
    if not need:
        return None
    titles = title_words(search)
    if any(stem(w) in titles for w in product_words(text) if w not in COLOURS):
        return None
    said, wanted = parse_filters(text), parse_filters(need)
    refines = any(stem(c) in titles for c in colours_in(text)) or not said.unconstrained \
        or (act is not None and act.label == "refine" and act.confidence >= REFINE_CONFIDENCE)
    if not refines:
        return None
    bounds = said if said.min_price is not None or said.max_price is not None else wanted
    return Refinement(f"{need} {text}", replace(wanted, min_price=bounds.min_price, max_price=bounds.max_price,
                                                in_stock=said.in_stock or wanted.in_stock,
                                                cheapest=said.cheapest or wanted.cheapest))


def colour_first(text: str, products: Sequence[ProductDoc]) -> list[int]:
    """The order that puts products whose titles have a colour the message names first (stable otherwise)."""
    wanted = set(colours_in(text))
    has = [bool(wanted & set(re.findall(r"[a-z]+", p.title.lower()))) for p in products]
    return sorted(range(len(products)), key=lambda i: not has[i])
