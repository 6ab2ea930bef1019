"""Intent data: the Bitext customer-service utterances plus product questions from the demo store."""

from __future__ import annotations

import random
from pathlib import Path

from retrieval.datasets import LabelledText, read_bitext

PRODUCT_SEARCH = "product_search"
RETURN_ITEM = "return_item"  # Bitext has refunds but no returns: "how do I send this back?"
TEMPLATES = (
    "do you have {feature} {kind}s?",
    "I'm looking for a {kind} for {use}",
    "recommend a {kind} under ${price}",
    "any {feature} {kind} in stock?",
    "what {kind} would you suggest for {use}?",
    "show me {brand} {kind}s",
    "which {kind} is best for {use}",
    "need a {feature} {kind}, budget around {price} dollars",
    "is there a cheaper {kind}?",
    "compare {brand} {kind}s please",
    "what would you recommend for me?",
    "any suggestions for me?",
    "what should I buy next",
    "recommend something I'd like",
    "gift ideas for someone who loves {use}",
    "what's popular right now?",
    "surprise me with something for {use}",
)
RETURN_TEMPLATES = (
    "how do I return this?",
    "how can I return my {kind}",
    "I want to send the {kind} back",
    "can I return an item I bought",
    "what is your return policy",
    "the {kind} doesn't fit, can I return it?",
    "how do returns work",
    "I'd like to return my order",
    "where do I get a return label",
    "is it possible to send back a {feature} {kind}?",
)


def product_questions(n: int, seed: int) -> list[LabelledText]:
    """Shopper questions about products, drawn from the demo store's vocabulary."""
    from retrieval.demo_store import CATEGORIES

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        c = rng.choice(CATEGORIES)
        text = rng.choice(TEMPLATES).format(feature=rng.choice(c.features), kind=rng.choice(c.kinds).lower(),
                                            use=rng.choice(c.uses), brand=rng.choice(c.brands),
                                            price=rng.choice((20, 35, 50, 80, 100, 150, 300)))
        out.append(LabelledText(text, PRODUCT_SEARCH))
    return out


def return_questions(n: int, seed: int) -> list[LabelledText]:
    """Shoppers asking how to send something back."""
    from retrieval.demo_store import CATEGORIES

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        c = rng.choice(CATEGORIES)
        text = rng.choice(RETURN_TEMPLATES).format(feature=rng.choice(c.features), kind=rng.choice(c.kinds).lower())
        out.append(LabelledText(text, RETURN_ITEM))
    return out


def intent_splits(data_dir: Path, seed: int = 0) -> tuple[list[LabelledText], list[LabelledText], list[LabelledText]]:
    """(train, early-stopping split, test): Bitext train (90/10) + its validation file as test."""
    rng = random.Random(seed)
    train = (read_bitext(data_dir / "bitext_intents" / "train.csv") + product_questions(300, seed)
             + return_questions(220, seed))
    test = (read_bitext(data_dir / "bitext_intents" / "validation.csv") + product_questions(40, seed + 1000)
            + return_questions(30, seed + 1000))
    rng.shuffle(train)
    cut = len(train) // 10
    return train[cut:], train[:cut], test
