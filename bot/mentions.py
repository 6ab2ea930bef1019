"""Product mentions that the catalog writes: the model refers to a listed product by its number, the server
renders it.

The prompt numbers the turn's products (``1. [SKU] Title - USD 93.99 - in stock``). A reply refers to one as
``[1]``; the server writes that out as the product's exact title and its price as shoppers write it
("Trail Runner Shoes ($93.99)", "Heart Tea Cup (£1.25)"), so no title or price is ever copied by the model.
A product mentioned again in the same reply is written by its title alone.

The output guard sees the references first: it drops a reference to a number that was not listed, with its
clause, and checks any price the model writes after one against that product. :class:`MentionRenderer` runs
on what the guard let out, and records each mention (``meta.mentions``) for the widget's chips and for the
training export, which turns rendered mentions back into references.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from retrieval.catalog import ProductDoc

REFERENCE = re.compile(r"\[(\d{1,2})\]")
PARTIAL_REFERENCE = re.compile(r"\[\d{0,2}$")  # a reference still being written, at the end of the text
SYMBOLS = {"USD": "$", "GBP": "£", "EUR": "€", "JPY": "¥", "INR": "₹"}


def shopper_price(price: float, currency: str) -> str:
    """A price as shoppers write it: "$1,299.00", "£1.25", "€3.50"; "CHF 3.50" for a currency without a sign."""
    symbol = SYMBOLS.get(currency.upper())
    return f"{symbol}{price:,.2f}" if symbol else f"{currency} {price:,.2f}"


def mention_text(p: ProductDoc) -> str:
    """A product as the catalog writes it in a reply: exact title, then price."""
    return f"{p.title} ({shopper_price(p.price, p.currency)})"


def listed(n: int, products: Sequence[ProductDoc]) -> ProductDoc | None:
    """The product a reference's number points to, or None for a number that was not listed."""
    return products[n - 1] if 1 <= n <= len(products) else None


def references(text: str, products: Sequence[ProductDoc]) -> list[ProductDoc]:
    """The listed products a text refers to, in order of first reference."""
    out: list[ProductDoc] = []
    for m in REFERENCE.finditer(text):
        p = listed(int(m.group(1)), products)
        if p is not None and p not in out:
            out.append(p)
    return out


@dataclass
class MentionRenderer:
    """Renders one reply's references as it streams; a reference split across deltas waits for its end."""

    products: Sequence[ProductDoc]
    mentions: list[dict[str, Any]] = field(default_factory=list)
    _pending: str = ""

    def feed(self, text: str) -> str:
        text = self._pending + text
        partial = PARTIAL_REFERENCE.search(text)
        cut = partial.start() if partial else len(text)
        self._pending = text[cut:]
        return REFERENCE.sub(self._render, text[:cut])

    def finish(self) -> str:
        rest, self._pending = self._pending, ""
        return REFERENCE.sub(self._render, rest)

    def _render(self, m: re.Match[str]) -> str:
        p = listed(int(m.group(1)), self.products)
        if p is None:  # the guard drops these before they get here; a stray one stays as written
            return m.group(0)
        again = any(x["sku"] == p.sku for x in self.mentions)
        text = p.title if again else mention_text(p)
        self.mentions.append({"n": int(m.group(1)), "sku": p.sku, "text": text})
        return text


def rendered(text: str, products: Sequence[ProductDoc]) -> str:
    """A whole text with its references rendered, as the shopper reads it."""
    renderer = MentionRenderer(products)
    return renderer.feed(text) + renderer.finish()


def as_references(text: str, products: Sequence[ProductDoc]) -> str:
    """The reverse of rendering, for training on logged replies: each listed product's rendered mention (or,
    failing that, its exact title followed by a price) becomes its reference, longest titles first."""
    order = sorted(range(len(products)), key=lambda i: -len(products[i].title))
    for i in order:
        p = products[i]
        ref = f"[{i + 1}]"
        text = text.replace(mention_text(p), ref)
        price = r"\s*(?:\(|,?\s*(?:at|for)\s*)?(?:[$€£¥₹]|[A-Z]{3}\s?)[\d,]+(?:\.\d{1,2})?\)?"
        text = re.sub(rf"(?:\bthe\s+)?{re.escape(p.title)}(?:{price})?", ref, text, flags=re.IGNORECASE)
    return text
