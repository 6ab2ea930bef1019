"""Catalog-grounded dialogs: shopper questions about real catalog products, answered from the facts.

A new store has few logged dialogs worth learning from, and a small base model's own
replies are the thing to improve. So the export can add examples built from the
catalog itself: a question a shopper could ask about a product (its name, type,
colour, brand, budget or stock), the products the live retrieval finds for it
(the prompt is built exactly as in serving), and a reply that recommends from those
listed facts only. The reply refers to a product by its number in the list ("[2]"),
and the server writes out its exact title and price (:mod:`bot.mentions`), so the
model learns to pick products, never to copy titles or prices. Some are follow-ups
("anything cheaper?") after a first exchange.

A share of the examples lists their products in another currency than the catalog's, so
that the adapter reads the list, not the store.

Questions are keyed by the product they are about, so ``held_out`` keeps whole
products out of training.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from bot.mentions import references, rendered
from bot.prompts import PromptRecord, Turn, stock_phrase
from finetune.examples import Example
from retrieval.catalog import ProductDoc
from retrieval.search import ProductSearch


@dataclass(frozen=True, slots=True)
class Ask:
    """One phrasing of a shopper's question. ``held`` phrasings only ever appear in the evaluation split, so
    the held-out figures measure wording the adapter never saw."""

    id: str
    kind: str  # find, price, stock, best, cheapest, compare, no_match
    text: str
    held: bool = False


NO_MATCH = ("Sorry, I couldn't find a product that matches that. Could you tell me a bit more about what "
            "you're looking for?")
FOLLOW_UPS: tuple[Ask, ...] = (
    Ask("more.cheaper", "cheaper", "anything cheaper?"), Ask("more.something", "cheaper", "do you have something cheaper?"),
    Ask("more.less", "cheaper", "something less expensive?", held=True),
    Ask("more.else", "else", "what else do you have?"), Ask("more.options", "else", "any other options?"),
    Ask("more.alternatives", "else", "show me alternatives", held=True),
    Ask("more.second_price", "second", "how much is the second one?"),
    Ask("more.second_stock", "second", "and the second one?", held=True),
)
SUGGEST = ("I'd recommend {r}.", "A good match is {r}.", "Have a look at {r}.", "{r} would suit you.",
           "Try {r}.", "How about {r}?", "{r} is a great fit.", "You might like {r}.")
ALSO = (" {r} is another option.", " You could also try {r}.", " Another choice is {r}.",
        " If you'd like an alternative, there's {r}.", "", "")
OTHER_CURRENCIES = ("GBP", "EUR", "CAD", "AUD")


def ref(p: ProductDoc, listed: Sequence[ProductDoc]) -> str:
    """The reference to a listed product ("[2]"): the catalog writes its title and price."""
    return f"[{next(i for i, q in enumerate(listed, 1) if q.sku == p.sku)}]"


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


ASKS: tuple[Ask, ...] = (
    Ask("find.have", "find", "do you have a {short}?"),
    Ask("find.recommend", "find", "can you recommend a {kind}?"),
    Ask("find.gift", "find", "I need a {kind} as a gift, what do you suggest?", held=True),
    Ask("find.category", "find", "what do you have in {category}?"),
    Ask("find.brand", "find", "anything from {brand}? I want a {kind}"),
    Ask("find.colour", "find", "any {colour} {kind}?"),
    Ask("find.colour_in", "find", "do you have a {kind} in {colour}?", held=True),
    Ask("budget.under", "find", "I'm looking for a {kind} under ${b}"),
    Ask("budget.no_more", "find", "any {kind} for no more than ${b}?"),
    Ask("budget.spend", "find", "I don't want to spend more than ${b} on a {kind}", held=True),
    Ask("budget.max", "find", "{kind}, budget is ${b} max"),
    Ask("budget.or_less", "find", "a {kind} for ${b} or less"),
    Ask("budget.tops", "find", "need a {kind}, {b} bucks tops", held=True),
    Ask("budget.below", "find", "show me a {kind} below ${b}"),
    Ask("budget.up_to", "find", "{kind} up to ${b} please", held=True),
    Ask("budget.around", "find", "a {kind} around ${a}"),
    Ask("budget.between", "find", "a {kind} between ${lo} and ${b}"),
    Ask("price.how_much", "price", "how much is the {name}?"),
    Ask("price.cost", "price", "what does the {name} cost?", held=True),
    Ask("stock.in", "stock", "is the {name} in stock?"),
    Ask("stock.buy", "stock", "can I still buy the {name}?", held=True),
    Ask("best.best", "best", "what's your best {kind}?"),
    Ask("best.pick", "best", "which {kind} would you pick?", held=True),
    Ask("cheapest.cheapest", "cheapest", "what's the cheapest {kind}?"),
    Ask("cheapest.have", "cheapest", "cheapest {kind} you have?", held=True),
    Ask("compare.difference", "compare", "what's the difference between the {name} and the {other}?"),
    Ask("compare.compare", "compare", "compare the {name} and the {other}"),
    Ask("compare.or", "compare", "{name} or {other}, which one is cheaper?", held=True),
    Ask("no_match.sell", "no_match", "do you sell {absent}?"),
    Ask("no_match.need", "no_match", "I need {absent}", held=True),
)
HELD_WEIGHT = 0.5
"""How often a held-out phrasing is drawn, against 1 for the others (held-out ones only ever reach evaluation)."""
ABSENT = ("car tyres", "wedding dresses", "garden hoses", "guitar strings", "printer ink", "motor oil",
          "school uniforms", "fishing rods", "paint rollers", "baby strollers", "ski goggles", "piano lessons")


def _around(price: float) -> int:
    return max(1, round(price))


def _other(p: ProductDoc, products: Sequence[ProductDoc], rng: random.Random) -> ProductDoc | None:
    """Another product of the same kind (or category) to compare ``p`` with."""
    same = [q for q in products if q.title != p.title and kind_of(q) == kind_of(p)] or \
        [q for q in products if q.title != p.title and q.category == p.category]
    return rng.choice(same) if same else None


def question_for(p: ProductDoc, rng: random.Random, products: Sequence[ProductDoc] = (),
                 asks: Sequence[Ask] = ASKS) -> tuple[Ask, str]:
    """A phrasing from ``asks`` that fits ``p`` (a brand, a colour, a second product), and its text."""
    other = _other(p, products, rng) if products else None
    slots = {"short": short_name(p), "kind": kind_of(p), "category": p.category.lower(), "name": p.title.split(" (")[0],
             "brand": p.brand or "", "colour": str(p.attributes.get("colour", "")),
             "b": budget(p.price, rng), "a": _around(p.price), "lo": max(1, int(p.price * 0.7)),
             "other": other.title.split(" (")[0] if other else "", "absent": rng.choice(ABSENT)}
    fits = [a for a in asks if all(slots[k] for k in re.findall(r"{(\w+)}", a.text))]
    ask = rng.choices(fits, [HELD_WEIGHT if a.held else 1.0 for a in fits])[0]
    text = re.sub(r"\ba ([aeiou])", r"an \1", ask.text.format(**slots))
    if rng.random() < 0.3:
        text = text.lower().rstrip("?")
    return ask, text


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
    text = rng.choice(SUGGEST).format(r=ref(first, products))
    if not first.in_stock:
        text = f"{ref(first, products)} matches, but it's out of stock at the moment."
    elif budgeted and rng.random() < 0.5:
        text = "Within your budget, " + text[0].lower() + text[1:]
    second = next((p for p in ready[1:] if p.title != first.title), None)  # same title: ambiguous to a shopper
    if second is not None:
        text += rng.choice(ALSO).format(r=ref(second, products))
    return text


def compare(question: str, products: Sequence[ProductDoc]) -> str:
    """Two named products side by side, from the listed facts; one listed: that one; none: say so."""
    q = question.lower()
    titles = Counter(p.title for p in products)  # a title listed twice is ambiguous: leave it out
    named = [p for p in products if titles[p.title] == 1 and p.title.split(" (")[0].lower() in q][:2]
    if len(named) < 2:
        if not named:
            return "I couldn't find those two products. " + suggest(products, random.Random(len(q)))
        p = named[0]
        return f"I can only find {ref(p, products)}{_stock_clause(p)}."
    a, b = sorted(named, key=lambda p: p.price)
    if a.price == b.price:
        return f"{ref(a, products)} and {ref(b, products)} cost the same."
    return f"{ref(a, products)} is cheaper than {ref(b, products)}."


def absent_reply(question: str, products: Sequence[ProductDoc], rng: random.Random) -> str:
    """The store does not carry what was asked for: say so, then offer the nearest listed product."""
    what = next((a for a in ABSENT if a in question.lower()), "that")
    head = rng.choice((f"Sorry, we don't carry {what}.", f"I'm afraid we don't sell {what}."))
    ready = [p for p in products if p.in_stock]
    if not ready:
        return head
    p = ready[0]
    return head + rng.choice((f" The closest I have is {ref(p, products)}.",
                              f" The nearest thing in the store is {ref(p, products)}."))


def answer(kind: str, question: str, products: Sequence[ProductDoc], constraint: str,
           rng: random.Random) -> str:
    """The grounded reply to a first question, from the listed products only."""
    if kind == "no_match":
        return absent_reply(question, products, rng)
    if not products:
        return NO_MATCH
    if kind == "compare":
        return compare(question, products)
    ready = [p for p in products if p.in_stock]
    if kind == "cheapest" and ready:
        p = min(ready, key=lambda p: p.price)
        return rng.choice((f"The cheapest one is {ref(p, products)}.", f"{ref(p, products)} is the lowest priced."))
    if kind == "best" and ready:
        p = ready[0]
        return rng.choice((f"My pick would be {ref(p, products)}.", f"The best match I have is {ref(p, products)}."))
    asked = _named(question, products)
    if kind == "price" and asked is not None:
        return f"That's {ref(asked, products)}{_stock_clause(asked)}."
    if kind == "stock" and asked is not None:
        if asked.in_stock:
            left = "" if asked.stock >= 5 else f" (only {asked.stock} left)"
            return f"Yes, {ref(asked, products)} is in stock{left}."
        alt = next((p for p in products if p.in_stock), None)
        out = f"Sorry, {ref(asked, products)} is out of stock right now."
        return out + (f" {ref(alt, products)} is in stock." if alt else "")
    if kind in ("price", "stock"):
        where = " in stock" if "in stock" in constraint else ""
        return f"I couldn't find that exact product{where}. " + suggest(products, rng)
    return suggest(products, rng, budgeted="price at most" in constraint)


def follow_up(kind: str, products: Sequence[ProductDoc], shown: Sequence[ProductDoc], rng: random.Random) -> str:
    """The reply to "anything cheaper?", "what else?" or "the second one?" after ``shown`` were recommended."""
    if not shown:
        return suggest(products, rng)
    first = shown[0]
    if kind == "cheaper":
        cheaper = [p for p in products if p.in_stock and p.price < first.price and p.sku != first.sku]
        if not cheaper:
            return "I don't have anything cheaper that fits right now."
        best = min(cheaper, key=lambda p: p.price)
        return f"Yes, {ref(best, products)} is cheaper."
    if kind == "second":
        second = next((p for p in products if len(shown) > 1 and p.sku == shown[1].sku), None)
        if second is not None:
            return f"The second one is {ref(second, products)}{_stock_clause(second)}."
    return suggest(products, rng, exclude={first.sku})


def in_currency(products: Sequence[ProductDoc], currency: str | None) -> list[ProductDoc]:
    """The products priced in ``currency`` (same figures), or as they are when it is None."""
    return [dataclasses.replace(p, currency=currency) if currency else p for p in products]


def shown_in(reply: str, products: Sequence[ProductDoc]) -> list[ProductDoc]:
    """The listed products a reply refers to, in the order it refers to them."""
    return references(reply, products)


@dataclass(frozen=True)
class HoldOut:
    """What never reaches training: the ``held`` phrasings and every question about ``category``'s products."""

    category: str | None = None

    @classmethod
    def choose(cls, products: Sequence[ProductDoc], seed: int) -> HoldOut:
        """One whole category, picked by ``seed``, when the catalog has four or more (else none)."""
        categories = sorted({p.category for p in products if p.category})
        return cls(random.Random(seed).choice(categories) if len(categories) >= 4 else None)

    def reason(self, p: ProductDoc, *asks: Ask) -> str:
        if self.category is not None and p.category == self.category:
            return "category"
        return "phrasing" if any(a.held for a in asks) else ""


