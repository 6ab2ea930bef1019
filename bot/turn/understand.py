"""What a shopper's message does to the shown products: which of them it refers to, and what it asks of them.

A message that refers to the products on the cards ("is the first one in stock?", "tell me more about the
second one", "how much is it?", "the red one", "which is cheaper?", "I'll take it") is resolved against the
conversation's state (:mod:`bot.turn.state`) by code: the ordinal, the pronoun or the name fragment picks the
card, and the question's kind picks the fact. A message that refers to none of them is a search, and the
turn goes on as before. The references are resolved by rules because a rule is the right tool for "the 2nd
one"; whether a message is about the cards at all is decided only when one of them is named.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.comparison import claimed_price, named_products, plain_words
from bot.turn.assortment import extreme, product_words
from retrieval.catalog import ProductDoc

ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
            "fifth": 5, "5th": 5, "sixth": 6, "6th": 6}
_ORDINAL_WORD = r"first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th|sixth|6th|last"
_ITEM = r"one|ones|item|product|pick|option|suggestion|result|card|pair"
ORDINAL = re.compile(
    rf"\bthe\s+(?P<word>{_ORDINAL_WORD})\b(?!\s+(?:time|times|order|orders|week|month|year|day|night|thing|step))"
    rf"|\b(?P<bare>{_ORDINAL_WORD})\s+(?:{_ITEM})\b"
    r"|(?:#|\bno\.\s*|\bnumber\s+|\boption\s+|\bitem\s+)(?P<number>[1-9])\b", re.IGNORECASE)
PRONOUN = re.compile(r"\b(?:it|that one|this one|that|this|the one|them|these|those|both|either)\b", re.IGNORECASE)
BOTH = re.compile(r"\b(?:them|these|those|both|either|the two|which one|which is|which of)\b", re.IGNORECASE)
FRAGMENT = re.compile(r"\bthe\s+(?P<words>[\w-]+(?:\s+[\w-]+)?)\s+(?:one|ones|pair)\b|\bthe\s+(?P<name>[A-Z][\w-]+)",
                      re.UNICODE)
SEARCH_WORDS = re.compile(
    r"\b(?:looking for|do you (?:have|sell|carry|stock)|have you got|got any|show me|recommend|find me|need an?|"
    r"want an?|search|something|anything|any other|others|another|different|cheaper|cheapest|under|below|less than|"
    r"more than|over|between|budget)\b", re.IGNORECASE)

REFINES = re.compile(r"\b(?:ones|stuff|items|products|things|options)\b.{0,20}\b(?:in[- ]?stock|available)\b"
                     r"|\bin[- ]?stock (?:ones|only|items|stuff|products|options)\b|\bonly (?:show|the ones|in[- ]?stock)\b"
                     r"|\bwhich of (?:these|them|those) (?:can|could) i\b", re.IGNORECASE)
"""A wish to narrow the cards ("in stock ones only pls", "which of these can i buy now"): a search on the need."""
STOCK = re.compile(r"\b(?:in stock|instock|available|availability|sold out|out of stock|any left|still have|"
                   r"have (?:it|them|any)|how many (?:left|do you have)|can i (?:get|order) it)\b", re.IGNORECASE)
PRICE = re.compile(r"\b(?:how much|price|prices|priced|cost|costs|pricey|expensive)\b", re.IGNORECASE)
DETAILS = re.compile(r"\b(?:tell me (?:more|about)|more (?:about|info|details)|details?|describe|specs?|what about|"
                     r"how about|what is it|what's it|made of|material|features?|info|"
                     r"(?:is|are|does|do|can|will) (?:it|that|this|they|that one|this one)\b)", re.IGNORECASE)
DECIDE = re.compile(r"\b(?:i'?ll take|i will take|i'?ll get|i'?ll buy|i'?ll go (?:with|for)|i want (?:it|that|this|"
                    r"the)|i'?d like (?:it|that|this|the)|add (?:it|that|this|them|the [\w\s-]+) to (?:my )?"
                    r"(?:cart|basket|bag)|buy (?:it|that|this|the)|order (?:it|that|this)|sold)\b", re.IGNORECASE)
COMPARE = re.compile(r"\b(?:which (?:one |of (?:them|these two|those two|these|those|the two) )?is (?:the )?(?:cheaper|more expensive|pricier|"
                     r"cheapest|less expensive)|the cheaper one|compare (?:them|these|those|the two)|"
                     r"difference between (?:them|these|those|the two))\b", re.IGNORECASE)
TWO = re.compile(r"\b(?:two|both|either)\b", re.IGNORECASE)
NOT_WORDS = {"one", "ones", "pair", "same", "other", "next", "best", "cheapest", "cheaper", "last", "first",
             "second", "third", "new", "right", "only", "whole", "store", "shop", "site", "price", "order",
             "policy", "delivery", "way", "time", "thing", "things", "stock"}


@dataclass(frozen=True)
class Act:
    """A message about shown products: ``kind`` is stock, price, details, decide or compare; ``refs`` the
    products meant (indices into the shown list); ``choices`` the candidates when the reference is ambiguous."""

    kind: str
    refs: list[int] = field(default_factory=list)
    choices: list[int] = field(default_factory=list)
    claim: float | None = None  # a price the shopper claims ("is it really only $1?")
    dearest: bool = False  # "which is the most expensive?" rather than the cheapest


def _ordinals(text: str, n_shown: int) -> list[int]:
    out = []
    for m in ORDINAL.finditer(text):
        if m.group("number"):
            i = int(m.group("number")) - 1
        else:
            word = (m.group("word") or m.group("bare")).lower()
            i = n_shown - 1 if word == "last" else ORDINALS[word] - 1
        if 0 <= i < n_shown and i not in out:
            out.append(i)
    return out


def _title_words(p: ProductDoc) -> set[str]:
    return {w.lower() for w in re.findall(r"[\w-]+", p.title)}


def _fragments(text: str, shown: Sequence[ProductDoc]) -> list[list[int]]:
    """For each "the red one" / "the Timberline" in the text, the shown products whose titles have its words."""
    out = []
    for m in FRAGMENT.finditer(text):
        words = [w.lower() for w in re.findall(r"[\w-]+", m.group("words") or m.group("name"))
                 if w.lower() not in NOT_WORDS]
        if not words:
            continue
        hits = [i for i, p in enumerate(shown) if all(w in _title_words(p) for w in words)]
        if hits and len(hits) < len(shown) + (len(shown) == 1):
            out.append(hits)
    return out


def kind_of(text: str) -> str:
    if COMPARE.search(text):
        return "compare"
    if DECIDE.search(text):
        return "decide"
    if STOCK.search(text):
        return "stock"
    if PRICE.search(text):
        return "price"
    return "details"


def understand(text: str, shown: Sequence[ProductDoc], focus: Sequence[int], *, loose: bool = True) -> Act | None:
    """The act on the shown products that ``text`` makes, or None when it refers to none of them (a search).

    Args:
        text: the shopper's message.
        shown: the products on the cards, in order.
        focus: indices into ``shown`` talked about lately, the latest first.
        loose: whether a pronoun or a bare question ("is it in stock?", "how much?") may refer to them; false
            when the message is routed elsewhere (an order question's "where is it?").
    """
    if not shown or (extreme(text) and product_words(text)):
        return None  # "most expensive smart thermostats?": the catalog's, not a question about the cards
    kind = kind_of(text)
    claim = claimed_price(text)
    if claim is not None and kind in ("price", "details", "stock"):
        kind = "claim"
    refs = _ordinals(text, len(shown))
    if not refs:  # a card's title named in full, variant included ("is the Dermaé Night Cream (black) $2?")
        said = f" {plain_words(text)} "
        exact = [i for i, p in enumerate(shown) if f" {plain_words(p.title)} " in said]
        refs = exact[:1] if len(exact) == 1 else []
        if not refs and (claim is not None or named_products(text, shown)):
            return None  # a product named that is not on the cards: the catalog's search answers it
    fragments = [] if refs else _fragments(text, shown)
    if fragments:
        hits = fragments[0]
        if len(hits) > 1 and kind != "compare":
            return Act(kind, choices=hits)
        refs = hits
    if not refs:
        if not loose or REFINES.search(text):
            return None
        if SEARCH_WORDS.search(text) and kind != "compare":
            return None  # "do you have it in red?", "anything cheaper?": a search on the need
        if kind == "compare" and extreme(text) and not TWO.search(text):
            refs = list(range(len(shown)))  # "which is the cheapest?": of all the cards
        elif kind == "compare":
            refs = list(focus[:2]) if len(focus) >= 2 else list(range(min(2, len(shown))))
        elif (PRONOUN.search(text) and (kind != "details" or DETAILS.search(text))) \
                or (kind in ("stock", "price", "decide", "claim") and len(text.split()) <= 8):
            if BOTH.search(text) and len(focus) >= 2 and kind in ("stock", "price"):
                refs = list(focus[:2])
            elif focus:
                refs = [focus[0]]
            elif len(shown) == 1:
                refs = [0]
            else:
                return Act(kind, choices=list(range(len(shown))))
        else:
            return None
    elif SEARCH_WORDS.search(text) and kind == "details" and not DETAILS.search(text):
        return None  # "show me something like the second one": a new search
    dearest = kind == "compare" and re.search(r"\b(?:most expensive|priciest|dearest|more expensive|pricier)\b",
                                               text, re.IGNORECASE) is not None
    return Act(kind, refs=refs, claim=claim if kind == "claim" else None, dearest=dearest)
