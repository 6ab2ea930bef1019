"""Output checks on the model's text, applied to the stream before any of it reaches the shopper.

- Markup: HTML tags, markdown images and ``javascript:``/``data:`` URLs are removed.
- SKUs: a SKU-shaped token that is not one of the turn's retrieved products is removed.
- Prices: a price next to a retrieved product's title or SKU is corrected to the catalog
  price; any other price must appear in the turn's facts, the shopper's message or the
  retrieved prices, or it is removed.
- Stock: "in stock", "sold out" or "only 2 left" after a retrieved product's name in the
  same sentence is corrected to what the catalog says about that product.

The guard holds back only the unfinished tail of the stream (a partial word, an
open tag), so text flows with a delay of one word at most: a trailing word that
no check needs to see whole (plain letters with a lower-case one, not the start
of a stock phrase or a script URL) goes out at once, so the first word of a
reply is not held for the next chunk. Every change is recorded in
:attr:`StreamGuard.corrections`, which goes into the reply's metadata for training.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.prompts import stock_phrase
from retrieval.catalog import ProductDoc

SKU = re.compile(r"\b[A-Z]{2,5}-\d{3,6}\b")
PRICE = re.compile(r"(?:(?:USD|EUR|GBP)\s?|[$€£]\s?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?(?!\d)")
CURRENCY_OF = {"$": "USD", "USD": "USD", "€": "EUR", "EUR": "EUR", "£": "GBP", "GBP": "GBP"}
MARKUP = re.compile(
    r"<[^<>]{0,400}>"                                   # HTML tags, complete
    r"|!\[[^\]]{0,200}\]\([^)]{0,400}\)"                # markdown images
    r"|\b(?:javascript|vbscript|data)\s*:[^\s)]*",      # script-bearing URLs
    re.IGNORECASE)
OPENER = re.compile(r"<(?=[A-Za-z/!?]|$)|!\[")  # what may start markup that has not closed yet
CURRENCY_TAIL = re.compile(r"(?:USD|EUR|GBP|[$€£])\s?$")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
OUT_OF_STOCK = ("out of stock", "out-of-stock", "sold out", "not in stock", "unavailable", "not available")
IN_STOCK = ("in stock", "in-stock", "available now", "ready to ship")
STOCK = re.compile(rf"\b(?:(?P<out>{'|'.join(OUT_OF_STOCK)})|(?P<in>{'|'.join(IN_STOCK)})|(?P<few>only (\d+) left))\b",
                   re.IGNORECASE)
STOCK_PHRASES = [tuple(p.split()) for p in (*OUT_OF_STOCK, *IN_STOCK, "only # left")]  # "#": a number
PLAIN_WORD = re.compile(r"[A-Za-z]*[a-z][A-Za-z]*")  # letters, at least one lower-case: never part of a SKU
WATCHED = ("javascript", "vbscript", "data", *sorted({w for p in STOCK_PHRASES for w in p if w != "#"}))


@dataclass
class StreamGuard:
    """Checks one reply's stream against the turn's products and facts."""

    products: Sequence[ProductDoc]
    allowed_text: str = ""  # facts and the shopper's message: prices quoted there are legitimate
    corrections: list[dict[str, str]] = field(default_factory=list)
    _pending: str = ""
    _emitted: str = ""

    def __post_init__(self) -> None:
        self._skus = {p.sku for p in self.products}
        self._priced = {(round(p.price, 2), p.currency) for p in self.products}
        self._quoted = {round(float(n), 2) for n in NUMBER.findall(self.allowed_text.replace(",", ""))}

    def feed(self, delta: str) -> str:
        """Take a delta from the model; return the text that is safe to show now."""
        self._pending += delta
        cut = self._safe_cut(self._pending)
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        return self._release(ready)

    def finish(self) -> str:
        """The rest of the text once the stream has ended; an opener that never closed is dropped."""
        rest, self._pending = self._pending, ""
        for m in reversed(list(self._unclosed(rest))):
            self.corrections.append({"kind": "markup", "original": m.group(0), "replacement": ""})
            rest = rest[:m.start()] + rest[m.end():]
        return self._release(rest)

    @property
    def text(self) -> str:
        return self._emitted

    @staticmethod
    def _unclosed(text: str) -> list[re.Match[str]]:
        spans = [m.span() for m in MARKUP.finditer(text)]
        return [m for m in OPENER.finditer(text) if not any(s <= m.start() < e for s, e in spans)]

    def _safe_cut(self, text: str) -> int:
        """Where the releasable prefix ends: before unclosed markup and before the last word."""
        space = max(text.rfind(" "), text.rfind("\n"))
        cut = space + 1 if space >= 0 else 0
        if self._plain(text[cut:]):
            cut = len(text)
        opened = [m.start() for m in self._unclosed(text) if len(text) - m.start() < 600]
        if opened:
            cut = min(cut, opened[0])
        for m in MARKUP.finditer(text):  # never split a complete tag
            if m.start() < cut < m.end():
                cut = m.start()
        if (tail := CURRENCY_TAIL.search(text[:cut].rstrip())) is not None:  # "$ 12" may follow
            cut = tail.start()
        return min(cut, self._phrase_tail(text[:cut]))

    @staticmethod
    def _plain(word: str) -> bool:
        """Whether a partial word can go out before it ends: no SKU, URL or stock phrase can grow from it."""
        return PLAIN_WORD.fullmatch(word) is not None and not any(w.startswith(word.lower()) for w in WATCHED)

    @staticmethod
    def _phrase_tail(text: str) -> int:
        """Where an unfinished stock phrase ("out of ...") starts at the end of ``text``; else its length."""
        words = list(re.finditer(r"\S+", text))[-3:]
        for k in range(len(words), 0, -1):
            tail = tuple("#" if w.group(0).isdigit() else w.group(0).lower().strip(",;:") for w in words[-k:])
            if tail in STOCK_PHRASES:
                return len(text)
            if any(len(p) > k and p[:k] == tail for p in STOCK_PHRASES):
                return words[-k].start()
        return len(text)

    def _release(self, text: str) -> str:
        if not text:
            return ""
        text = MARKUP.sub(self._markup, text)
        text = SKU.sub(self._sku, text)
        text = self._rewrite(text, PRICE, self._price)
        safe = self._rewrite(text, STOCK, self._stock)
        self._emitted += safe
        return safe

    def _rewrite(self, text: str, pattern: re.Pattern[str],
                 fix: Callable[[re.Match[str], str], str]) -> str:
        """Replace each match by ``fix(match, everything shown before it)``."""
        out, last = [], 0
        for m in pattern.finditer(text):
            out.append(text[last:m.start()])
            out.append(fix(m, self._emitted + "".join(out)))
            last = m.end()
        out.append(text[last:])
        return "".join(out)

    def _markup(self, m: re.Match[str]) -> str:
        self.corrections.append({"kind": "markup", "original": m.group(0), "replacement": ""})
        return ""

    def _sku(self, m: re.Match[str]) -> str:
        if m.group(0) in self._skus:
            return m.group(0)
        self.corrections.append({"kind": "sku", "original": m.group(0), "replacement": ""})
        return ""

    def _price(self, m: re.Match[str], before: str) -> str:
        """A price must be a named product's, in its currency; an unattached one must be a listed product's
        (in its currency) or one quoted in the facts or by the shopper."""
        value = round(float(m.group(1).replace(",", "") + "." + (m.group(2) or "0")), 2)
        currency = CURRENCY_OF[m.group(0)[: m.start(1) - m.start()].strip()]
        named = self._named_products(before)
        if named:
            if any(abs(p.price - value) < 0.005 and p.currency == currency for p in named):
                return m.group(0)
            fixed = f"{'$' if named[0].currency == 'USD' else named[0].currency + ' '}{named[0].price:.2f}"
            self.corrections.append({"kind": "price", "original": m.group(0), "replacement": fixed,
                                     "sku": named[0].sku})
            return fixed
        if (value, currency) in self._priced or value in self._quoted:
            return m.group(0)
        self.corrections.append({"kind": "price", "original": m.group(0), "replacement": ""})
        return ""

    def _stock(self, m: re.Match[str], before: str) -> str:
        named = self._named_products(before, unpriced=False)
        if not named:
            return m.group(0)
        if m.group("few"):
            if any(int(m.group(4)) == p.stock for p in named):
                return m.group(0)
            fixed = stock_phrase(named[0].stock)
        elif any(p.in_stock == (m.group("in") is not None) for p in named):
            return m.group(0)
        else:
            fixed = "in stock" if named[0].in_stock else "out of stock"
        self.corrections.append({"kind": "stock", "original": m.group(0), "replacement": fixed,
                                 "sku": named[0].sku})
        return fixed

    def _named_products(self, before: str, unpriced: bool = True) -> list[ProductDoc]:
        """The retrieved products named last in the current sentence (by SKU or title): one, or several that
        share that title; with ``unpriced``, only if no price follows the name yet."""
        sentence = re.split(r"[.!?\n]\s", before)[-1].lower()
        best, where, length = "", -1, 0
        for p in self.products:
            for name in (p.sku.lower(), p.title.lower(), p.title.split(" (")[0].lower()):
                at = sentence.rfind(name)
                # the latest mention wins; at the same place, the fuller name ("kettlebell (olive)" over the
                # "kettlebell" of its black variant)
                if at >= 0 and (at, len(name)) > (where, length):
                    best, where, length = name, at, len(name)
        if not best or (unpriced and PRICE.search(sentence[where:].upper())):
            return []
        return [p for p in self.products if best in (p.sku.lower(), p.title.lower(), p.title.split(" (")[0].lower())]