def catalog_example(search: ProductSearch, products: Sequence[ProductDoc], p: ProductDoc, *, id: str,
                    store_name: str, rng: random.Random, hold: HoldOut, k: int = 5, follow_up_share: float = 0.25,
                    currency: str | None = None, profile: str | None = None) -> Example:
    """One product question about ``p`` (sometimes followed by "anything cheaper?"), prompted as served."""
    ask, question = question_for(p, rng, products)
    found = search.search(question, k=k)
    listed = in_currency([h.product for h in found.hits], currency)
    constraint = found.filters.describe()
    reply = answer(ask.kind, question, listed, constraint, rng)
    history: list[Turn] = []
    asks = [ask]
    shown = shown_in(reply, listed)
    if shown and ask.kind not in ("no_match", "compare") and rng.random() < follow_up_share:
        history = [Turn("user", question), Turn("assistant", rendered(reply, listed))]  # as the shopper read it
        more = rng.choice([f for f in FOLLOW_UPS if f.kind != "second" or len(shown) > 1])
        asks.append(more)
        question = more.text
        found = search.search(question, context=[history[0].text], k=k)
        listed = in_currency([h.product for h in found.hits], currency)
        constraint = found.filters.describe()
        reply = follow_up(more.kind, listed, shown, rng)
    record = PromptRecord(store_name=store_name, products=listed, constraint=constraint, profile=profile)
    return Example(id=id, source="catalog", group=f"product:{p.sku}", messages=record.messages(history=history,
                   text=question), completion=reply, catalog=record.as_meta()["catalog"],
                   kind="+".join(a.id for a in asks), holdout=hold.reason(p, *asks))


