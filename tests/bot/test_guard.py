from __future__ import annotations

import random
import re

import pytest

from bot.guard import StreamGuard
from bot.prompts import stock_phrase
from retrieval.catalog import ProductDoc

PRODUCTS = [
    ProductDoc(sku="RUN-00012", title="Strider Trail Shoe (blue)", category="Running", price=89.99, stock=7),
    ProductDoc(sku="HOM-00301", title="Nordic Wool Throw (grey)", category="Home", price=54.5, stock=0),
    ProductDoc(sku="KIT-04410", title="Castline Skillet 28cm (black)", category="Kitchen", price=1299.0, stock=3),
]
PAYLOADS = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<a href='javascript:alert(1)'>deal</a>",
    "![promo](https://evil.example/p.png)", "<iframe src=//evil.example></iframe>", "<svg onload=alert(1)>",
    "javascript:alert(document.cookie)", "<IMG SRC=\"jav&#x09;ascript:alert('XSS');\">", "<b>bold</b>",
    "<body onload=alert(1)>", "data:text/html;base64,PHNjcmlwdD4=", "<style>*{display:none}</style>",
    "<img\nsrc=x\nonerror=alert(1)>", "<object data=//evil.example/x.swf>", "VBScript:msgbox(1)",
]
HTML = re.compile(r"<[a-zA-Z/!]|javascript:|vbscript:|data:text|!\[", re.IGNORECASE)


def stream(text: str, rng: random.Random, guard: StreamGuard) -> str:
    out, i = "", 0
    while i < len(text):
        j = min(len(text), i + rng.randint(1, 7))
        out += guard.feed(text[i:j])
        i = j
    return out + guard.finish()


