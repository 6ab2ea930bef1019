"""Personal data out of text meant for training: emails, phones, card numbers, addresses, handles.

Each find is replaced by a typed placeholder (``[email]``, ``[phone]``, ``[card]``,
``[address]``, ``[postcode]``, ``[handle]``, ``[name]``), so a dialog keeps its shape
("my card [card] was charged twice") without the person. What the store itself
writes stays: SKUs (``RUN-00012``), order numbers (``A10023``), prices and dates.

The patterns favour recall on what shoppers type (a card number with or without
spaces, a phone in national or international form, a street address with its
number); phone numbers are also looked for with ``phonenumbers`` (Google's
libphonenumber), which knows each country's numbering plan. Names are caught where a
shopper introduces themselves ("my name is ..."),
and anywhere for the names the store knows (its shoppers' and its agents',
:class:`KnownNames`); other free-standing names are not detected.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

EMAIL = re.compile(r"[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
CARD = re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])")
PHONE = re.compile(
    r"(?<![\w+-])(?:"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"   # +1 415 555 0134, +44 (20) 7946 0958
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]?\d{4}"                                    # (415) 555-0134
    r"|\d{3}[.-]\d{3}[.-]\d{4}|\d{3} \d{3} \d{4}"                          # 415-555-0134, 415 555 0134
    r"|0\d{2,4}[ -]?\d{3,4}[ -]?\d{3,4}"                                   # 020 7946 0958, 07700 900123
    r"|\d{10,11}"                                                          # 4155550134
    r")(?![\w-])")
STREET_TYPES = (
    "street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|court|ct|way|place|pl|terrace|"
    "close|crescent|square|sq|parkway|pkwy|highway|hwy|circle|cir|gardens|row|mews|hill|grove")
ADDRESS = re.compile(
    rf"(?<![\w-])\d{{1,5}}[A-Za-z]?,?\s+(?:[A-Z][a-z'.-]+\s+){{1,4}}(?i:{STREET_TYPES})\b\.?"
    r"(?:,?\s+(?i:apt|apartment|suite|unit|flat|#)\.?\s*[\w-]+)?")
STATED_ADDRESS = re.compile(  # lower-case or unusual addresses, where the shopper says it is one
    r"\b((?i:my (?:home |delivery |shipping )?address is|address:|ship(?:ping)? (?:it )?to|deliver(?:ed)? (?:it )?to"
    r"|send it to))\s+(?=[^.!?\n]*\d)[^.!?\n]{4,80}")
UK_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b")
US_STATES = ("AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|"
             "NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY")
US_ZIP = re.compile(rf"\b(?:{US_STATES}),?\s+\d{{5}}(?:-\d{{4}})?\b")
HANDLE = re.compile(r"(?<![\w@])@\w{2,30}")
INTRODUCED_NAME = re.compile(r"\b((?i:my name is|my name's|this is|i am|i'm))\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)(?=[\s,.!?]|$)")
NOT_NAMES = frozenset({"Looking", "Trying", "Not", "So", "Very", "Still", "Just", "Here", "Back", "Sorry",
                       "Interested", "Having", "Getting", "Going", "Waiting", "Unable", "Happy", "Really",
                       "The", "This", "That", "It", "In", "On", "At", "My", "Your", "Our", "Now", "Also", "Ok",
                       "Okay", "Good", "Fine", "Done", "Ready", "Sure", "Glad", "Thanks", "Please", "Hello", "Hi"})


# "order 536365", "tracking no. 1Z...", "case #88123": the store's references. A bare "number",
# "no." or "#" is not one ("card number 4111...", "phone number 415-...", "card #4111...").
ORDER_WORDS = re.compile(
    r"(?i:\b(?:order|purchase|invoice|tracking|ticket|reference|ref|case)(?:\s*(?:number|no\.?|id))?)\s*[:#]?\s*$")


def _reference(text: str, start: int) -> bool:
    """Whether the number at ``start`` follows a word that makes it an order or case reference."""
    return ORDER_WORDS.search(text[max(0, start - 32): start]) is not None


def luhn_valid(digits: str) -> bool:
    """Whether a digit string passes the Luhn checksum that payment card numbers carry."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass(frozen=True, slots=True)
class Scrubbed:
    """Text with personal data replaced, and how many of each kind were found."""

    text: str
    found: Counter[str]


def _grouped_like_a_card(raw: str) -> bool:
    return re.fullmatch(r"\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}", raw) is not None


def _is_card(raw: str) -> bool:
    digits = re.sub(r"\D", "", raw)
    return 13 <= len(digits) <= 19 and (_grouped_like_a_card(raw) or luhn_valid(digits))


