"""Structured constraints read from a shopper's free text ("under $100", "in stock").

The text is lower-cased, dashes and curly quotes are normalised and the number words
ten..ninety-nine and "a/one..nine hundred" are spelt as digits.  Rules are then tried in
order (between, span, budget, prefix, suffix); each reading masks its span so a number
is read once.  A bare number is a price only next to a currency or a bound keyword, and
never when a unit follows ("2 pairs", "under 3 kg") or a model word precedes it
("size 10+", "iphone 15 plus").

A negation just before a bound flips it ("no more than 40", "don't want to spend over
60" are maxima; "not under 50" is a minimum), as does a verdict after it ("over 100 is
too much").  A negation it cannot scope ("not sure maybe over 100") drops the bound:
an unread phrase gives no filter, never the opposite one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import NamedTuple

AROUND_MARGIN = 0.2
""""around 30" means 30 * (1 - AROUND_MARGIN) .. 30 * (1 + AROUND_MARGIN), i.e. 24..36."""

_FIRM, _SOFT = 2, 1  # how certain a bound is; on lo > hi the less certain one goes (tie: lo)

_PRE = r"(?:[$£€]|\b(?:usd|gbp|eur)\b)\s*"
_POST = r"\s*(?:[$£€]|(?:usd|dollars?|bucks|pounds?|quid|gbp|euros?|eur)\b)"
_AMOUNT = (r"(?<![\w.,])(?:\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:[.,]\d{1,2})?)"  # 1,200 19,99
           r"(?![\d.,]?\d)(?:k\b)?")
_CURRENCY = re.compile(r"[$£€]|\b(?:usd|gbp|eur|euros?|dollars?|bucks|pounds?|quid)\b")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def _price(name: str) -> str:
    return rf"(?:{_PRE})?(?P<{name}>{_AMOUNT})(?:{_POST})?"


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_BUDGET_KW = (r"\bbudget(?:'s|\s*[:=-]|\s+(?:is|was|of|only|just|limit|cap|max(?:imum)?"
              r"|would be|will be)\b)*|\b(?:spend|pay)(?:\s+(?:only|just))?")
_BETWEEN = re.compile(rf"\bbetween\s+{_price('lo')}\s*(?:and|-|to)\s*{_price('hi')}")
_SPAN = re.compile(  # "$20-$40", "20 to 40 dollars", "from 20 to 40", "budget 50-80"
    rf"(?:(?P<kw>\bfrom|{_BUDGET_KW})\s*)?{_price('lo')}\s*(?:-|to)\s*{_price('hi')}")
_BUDGET = re.compile(rf"(?P<budget>{_BUDGET_KW})\s*{_price('v')}")
_PREFIX = re.compile(
    r"(?:(?P<below>\b(?:under|below|less than|lower than|cheaper than|up ?to|at most|at the most"
    r"|(?<!pro )max(?:imum)?(?:\s+of)?|within)|<=?)"
    r"|(?P<above>\b(?:over|above|more than|greater than|higher than|pricier than"
    r"|more expensive than|at least|min(?:imum)?(?:\s+of)?|start(?:s|ing)? (?:at|from)"
    r"|exceed(?:s|ing)?)|>=?)"
    r"|(?P<near>\b(?:around|about|roughly|approx(?:imately|\.)?|circa|close to"
    r"|in the region of)|~))"
    rf"\s*{_price('v')}")
_SUFFIX = re.compile(
    rf"{_price('v')}\s*(?:(?P<below>(?:or (?:less|lower|under|below|cheaper)|and (?:under|below)"
    r"|max(?:imum)?|at (?:the )?most)\b)"
    r"|(?P<above>(?:or (?:more|higher|above|over)|and (?:up|above|over|higher)|minimum)\b|\+(?!\d))"
    r"|(?P<near>-?ish\b|or so\b|give or take\b))")
_SUFFIX_WEAK = re.compile(  # "2 tops", "iphone 15 plus", "50 min": prices only with a currency
    rf"{_price('v')}\s*(?:(?P<below>tops)|(?P<above>min|plus)|(?P<budget>budget|limit))\b")
_RULES: tuple[tuple[re.Pattern[str], bool], ...] = (  # (pattern, needs a currency or keyword)
    (_BETWEEN, False), (_SPAN, True), (_BUDGET, False),
    (_PREFIX, False), (_SUFFIX, False), (_SUFFIX_WEAK, True),
)

_UNIT = re.compile(
    r"\s*(?:%|(?:days?|weeks?|months?|years?|yrs?|hours?|hrs?|minutes?|mins?|pairs?|pieces?|pcs"
    r"|packs?|items?|units?|people|persons?|kids?|stars?|reviews?|inch(?:es)?|cm|mm|m|km|miles?"
    r"|kg|g|grams?|lbs?|oz|ml|l|litres?|liters?|gb|tb|mb|mah|w|watts?|times?|seats?|colou?rs?"
    r"|sizes?|options?|results?|x)\b)")
_NOT_PRICE_BEFORE = re.compile(
    r"(?:\b(?:size|sizes|age|ages|aged|order|model|iphone|galaxy|pixel|gen|version|number"
    r"|no\.)|#)\s*$")

_CLAUSE = re.compile(r"[.,;:!?()\n]|\b(?:but|though|although|however|and|or|yet|so)\b")
_WORD = re.compile(r"[\w']+")
_NEGATORS = _words("not no nothing never none cannot dont doesnt didnt wont cant isnt")
_FILLER = _words(  # words that may sit between a negation and its bound: "don't want to pay"
    "i we you really just even want wanna need to spend pay go going be it anything something"
    " stuff that cost costs costing much a any the penny cent one ones willing gonna can could"
    " would will should able afford show me see give looking like items things")
_COPULAS = _words("is are 's s would will seems feels isn't aren't isnt arent")
_WINDOW = 6  # words looked at before a bound for a negation

_DIGIT_WORDS = {w: i for i, w in
                enumerate(_words("one two three four five six seven eight nine"), 1)}
_TEN_WORDS = {w: 10 * i for i, w in
              enumerate(_words("ten twenty thirty forty fifty sixty seventy eighty ninety"), 1)}
_NUMBER_WORD = re.compile(
    rf"\b(?:(?:(?P<times>a|{'|'.join(_DIGIT_WORDS)})\s+)?hundred"
    rf"|(?P<tens>{'|'.join(_TEN_WORDS)})(?:[\s-](?P<ones>{'|'.join(_DIGIT_WORDS)}))?)\b")
_CHARS = str.maketrans({"’": "'", "–": "-", "—": "-", "≤": "<=", "≥": ">="})

_CHEAPEST = re.compile(r"\b(?:cheapest|least expensive|lowest[- ](?:price[ds]?|cost)"
                       r"|most affordable|as cheap as possible"
                       r"|(?:price )?low(?:est)? to high(?:est)?)\b")
_IN_STOCK = re.compile(r"\b(?:in[- ]?stock|available (?:right )?now|ships? (?:now|today)|(?:can|could) i (?:actually )?"
                       r"(?:buy|get|order)(?: \w+){0,3} (?:right )?now)\b", re.I)


class _Bound(NamedTuple):
    side: str  # "min" or "max"
    value: float
    certainty: int


@dataclass(frozen=True, slots=True)
class Filters:
    """Hard constraints a search result must meet, plus an ordering wish (``cheapest``)."""

    min_price: float | None = None
    max_price: float | None = None
    categories: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    in_stock: bool = False
    cheapest: bool = False

    def __post_init__(self) -> None:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError(f"min_price {self.min_price} is above max_price {self.max_price}")

    @property
    def empty(self) -> bool:
        return self == Filters()

    @property
    def unconstrained(self) -> bool:
        """No hard constraint (an ordering wish alone leaves every product eligible)."""
        return replace(self, cheapest=False) == Filters()

    def describe(self) -> str:
        """A short phrase for the prompt, e.g. 'price at most 100, in stock'."""
        parts = []
        if self.min_price is not None:
            parts.append(f"price at least {self.min_price:g}")
        if self.max_price is not None:
            parts.append(f"price at most {self.max_price:g}")
        if self.categories:
            parts.append("category " + " or ".join(self.categories))
        if self.brands:
            parts.append("brand " + " or ".join(self.brands))
        if self.in_stock:
            parts.append("in stock")
        if self.cheapest:
            parts.append("cheapest first")
        return ", ".join(parts)


def _normalize(text: str) -> str:
    def spell(m: re.Match[str]) -> str:
        if m["tens"]:
            return str(_TEN_WORDS[m["tens"]] + _DIGIT_WORDS.get(m["ones"] or "", 0))
        return str(100 * _DIGIT_WORDS.get(m["times"] or "", 1))

    return _NUMBER_WORD.sub(spell, text.lower().translate(_CHARS))


def _value(raw: str) -> float:
    scale = 1000 if raw.endswith("k") else 1
    raw = raw.removesuffix("k")
    raw = raw.replace(",", "") if _THOUSANDS.fullmatch(raw) else raw.replace(",", ".")
    return round(float(raw) * scale, 2)


def _is_negator(word: str) -> bool:
    return word in _NEGATORS or word.endswith("n't")


def _polarity(before: str, after: str) -> int:
    """1: as written; -1: negated ("not over 40", "over 40 is too much"); 0: unclear."""
    words = _WORD.findall(_CLAUSE.split(before)[-1])[-_WINDOW:]
    sign = 1
    negations = [i for i, w in enumerate(words) if _is_negator(w)]
    if negations:
        if not all(w in _FILLER for w in words[negations[-1] + 1:]):
            return 0
        sign = -1
    tail = _WORD.findall(_CLAUSE.split(after, maxsplit=1)[0])[:5]
    if tail and tail[0] in _COPULAS:
        if "too" in tail or "out" in tail:
            return -sign
        if any(_is_negator(w) for w in tail):
            return 0
    return sign


def _is_price(s: str, m: re.Match[str], needs_currency: bool) -> bool:
    """Whether a match is a price, not "size 10+", "2 tops", "in 3 to 5 days"."""
    has_currency = bool(_CURRENCY.search(m.group(0)))
    if needs_currency and not has_currency and not m.groupdict().get("kw"):
        return False
    if _NOT_PRICE_BEFORE.search(s[:m.start()]):
        return False
    ends = [m.end(g) for g in ("v", "lo", "hi") if g in m.re.groupindex and m[g]] + [m.end()]
    return has_currency or not any(_UNIT.match(s, end) for end in ends)


def _bounds(m: re.Match[str], sign: int) -> list[_Bound]:
    """The bounds one match gives; directional ones flip when negated, others need sign 1."""
    found = m.groupdict()
    if found.get("below") or found.get("above"):
        side = "max" if found.get("below") else "min"
        if sign == -1:
            side = "min" if side == "max" else "max"
        return [_Bound(side, _value(m["v"]), _FIRM)] if sign else []
    if sign != 1:
        return []
    if found.get("lo"):
        lo, hi = sorted((_value(m["lo"]), _value(m["hi"])))
        return [_Bound("min", lo, _FIRM), _Bound("max", hi, _FIRM)]
    v = _value(m["v"])
    if found.get("budget"):
        return [_Bound("max", v, _FIRM)]
    return [_Bound("min", round(v * (1 - AROUND_MARGIN), 2), _SOFT),
            _Bound("max", round(v * (1 + AROUND_MARGIN), 2), _SOFT)]


def _settle(bounds: list[_Bound]) -> tuple[float | None, float | None]:
    """The most certain, then tightest, bound per side; on lo > hi the less certain goes."""
    lows = [b for b in bounds if b.side == "min"]
    highs = [b for b in bounds if b.side == "max"]
    lo = max(lows, key=lambda b: (b.certainty, b.value)) if lows else None
    hi = max(highs, key=lambda b: (b.certainty, -b.value)) if highs else None
    if lo and hi and lo.value > hi.value:
        if lo.certainty > hi.certainty:
            hi = None
        else:
            lo = None
    return (lo.value if lo else None), (hi.value if hi else None)


def parse_filters(text: str) -> Filters:
    """Read price bounds and stock and ordering wishes from free text; unread text gives none."""
    s = _normalize(text)
    masked = s
    bounds: list[_Bound] = []
    for pattern, needs_currency in _RULES:
        for m in pattern.finditer(masked):
            if _is_price(s, m, needs_currency):
                bounds += _bounds(m, _polarity(s[:m.start()], s[m.end():]))
                masked = masked[:m.start()] + " " * (m.end() - m.start()) + masked[m.end():]
    lo, hi = _settle(bounds)
    cheap = _CHEAPEST.search(s)
    return Filters(min_price=lo, max_price=hi, in_stock=bool(_IN_STOCK.search(text)),
                   cheapest=bool(cheap and _polarity(s[:cheap.start()], s[cheap.end():]) == 1))
