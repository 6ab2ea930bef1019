"""Readers of the public datasets in ``../shared/data``: the one place each file format is parsed.

- ``bitext_intents/*.csv``: customer-service utterances with their intent.
- ``clothing_reviews/reviews.csv.gz``: product reviews rated 1-5 stars.
- ``chat_sentiment/tweets.tsv``: short messages with a mean rating of -4..+4.
- ``online_retail/*.csv.gz``: the UCI Online Retail transaction log.

The readers return plain records; what a job makes of them (classifier
examples, churn histories, recommendation events) lives with the job.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

SENTIMENTS = ("negative", "neutral", "positive")


@dataclass(frozen=True, slots=True)
class LabelledText:
    text: str
    label: str


def labelled(rows: Iterable[dict[str, str]], text: Callable[[dict[str, str]], str],
             label: Callable[[dict[str, str]], str]) -> tuple[list[LabelledText], int]:
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
        out.append(LabelledText(body, value))
    return out, skipped


def read_bitext(path: Path) -> list[LabelledText]:
    """(utterance, intent) pairs of a Bitext split; rows missing either are left out."""
    with path.open(newline="", encoding="utf-8") as fh:
        return [LabelledText(r["utterance"].strip(), r["intent"].strip()) for r in csv.DictReader(fh)
                if r.get("utterance") and r.get("intent")]


def rating_label(rating: int) -> str:
    """A 1-5 star rating as a sentiment: 1-2 negative, 3 neutral, 4-5 positive."""
    if not 1 <= rating <= 5:
        raise ValueError(f"rating must be 1-5, got {rating}")
    return SENTIMENTS[0] if rating <= 2 else SENTIMENTS[1] if rating == 3 else SENTIMENTS[2]


def review_text(title: str, body: str) -> str:
    title, body = title.strip(), body.strip()
    return f"{title}. {body}" if title and body else title or body


def read_reviews(path: Path) -> tuple[list[LabelledText], int]:
    """Sentiment examples from the clothing reviews, and how many rows were unusable (no text, bad rating)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return labelled(csv.DictReader(fh), lambda r: review_text(r.get("Title") or "", r.get("Review Text") or ""),
                        lambda r: rating_label(int(r.get("Rating") or "")))


def rating_to_label(mean_rating: float) -> str:
    """The data README's mapping of a -4..+4 mean rating to a sentiment."""
    if not -4.0 <= mean_rating <= 4.0:
        raise ValueError(f"mean rating must be within -4..+4, got {mean_rating}")
    return "negative" if mean_rating <= -0.5 else "positive" if mean_rating >= 0.5 else "neutral"


def read_tweets(path: Path) -> tuple[list[LabelledText], int]:
    """Sentiment examples from ``tweets.tsv`` (id, mean_rating, text) and how many rows were unusable."""
    with path.open(encoding="utf-8", newline="") as fh:
        return labelled(csv.DictReader(fh, delimiter="\t"), lambda r: r.get("text") or "",
                        lambda r: rating_to_label(float(r.get("mean_rating") or "nan")))


@dataclass(frozen=True, slots=True)
class RetailLine:
    """One invoice line of an identified customer; a cancellation ("C" invoice or negative quantity) is a return."""

    customer: str
    stock_code: str  # as written in the file
    description: str
    invoice: str
    at: datetime
    quantity: int
    unit_price: float

    @property
    def kind(self) -> str:
        return "return" if self.invoice.startswith("C") or self.quantity < 0 else "purchase"


def read_online_retail_lines(path: Path) -> tuple[list[RetailLine], int]:
    """The invoice lines that name a customer, and how many such lines had a date, quantity or price that does not parse.

    Lines without a customer id (about a quarter of the log) are left out and not counted.
    """
    out: list[RetailLine] = []
    skipped = 0
    with gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
        for row in csv.DictReader(fh):
            customer = (row.get("CustomerID") or "").strip()
            if not customer:
                continue
            try:
                at = datetime.strptime(row["InvoiceDate"], "%Y-%m-%d %H:%M:%S")
                qty, price = int(row["Quantity"]), float(row["UnitPrice"])
            except (ValueError, KeyError, TypeError):
                skipped += 1
                continue
            out.append(RetailLine(customer, (row.get("StockCode") or "").strip(), (row.get("Description") or "").strip(),
                                  row.get("InvoiceNo") or "", at, qty, price))
    return out, skipped
