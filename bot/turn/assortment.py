"""What the catalog has of what the shopper names: "do you sell a frying pan?", "have you got a sofa?",
"what's the cheapest coffee you have?", "your most expensive headphones?".

These are facts, so the server answers them from the catalog, never the model:

- the product words are read out of the message ("u guys carry a sofa?" -> "sofa");
- the products of that kind are those whose title (or category) holds every one of those words, singular or
  plural, found among the BM25 hits; where none does ("sneakers" for a store that says "running shoe"), those
  the encoder puts close enough to the words: above the store's own threshold (:func:`store_threshold`, from
  how close it puts things most shops do not sell);
- none: the store does not carry it, and the reply says so without naming a product; some: "yes", or the
  cheapest (dearest) of them in stock within the shopper's budget, with the cards in price order.

:data:`PROBE_MARGIN` is calibrated by ``aisle bench assortment`` on the demo store and the Online Retail catalog
(docs/benchmarks.md, "Not carried").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from bot.comparison import base_title
from retrieval.catalog import ProductDoc
from retrieval.query import Filters, parse_filters
from retrieval.search import ProductSearch

PROBES = ("garden hose", "ceiling fan", "toilet paper", "school uniform", "chess clock", "fire extinguisher",
          "ironing board", "shower curtain", "car seat cover", "roller skates", "pool table", "hearing aid",
          "dog food", "bathroom scale", "ladder", "barbecue grill", "bicycle tyre", "office chair",
          "light switch", "curtain rail", "sewing machine", "fish tank filter", "hair dryer", "electric shaver",
          "baby bottle", "trampoline", "motorcycle jacket", "water heater", "bunk bed", "ski boots")
"""Things most shops do not sell: how close the encoder puts them to a store's products is that store's
background (a store of short titles, like Online Retail, is close to everything). Kept apart from the
calibration words and the conversation suite's (tests/bot/test_assortment.py)."""
PROBE_QUANTILE = 0.75
PROBE_MARGIN = 0.04
"""A product words' best cosine counts as carried above the probes' :data:`PROBE_QUANTILE` plus this margin
(calibrated by ``aisle bench assortment``: docs/benchmarks.md, "Not carried")."""
THRESHOLD_RANGE = (0.45, 0.65)
"""Where a store's threshold may fall, whatever its probes say."""
CARRIED_MIN_SCORE = 0.525
"""The threshold where a store's own cannot be read (no probes scored): the single best over the demo store
and Online Retail."""
DENSE_MARGIN = 0.06
"""Products within this cosine of the best count as the same kind."""
LEXICAL_POOL = 400
"""BM25 hits read for titles that hold the product words."""

ASKS_IF_CARRIED = re.compile(
    r"\b(?:do|does|did)\s+(?:you|u|ya|y'?all|ye)(?:\s+guys)?\s+(?:even\s+|also\s+|still\s+)?"
    r"(?:sell|carry|have|stock|offer|do|got)\b"
    r"|\b(?:have|got)\s+(?:you|u)\s+got\b|\b(?:you|u)(?:\s+guys)?\s+(?:sell|carry|stock)\b"
    r"|\bany\b.{1,40}\bin (?:your|ur|the) (?:shop|store|catalog(?:ue)?)\b"
    r"|\b(?:is there|are there)\b.{1,30}\b(?:in (?:your|ur|the) (?:shop|store)|for sale)\b"
    r"|\bcan i (?:buy|get|find)\b.{1,30}\b(?:here|from you|in your (?:shop|store))\b"
    r"|\b(?:does|do) (?:the|your|ur|this) (?:shop|store|site) (?:sell|have|carry|stock)\b"
    r"|\bwhere (?:can|do) i (?:find|buy|get)\b"
    r"|^\W*(?:(?:got|have|sell|selling)\s+)?any\s+[\w'-]+(?:\s+[\w'-]+){0,2}\W*$",
    re.IGNORECASE)
"""A question whether the store sells something ("do u sell tents?", "any sofas in your shop?", "got any
hammocks?", "where can I find a kettle?")."""
CHEAPEST = re.compile(r"\b(?:cheapest|least expensive|lowest[- ]price[ds]?|lowest[- ]cost|most affordable|"
                      r"cheapo?est)\b", re.IGNORECASE)
DEAREST = re.compile(r"\b(?:most expensive|priciest|dearest|highest[- ]price[ds]?|most premium|top[- ]end)\b",
                     re.IGNORECASE)

