"""Catalog-grounded dialogs: shopper questions about real catalog products, answered from the facts.

A new store has few logged dialogs worth learning from, and a small base model's own
replies are the thing to improve. So the export can add examples built from the
catalog itself: a question a shopper could ask about a product (its name, type,
colour, brand, budget or stock), the products the live retrieval finds for it
(the prompt is built exactly as in serving), and a reply that recommends from those
listed facts only, with each product's exact title, price and stock. Some are
follow-ups ("anything cheaper?") after a first exchange.

A store's catalog has one currency, and an adapter trained on it alone learns to write
that currency's sign whatever the prompt lists ("$0.39" for "GBP 0.39"). So a share of the
examples lists their products in another currency, and the reply says that one.

Questions are keyed by the product they are about, so ``held_out`` keeps whole
products out of training.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
import sys
from collections.abc import Sequence

from bot.prompts import PromptRecord, Turn, stock_phrase
from finetune.examples import Example
from retrieval.catalog import ProductDoc
from retrieval.search import ProductSearch

NO_MATCH = ("Sorry, I couldn't find a product that matches that. Could you tell me a bit more about what "
            "you're looking for?")
FOLLOW_UPS = ("anything cheaper?", "do you have something cheaper?", "what else do you have?",
              "any other options?")
SUGGEST = ("I'd recommend the {t} for {p}.", "A good match is the {t} at {p}.",
           "Have a look at the {t}: it costs {p}.", "The {t} would suit you; it's {p}.")
ALSO = (" The {t} at {p} is another option.", " You could also try the {t} for {p}.", "")
OTHER_CURRENCIES = ("GBP", "EUR", "CAD", "AUD")


def price_text(p: ProductDoc) -> str:
    return f"${p.price:.2f}" if p.currency == "USD" else f"{p.currency} {p.price:.2f}"


def short_name(p: ProductDoc) -> str:
    """The product's name without colour and brand: 'Alpenhorn Hooded Windbreaker (sand)' -> 'hooded windbreaker'."""
    base = p.title.split(" (")[0]
    if p.brand and base.lower().startswith(p.brand.lower() + " "):
        base = base[len(p.brand) + 1:]
    return base.lower()


def kind_of(p: ProductDoc) -> str:
    """The product's type, its last one or two words: 'windbreaker', 'soap dish'."""
    words = re.findall(r"[a-z][a-z'-]*", short_name(p))
    return " ".join(words[-2:]) if len(words) > 2 else " ".join(words)


def budget(price: float, rng: random.Random) -> int:
    step = 5 if price < 50 else 10 if price < 200 else 50
    return int(math.ceil(price * rng.uniform(1.05, 1.5) / step) * step)


def question_for(p: ProductDoc, rng: random.Random) -> tuple[str, str]:
    """A shopper's question about ``p`` and its kind: 'price', 'stock' or 'find'."""
    name, kind = p.title.split(" (")[0], kind_of(p)
    colour = str(p.attributes.get("colour", ""))
    options = [
        ("find", f"do you have a {short_name(p)}?"),
        ("find", f"I'm looking for a {kind} under ${budget(p.price, rng)}"),
        ("find", f"can you recommend a {kind}?"),
        ("find", f"I need a {kind} as a gift, what do you suggest?"),
        ("find", f"what do you have in {p.category.lower()}?"),
        ("price", f"how much is the {name}?"),
        ("stock", f"is the {name} in stock?"),
    ]
    if p.brand:
        options.append(("find", f"anything from {p.brand}? I want a {kind}"))
    if colour:
        options.append(("find", f"any {colour} {kind}?"))
    kind_, text = rng.choice(options)
    if rng.random() < 0.3:
        text = text.lower().rstrip("?")
    return kind_, text


def _named(question: str, products: Sequence[ProductDoc]) -> ProductDoc | None:
    q = question.lower()
    return next((p for p in products if p.title.split(" (")[0].lower() in q), None)


def _stock_clause(p: ProductDoc) -> str:
    phrase = stock_phrase(p.stock)
    if phrase == "in stock":
        return ", and it's in stock"
    if phrase == "out of stock":
        return ", but it's out of stock at the moment"
    return f", and there are {phrase}"


