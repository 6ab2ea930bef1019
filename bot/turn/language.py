"""The shopper's language, from a language-identification model made for short text (py3langid), not from the
generator: the 135M model learned "I only speak English" from its training dialogs and says it to English
questions too.

Short shop chat is hard to place ("ok", "thx", "second" read as anything), so a message counts as another
language only when it is long enough and the identifier is sure (:data:`MIN_PROBABILITY`); otherwise the
conversation keeps the language it had, else the store's default. English shopping text is never taken for
another language (tests/bot/test_language.py reads every phrasing of the conversation suite).
"""

from __future__ import annotations

import re
from functools import lru_cache

LANGUAGES = ("en", "es", "fr", "de", "zh")
"""The languages the identifier chooses among: the store's (English) and those issue 38 answers in."""
DEFAULT = "en"
MIN_PROBABILITY = 0.8
"""How sure the identifier must be before a message counts as another language than the conversation's."""
MIN_WORDS = 3
"""Fewer words than this (or CJK characters fewer than 2) keep the conversation's language."""
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


@lru_cache(maxsize=1)
def _identifier():  # type: ignore[no-untyped-def]
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(list(LANGUAGES))
    return ident


def preload() -> None:
    """Load the identifier's model (half a second) before the first turn needs it."""
    _identifier()


def language_of(text: str, earlier: str | None = None) -> str:
    """The message's language code: the identifier's when it is sure of a long enough message, else ``earlier``
    (the conversation's so far), else :data:`DEFAULT`."""
    long_enough = len(text.split()) >= MIN_WORDS or len(_CJK.findall(text)) >= 2
    if long_enough:
        lang, probability = _identifier().classify(text)
        if lang == DEFAULT or probability >= MIN_PROBABILITY:
            return str(lang)
    return earlier or DEFAULT