_FILLER_WORDS = """
a an the some any anything something stuff things thing one ones kind kinds sort type types of
do does did you u ya yall y'all guys sell sells carry carries have has had stock stocks offer offers got get buy
find is are there here in at on from your ur our my me i im i'm we us it its this that these those
hey hi hello pls plz please thanks thx ok okay so um hm just really even also still currently right now rn
looking look searching search need want wanted like would could can will shop store site catalog catalogue
what whats what's which who how much many price priced prices cost costs for sale available
cheapest least expensive lowest highest most priciest dearest affordable premium top end cheap cheapo cheapoest
under below over above less more than max budget between and or with without to up around about
cheaper pricier better other others else similar alternative alternatives option options suggestion suggestions
idea ideas recommendation recommendations deal deals sales offer bigger smaller where
colour colours color colors size sizes variant variants version versions style styles shade shades
"""
_FILLER = frozenset(_FILLER_WORDS.split())
_SERVICE_WORDS = """
policy policies return returns refund refunds delivery deliveries shipping shipment order orders account password
discount discounts coupon coupons voucher vouchers code codes payment payments card cards invoice receipt tracking
warranty exchange exchanges cancellation subscription membership newsletter hours contact number email address
wrapping installation assembly repair repairs engraving personalisation personalization pickup collection
"""
SERVICE = frozenset(_SERVICE_WORDS.split())
"""Words of a question about the store's service ("do you have a returns policy?"): not a product."""
REFERS_BACK = re.compile(r"\b(?:it|them|that one|this one|those|these|the same)\b", re.IGNORECASE)
"""A question about the products already shown ("do you have it in red?"): a refinement, not the assortment."""
_DESCRIBING_WORDS = """
warm cosy cozy comfy comfortable nice good great cool cute pretty light lightweight heavy small big large little
waterproof water-resistant durable quality new best popular simple basic cheap premium soft hard fast quiet
stylish elegant modern classic vintage portable compact sturdy thick thin long short red blue green black white
grey gray pink purple yellow orange brown navy beige gold silver wooden leather cotton wool organic eco
"""
DESCRIBING = frozenset(_DESCRIBING_WORDS.split())
"""Words that describe rather than name a product ("something warm"): alone, they say nothing about the
assortment."""
_CUT = frozenset({"for", "with", "under", "below", "over", "than", "that", "which", "to", "in", "at", "around"})
_WORD = re.compile(r"[a-z][a-z0-9'-]*")
_PRICE = re.compile(r"[$£€]\s?\d[\d,.]*|\b\d[\d,.]*\s?(?:dollars?|bucks|usd|eur|euros?|gbp|pounds?|k)?\b", re.I)


def stem(word: str) -> str:
    """A word without its plural ending: "boots" -> "boot", "dresses" -> "dress", "glass" -> "glass"."""
    w = word.lower().strip("'-")
    if len(w) > 4 and w.endswith(("shes", "ches", "xes", "sses", "zes")):
        return w[:-2]
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def split_words(text: str) -> tuple[list[str], list[str]]:
    """The message's words that are not filler, before and after the first "for"/"with"/"under"...:
    "anything warm for winter" -> (["warm"], ["winter"])."""
    head: list[str] = []
    tail: list[str] = []
    cut = False
    for w in _WORD.findall(_PRICE.sub(" ", text.lower())):
        if w in _CUT:
            cut = True
        elif w not in _FILLER:
            (tail if cut else head).append(w)
    return head, tail


def product_words(text: str) -> list[str]:
    """The words that name the product in a question about the assortment ("any sofas in ur shop?" ->
    ["sofas"]); a phrase after "for"/"with" counts only when nothing comes before it ("something for my dog")."""
    head, tail = split_words(text)
    return head or tail


def plural(words: Sequence[str]) -> str:
    """The product words as a plural phrase ("frying pan" -> "frying pans")."""
    if not words:
        return ""
    last = words[-1]
    if last.endswith(("sh", "ch", "x", "z", "ss")):
        last += "es"
    elif not last.endswith("s"):
        last += "s"
    return " ".join([*words[:-1], last])


@dataclass(frozen=True)
class Assortment:
    """What the catalog has of ``words``: ``products`` most relevant first (empty: not carried)."""

    words: list[str]
    products: list[ProductDoc]
    how: str  # "title" (titles hold the words), "encoder" (close in meaning); not carried: "closest" (other
    # products of the same kind word), "unsure" (a title holds one of the words) or "none"

    @property
    def carried(self) -> bool:
        return self.how in ("title", "encoder")