def suggest(products: Sequence[ProductDoc], rng: random.Random, exclude: set[str] | None = None,
            budgeted: bool = False) -> str:
    """A recommendation from the listed products: in-stock ones first, in retrieval order."""
    listed = [p for p in products if p.sku not in (exclude or set())]
    if not listed:
        return NO_MATCH
    ready = [p for p in listed if p.in_stock] or listed
    first = ready[0]
    text = rng.choice(SUGGEST).format(t=first.title, p=price_text(first))
    if not first.in_stock:
        text = f"The {first.title} ({price_text(first)}) matches, but it's out of stock at the moment."
    elif budgeted and rng.random() < 0.5:
        text = "Within your budget, " + text[0].lower() + text[1:]
    second = next((p for p in ready[1:] if p.title != first.title), None)  # same title: ambiguous to a shopper
    if second is not None:
        text += rng.choice(ALSO).format(t=second.title, p=price_text(second))
    return text


def answer(kind: str, question: str, products: Sequence[ProductDoc], constraint: str,
           rng: random.Random) -> str:
    """The grounded reply to a first question, from the listed products only."""
    if not products:
        return NO_MATCH
    asked = _named(question, products)
    if kind == "price" and asked is not None:
        return f"The {asked.title} costs {price_text(asked)}{_stock_clause(asked)}."
    if kind == "stock" and asked is not None:
        if asked.in_stock:
            left = "" if asked.stock >= 5 else f" (only {asked.stock} left)"
            return f"Yes, the {asked.title} is in stock{left}, at {price_text(asked)}."
        alt = next((p for p in products if p.in_stock), None)
        out = f"Sorry, the {asked.title} is out of stock right now."
        return out + (f" The {alt.title} is in stock at {price_text(alt)}." if alt else "")
    if kind in ("price", "stock"):
        where = " in stock" if "in stock" in constraint else ""
        return f"I couldn't find that exact product{where}. " + suggest(products, rng)
    return suggest(products, rng, budgeted="price at most" in constraint)


def follow_up(question: str, products: Sequence[ProductDoc], shown: ProductDoc | None,
              rng: random.Random) -> str:
    """The reply to "anything cheaper?" or "what else?" after ``shown`` was recommended."""
    if shown is None:
        return suggest(products, rng)
    if "cheaper" in question:
        cheaper = [p for p in products if p.in_stock and p.price < shown.price and p.sku != shown.sku]
        if not cheaper:
            return "I don't have anything cheaper that fits right now."
        best = min(cheaper, key=lambda p: p.price)
        return f"Yes, the {best.title} is cheaper, at {price_text(best)}."
    return suggest(products, rng, exclude={shown.sku})


def in_currency(products: Sequence[ProductDoc], currency: str | None) -> list[ProductDoc]:
    """The products priced in ``currency`` (same figures), or as they are when it is None."""
    return [dataclasses.replace(p, currency=currency) if currency else p for p in products]


def _first_shown(reply: str, products: Sequence[ProductDoc]) -> ProductDoc | None:
    hits = [(reply.find(p.title), p) for p in products if p.title in reply]
    return min(hits, key=lambda h: h[0])[1] if hits else None


def catalog_examples(search: ProductSearch, products: Sequence[ProductDoc], *, n: int, store_name: str,
                     k: int = 5, follow_up_share: float = 0.25, other_currency_share: float = 0.3, seed: int = 0,
                     progress: bool = True) -> list[Example]:
    """``n`` grounded examples about products drawn from ``products``, retrieved through ``search``.

    In ``other_currency_share`` of them the listed products are priced in a currency the
    catalog does not use (same figures), so the adapter learns to copy the listed currency.
    """
    from tqdm import tqdm

    if not products:
        raise ValueError("the catalog is empty: import products (aisle catalog import) or load the demo store")
    rng = random.Random(seed)
    out: list[Example] = []
    for i in tqdm(range(n), desc="catalog dialogs", file=sys.stderr, disable=not progress):
        p = rng.choice(products)
        kind, question = question_for(p, rng)
        currency = rng.choice([c for c in OTHER_CURRENCIES if c != p.currency]) \
            if rng.random() < other_currency_share else None

        found = search.search(question, k=k)
        listed = in_currency([h.product for h in found.hits], currency)
        constraint = found.filters.describe()
        reply = answer(kind, question, listed, constraint, rng)
        history: list[Turn] = []
        if rng.random() < follow_up_share and listed:
            shown = _first_shown(reply, listed)
            history = [Turn("user", question), Turn("assistant", reply)]
            question = rng.choice(FOLLOW_UPS)
            found = search.search(question, context=[history[0].text], k=k)
            listed = in_currency([h.product for h in found.hits], currency)
            constraint = found.filters.describe()
            reply = follow_up(question, listed, shown, rng)
        record = PromptRecord(store_name=store_name, products=listed, constraint=constraint)
        out.append(Example(id=f"catalog:{seed}:{i}", source="catalog", group=f"product:{p.sku}",
                           messages=record.messages(history=history, text=question), completion=reply,
                           catalog=record.as_meta()["catalog"]))
    return out
