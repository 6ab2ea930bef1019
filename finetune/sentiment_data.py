"""Sentiment data: real clothing reviews (ratings 1-2 negative, 3 neutral, 4-5 positive), the demo store's
reviews, and the chat register (rated tweet-like messages, shop chat; see ``finetune.chat_sentiment``)."""

from __future__ import annotations

import csv
import gzip
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from finetune.intents import Example

LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class SentimentSplits:
    train: list[Example]
    held: list[Example]  # early stopping, blend weights, decision thresholds, temperature
    test: list[Example]  # reported figures only
    skipped_rows: int
    test_source: list[str]  # per test example: "reviews", "demo_reviews", "chat" (tweets) or "shop_chat"
    held_source: list[str]  # per held-out example: "reviews" (real and demo) or "chat" (tweets and shop chat)

    def source(self, name: str) -> list[int]:
        """Indices of the test examples from one source."""
        return [i for i, s in enumerate(self.test_source) if s == name]


def rating_label(rating: int) -> str:
    """Map a 1-5 star rating to a sentiment label."""
    if not 1 <= rating <= 5:
        raise ValueError(f"rating must be 1-5, got {rating}")
    return LABELS[0] if rating <= 2 else LABELS[1] if rating == 3 else LABELS[2]


def review_text(title: str, body: str) -> str:
    title, body = title.strip(), body.strip()
    return f"{title}. {body}" if title and body else title or body


def labelled(rows: Iterable[dict[str, str]], text: Callable[[dict[str, str]], str],
             label: Callable[[dict[str, str]], str]) -> tuple[list[Example], int]:
    """Examples from table rows, and how many rows had no text or a label that does not parse."""
    out, skipped = [], 0
    for row in rows:
        body = text(row).strip()
        try:
            value = label(row)
        except ValueError:
            skipped += 1
            continue
        if not body:
            skipped += 1
            continue
        out.append(Example(body, value))
    return out, skipped


def read_reviews(path: Path) -> tuple[list[Example], int]:
    """Examples from the clothing reviews file, and how many rows were unusable (no text, bad rating)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return labelled(csv.DictReader(fh), lambda r: review_text(r.get("Title") or "", r.get("Review Text") or ""),
                        lambda r: rating_label(int(r.get("Rating") or "")))


def demo_reviews(seed: int = 7) -> list[tuple[str, Example]]:
    """(shopper, example) pairs from the demo store's reviews."""
    from retrieval.demo_store import generate

    return [(r.shopper, Example(r.text, rating_label(r.rating))) for r in generate(seed).reviews]


def _split(examples: list[Example], seed: int, test_share: float, held_share: float
           ) -> tuple[list[Example], list[Example], list[Example]]:
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
    from finetune.chat_sentiment import SHOP_TEST, read_labelled_tsv, read_tweets, shop_chat

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