def _card(m: re.Match[str], found: Counter[str]) -> str:
    """The run of digits with the longest card number in it replaced ("4111111111111111 1 second")."""
    raw = m.group(0)
    if _reference(m.string, m.start()) and not _grouped_like_a_card(raw):
        return raw
    parts = re.split(r"([ -])", raw)  # digit groups at even positions, separators at odd ones
    groups = parts[::2]
    for size in range(len(groups), 0, -1):
        for start in range(len(groups) - size + 1):
            candidate = "".join(parts[2 * start: 2 * (start + size) - 1])
            if _is_card(candidate):
                found["card"] += 1
                before = "".join(parts[: 2 * start])
                after = "".join(parts[2 * (start + size) - 1:])
                return f"{before}[card]{after}"
    return raw


def _phone(m: re.Match[str], found: Counter[str]) -> str:
    if _reference(m.string, m.start()):
        return m.group(0)
    found["phone"] += 1
    return "[phone]"


PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "AU", "CA")
"""Where a number written without its country code is read as a phone number (``phonenumbers``)."""


def _library_phones(text: str, found: Counter[str]) -> str:
    """Phone numbers that Google's libphonenumber finds valid in one of :data:`PHONE_REGIONS` (formats the
    patterns above miss), except order and case references."""
    if sum(c.isdigit() for c in text) < 7:  # no phone number is shorter
        return text
    import phonenumbers

    spans: set[tuple[int, int]] = set()
    for region in PHONE_REGIONS:
        spans |= {(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(text, region)
                  if not _reference(text, m.start)}
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in reversed(merged):
        text = text[:start] + "[phone]" + text[end:]
    found["phone"] += len(merged)
    return text


ORGANISATION = re.compile(r"\b(?:Store|Shop|Team|Support|Company|Inc|Ltd|LLC)\b")
"""A word that makes a capitalised phrase a business's name, not a person's ("I'm Aisle Demo Store's
assistant", "this is Acme Support")."""


def _name(m: re.Match[str], found: Counter[str]) -> str:
    words = m.group(2).split()
    if words[0] in NOT_NAMES or ORGANISATION.fullmatch(words[-1]) or ORGANISATION.match(m.string, m.end() + 1):
        return m.group(0)
    found["name"] += 1
    return f"{m.group(1)} [name]"


NAME_PART = re.compile(r"[^\W\d_]{3,}")


@dataclass(frozen=True)
class KnownNames:
    """Names the store knows, found anywhere in a text: a full name in any case ("maria lopez"), and each of its
    parts of three letters or more where it is written as a name is ("Maria", "LOPEZ"; not "rose" for "Rose").
    One alternation over all the names: fine for thousands of known shoppers, not tuned for millions."""

    names: Iterable[str] = ()
    _pattern: re.Pattern[str] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        full, parts = set(), set()
        for name in self.names:
            name = " ".join(name.split())
            if " " in name:  # one word alone ("demo", "Rose") is matched only where written as a name
                full.add(name.lower())
            parts.update(NAME_PART.findall(name))
        if not full and not parts:
            return
        alternatives = [f"(?i:{re.escape(n).replace(chr(92) + ' ', chr(92) + 's+')})"
                        for n in sorted(full, key=len, reverse=True)]
        alternatives += [f"{re.escape(p.capitalize())}|{re.escape(p.upper())}"
                         for p in sorted(parts, key=len, reverse=True)]
        object.__setattr__(self, "_pattern", re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)"))

    def sub(self, text: str) -> tuple[str, int]:
        return self._pattern.subn("[name]", text) if self._pattern else (text, 0)


def scrub(text: str, names: KnownNames | None = None) -> Scrubbed:
    """Replace personal data in ``text`` with typed placeholders; ``names``: the store's known names too."""
    found: Counter[str] = Counter()

    def sub(pattern: re.Pattern[str], kind: str, value: str) -> None:
        nonlocal text
        text, n = pattern.subn(value, text)
        found[kind] += n

    sub(EMAIL, "email", "[email]")
    text = CARD.sub(lambda m: _card(m, found), text)  # before phones: a card number holds phone-shaped runs
    sub(ADDRESS, "address", "[address]")
    text, n = STATED_ADDRESS.subn(lambda m: f"{m.group(1)} [address]", text)
    found["address"] += n
    text = PHONE.sub(lambda m: _phone(m, found), text)
    text = _library_phones(text, found)
    sub(UK_POSTCODE, "postcode", "[postcode]")
    sub(US_ZIP, "postcode", "[postcode]")
    sub(HANDLE, "handle", "[handle]")
    text = INTRODUCED_NAME.sub(lambda m: _name(m, found), text)
    if names is not None:
        text, n = names.sub(text)
        found["name"] += n
    return Scrubbed(text, +found)


class Scrubber:
    """:func:`scrub` with the store's known names, counting what it replaced (an export's, over all its texts)."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names = KnownNames(names)
        self.found: Counter[str] = Counter()

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        result = scrub(text, self.names)
        self.found.update(result.found)
        return result.text


__all__ = ["KnownNames", "Scrubbed", "Scrubber", "luhn_valid", "scrub"]
