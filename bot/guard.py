"""Output checks on the model's text, applied to the stream before any of it reaches the shopper.

Fixed in place:

- markup: HTML tags, markdown images and ``javascript:``/``data:`` URLs are removed;
- SKUs: a SKU-shaped token that is not one of the turn's retrieved products is removed;
- prices: a price after a retrieved product's title, SKU or reference (same sentence) is corrected to
  the catalog price, in the catalog's currency;
- stock: "in stock", "sold out" or "only 2 left" after a retrieved product's name is
  corrected to what the catalog says about that product.

Dropped with their clause, so that no sentence is left with a hole in it:

- a product reference (``[n]``, :mod:`bot.mentions`) to a number that was not listed (when the clause's
  first words are already out, it points to the first listed product the reply has not named instead);
- a price no product can vouch for (not a listed product's, not quoted in the facts or by
  the shopper);
- links to any host but the store's own (``link_hosts``);
- emails and phone numbers that the facts do not give;
- discount codes other than the configured offer's;
- policy claims (delivery times, returns, discounts, support hours) whose figures the
  configured policy text (``policy_text``) does not state.

The guard checks text clause by clause (a clause ends at ``,`` ``;`` ``.`` ``!`` ``?``, a
spaced dash or a line break), so it can drop a clause whole. It holds back only what it may still cut
or change: from the first word that could start a claim (a currency, a digit, an ``@``, a link, a
bracket, markup, a code-shaped or all-capitals token, a policy or stock word; :data:`RISKY`) to the end
of that clause, with the plain words just before it (:data:`HOLD_BACK`: "call", "at", "is", "the") and
the word still being written. Words before a reference still being written (``Try [``) are not held:
it almost always names a listed product. Everything before goes out as it arrives, so a reply's first words
stream without waiting for its first clause to end. When the held part of a clause is dropped, the
words already shown end their sentence.

A dropped clause's separator is mended (a held comma becomes the full stop of the dropped
clause; a sentence that lost its head starts with a capital). Every change is recorded in
:attr:`StreamGuard.corrections`, which goes into the reply's metadata for training.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.mentions import PARTIAL_REFERENCE, REFERENCE, listed
from bot.prompts import stock_phrase
from retrieval.catalog import ProductDoc

SKU = re.compile(r"\b[A-Z]{2,5}-\d{3,6}\b")
PRICE = re.compile(r"(?:(?:USD|EUR|GBP|JPY|INR)\s?|[$€£¥₹]\s?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?(?!\d)")
BARE_PRICE = re.compile(
    r"(?<![\w$€£¥₹.,])(?<!USD )(?<!EUR )(?<!GBP )(?<!JPY )(?<!INR )(\d{1,3}(?:,\d{3})+|\d+)\.(\d{2})(?![\d%]|\.\d)"
    r"|(?<![\w$€£¥₹.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?\s?(?:bucks|dollars?|quid|pounds?|euros?)\b",
    re.IGNORECASE)
"""A figure that reads as a price without a currency sign: "102.99", "99 bucks"; checked like one."""
CURRENCY_OF = {"$": "USD", "USD": "USD", "€": "EUR", "EUR": "EUR", "£": "GBP", "GBP": "GBP", "¥": "JPY", "JPY": "JPY",
               "₹": "INR", "INR": "INR"}
MARKUP = re.compile(
    r"<[^<>]{0,400}>"                                   # HTML tags, complete
    r"|!\[[^\]]{0,200}\]\([^)]{0,400}\)"                # markdown images
    r"|\b(?:javascript|vbscript|data)\s*:[^\s)]*",      # script-bearing URLs
    re.IGNORECASE)
OPENER = re.compile(r"<(?=[A-Za-z/!?]|$)|!\[")  # what may start markup that has not closed yet
NUMBER = re.compile(r"\d+(?:\.\d+)?")
OUT_OF_STOCK = ("out of stock", "out-of-stock", "sold out", "not in stock", "unavailable", "not available")
IN_STOCK = ("in stock", "in-stock", "available now", "ready to ship")
STOCK = re.compile(rf"\b(?:(?P<out>{'|'.join(OUT_OF_STOCK)})|(?P<in>{'|'.join(IN_STOCK)})|(?P<few>only (\d+) left))\b",
                   re.IGNORECASE)

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
LINK = re.compile(
    r"(?:https?://|www\.)[^\s<>()\"']+"
    r"|\b(?:[a-z0-9-]+\.)+(?:com|net|org|io|co|uk|de|fr|es|it|nl|eu|shop|store|info|biz|us|ca|au|app|dev|ly|me)"
    r"\b(?:/[^\s<>()\"']*)?", re.IGNORECASE)
PHONE = re.compile(r"(?<![\w$€£.])\+?\(?\d[\d\s().-]{5,18}\d(?![\w%])")
CODE_CONTEXT = re.compile(r"\b(?:code|coupon|promo|voucher|discount|checkout|enter|apply)s?\b", re.IGNORECASE)
CODE_TOKEN = re.compile(r"\b[A-Z0-9]{2,}(?:-[A-Z0-9]+)*\b")
CODE_ALONE = re.compile(r"\b[A-Z]{3,}\d{1,4}\b")  # SAVE20, WELCOME10: a code even without the word "code"
NOT_CODES = {"USD", "EUR", "GBP", "FAQ", "SKU", "SKUS", "OK", "USA", "UK", "EU", "ASAP", "PDF", "LED", "USB", "TV"}
POLICY_TOPIC = re.compile(
    r"\b(?:deliver\w*|ship\w*|dispatch\w*|return\w*|refund\w*|exchang\w*|discount\w*|off|sale|support|"
    r"guarantee\w*|warrant\w*|money[- ]back|price[- ]match\w*|orders?|customers?|members?)\b", re.IGNORECASE)
POLICY_FIGURE = re.compile(
    r"\d+(?:\.\d+)?\s?(?:%|percent\b)"
    r"|\b\d+(?:\s?(?:-|to)\s?\d+)?\s?(?:business\s|working\s)?(?:hours?|days?|weeks?|months?|years?)\b"
    r"|\b24/7\b|\bfree\b|\bovernight\b|\bsame[- ]day\b|\bnext[- ]day\b|\blifetime\b|\balways\b|\beverything\b"
    r"|\b(?:all|every|any)\s+(?:orders?|products?|items?|purchases?)\b", re.IGNORECASE)
BRACKETED_SKU = re.compile(r"\s?[(\[]\s*(?:SKU:?\s*)?(\b[A-Z]{2,5}-\d{3,6}\b)\s*[)\]]")
CLAUSE_SEP = re.compile(r"(?:[.!?]+[\"')\]]*|[,;]|\s[-–—]|\n)$")
CLAUSE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s)|[,;](?=\s)|\s[-–—](?=\s)|\n")
LIST_NUMBER = re.compile(r"(?:^|\s)\d{1,2}$")  # "2." in "2. The Strider ..." ends no clause
LEADING_JOINER = re.compile(r"^(\s*)(?:and|but|so|or|plus|also|while|which|then)\b[\s,]*", re.IGNORECASE)
HOLES = re.compile(
    r"\(\s*[,;:]?\s*\)|\[\s*\]"                                         # an emptied bracket
    r"|\b(?:for|at|is|are|costs?|of|from|only|just|priced|under|to|code|email|call)\s+[.,;:!?)]"  # a slot left
    r"|\s[.,;:!?](?!\w)|[,;:]\s*[.!?]|(?<=\S) {2,}(?=\S)|^\s*[,;:.]", re.IGNORECASE | re.MULTILINE)
RISKY = re.compile(
    r"[$€£\d@<>(\[{]|!\[|https?:|www\.|\w\.[a-z]{2,}\b|\b\w+:\S"          # money, numbers, contacts, links, markup
    r"|(?-i:\b[A-Z][A-Z0-9]+(?:-[A-Z0-9]+)*\b)"                             # codes, SKUs, currencies, shouting
    rf"|{POLICY_TOPIC.pattern}|{CODE_CONTEXT.pattern}"
    r"|\b(?:free|overnight|same|next|lifetime|always|everything|all|every|any|percent|guarantee\w*|warrant\w*"
    r"|stock|sold|unavailable|available|ready|only|left|out|price\w*|cheap\w*|cost\w*|money|speak|english)\b",
    re.IGNORECASE)
"""Where a claim the guard may still cut or correct can start (matched on complete words only)."""
_HOLD_BACK_WORDS = """
    a an the this that these those our your my their its his her us me them some no not in on at of to for from
    by with via and or but plus also just now then here there is are was were be been being am have has had 's
    it's that's i i'm i'd i'll we we're we'd we'll you you're you'd you'll it they they're he she can could would
    will should may might must do does please simply call ring email write contact reach visit see check use
    enter apply try find get give gives offer offers recommend suggest grab pick go head shop order buy takes
    take ships ship arrives arrive costs cost priced only about around under over up down don't dont cannot can't"""
HOLD_BACK = frozenset(_HOLD_BACK_WORDS.split())
ONLY_ENGLISH = re.compile(
    r"\b(?:only|just) (?:speak|reply|respond|answer|write|understand|talk|help)(?: you)?(?: in)? english\b"
    r"|\b(?:can|could) only (?:speak|reply|respond|answer|write|help|chat)(?: you)?(?: in)? english\b"
    r"|\b(?:don'?t|do not|can'?t|cannot) (?:speak|understand|read|reply in) english\b|\benglish only\b",
    re.IGNORECASE)
"""The generator's "I only speak English", which it learned from its training dialogs and says to English
questions too: cut when the shopper wrote English (bot/turn/language.py)."""
"""Plain words held back with a risky word that follows them, so that a cut never leaves them dangling
("Call us at" with the phone cut)."""
LAST_REFERENCE = re.compile(r"(\s*\[(\d{1,2})\])[^\w\s\[]*")  # the last word: a reference, with any marks after it
MAX_HELD = 240  # a clause longer than this is let out in parts (its start can no longer be dropped)
OPEN_WINDOW = 600  # how long an unclosed "<" or "![" may hold text back, waiting to close


def holes(text: str) -> list[str]:
    """Places where text reads as if something was cut out of it ("for .", "()", "code is: .")."""
    return [m.group(0) for m in HOLES.finditer(text)]


def _figure_key(figure: str) -> tuple[tuple[str, ...], str]:
    """("3", "5"), "day" for "3-5 working days"; (), "free" for "free"."""
    low = figure.lower().replace("-", " ")
    numbers = tuple(NUMBER.findall(low)) if "24/7" not in low else ()
    unit = "%" if "%" in low or "percent" in low else re.sub(r"s$", "", low.split()[-1]) if numbers else low
    return numbers, unit


def _money(value: float, currency: str) -> str:
    """A corrected price, as the prompt's facts write it: "$12.50", "GBP 0.42"."""
    return f"${value:.2f}" if currency == "USD" else f"{currency} {value:.2f}"


