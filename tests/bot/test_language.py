"""The shopper's language from py3langid: English shop chat stays English, other languages are told apart."""

from __future__ import annotations

import pytest

from bot.bench.conversation import phrasings
from bot.turn.language import language_of


def english_phrasings() -> list[str]:
    fill = {"kind": "hiking boots", "budget": "$120", "ordinal": "second", "n": 2, "shop": "amazon", "low": 30,
            "title": "Timberline Waterproof Hiking Boot (olive)", "email": "a@b.com", "name": "Bob Jones",
            "absent": "a sofa", "pick": "navy", "colour": "teal"}
    return [t.format(**fill) for ts in phrasings().values() for t in ts]


def test_english_shop_chat_is_never_taken_for_another_language() -> None:
    extra = ["cheapest kitchen appliance please", "do u have any hiking boots", "is the first one in stock?",
             "second", "ok", "thx", "hi", "lol", "gracias", "where the hell is my order??"]
    wrong = [t for t in english_phrasings() + extra if language_of(t) != "en"]
    assert wrong == []


@pytest.mark.parametrize(("text", "lang"), [
    ("¿Tienen botas de montaña por menos de 100 dólares?", "es"), ("Hola, busco café barato", "es"),
    ("Je cherche une veste imperméable", "fr"), ("Haben Sie Wanderschuhe unter 100 Euro?", "de"),
    ("有没有便宜的咖啡机？", "zh")])
def test_other_languages_are_told_apart(text: str, lang: str) -> None:
    assert language_of(text) == lang


def test_a_short_message_keeps_the_conversations_language() -> None:
    assert language_of("ok", earlier="es") == "es" and language_of("gracias", earlier="es") == "es"
    assert language_of("second") == "en"
