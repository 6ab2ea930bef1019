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


def plain_words(text: str) -> str:
    """Lower-case words only: "Trail Shoe (Red)" and "trail shoe red" read the same."""
    return " ".join(w.lower() for w in WORD.findall(text))


def named_products(message: str, products: Sequence[ProductDoc]) -> list[list[ProductDoc]]:
    """The listed products a message names, grouped by title (variants together), in listed order.

    A title is named when the message holds it whole (its variant left out), word for word, whatever the
    case and punctuation: "the kinetix mini-pump" names "Kinetix Mini Pump (Red)".
    """
    said = f" {plain_words(message)} "
    groups: dict[str, list[ProductDoc]] = {}
    for p in products:
        title = plain_words(base_title(p))
        if title and f" {title} " in said:
            groups.setdefault(title, []).append(p)
    # a variant named in full ("... Sport Earbuds (red)") is that variant, not the title's cheapest
    return [[p for p in g if f" {plain_words(p.title)} " in said] or g for g in groups.values()]


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


FIGURE = re.compile(r"(?:[$€£¥₹]\s?(\d[\d,]*(?:\.\d{1,2})?)|(\d[\d,]*(?:\.\d{1,2})?)\s?(?:dollars?|bucks|usd|euros?|"
                    r"pounds?|quid|gbp|eur)\b)", re.IGNORECASE)
ASKS_IF_PRICE = re.compile(r"\b(?:really|only|just|is (?:it|that|this)|does (?:it|that|this) cost|costs?|priced at|"
                           r"selling (?:it|them) for|going for|on sale for)\b", re.IGNORECASE)


def claimed_price(message: str) -> float | None:
    """The price a message claims ("is it really only $1?", "99 bucks?"), or None."""
    m = FIGURE.search(message)
    if m is None or not ASKS_IF_PRICE.search(message):
        return None
    return float((m.group(1) or m.group(2)).replace(",", ""))


def claim_reply(claim: float, ref: str, p: ProductDoc) -> str:
    """Whether a claimed price is the catalog's, about the product referred to as ``ref``."""
    if abs(claim - p.price) < 0.005:
        return f"Yes, {ref}."
    return f"No, {ref} costs {'more' if claim < p.price else 'less'} than that."


def price_claim_reply(message: str, products: Sequence[ProductDoc]) -> str | None:
    """The catalog's answer to "is the <product> really only $1?" about one listed product named in full; None:
    no claim, or not about exactly one listed product."""
    claim = claimed_price(message)
    groups = named_products(message, products) if claim is not None else []
    if claim is None or len(groups) != 1:
        return None
    if len(groups[0]) == 1:
        return claim_reply(claim, f"[{products.index(groups[0][0]) + 1}]", groups[0][0])
    same = [p for p in groups[0] if p.title == groups[0][0].title]  # one displayed title, several products
    if len(same) != len(groups[0]):
        return None
    refs = [f"[{products.index(p) + 1}]" for p in same]
    if (exact := next((r for r, p in zip(refs, same, strict=True) if abs(claim - p.price) < 0.005), None)):
        return f"Yes, {exact}."
    listed = ", ".join(refs[:-1]) + f" and {refs[-1]}"
    side = {claim < p.price for p in same}
    how = "more" if side == {True} else "less" if side == {False} else None
    return f"No, {listed} cost {how} than that." if how else f"No, {listed} cost other prices."


def price_match_reply(message: str, products: Sequence[ProductDoc], policy: str) -> str:
    """The store's price-match policy, with our price of the one listed product the message names, if any."""
    groups = named_products(message, products)
    if len(groups) == 1 and len(groups[0]) == 1:
        return f"{policy} Ours: [{products.index(groups[0][0]) + 1}]."
    return policy