@dataclass
class StreamGuard:
    """Checks one reply's stream against the turn's products, facts and configured policy."""

    products: Sequence[ProductDoc]
    allowed_text: str = ""  # facts and the shopper's message: prices and numbers quoted there are legitimate
    policy_text: str = ""  # the store's configured policies and offer: the only policy claims allowed
    link_hosts: Sequence[str] = ()  # the store's own hosts: links to them pass
    language: str = "en"  # the shopper's language: to one who wrote English, "I only speak English" is cut
    corrections: list[dict[str, str]] = field(default_factory=list)
    _pending: str = ""
    _emitted: str = ""
    _held_sep: str = ""  # the last kept clause's separator, out only once the next clause is kept
    _open: bool = False  # whether the current sentence has kept text
    _headless: bool = False  # whether the current sentence lost its first clause
    _begun: bool = False  # whether the current clause's first words are already out

    def __post_init__(self) -> None:
        self._skus = {p.sku for p in self.products}
        self._priced = {(round(p.price, 2), p.currency) for p in self.products}
        vouched = f"{self.allowed_text} {self.policy_text}".replace(",", "")
        self._quoted = {round(float(n), 2) for n in NUMBER.findall(vouched)}
        self._digits = {re.sub(r"\D", "", m) for m in PHONE.findall(self.allowed_text + " " + self.policy_text)}
        self._policy = self.policy_text.lower()
        self._vocabulary = " ".join([self.allowed_text, *(p.title for p in self.products)])
        self._policy_figures = {_figure_key(m.group(0)) for m in POLICY_FIGURE.finditer(self._policy)}
        self._drop: dict[str, str] | None = None

    def feed(self, delta: str) -> str:
        """Take a delta from the model; return the text that is safe to show now."""
        self._pending += delta
        out = []
        while (cut := self._clause_end(self._pending)) is not None:
            clause, self._pending = self._pending[:cut], self._pending[cut:]
            out.append(self._clause(clause))
        if len(self._pending) > MAX_HELD:  # let out in parts, up to markup that may still close
            space = self._pending.rfind(" ", 0, min(self._open_markup(self._pending), len(self._pending) - 40))
            if space > 0:
                part, self._pending = self._pending[:space], self._pending[space:]
                out.append(self._clause(part, final=False))
        elif (safe := self._safe_prefix(self._pending)) > 0:  # the clause's words before anything risky
            part, self._pending = self._pending[:safe], self._pending[safe:]
            out.append(self._clause(part, final=False))
        return "".join(out)

    def _safe_prefix(self, text: str) -> int:
        """How much of an unfinished clause can go out now: its complete words before the first risky one
        (:data:`RISKY`) and the plain words leading up to it (:data:`HOLD_BACK`), cut at a space."""
        cut = max(text.rfind(" "), text.rfind("\n"), 0)
        last = LAST_REFERENCE.fullmatch(text[cut:])
        # the last word may still be growing; a complete reference to a listed product cannot grow into a claim
        # (the marks after it wait, as at the end of any word)
        words = text[:cut + last.end(1)] if last and listed(int(last.group(2)), self.products) else text[:cut]
        risky = RISKY.search(REFERENCE.sub(self._masked, words))
        end = min(risky.start() if risky else len(words), self._open_markup(text))
        # a reference still being written will almost always name a listed product: the plain words before it
        # go out (should it name none, :meth:`_reference` points it to a listed one)
        referring = not risky and end == len(words) and PARTIAL_REFERENCE.fullmatch(text[cut:].strip())
        if end < len(words) and not words[end].isspace():  # from the start of the word it is in
            end = max(words.rfind(" ", 0, end), words.rfind("\n", 0, end)) + 1
        while True:
            end = len(words[:end].rstrip())
            start = max(words.rfind(" ", 0, end), words.rfind("\n", 0, end)) + 1
            word = words[start:end]
            if not word:
                return 0
            bare = word.lower().strip("\"'")
            if not bare or (bare in HOLD_BACK and not referring):  # the whole word waits
                end = start
            elif not word[-1].isalnum() and not REFERENCE.fullmatch(word):  # its trailing mark waits ("news:" -> "news")
                end -= 1
            else:
                return end

    def _masked(self, m: re.Match[str]) -> str:
        """A reference to a listed product is safe to show; it is blanked out of the search for risky words."""
        return "x" * len(m.group(0)) if listed(int(m.group(1)), self.products) else m.group(0)

    def finish(self) -> str:
        """The rest of the text once the stream has ended; an opener that never closed is dropped."""
        rest, self._pending = self._pending, ""
        for m in reversed(list(self._unclosed(rest))):
            self.corrections.append({"kind": "markup", "original": m.group(0), "replacement": ""})
            rest = rest[:m.start()] + rest[m.end():]
        out = self._clause(rest) if rest.strip() else ""
        tail, self._held_sep = self._held_sep, ""
        if tail.strip():
            self._emitted += tail
            return out + tail
        return out

    @property
    def text(self) -> str:
        return self._emitted

    @property
    def cut_whole(self) -> bool:
        """Whether the guard cut every clause of the model's text (nothing it wrote is shown)."""
        return not self._emitted.strip() and bool(self.corrections)

    @staticmethod
    def _unclosed(text: str) -> list[re.Match[str]]:
        spans = [m.span() for m in MARKUP.finditer(text)]
        return [m for m in OPENER.finditer(text) if not any(s <= m.start() < e for s, e in spans)]

    def _open_markup(self, text: str) -> int:
        """Where the oldest opener that may still close starts (``len(text)`` if none). One left open for
        OPEN_WINDOW characters is not markup, and holds nothing back."""
        opened = [m.start() for m in self._unclosed(text) if len(text) - m.start() < OPEN_WINDOW]
        return opened[0] if opened else len(text)

    def _clause_end(self, text: str) -> int | None:
        """Where the first complete clause of ``text`` ends (after its separator), or None."""
        limit = self._open_markup(text)
        tags = [m.span() for m in MARKUP.finditer(text)]
        for m in CLAUSE_END.finditer(text, 0, limit):
            if any(s <= m.start() < e for s, e in tags):
                continue
            if m.group(0).startswith(".") and LIST_NUMBER.search(text, 0, m.start()):
                continue
            return m.end()
        return None

    # --- one clause -------------------------------------------------------------------------------------

    def _clause(self, clause: str, final: bool = True) -> str:
        """Check one clause: fix it in place, or drop it whole; mend the separators around a drop.

        ``final`` False: a part of a long clause, let out before the clause ends.
        """
        m = CLAUSE_SEP.search(clause) if final else None
        body, sep = (clause[:m.start()], m.group(0)) if m else (clause, "")
        terminal = final and (not sep or any(c in sep for c in ".!?\n"))
        before = len(self.corrections)
        self._drop = None
        body = MARKUP.sub(self._markup, body)
        body = REFERENCE.sub(self._reference, body)
        body = BRACKETED_SKU.sub(self._bracketed_sku, body)
        body = SKU.sub(self._sku, body)
        body = self._rewrite(body, PRICE, self._price)
        body = self._rewrite(body, BARE_PRICE, self._bare_price)
        body = self._rewrite(body, STOCK, self._stock)
        if self._drop is None:
            self._check_claims(body)
        if len(self.corrections) > before:  # a cut in place: no doubled spaces, no space before the separator
            body = re.sub(r" {2,}", " ", body)
            body = body.rstrip() if sep else body
        if self._drop is None and not body.strip() and len(self.corrections) == before:  # a line break, say
            self._held_sep += body + sep
            return ""
        if self._drop is not None or not body.strip():
            self._begun = False
            if self._drop is not None:
                self.corrections.append({**self._drop, "clause": clause.strip()})
            if not self._open:
                self._headless = not terminal
            elif terminal:  # the sentence ends here: the held comma becomes its full stop
                self._held_sep, self._open = (sep if sep.strip() else "."), False
            return ""
        if self._headless:
            body = self._capitalized(body)
        lead = self._held_sep
        if not self._emitted:  # the reply's first words: no separator or blank line before them
            lead, body = "", body.lstrip()
        out = lead + body
        self._held_sep, self._open, self._headless = (sep, not terminal, False) if final else ("", True, False)
        self._begun = not final
        self._emitted += out
        return out

    @staticmethod
    def _capitalized(body: str) -> str:
        body = LEADING_JOINER.sub(r"\1", body)
        m = re.search(r"[A-Za-z]", body)
        return body if m is None else body[:m.start()] + body[m.start()].upper() + body[m.start() + 1:]

    def _check_claims(self, body: str) -> None:
        """Set ``self._drop`` when the clause carries something no fact vouches for."""
        low = body.lower()
        for m in EMAIL.finditer(body):
            if m.group(0).lower() not in self.allowed_text.lower() + self._policy:
                self._drop = {"kind": "email", "original": m.group(0), "replacement": ""}
                return
        for m in LINK.finditer(EMAIL.sub(" ", body)):
            if not self._own_link(m.group(0)):
                self._drop = {"kind": "link", "original": m.group(0), "replacement": ""}
                return
        for m in PHONE.finditer(body):
            digits = re.sub(r"\D", "", m.group(0))
            if 7 <= len(digits) <= 15 and digits not in self._digits:
                self._drop = {"kind": "phone", "original": m.group(0).strip(), "replacement": ""}
                return
        for token in self._codes(body):
            if token.lower() not in self._policy:
                self._drop = {"kind": "code", "original": token, "replacement": ""}
                return
        if self.language == "en" and (claim := ONLY_ENGLISH.search(body)):
            self._drop = {"kind": "language", "original": claim.group(0), "replacement": ""}
            return
        if POLICY_TOPIC.search(low):
            for m in POLICY_FIGURE.finditer(low):
                if not self._stated(m.group(0)):
                    self._drop = {"kind": "policy", "original": m.group(0), "replacement": ""}
                    return

    def _codes(self, body: str) -> list[str]:
        """Code-like tokens that no product title, fact or policy contains."""
        found = [m.group(0) for m in CODE_ALONE.finditer(body)]
        if CODE_CONTEXT.search(body):
            found += [t for t in CODE_TOKEN.findall(body)
                      if len(t) >= 4 and re.search(r"[A-Z]", t) and t not in NOT_CODES and not t.isdigit()]
        return [t for t in found if t not in self._skus and t not in self._vocabulary]

    def _stated(self, figure: str) -> bool:
        """Whether the configured policy text states this figure: the same numbers with the same unit
        ("3-5 working days" is not "2 days"), or the same phrase ("free", "every order")."""
        key = _figure_key(figure)
        return key in self._policy_figures if key[0] else key[1] in self._policy.replace("-", " ")

    def _own_link(self, link: str) -> bool:
        host = re.sub(r"^(?:https?://)?(?:www\.)?", "", link.lower()).split("/")[0].rstrip(".")
        return any(host == h or host.endswith("." + h) for h in (x.lower() for x in self.link_hosts))

    # --- fixes in place ---------------------------------------------------------------------------------

    def _rewrite(self, text: str, pattern: re.Pattern[str], fix: Callable[[re.Match[str], str], str]) -> str:
        """Replace each match by ``fix(match, everything shown before it)``."""
        out, last = [], 0
        for m in pattern.finditer(text):
            out.append(text[last:m.start()])
            out.append(fix(m, self._emitted + self._held_sep + "".join(out)))
            last = m.end()
        out.append(text[last:])
        return "".join(out)

    def _markup(self, m: re.Match[str]) -> str:
        self.corrections.append({"kind": "markup", "original": m.group(0), "replacement": ""})
        return ""

    def _reference(self, m: re.Match[str]) -> str:
        """A reference to a number that was not listed takes its clause with it; when the clause's first words
        are already out (they went ahead of a reference still being written), it points instead to the first
        listed product the reply has not named, so that those words are not left hanging."""
        if listed(int(m.group(1)), self.products) is not None or self._drop is not None:
            return m.group(0)
        named = self._emitted + m.string
        spare = next((f"[{n}]" for n in range(1, len(self.products) + 1) if f"[{n}]" not in named), None)
        if self._begun and spare is not None:
            self.corrections.append({"kind": "reference", "original": m.group(0), "replacement": spare})
            return spare
        self._drop = {"kind": "reference", "original": m.group(0), "replacement": ""}
        return m.group(0)

    def _bracketed_sku(self, m: re.Match[str]) -> str:
        """An invented SKU in brackets after a title goes with its brackets; the title stays."""
        if m.group(1) in self._skus:
            return m.group(0)
        self.corrections.append({"kind": "sku", "original": m.group(1), "replacement": ""})
        return ""

    def _sku(self, m: re.Match[str]) -> str:
        """Any other invented SKU takes its clause with it."""
        if m.group(0) not in self._skus and self._drop is None:
            self._drop = {"kind": "sku", "original": m.group(0), "replacement": ""}
        return m.group(0)

    def _price(self, m: re.Match[str], before: str) -> str:
        """A price must be a named product's, in its currency; an unattached one must be a listed product's
        (in its currency) or one quoted in the facts or by the shopper, or its clause is dropped."""
        value = round(float(m.group(1).replace(",", "") + "." + (m.group(2) or "0")), 2)
        return self._checked_price(m.group(0), value, CURRENCY_OF[m.group(0)[: m.start(1) - m.start()].strip()],
                                   before)

    def _bare_price(self, m: re.Match[str], before: str) -> str:
        """A figure without a currency sign that reads as a price, checked like one in any currency: a wrong one
        after a product's name becomes that product's price with its sign."""
        value = round(float((m.group(1) or m.group(3)).replace(",", "") + "." + (m.group(2) or m.group(4) or "0")), 2)
        return self._checked_price(m.group(0), value, None, before)

    def _checked_price(self, written: str, value: float, currency: str | None, before: str) -> str:
        """``written`` (a price of ``value``, in ``currency`` or, None, in any) as it may stand, corrected, or as
        it is with its clause marked for dropping."""
        def fits(price: float, cur: str) -> bool:
            return abs(price - value) < 0.005 and currency in (None, cur)

        named = self._named_products(before)
        if named:
            if any(fits(p.price, p.currency) for p in named):
                return written
            fixed = _money(named[0].price, named[0].currency)
            self.corrections.append({"kind": "price", "original": written, "replacement": fixed,
                                     "sku": named[0].sku})
            return fixed
        if any(fits(price, cur) for price, cur in self._priced) or value in self._quoted:
            return written
        if self._drop is None:
            self._drop = {"kind": "price", "original": written, "replacement": ""}
        return written

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
        for n, p in enumerate(self.products, 1):
            for name in (f"[{n}]", p.sku.lower(), p.title.lower(), p.title.split(" (")[0].lower()):
                at = sentence.rfind(name)
                # the latest mention wins; at the same place, the fuller name ("kettlebell (olive)" over the
                # "kettlebell" of its black variant)
                if at >= 0 and (at, len(name)) > (where, length):
                    best, where, length = name, at, len(name)
        if not best or (unpriced and PRICE.search(sentence[where:].upper())):
            return []
        if REFERENCE.fullmatch(best):
            return [self.products[int(best[1:-1]) - 1]]
        return [p for p in self.products if best in (p.sku.lower(), p.title.lower(), p.title.split(" (")[0].lower())]