def _stems(text: str) -> set[str]:
    return {stem(w) for w in _WORD.findall(text.lower())}


_THRESHOLDS: dict[int, tuple[int, float]] = {}


def probe_scores(search: ProductSearch) -> list[float]:
    """The encoder's best cosine to this store's products for each probe the store's titles do not hold."""
    probes = [probe for probe in PROBES
              if not any(all(stem(w) in _stems(d.title) for w in probe.split())
                         for d in _lexical_hits(search, probe.split(), 20))]
    return [hits[0].score for hits in search.nearest(probes, 1) if hits]


def store_threshold(search: ProductSearch, margin: float = PROBE_MARGIN) -> float:
    """This store's not-carried threshold: its probes' :data:`PROBE_QUANTILE` plus ``margin``, within
    :data:`THRESHOLD_RANGE`; computed once per catalog size (a few milliseconds of encoding)."""
    key, size = id(search), len(search.index.docs)
    cached = _THRESHOLDS.get(key)
    if cached is not None and cached[0] == size and margin == PROBE_MARGIN:
        return cached[1]
    scores = probe_scores(search)
    if not scores:
        return CARRIED_MIN_SCORE
    low, high = THRESHOLD_RANGE
    threshold = min(high, max(low, float(np.quantile(scores, PROBE_QUANTILE)) + margin))
    if margin == PROBE_MARGIN:
        _THRESHOLDS[key] = (size, threshold)
    return threshold


def _lexical_hits(search: ProductSearch, words: Sequence[str], k: int) -> list[ProductDoc]:
    """BM25's products for the words and their stems (BM25 does not stem: "pots" finds no "Stock Pot")."""
    return search.lexical_docs(" ".join([*words, *(stem(w) for w in words)]), k)


def assortment(search: ProductSearch, words: Sequence[str], *, also: Sequence[str] = (),
               min_score: float | None = None) -> Assortment:
    """The products of the kind ``words`` name, most relevant first; empty when the store does not carry it.

    Products whose title holds every word come first, the kind's own word last in the title ("hiking boot")
    before a title that only mentions it, then those whose category supplies a word ("hiking" for a trekking
    boot in "Hiking & Outdoor Boots"). Without any, the encoder decides, on ``words`` and on ``words`` with
    ``also`` (the words after "for": "warm" alone may not be a product, "warm winter" is).
    """
    words = list(words)
    if not words:
        return Assortment(words, [], "none")
    stems = [stem(w) for w in words]
    in_title: list[ProductDoc] = []
    in_category: list[ProductDoc] = []
    for doc in _lexical_hits(search, words, LEXICAL_POOL):
        title = _stems(doc.title)
        if all(s in title for s in stems):
            in_title.append(doc)
        elif all(s in title | _stems(doc.category) for s in stems):
            in_category.append(doc)
    named = [p for p in in_title if _last_stem(p) == stems[-1]]
    if named or in_title or in_category:  # the most exact kind only: "hiking boots" are not trekking boots
        return Assortment(words, named or in_title or in_category, "title")
    phrases = sorted({" ".join(words), " ".join([*words, *also])})
    best = max(search.nearest(phrases, 20), key=lambda hits: hits[0].score if hits else -1.0)
    if min_score is None:
        min_score = store_threshold(search)
    if not best or best[0].score < min_score:
        return _not_carried(search, words, also)
    top = best[0].score
    return Assortment(words, [h.product for h in best if h.score >= max(min_score, top - DENSE_MARGIN)], "encoder")


def _not_carried(search: ProductSearch, words: Sequence[str], also: Sequence[str]) -> Assortment:
    """Nothing of the kind: "closest" where titles end in the same kind word ("motorbike helmet" -> bike
    helmets), "unsure" where a title holds the kind word or a word after "for" ("anything warm for winter":
    winter boots) or where the words only describe ("something warm"), else "none" ("car tyres" for a store
    with "Racing Car" titles)."""
    hits = _lexical_hits(search, [*words, *also], 50)
    closest = [d for d in hits if _last_stem(d) == stem(words[-1])]
    if closest:
        return Assortment(list(words), closest, "closest")
    kind_or_use = [stem(words[-1]), *(stem(w) for w in also)]  # "car tyres" is not carried for "Racing Car"
    if any(s in _stems(d.title) for d in hits for s in kind_or_use) or set(words) <= DESCRIBING:
        return Assortment(list(words), [], "unsure")
    return Assortment(list(words), [], "none")


