"""Sentiment data: real clothing reviews (ratings 1-2 negative, 3 neutral, 4-5 positive), the demo store's
reviews, and the chat register (rated tweet-like messages, shop chat; see ``finetune.chat_sentiment``)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from retrieval.datasets import SENTIMENTS, LabelledText, rating_label, read_reviews

LABELS = SENTIMENTS


@dataclass(frozen=True)
class SentimentSplits:
    train: list[LabelledText]
    held: list[LabelledText]  # early stopping, blend weights, decision thresholds, temperature
    test: list[LabelledText]  # reported figures only
    skipped_rows: int
    test_source: list[str]  # per test example: "reviews", "demo_reviews", "chat" (tweets) or "shop_chat"
    held_source: list[str]  # per held-out example: "reviews" (real and demo) or "chat" (tweets and shop chat)

    def source(self, name: str) -> list[int]:
        """Indices of the test examples from one source."""
        return [i for i, s in enumerate(self.test_source) if s == name]


def demo_reviews(seed: int = 7) -> list[tuple[str, LabelledText]]:
    """(shopper, example) pairs from the demo store's reviews."""
    from retrieval.demo_store import generate

    return [(r.shopper, LabelledText(r.text, rating_label(r.rating))) for r in generate(seed).reviews]


def _split(examples: list[LabelledText], seed: int, test_share: float, held_share: float
           ) -> tuple[list[LabelledText], list[LabelledText], list[LabelledText]]:
    rows = list(examples)
    random.Random(seed).shuffle(rows)
    n_test, n_held = int(len(rows) * test_share), int(len(rows) * held_share)
    return rows[n_test + n_held:], rows[n_test: n_test + n_held], rows[:n_test]


def sentiment_splits(data_dir: Path, seed: int = 0, test_share: float = 0.2, held_share: float = 0.1,
                     chat_repeat: int = 2) -> SentimentSplits:
    """Reviews and rated chat messages split at random (no time or author to split by); demo reviews split by
    shopper; generated shop chat trains and tunes only, and the hand-written shop chat only tests.

    Chat examples are repeated ``chat_repeat`` times in training: reviews outnumber them about five to one.
    """
    from finetune.chat_sentiment import SHOP_TEST, read_labelled_tsv, shop_chat
    from retrieval.datasets import read_tweets

    real, skipped = read_reviews(data_dir / "clothing_reviews" / "reviews.csv.gz")
    tweets, skipped_tweets = read_tweets(data_dir / "chat_sentiment" / "tweets.tsv")
    train, held, test = _split(real, seed, test_share, held_share)
    source = ["reviews"] * len(test)
    for shopper, ex in demo_reviews():
        bucket = random.Random(f"{seed}:{shopper}").random()
        if bucket < test_share:
            test.append(ex)
            source.append("demo_reviews")
        else:
            (held if bucket < test_share + held_share else train).append(ex)
    chat_train, chat_held, chat_test = _split(tweets, seed, test_share, held_share)
    shop_train, shop_held, _ = _split(shop_chat(seed=seed), seed, 0.0, 0.15)
    shop_test = read_labelled_tsv(SHOP_TEST)
    train += (chat_train + shop_train) * chat_repeat
    held_source = ["reviews"] * len(held) + ["chat"] * (len(chat_held) + len(shop_held))
    held += chat_held + shop_held
    test += chat_test + shop_test
    source += ["chat"] * len(chat_test) + ["shop_chat"] * len(shop_test)
    random.Random(seed).shuffle(train)
    return SentimentSplits(train, held, test, skipped + skipped_tweets, source, held_source)
