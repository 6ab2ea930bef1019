"""Which of two listed products is cheaper, and whether there is anything cheaper: answered by the server from
the catalog, not by the model.

"Which one is cheaper, the X or the Y?", "compare the X and the Y": when the shopper's message names two of
the turn's listed products by their whole titles (word for word) and asks how they compare, the catalog knows the answer.
The server writes it ("[2] is cheaper than [1].", each reference rendered as the exact title and price) and
the model is not asked: a 135M model reads two prices and calls either one cheaper; the catalog does not.

A title listed in several variants (colours) at different prices is compared by its cheapest variant.
Anything less certain (one product named, a partial name, three titles) is left to the model, as before.

"Anything cheaper?" right after a recommendation is answered the same way: the cheapest listed product in
stock below the one the previous reply named first, or that there is none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from retrieval.catalog import ProductDoc

ASKS_TO_COMPARE = re.compile(
    r"\b(?:cheaper|cheapest|less expensive|more expensive|pricier|dearer|costs? (?:more|less)|compare|comparison|"
    r"difference|differ|versus|vs\.?|better deal|better value)\b", re.IGNORECASE)
ASKS_WHICH_COSTS_MORE = re.compile(r"\b(?:more expensive|pricier|dearer|costs? more)\b", re.IGNORECASE)
WORD = re.compile(r"[^\W_]+", re.UNICODE)


def base_title(p: ProductDoc) -> str:
    """The title without its variant ("Trail Shoe (Black)" -> "Trail Shoe")."""
    return p.title.split(" (")[0]


def _words(text: str) -> str:
    return " ".join(w.lower() for w in WORD.findall(text))


def named_products(message: str, products: Sequence[ProductDoc]) -> list[list[ProductDoc]]:
    """The listed products a message names, grouped by title (variants together), in listed order.

    A title is named when the message holds it whole (its variant left out), word for word, whatever the
    case and punctuation: "the kinetix mini-pump" names "Kinetix Mini Pump (Red)".
    """
    said = f" {_words(message)} "
    groups: dict[str, list[ProductDoc]] = {}
    for p in products:
        title = _words(base_title(p))
        if title and f" {title} " in said:
            groups.setdefault(title, []).append(p)
    return list(groups.values())


def compared(message: str, products: Sequence[ProductDoc]) -> tuple[ProductDoc, ProductDoc] | None:
    """The two listed products the message asks to compare, cheaper first; None when it is not certain."""
    if not ASKS_TO_COMPARE.search(message):
        return None
    groups = named_products(message, products)
    if len(groups) != 2:
        return None  # one product, or more than two: the model answers
    a, b = sorted((min(g, key=lambda p: p.price) for g in groups), key=lambda p: p.price)  # each title's cheapest
    return a, b


def comparison_reply(message: str, products: Sequence[ProductDoc]) -> str | None:
    """The server's reply to a message comparing two listed products, in references; None: the model answers."""
    pair = compared(message, products)
    if pair is None:
        return None
    a, b = pair
    ref_a, ref_b = f"[{products.index(a) + 1}]", f"[{products.index(b) + 1}]"
    if a.price == b.price:
        text = f"{ref_a} and {ref_b} cost the same."
    elif ASKS_WHICH_COSTS_MORE.search(message):
        text = f"{ref_b} costs more than {ref_a}."
    else:
        text = f"{ref_a} is cheaper than {ref_b}."
    out = [p for p in (a, b) if not p.in_stock]
    if out:
        text += f" {' and '.join(f'[{products.index(p) + 1}]' for p in out)} {'is' if len(out) == 1 else 'are'} " \
                "out of stock at the moment."
    return text


ASKS_FOR_CHEAPER = re.compile(r"\b(?:cheaper|less expensive|lower[- ]priced|more affordable)\b", re.IGNORECASE)
SHORT_FOLLOW_UP = 6
"""Words at most in "anything cheaper?": a longer message carries wishes of its own, and the model answers it."""
NOTHING_CHEAPER = "I don't have anything cheaper that fits right now."


def shown_first(previous_reply: str, products: Sequence[ProductDoc]) -> ProductDoc | None:
    """The product among ``products`` that a reply's text named first, by its exact title (the catalog wrote it);
    serving reads it from the reply's recorded mentions instead."""
    said = previous_reply.lower()
    hits = [(said.find(p.title.lower()), i) for i, p in enumerate(products) if p.title.lower() in said]
    return products[min(hits)[1]] if hits else None


def cheaper_reply(message: str, shown: ProductDoc | None, products: Sequence[ProductDoc]) -> str | None:
    """The server's reply to "anything cheaper?" right after a recommendation, in references: the cheapest listed
    product in stock below ``shown`` (the product that reply named first), or that there is none; None: the
    model answers."""
    if shown is None or not ASKS_FOR_CHEAPER.search(message) or len(WORD.findall(message)) > SHORT_FOLLOW_UP \
            or any(c.isdigit() for c in message):
        return None
    cheaper = [p for p in products if p.in_stock and p.price < shown.price and p.sku != shown.sku]
    if not cheaper:
        return NOTHING_CHEAPER
    best = min(cheaper, key=lambda p: p.price)
    return f"Yes, [{products.index(best) + 1}] is cheaper."
