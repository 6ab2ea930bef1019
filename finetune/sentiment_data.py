"""Sentiment data: the real clothing reviews (ratings 1-2 negative, 3 neutral, 4-5 positive) and the demo store's."""

from __future__ import annotations

import csv
import gzip
import random
from dataclasses import dataclass
from pathlib import Path

from finetune.intents import Example

LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class SentimentSplits:
    train: list[Example]
    held: list[Example]  # early stopping, blend weights, decision thresholds, temperature
    test: list[Example]  # reported figures only; the real reviews come first
    skipped_rows: int
    real_test: int  # how many of ``test`` are real clothing reviews


def rating_label(rating: int) -> str:
    """Map a 1-5 star rating to a sentiment label."""
    if not 1 <= rating <= 5:
        raise ValueError(f"rating must be 1-5, got {rating}")
    return LABELS[0] if rating <= 2 else LABELS[1] if rating == 3 else LABELS[2]


def review_text(title: str, body: str) -> str:
    title, body = title.strip(), body.strip()
    return f"{title}. {body}" if title and body else title or body


def read_reviews(path: Path) -> tuple[list[Example], int]:
    """Examples from the clothing reviews file, and how many rows were unusable (no text, bad rating)."""
    out, skipped = [], 0
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            text = review_text(row.get("Title") or "", row.get("Review Text") or "")
            try:
                label = rating_label(int(row.get("Rating") or ""))
            except ValueError:
                skipped += 1
                continue
            if not text:
                skipped += 1
                continue
            out.append(Example(text, label))
    return out, skipped


def demo_reviews(seed: int = 7) -> list[tuple[str, Example]]:
    """(shopper, example) pairs from the demo store's reviews."""
    from retrieval.demo_store import generate

    return [(r.shopper, Example(r.text, rating_label(r.rating))) for r in generate(seed).reviews]


def sentiment_splits(data_dir: Path, seed: int = 0, test_share: float = 0.2,
                     held_share: float = 0.1) -> SentimentSplits:
    """Real reviews split at random (they carry no time or reviewer); demo reviews split by shopper."""
    real, skipped = read_reviews(data_dir / "clothing_reviews" / "reviews.csv.gz")
    rng = random.Random(seed)
    rng.shuffle(real)
    n_test, n_held = int(len(real) * test_share), int(len(real) * held_share)
    test, held, train = real[:n_test], real[n_test: n_test + n_held], real[n_test + n_held:]
    for shopper, ex in demo_reviews():
        bucket = random.Random(f"{seed}:{shopper}").random()
        (test if bucket < test_share else held if bucket < test_share + held_share else train).append(ex)
    rng.shuffle(train)
    return SentimentSplits(train, held, test, skipped, n_test)