def catalog_examples(search: ProductSearch, products: Sequence[ProductDoc], *, n: int, store_name: str,
                     k: int = 5, follow_up_share: float = 0.25, other_currency_share: float = 0.3, seed: int = 0,
                     hold: HoldOut | None = None, progress: bool = True) -> list[Example]:
    """``n`` grounded examples about products drawn from ``products``, retrieved through ``search``.

    In ``other_currency_share`` of them the listed products are priced in a currency the
    catalog does not use (same figures), so the adapter learns to copy the listed currency.
    ``hold`` (default: none) marks the examples that must stay out of training.
    """
    from tqdm import tqdm

    if not products:
        raise ValueError("the catalog is empty: import products (aisle catalog import) or load the demo store")
    rng = random.Random(seed)
    hold = hold or HoldOut()
    out: list[Example] = []
    for i in tqdm(range(n), desc="catalog dialogs", file=sys.stderr, disable=not progress):
        p = rng.choice(products)
        currency = rng.choice([c for c in OTHER_CURRENCIES if c != p.currency]) \
            if rng.random() < other_currency_share else None
        out.append(catalog_example(search, products, p, id=f"catalog:{seed}:{i}", store_name=store_name, rng=rng,
                                   hold=hold, k=k, follow_up_share=follow_up_share, currency=currency))
    return out
