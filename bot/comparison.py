"""Which of two listed products is cheaper: answered by the server from the catalog, not by the model.

"Which one is cheaper, the X or the Y?", "compare the X and the Y": when the shopper's message names two of
the turn's listed products by their whole titles and asks how they compare, the catalog knows the answer.
The server writes it ("[2] is cheaper than [1].", each reference rendered as the exact title and price) and
the model is not asked: a 135M model reads two prices and calls either one cheaper; the catalog does not.

Anything less certain (one product named, a partial name, two variants of one title at different prices)
is left to the model, as before.
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


def named_products(message: str, products: Sequence[ProductDoc]) -> list[list[ProductDoc]]:
    """The listed products a message names, grouped by title (variants together), in listed order.

    A title is named when every word of it (its variant left out) is in the message.
    """
    words = {w.lower() for w in WORD.findall(message)}
    groups: dict[str, list[ProductDoc]] = {}
    for p in products:
        title = {w.lower() for w in WORD.findall(base_title(p))}
        if title and title <= words:
            groups.setdefault(base_title(p).lower(), []).append(p)
    return list(groups.values())


def compared(message: str, products: Sequence[ProductDoc]) -> tuple[ProductDoc, ProductDoc] | None:
    """The two listed products the message asks to compare, cheaper first; None when it is not certain."""
    if not ASKS_TO_COMPARE.search(message):
        return None
    groups = named_products(message, products)
    if len(groups) != 2 or any(len({p.price for p in g}) > 1 for g in groups):
        return None  # not two products, or a title whose variants cost differently: the model answers
    a, b = sorted((g[0] for g in groups), key=lambda p: p.price)
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
