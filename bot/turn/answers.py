"""The server's answers to acts on the shown products, written from the catalog: stock, price, details,
a comparison, a decision, or the question which product was meant.

Each answer refers to products by their card numbers (``[2]``); the reply's mention renderer writes each
out as the catalog's exact title and price. The model is not asked: these are facts the catalog holds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.comparison import base_title, claim_reply
from bot.turn.understand import Act
from retrieval.catalog import ProductDoc

LOW_STOCK = 5
"""At or below this many units, the answer says how many are left."""


def ref(i: int) -> str:
    return f"[{i + 1}]"


def stock_phrase(p: ProductDoc) -> str:
    if not p.in_stock:
        return "is out of stock at the moment"
    return f"is in stock (only {p.stock} left)" if p.stock <= LOW_STOCK else "is in stock"


def _details(p: ProductDoc) -> str:
    """The catalog's own description, without what the title and the card already say."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", p.description) if s.strip()]
    kept = [s for s in sentences if not s.lower().startswith(("colour:", "color:"))][:2]
    return " ".join(kept)


def _variants(i: int, shown: Sequence[ProductDoc]) -> str:
    """The other shown variants of the same product ("also in navy, sand")."""
    others = [p for j, p in enumerate(shown) if j != i and base_title(p) == base_title(shown[i])]
    colours = [str(p.attributes.get("colour") or p.title.rsplit("(", 1)[-1].rstrip(")")) for p in others]
    return f" It also comes in {', '.join(colours)}." if colours else ""


def answer(act: Act, shown: Sequence[ProductDoc]) -> str:
    """The reply to ``act``, in references to ``shown`` (the cards, in order)."""
    if act.choices:
        listed = ", ".join(ref(i) for i in act.choices[:-1]) + f" or {ref(act.choices[-1])}"
        return f"Which one do you mean: {listed}?"
    products = [shown[i] for i in act.refs]
    if act.kind == "compare" and len(act.refs) > 2:  # "which is the cheapest?" of all the cards
        ranked = sorted(act.refs, key=lambda i: shown[i].price)
        if act.dearest:
            return f"{ref(ranked[-1])} is the most expensive of these."
        return f"{ref(ranked[0])} is the cheapest of these" + \
            ("." if shown[ranked[0]].in_stock else f", but it {stock_phrase(shown[ranked[0]])}.")
    if act.kind == "compare" and len(act.refs) >= 2:
        a, b = sorted(act.refs[:2], key=lambda i: shown[i].price)
        if shown[a].price == shown[b].price:
            text = f"{ref(a)} and {ref(b)} cost the same."
        elif act.dearest:
            text = f"{ref(b)} is more expensive than {ref(a)}."
        else:
            text = f"{ref(a)} is cheaper than {ref(b)}."
        out = [i for i in (a, b) if not shown[i].in_stock]
        return text + "".join(f" {ref(i)} {stock_phrase(shown[i])}." for i in out)
    if act.kind == "claim" and act.claim is not None:
        return claim_reply(act.claim, ref(act.refs[0]), products[0])
    if act.kind == "stock":
        return " ".join(f"{'Yes, ' if p.in_stock and len(products) == 1 else ''}{ref(i)} {stock_phrase(p)}."
                        for i, p in zip(act.refs, products, strict=True))
    if act.kind == "price":
        return " ".join(f"{'Here it is: ' if n == 0 else ''}{ref(i)}"
                        f"{'' if p.in_stock else ', out of stock at the moment'}."
                        for n, (i, p) in enumerate(zip(act.refs, products, strict=True)))
    i, p = act.refs[0], products[0]
    if act.kind == "decide":
        if not p.in_stock:
            return f"{ref(i)} is out of stock at the moment, so it can't go in your cart yet."
        return f"Good choice: {ref(i)}. Add it to your cart from its card."
    details = _details(p)
    return f"{ref(i)}: {details} It {stock_phrase(p)}.{_variants(i, shown)}" if details \
        else f"{ref(i)} {stock_phrase(p)}.{_variants(i, shown)}"
