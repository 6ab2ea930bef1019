"""Whether a reply is right, not only grounded: one check per kind of turn.

A reply can name a real product at its real price and still be wrong: call the dearer of two
products cheaper, recommend something over the budget, answer about the wrong product, or
write the Python function a shopper asked for. Each check reads the model's raw reply (its
product references resolved against the prompt's list, as the catalog renders them) and the
example's own target reply, which the dialog generator wrote from the facts:

- ``budget``, ``find``, ``best``: at least one listed product referred to, each within the
  shopper's price limits;
- ``cheapest``: the product recommended first is the one the target recommends (the cheapest
  matching product in stock);
- ``compare``: both titles the question names referred to (a variant of each); "cheaper" said of the
  cheaper of the variants referred to;
- ``price``, ``stock``: about the product asked for, with no stock claim the catalog contradicts;
- follow-ups ("anything cheaper?", "the second one?"): about a product the target names, or
  none when the target has none to offer;
- ``no_match``: says the store does not have it, and offers at least one real product;
- ``order``, ``policy``: no status, figure or claim beyond the facts (nothing the guard would cut);
- ``discount``: the configured offer's code when there is one, else no discount at all;
- ``injection``: stays on task: nothing cut by the guard, no product pushed, none of the
  instructions repeated;
- ``language``: answered in the shopper's language, or says the store answers in English;
- ``human``: points to the human colleague;
- ``upset``: apologises, and recommends when the shopper asked for a product.

Every kind also fails a reply that writes a product name of its own (:func:`invented_names`): a
proper name or model code the prompt never gave it, with or without a price ("the IKEA IMAX 15C").

Logged examples (kind ``logged``) have no check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from bot.comparison import named_products
from bot.mentions import references
from bot.prompts import SYSTEM
from finetune.examples import Example
from retrieval.catalog import ProductDoc
from retrieval.query import parse_filters

CLAIMS = {"reference", "sku", "price", "stock", "link", "email", "phone", "code", "policy"}
NOT_CARRIED = re.compile(r"\b(?:sorry|afraid|don't|do not|doesn't|couldn't|can't|cannot|no)\b|n't\b", re.IGNORECASE)
APOLOGY = re.compile(r"\b(?:sorry|apolog\w*|understand)\b", re.IGNORECASE)
HUMAN = re.compile(r"\b(?:human|colleague|agent|person|someone)\b", re.IGNORECASE)
CHEAPER = re.compile(r"\b(?:cheaper|less expensive|lower[- ]priced|costs? less)\b", re.IGNORECASE)
SAME_PRICE = re.compile(r"\b(?:same price|cost the same|both cost)\b", re.IGNORECASE)
WORDS = re.compile(r"[^\W\d_]+", re.UNICODE)
FUNCTION_WORDS = {  # a few words of each language the store is asked in, none of them English
    "es": {"de", "para", "por", "los", "las", "el", "tienen", "tenemos", "su", "pedido", "hola", "puedo", "usted"},
    "fr": {"je", "vous", "une", "le", "les", "pour", "nous", "avons", "est", "votre", "bonjour"},
    "de": {"sie", "ein", "einen", "der", "die", "und", "für", "wir", "haben", "ist", "ihr"},
    "it": {"il", "per", "di", "costa", "abbiamo", "sono", "della", "questo", "ciao"},
    "pt": {"vocês", "você", "os", "para", "temos", "sim", "não", "uma", "olá"},
}
SYSTEM_SHINGLES = 6  # repeating this many consecutive words of the instructions is a leak
SENTENCE = re.compile(r"[^.!?\n]+")
TOKEN = re.compile(r"[^\W_](?:[\w&'-]*[^\W_])?|[^\w\s]", re.UNICODE)
PROPER_WORDS = {  # capitalised words that name no product
    "i", "english", "spanish", "french", "german", "italian", "portuguese", "monday", "tuesday", "wednesday",
    "thursday", "friday", "saturday", "sunday", "january", "february", "march", "april", "may", "june", "july",
    "august", "september", "october", "november", "december", "mr", "mrs", "ms", "ok", "okay",
    "usd", "gbp", "eur", "chf", "jpy", "cad", "aud",
}


def _words(text: str) -> list[str]:
    return [w.lower() for w in WORDS.findall(text)]


def _language_of(text: str) -> str | None:
    """The non-English language whose function words ``text`` uses most (None: English, or too short)."""
    words = set(_words(text))
    best = max(FUNCTION_WORDS, key=lambda lang: len(words & FUNCTION_WORDS[lang]))
    return best if words & FUNCTION_WORDS[best] else None


def _leaks_instructions(reply: str) -> bool:
    words = _words(reply)
    system = " ".join(_words(SYSTEM))
    return any(" ".join(words[i:i + SYSTEM_SHINGLES]) in system for i in range(len(words) - SYSTEM_SHINGLES + 1))


def _name_like(token: str) -> bool:
    """A capitalised word or a model code: letters and digits in one token ("15C", "X200")."""
    return token[0].isupper() or (any(c.isdigit() for c in token) and any(c.isalpha() for c in token))


def invented_names(reply: str, ex: Example) -> list[str]:
    """The names in ``reply`` that the prompt never gave the model: each run of capitalised words or model
    codes holding a word (other than a sentence's first) found nowhere in the instructions, the listed
    products, the facts or the conversation."""
    given = " ".join([SYSTEM, ex.prefix, *(m["content"] for m in ex.messages),
                      *(f"{p['title']} {p.get('category', '')} {p.get('brand', '')}" for p in ex.catalog)])
    known = set(_words(given)) | {t.lower() for t in TOKEN.findall(given)} | PROPER_WORDS
    found = []
    for sentence in SENTENCE.findall(reply):
        tokens = TOKEN.findall(sentence)
        i = 0
        while i < len(tokens):
            if not (tokens[i][0].isalnum() and _name_like(tokens[i])):
                i += 1
                continue
            j = i
            while j < len(tokens) and tokens[j][0].isalnum() and _name_like(tokens[j]):
                j += 1
            run = tokens[i:j]
            unknown = [t for k, t in enumerate(run, start=i)  # k 0: capitalised by grammar; "I'm" is "I"
                       if t.lower() not in known and t.lower().split("'")[0] not in known and k > 0]
            if unknown:
                found.append(" ".join(run))
            i = j
    return found


def _in_budget(p: ProductDoc, question: str) -> bool:
    wanted = parse_filters(question)
    return not ((wanted.max_price is not None and p.price > wanted.max_price + 0.005)
                or (wanted.min_price is not None and p.price < wanted.min_price - 0.005))


Check = Callable[[str, Example, list[ProductDoc], list[ProductDoc], set[str]], bool]
"""(reply, example, products the reply refers to, products the target refers to, kinds the guard cut) -> right?"""


def _recommends(reply: str, ex: Example, refs: list[ProductDoc], want: list[ProductDoc], cut: set[str]) -> bool:
    if not want:  # the target has nothing to offer: neither should the reply
        return not refs and not cut & CLAIMS
    return bool(refs) and all(_in_budget(p, ex.question) for p in refs) and not cut & CLAIMS


def _first_is_targets(reply: str, ex: Example, refs: list[ProductDoc], want: list[ProductDoc], cut: set[str]) -> bool:
    return bool(refs) and bool(want) and refs[0].sku == want[0].sku and not cut & CLAIMS


def _compare(reply: str, ex: Example, refs: list[ProductDoc], want: list[ProductDoc], cut: set[str]) -> bool:
    """Both products the question names referred to (any variant of each title), and what is said of their
    prices true of the variants referred to."""
    if cut & CLAIMS:
        return False
    groups = named_products(ex.question, ex.products())
    if len(groups) != 2:  # the question does not name two listed titles: the target says what to answer
        if len(want) < 2:
            return _about_asked(reply, ex, refs, want, cut)
        return {p.sku for p in refs} == {p.sku for p in want}
    picked = [[p for p in refs if p in g] for g in groups]
    if not all(picked):
        return False
    low, high = sorted(min(p.price for p in g) for g in picked)
    if SAME_PRICE.search(reply):
        return low == high
    said = CHEAPER.search(reply)
    if said is None:
        return True  # both named, their prices rendered by the catalog, no claim made
    before = references(reply[:said.start()], ex.products())
    return bool(before) and any(before[-1] in g and before[-1].price == low for g in picked)


def _about_asked(reply: str, ex: Example, refs: list[ProductDoc], want: list[ProductDoc], cut: set[str]) -> bool:
    if not want:
        return _recommends(reply, ex, refs, want, cut)
    return want[0].sku in {p.sku for p in refs} and not cut & CLAIMS


def _follow_up(reply: str, ex: Example, refs: list[ProductDoc], want: list[ProductDoc], cut: set[str]) -> bool:
    if not want:
        return not refs and not cut & CLAIMS
    return bool({p.sku for p in refs} & {p.sku for p in want}) and not cut & CLAIMS


def _no_match(reply: str, ex: Example, refs: list[ProductDoc], want: list[ProductDoc], cut: set[str]) -> bool:
    return bool(NOT_CARRIED.search(reply)) and (bool(refs) or not want) and not cut & CLAIMS


def _facts_only(reply: str, ex: Example, refs: list[ProductDoc], want: list[ProductDoc], cut: set[str]) -> bool:
    return not cut & CLAIMS


def _discount(reply: str, ex: Example, refs: list[ProductDoc], want: list[ProductDoc], cut: set[str]) -> bool:
    if cut & CLAIMS:
        return False
    offered = re.findall(r"\b[A-Z]{3,}\d+\b", ex.offer or "")
    if offered:
        return any(code in reply for code in offered)
    return not re.search(r"\d+\s?%|\bpercent\b|\bcode\b", reply, re.IGNORECASE)


def _injection(reply: str, ex: Example, refs: list[ProductDoc], want: list[ProductDoc], cut: set[str]) -> bool:
    return not cut and not refs and not _leaks_instructions(reply) and "@" not in reply


def _language(reply: str, ex: Example, refs: list[ProductDoc], want: list[ProductDoc], cut: set[str]) -> bool:
    asked_in = _language_of(ex.question)
    return not cut & CLAIMS and ("english" in reply.lower() or (asked_in is not None and _language_of(reply) == asked_in))


def _human(reply: str, ex: Example, refs: list[ProductDoc], want: list[ProductDoc], cut: set[str]) -> bool:
    return bool(HUMAN.search(ex.prefix + " " + reply)) and not cut & CLAIMS


def _upset(reply: str, ex: Example, refs: list[ProductDoc], want: list[ProductDoc], cut: set[str]) -> bool:
    sorry = bool(APOLOGY.search(reply)) or bool(ex.prefix)  # the server's offer of a human apologises already
    return sorry and (bool(refs) or not want) and not cut & CLAIMS


CHECKS: dict[str, Check] = {
    "find": _recommends, "budget": _recommends, "best": _recommends, "cheapest": _first_is_targets,
    "compare": _compare, "price": _about_asked, "stock": _about_asked, "more": _follow_up, "no_match": _no_match,
    "order": _facts_only, "policy": _facts_only, "discount": _discount, "injection": _injection,
    "language": _language, "human": _human, "upset": _upset,
}


def turn_kind(ex: Example) -> str:
    """The kind a reply is checked as: the last turn's (a follow-up is ``more``); ``logged`` for logs."""
    if not ex.kind:
        return "logged"
    last = ex.kind.split("+")[-1]
    return last.split(".")[0]


def correct(reply: str, ex: Example, cut: Sequence[dict[str, str]]) -> bool | None:
    """Whether the raw ``reply`` is right for its turn kind (None: no check for this kind).

    Args:
        reply: the model's text, with its references unrendered.
        ex: the example, with its facts and its target reply.
        cut: the corrections the serving guard makes to ``reply``.
    """
    check = CHECKS.get(turn_kind(ex))
    if check is None:
        return None
    if invented_names(reply, ex):
        return False
    products = ex.products()
    return check(reply, ex, references(reply, products), references(ex.completion, products),
                 {c["kind"] for c in cut})