def cases(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(kind, model text, the bad part) triples."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        p = rng.choice(PRODUCTS)
        kind = ("sku", "price", "stray_price", "markup", "stock")[i % 5]
        if kind == "sku":
            bad = f"{rng.choice(['RUN', 'HOM', 'ZZZ', 'KITX'])}-{rng.randint(10000, 99999)}"
            out.append((kind, f"You could try {bad}, or {p.sku}, both great.", bad))
        elif kind == "price":
            wrong = round(p.price + rng.choice([-1, 1]) * rng.uniform(1, 50), 2)
            out.append((kind, f"The {p.title} is ${wrong:.2f} today. Anything else?", f"${wrong:.2f}"))
        elif kind == "stray_price":
            bad = f"${rng.randint(2, 40)}.{rng.randint(10, 99)}"
            out.append((kind, f"Shipping is only {bad} this week!", bad))
        elif kind == "stock":
            claim = rng.choice(["sold out", "out of stock", "unavailable", f"only {p.stock + 1} left"]
                               if p.in_stock else ["in stock", "available now", "ready to ship", "only 2 left"])
            out.append((kind, f"Good news: the {p.title} is {claim} at the moment.", claim))
        else:
            payload = rng.choice(PAYLOADS)
            out.append((kind, f"Here you go {payload} enjoy the {p.title}.", payload))
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_invented_skus_wrong_prices_and_markup_never_pass_unchanged(seed: int) -> None:
    rng = random.Random(seed)
    checked = 0
    for kind, text, bad in cases(240, seed):
        guard = StreamGuard(PRODUCTS, allowed_text="under $100")
        out = stream(text, rng, guard)
        assert out == guard.text
        if kind == "markup":
            assert not HTML.search(out), (text, out)
        else:
            assert bad not in out, (text, out)
        if kind in ("price", "stock"):
            named = next(p for p in PRODUCTS if p.title in text)
            truth = f"${named.price:.2f}" if kind == "price" else stock_phrase(named.stock) if "only" in bad \
                else "in stock" if named.in_stock else "out of stock"
            assert truth in out and guard.corrections[0]["sku"] == named.sku
        assert guard.corrections and all(c["original"] for c in guard.corrections)
        checked += 1
    assert checked == 240


def test_true_facts_pass_untouched_and_nothing_is_held_back() -> None:
    text = ("The Strider Trail Shoe (blue) [RUN-00012] is $89.99 and the Castline Skillet 28cm is "
            "$1,299.00, both under $100 or not. Express delivery is $9.95; 3 < 5 stays. The Nordic Wool "
            "Throw is sold out, the Strider Trail Shoe is in stock, and in a week we restock. Only 3 left "
            "of the Castline Skillet: the Castline Skillet has only 3 left.")
    guard = StreamGuard(PRODUCTS, allowed_text="Express delivery takes 1-2 days for $9.95. under $100")
    out = stream(text, random.Random(3), guard)
    assert out == text and guard.corrections == []


def test_the_guard_holds_back_only_what_it_may_still_cut() -> None:
    guard = StreamGuard(PRODUCTS)
    assert guard.feed("Hello there") == "Hello"  # plain words go out at once; the last may still grow
    assert guard.feed(", the Nordic Wool Throw costs $") == " there, the Nordic Wool Throw"  # from "costs" on: held
    assert guard.feed("54.50 and <img src") == ""
    assert guard.feed("=x> is cosy. Anything") == " costs $54.50 and is cosy"  # checked whole, then out
    assert guard.finish() == ". Anything"
    assert guard.text == "Hello there, the Nordic Wool Throw costs $54.50 and is cosy. Anything"


@pytest.mark.parametrize(("stream_in", "shown_before_the_end"), [
    ("Call us at 555-867-5309 today", ""),  # "Call us at": plain words that lead up to the number
    ("You can email jane@example.org", ""),
    ("The Strider Trail Shoe (blue) is", "The Strider Trail Shoe"),  # a bracket may hold an invented SKU
    ("Good news: we give a 10% discount", "Good news"),
    ("Use code SAVE20 at checkout", ""),
    ("I love the Nordic Wool Throw, it is in", "I love the Nordic Wool Throw"),  # "in" may become "in stock"
    ("We really think you will like it", "We really think you will like"),
    ('I love "the Nordic', "I love"),  # a quoted plain word waits whole, never in part
])
def test_what_is_held_back_before_a_clause_ends(stream_in: str, shown_before_the_end: str) -> None:
    assert StreamGuard(PRODUCTS).feed(stream_in) == shown_before_the_end


def test_a_complete_reference_to_a_listed_product_goes_out_at_once() -> None:
    guard = StreamGuard(PRODUCTS)
    assert guard.feed("Try [") == "Try"  # the words before a reference still being written go out
    assert guard.feed("1") == ""  # the reference itself waits until it is complete
    assert guard.feed("].") == " [1]"  # complete and listed: nothing it can grow into is cut; its mark waits
    assert guard.feed(" It costs $1") == "" and guard.finish() == "."
    unlisted = StreamGuard(PRODUCTS)
    assert unlisted.feed(f"Try [{len(PRODUCTS) + 1}]") == ""  # a number not listed waits, to go with its clause


def test_a_cut_after_words_already_shown_ends_their_sentence() -> None:
    guard = StreamGuard(PRODUCTS, policy_text="Standard delivery takes 3-5 working days.")
    out = stream("Good news: we give a 10% discount on all orders. Anything else?", random.Random(1), guard)
    assert out == "Good news. Anything else?" and guard.corrections[0]["kind"] == "policy"


def test_a_long_clause_is_let_out_in_parts() -> None:
    guard = StreamGuard(PRODUCTS)
    shown = guard.feed("word " * 100)
    assert shown.startswith("word word") and len(shown) >= 400
    assert guard.finish() and guard.text == "word " * 100


def test_markup_that_never_closes_holds_text_back_only_for_a_while() -> None:
    guard = StreamGuard(PRODUCTS)
    shown = guard.feed("so I can pick up <b" + " and more" * 40)
    assert shown == "so I can pick up"  # the tag may still close: nothing from it on goes out
    shown += guard.feed(" and more" * 40)  # far past the window the opener is text, and parts flow again
    assert len(shown) > 300 and "<b" in shown, shown
    guard = StreamGuard(PRODUCTS)
    shown = guard.feed("word " * 60 + "<b" + " and more" * 10)  # before an opener, a long clause still goes out
    assert shown.startswith("word word") and "<b" not in shown
    assert "<b" not in guard.finish() + guard.text  # closed by the end: an unclosed opener is dropped


def test_a_price_in_the_wrong_currency_is_corrected() -> None:
    mug = ProductDoc(sku="22712", title="Card Dolly Girl", category="Stationery", price=0.42, currency="GBP", stock=9)
    guard = StreamGuard([mug])
    out = stream("The Card Dolly Girl is $0.42, or £0.42 in other words. Also $0.42 on its own.",
                 random.Random(0), guard)
    assert out == "The Card Dolly Girl is GBP 0.42, or £0.42 in other words."
    assert [c["original"] for c in guard.corrections] == ["$0.42", "$0.42"]


@pytest.mark.parametrize(("model_text", "expected", "kind"), [
    ("Yes: the Strider Trail Shoe is 102.99, a great fit.", "Yes: the Strider Trail Shoe is $89.99, a great fit.",
     "price"),
    ("The Strider Trail Shoe for 99 bucks. Enjoy!", "The Strider Trail Shoe for $89.99. Enjoy!", "price"),
    ("Shipping is 4.99 this week. Enjoy!", "Enjoy!", "price"),
    ("The Strider Trail Shoe is 89.99 and in stock.", "The Strider Trail Shoe is 89.99 and in stock.", None),
    ("It comes in size 10 and 2 colours.", "It comes in size 10 and 2 colours.", None),
])
def test_a_bare_figure_that_reads_as_a_price_is_checked_like_one(model_text: str, expected: str,
                                                                 kind: str | None) -> None:
    guard = StreamGuard(PRODUCTS)
    assert stream(model_text, random.Random(3), guard) == expected
    assert [c["kind"] for c in guard.corrections] == ([kind] if kind else [])
