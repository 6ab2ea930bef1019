"""Structured constraints read from a shopper's free text ("under $100", "in stock")."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUM = r"\$?\s*(\d+(?:[.,]\d{1,2})?)\s*(?:\$|usd|dollars?|bucks)?"
_MAX = re.compile(rf"\b(?:under|below|less than|cheaper than|max(?:imum)?|up to|at most|<=?)\s*{_NUM}", re.I)
_MIN = re.compile(rf"\b(?:over|above|more than|at least|from|>=?)\s*{_NUM}", re.I)
_BETWEEN = re.compile(rf"\bbetween\s*{_NUM}\s*(?:and|-|to)\s*{_NUM}", re.I)
_RANGE = re.compile(r"\$\s*(\d+(?:\.\d{1,2})?)\s*(?:-|to)\s*\$?\s*(\d+(?:\.\d{1,2})?)", re.I)
_IN_STOCK = re.compile(r"\b(?:in stock|available now|ships? (?:now|today))\b", re.I)


def _num(text: str) -> float:
    return float(text.replace(",", "."))


@dataclass(frozen=True, slots=True)
class Filters:
    """Hard constraints a search result must meet."""

    min_price: float | None = None
    max_price: float | None = None
    categories: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    in_stock: bool = False

    def __post_init__(self) -> None:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError(f"min_price {self.min_price} is above max_price {self.max_price}")

    @property
    def empty(self) -> bool:
        return self == Filters()

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
        return ", ".join(parts)


def parse_filters(text: str) -> Filters:
    """Read price bounds and stock wishes from free text; unknown text gives no filter."""
    lo: float | None = None
    hi: float | None = None
    if m := (_BETWEEN.search(text) or _RANGE.search(text)):
        lo, hi = sorted((_num(m.group(1)), _num(m.group(2))))
    else:
        if m := _MAX.search(text):
            hi = _num(m.group(1))
        if m := _MIN.search(text):
            lo = _num(m.group(1))
        if lo is not None and hi is not None and lo > hi:
            lo = None
    return Filters(min_price=lo, max_price=hi, in_stock=bool(_IN_STOCK.search(text)))
