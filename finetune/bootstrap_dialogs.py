"""The bootstrap dialogs: a store's first training set, written from its catalog and configuration.

Every kind of turn the assistant meets is in the mix, in rough proportion to how often
shoppers send it: product questions (budgets, ranges, features, colour, stock, "cheapest",
"best", "compare A and B", follow-ups, things the store does not sell) from
:mod:`finetune.catalog_dialogs`, and order, policy, upset, discount, injection,
other-language and human-agent turns from :mod:`finetune.service_dialogs`. A share of the
prompts carries a shopper profile, as serving's do for shoppers with history.

What stays out of training (``Example.holdout``): the held-out phrasings, and every question
about one whole category (:class:`~finetune.catalog_dialogs.HoldOut`); the export then also
holds out a share of products by hash.
"""

from __future__ import annotations

import dataclasses
import random
import sys
from collections.abc import Sequence

from finetune.catalog_dialogs import OTHER_CURRENCIES, HoldOut, catalog_example
from finetune.examples import Example
from finetune.service_dialogs import Voice, profile_text, service_turn
from retrieval.catalog import ProductDoc
from retrieval.search import ProductSearch

MIX = {"product": 0.62, "order": 0.08, "policy": 0.07, "upset": 0.06, "discount": 0.06, "injection": 0.05,
       "language": 0.03, "human": 0.03}
PROFILE_SHARE = 0.4


def bootstrap_examples(search: ProductSearch, products: Sequence[ProductDoc], *, n: int, voice: Voice, k: int = 5,
                       seed: int = 0, other_currency_share: float = 0.3, progress: bool = True) -> list[Example]:
    """``n`` examples in the proportions of :data:`MIX`, held out as the module says."""
    from tqdm import tqdm

    if not products:
        raise ValueError("the catalog is empty: import products (aisle catalog import) or load the demo store")
    rng = random.Random(seed)
    hold = HoldOut.choose(products, seed)
    kinds, weights = list(MIX), list(MIX.values())
    out: list[Example] = []
    for i in tqdm(range(n), desc="bootstrap dialogs", file=sys.stderr, disable=not progress):
        kind = rng.choices(kinds, weights)[0]
        profile = profile_text(rng, products) if rng.random() < PROFILE_SHARE else None
        if kind == "product":
            p = rng.choice(products)
            currency = rng.choice([c for c in OTHER_CURRENCIES if c != p.currency]) \
                if rng.random() < other_currency_share else None
            out.append(catalog_example(search, products, p, id=f"bootstrap:{seed}:{i}", store_name=voice.store_name,
                                       rng=rng, hold=hold, k=k, currency=currency, profile=profile))
            continue
        turn = service_turn(kind, rng, search, products, voice, k)
        turn.record = dataclasses.replace(turn.record, profile=profile)
        out.append(turn.example(f"bootstrap:{seed}:{i}"))
    return out
