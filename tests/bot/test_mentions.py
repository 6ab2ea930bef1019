"""Product references: the model writes "[n]", the catalog writes the product; the guard drops numbers
that were not listed; the training export turns rendered mentions back into references."""

from __future__ import annotations

import random

import pytest

from bot.guard import StreamGuard, holes
from bot.mentions import MentionRenderer, as_references, mention_text, references, shopper_price
from bot.reply_text import ReplyText
from retrieval.catalog import ProductDoc

PRODUCTS = [
    ProductDoc(sku="RUN-00012", title="Strider Trail Shoe (blue)", category="Running", price=89.99, stock=7),
    ProductDoc(sku="HOM-00301", title="Nordic Wool Throw", category="Home", price=54.5, stock=0),
    ProductDoc(sku="22633", title="Hand Warmer Union Jack", category="Home & Gifts", price=2.1, stock=30,
               currency="GBP"),
    ProductDoc(sku="KIT-04410", title="Castline Skillet", category="Kitchen", price=1299.0, stock=3, currency="EUR"),
]


def streamed(text: str, seed: int = 0) -> tuple[str, ReplyText]:
    rng, writer = random.Random(seed), ReplyText(StreamGuard(PRODUCTS), MentionRenderer(PRODUCTS))
    out, i = "", 0
    while i < len(text):
        j = min(len(text), i + rng.randint(1, 5))
        out += writer.feed(text[i:j])
        i = j
    return out + writer.finish(), writer


@pytest.mark.parametrize(("price", "currency", "text"), [
    (9.99, "USD", "$9.99"), (1.25, "GBP", "£1.25"), (3.5, "EUR", "€3.50"), (1299.0, "USD", "$1,299.00"),
    (3.5, "CHF", "CHF 3.50")])
def test_prices_are_written_as_shoppers_write_them(price: float, currency: str, text: str) -> None:
    assert shopper_price(price, currency) == text


@pytest.mark.parametrize("seed", range(8))
def test_references_render_as_exact_title_and_price_however_the_stream_is_cut(seed: int) -> None:
    out, writer = streamed("Try [1], a light trail shoe. For the cold, [3] is cheap; [1] also comes in grey.", seed)
    assert out == ("Try Strider Trail Shoe (blue) ($89.99), a light trail shoe. For the cold, "
                   "Hand Warmer Union Jack (£2.10) is cheap; Strider Trail Shoe (blue) also comes in grey.")
    assert [(m["n"], m["sku"]) for m in writer.mentions] == [(1, "RUN-00012"), (3, "22633"), (1, "RUN-00012")]
    assert writer.corrections == []


def test_a_reference_to_a_number_not_listed_is_dropped_with_its_clause() -> None:
    writer = ReplyText(StreamGuard(PRODUCTS), MentionRenderer(PRODUCTS))
    out = writer.feed("I'd pick [2]. You could also try [7] for the cold. Anything else?") + writer.finish()
    assert out == "I'd pick Nordic Wool Throw ($54.50). Anything else?"
    assert [(c["kind"], c["replacement"]) for c in writer.corrections] == [("reference", "")]
    assert not holes(out)


def test_a_clause_already_begun_points_an_unlisted_reference_to_a_listed_product_not_yet_named() -> None:
    writer = ReplyText(StreamGuard(PRODUCTS), MentionRenderer(PRODUCTS))
    out = "".join(writer.feed(t) for t in ["I'd pick [2", "].", " You could also try", " [", "7", "]", " for the cold",
                                           ".", " Anything else?"]) + writer.finish()
    assert out == ("I'd pick Nordic Wool Throw ($54.50). You could also try Strider Trail Shoe (blue) ($89.99) for the "
                   "cold. Anything else?")
    assert writer.corrections == [{"kind": "reference", "original": "[7]", "replacement": "[1]"}]
    assert not holes(out)


def test_a_price_the_model_writes_after_a_reference_is_checked_against_that_product() -> None:
    out, writer = streamed("[4] is a great pan and costs €12.00 today.")
    assert out == "Castline Skillet (€1,299.00) is a great pan and costs EUR 1299.00 today."
    assert writer.corrections[0]["sku"] == "KIT-04410"


def test_words_before_a_reference_stream_at_once() -> None:
    writer = ReplyText(StreamGuard(PRODUCTS), MentionRenderer(PRODUCTS))
    assert writer.feed("My pick is [1] for ") == "My pick is Strider Trail Shoe (blue) ($89.99)"
    assert writer.feed("a") == ""  # a word still being written waits


def test_rendered_mentions_go_back_to_references_for_training() -> None:
    rendered = "Try Strider Trail Shoe (blue) ($89.99), or the Castline Skillet at EUR 1299.00. Nordic Wool Throw too."
    assert as_references(rendered, PRODUCTS) == "Try [1], or [4]. [2] too."
    assert references("[4] or [1], [9]", PRODUCTS) == [PRODUCTS[3], PRODUCTS[0]]
    assert mention_text(PRODUCTS[2]) == "Hand Warmer Union Jack (£2.10)"