def _last_stem(p: ProductDoc) -> str:
    words = _WORD.findall(base_title(p).lower())
    return stem(words[-1]) if words else ""


def within(products: Sequence[ProductDoc], filters: Filters) -> list[ProductDoc]:
    """The products that meet the shopper's limits (price bounds, in stock)."""
    return [p for p in products
            if (filters.min_price is None or p.price >= filters.min_price)
            and (filters.max_price is None or p.price <= filters.max_price)
            and (p.in_stock or not filters.in_stock)]


def asks_about_assortment(text: str) -> bool:
    """Whether the message asks if the store sells something, or for the cheapest or dearest of something
    ("do u sell tents?", "cheapest kitchen appliance please"), and not about the store's service."""
    if extreme(text) is None and ASKS_IF_CARRIED.search(text) is None:
        return False
    return not SERVICE.intersection(product_words(text))


def extreme(text: str) -> str | None:
    """"cheapest" or "dearest" when the message asks for the cheapest or the most expensive of something."""
    if DEAREST.search(text):
        return "dearest"
    return "cheapest" if CHEAPEST.search(text) else None


@dataclass(frozen=True)
class CatalogAnswer:
    """The server's reply to a question about the assortment, with the cards it refers to (``[1]`` first)."""

    act: str  # "not_carried", "carried", "cheapest" or "dearest"
    text: str
    cards: list[ProductDoc]
    words: list[str]


def answer_assortment(search: ProductSearch, text: str, need: str | None = None, k: int = 5
                      ) -> CatalogAnswer | None:
    """The catalog's answer to "do you sell X?" or "the cheapest X?", or None when the message asks neither.

    Args:
        search: the product search (its index, BM25 and encoder).
        text: the shopper's message.
        need: what the shopper asked for before ("hiking boots under $120"): "the cheapest one?" is the
            cheapest of that, within its budget.
        k: cards at most.
    """
    if not asks_about_assortment(text) or REFERS_BACK.search(text):
        return None
    which = extreme(text)
    head, tail = split_words(text)
    filters = parse_filters(text)
    if not head and not tail and need:
        head, tail = split_words(need)
        if filters.unconstrained:
            filters = parse_filters(need)
    words = head or tail
    if not words or SERVICE.intersection(words) or set(words) <= DESCRIBING:
        return None  # nothing named, the store's service, or only a description ("any in red?")
    found = assortment(search, words, also=tail if head else ())
    what = plural(found.words)
    if found.how == "unsure":
        return None  # no product of those words, but titles hold some of them: the search and the model
    if found.how == "closest":
        cards = found.products[:k]
        return CatalogAnswer("not_carried", f"Sorry, we don't carry {what}. The closest we have: "
                                            f"{_refs(len(cards))}.", cards, found.words)
    if not found.carried:
        return CatalogAnswer("not_carried", f"Sorry, we don't carry {what}. Is there something else I can "
                                            "help you find?", [], found.words)
    if which is None:
        if not filters.unconstrained or found.how != "title":
            return None  # a search with the shopper's limits, or words no title holds: the model's words
        cards = found.products[:k]
        said = f"we carry {what}" if head else "we do"  # "something for my dog": not "we carry dogs"
        return CatalogAnswer("carried", f"Yes, {said}: {_refs(len(cards))}.", cards, found.words)
    stocked = within(found.products, replace(filters, in_stock=True, cheapest=False))
    dearest = which == "dearest"
    label = "most expensive" if dearest else "cheapest"
    if not stocked:
        limits = replace(filters, in_stock=False, cheapest=False).describe()
        available = within(found.products, Filters(in_stock=True))
        if not available:
            return CatalogAnswer(which, f"We carry {what}, but none is in stock right now.",
                                 found.products[:k], found.words)
        cards = sorted(available, key=lambda p: p.price, reverse=dearest)[:k]
        return CatalogAnswer(which, f"We have no {what} in stock with {limits}. The {label} in stock is [1].",
                             cards, found.words)
    cards = sorted(stocked, key=lambda p: p.price, reverse=dearest)[:k]
    return CatalogAnswer(which, f"The {label} {what} we have in stock: [1].", cards, found.words)


def _refs(n: int) -> str:
    refs = [f"[{i + 1}]" for i in range(n)]
    return refs[0] if n == 1 else ", ".join(refs[:-1]) + f" and {refs[-1]}"
