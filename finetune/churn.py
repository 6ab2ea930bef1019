"""Churn: will a shopper make no purchase in the 90 days after a cut-off?

Examples come from Online Retail customers and demo-store shoppers at fixed
cut-off dates. Training cut-offs end their label window before the test
cut-off, so the test period is never seen; the held-out split (early stopping,
temperature) is a share of the training shoppers.

The model reads the rendered history and standardised features in one head:
RFM plus the shopper's purchase rhythm (tenure, how overdue the next order is
against their own mean gap, that gap). The head starts as a logistic
regression on those features (text weights at zero), and early stopping scores
that start too, so fine-tuning can only keep or improve its held-out AUC. The
baseline it is reported against is RFM + logistic regression, on the same split.

Lifetime features drift: at the training cut-offs a shopper's recorded history
is at most a few months long, at the test cut-off twice that, so the same
order count means a less loyal shopper. The ranking survives this, the
probability scale does not. So, at the test cut-off and without its labels,
a reference model on fixed look-back features (which mean the same at any
date) estimates today's churn rate, and the model's intercept is shifted until
its mean prediction over today's shoppers matches that estimate.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bot.shopper_history import (
    CHURN_FEATURES,
    LOOKBACK_DAYS,
    RFM_FEATURES,
    HistoryEvent,
    churn_features,
    lookback,
    render,
)
from finetune.classifier import ClassifierArgs, new_model, write_run
from finetune.trainer import Batcher, Examples, predict_logits, train

HORIZON = timedelta(days=90)
RETAIL_TRAIN_CUTOFFS = (datetime(2011, 1, 10), datetime(2011, 2, 10), datetime(2011, 3, 10))
RETAIL_TEST_CUTOFF = datetime(2011, 6, 10)  # labels end 2011-09-08, inside the data
DEMO_TRAIN_DAYS, DEMO_TEST_DAYS = 60, 150
REFERENCE_STEP = timedelta(days=7)  # the reference model's cut-offs: weekly, each with a full look-back


@dataclass(frozen=True)
class ChurnExample:
    shopper: str
    text: str
    features: list[float]
    churned: int
    source: str
    window: list[float]  # :func:`lookback` features, for the reference model


def online_retail_histories(path: Path) -> tuple[dict[str, list[HistoryEvent]], int]:
    """Purchases and cancellations (as returns) per identified customer, and the count of unusable rows."""
    from retrieval.datasets import read_online_retail_lines

    lines, skipped = read_online_retail_lines(path)
    out: dict[str, list[HistoryEvent]] = defaultdict(list)
    for line in lines:
        title = line.description.title() or line.stock_code or "item"
        out[line.customer].append(HistoryEvent(line.at, line.kind, title, abs(line.quantity) * line.unit_price,
                                               line.invoice))
    return dict(out), skipped


def demo_histories(seed: int = 7) -> tuple[dict[str, list[HistoryEvent]], datetime]:
    """The demo store's shoppers (views, carts, purchases, returns, reviews) and its first day."""
    from retrieval.demo_store import EPOCH, generate

    store = generate(seed)
    titles = {p.sku: p.title for p in store.products}
    out: dict[str, list[HistoryEvent]] = defaultdict(list)
    for e in store.events:
        if e.type in ("view", "cart", "purchase", "return", "review") and e.sku:
            value = float(e.value or 0.0)
            out[e.shopper].append(HistoryEvent(e.at, e.type, titles.get(e.sku, e.sku), value, e.session))
    return dict(out), EPOCH.replace(tzinfo=None)


def _at_cutoff(histories: dict[str, list[HistoryEvent]], cutoff: datetime,
               shoppers: Iterable[str] | None = None) -> Iterable[tuple[str, list[HistoryEvent], int]]:
    """(shopper, events before ``cutoff``, churned) for each shopper who bought before it."""
    for shopper in sorted(shoppers if shoppers is not None else histories):
        events = [e if e.at.tzinfo is None else HistoryEvent(e.at.replace(tzinfo=None), e.kind, e.title, e.value,
                                                              e.order) for e in histories.get(shopper, [])]
        before = [e for e in events if e.at < cutoff]
        if not any(e.kind == "purchase" for e in before):
            continue
        came_back = any(e.kind == "purchase" and cutoff <= e.at < cutoff + HORIZON for e in events)
        yield shopper, before, int(not came_back)


def examples_at(histories: dict[str, list[HistoryEvent]], cutoff: datetime, source: str,
                shoppers: Iterable[str] | None = None) -> list[ChurnExample]:
    """One example per shopper who bought before ``cutoff``; churned = no purchase in the next 90 days."""
    return [ChurnExample(shopper, render(before, cutoff), churn_features(before, cutoff), churned, source,
                         lookback(before, cutoff))
            for shopper, before, churned in _at_cutoff(histories, cutoff, shoppers)]


def reference_cutoffs(first: datetime, test: datetime) -> list[datetime]:
    """Weekly cut-offs with a full look-back window behind them and their label window before ``test``."""
    out, at = [], first + timedelta(days=LOOKBACK_DAYS)
    while at + HORIZON <= test:
        out.append(at)
        at += REFERENCE_STEP
    return out


def lookback_rows(histories: dict[str, list[HistoryEvent]], cutoffs: Iterable[datetime]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Look-back features and labels at each cut-off, for the reference model."""
    rows = [(lookback(before, c), churned) for c in cutoffs for _, before, churned in _at_cutoff(histories, c)]
    return np.array([r for r, _ in rows]), np.array([y for _, y in rows])


@dataclass
class ChurnData:
    train: list[ChurnExample]
    held: list[ChurnExample]
    test: list[ChurnExample]
    reference: dict[str, tuple[np.ndarray, np.ndarray]]  # by source: look-back features and labels
    skipped: int


def churn_splits(data_dir: Path, seed: int = 0, held_share: float = 0.15) -> ChurnData:
    """Time-split by cut-off, held-out split by shopper, and each source's reference rows."""
    retail, skipped = online_retail_histories(data_dir / "online_retail" / "transactions_until_2011-09-09.csv.gz")
    demo, start = demo_histories()
    held_ids = {s for s in list(retail) + list(demo) if random.Random(f"{seed}:{s}").random() < held_share}
    pool = [ex for c in RETAIL_TRAIN_CUTOFFS for ex in examples_at(retail, c, "online_retail")]
    pool += examples_at(demo, start + timedelta(days=DEMO_TRAIN_DAYS), "demo")
    demo_test = start + timedelta(days=DEMO_TEST_DAYS)
    test = examples_at(retail, RETAIL_TEST_CUTOFF, "online_retail") + examples_at(demo, demo_test, "demo")
    train_ex = [e for e in pool if e.shopper not in held_ids]
    held = [e for e in pool if e.shopper in held_ids]
    random.Random(seed).shuffle(train_ex)
    first_retail = min(e.at for events in retail.values() for e in events)
    reference = {
        "online_retail": lookback_rows(retail, reference_cutoffs(first_retail, RETAIL_TEST_CUTOFF)),
        "demo": lookback_rows(demo, reference_cutoffs(start, demo_test)),
    }
    return ChurnData(train_ex, held, test, reference, skipped)


def prior_offset(logits: np.ndarray, target_rate: float) -> float:
    """The shift ``b`` of the churn logit that makes ``mean(sigmoid(logits + b))`` equal ``target_rate``."""
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if float(np.mean(1 / (1 + np.exp(-(logits + mid))))) < target_rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def reference_predictions(reference: tuple[np.ndarray, np.ndarray], today: np.ndarray) -> np.ndarray:
    """P(churn) for today's shoppers from the reference model (look-back features, past labels);
    their mean is the estimate of today's churn rate."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = reference
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y)
    return np.asarray(model.predict_proba(today)[:, 1])


def auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score)) if len(set(y.tolist())) == 2 else float("nan")


def run_churn(args: ClassifierArgs, say: Callable[[str], None]) -> Path:
    """Train the churn model and its RFM baseline on the same split; returns the model directory."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_curve

    from bot.text_classifier import ClassifierConfig, blend
    from finetune.report import (
        binary_calibration_error,
        expected_calibration_error,
        fit_temperature,
        plot_binary_calibration,
        plot_loss,
        plot_roc,
    )

    data = churn_splits(args.data_dir, args.seed)
    train_ex, held_ex, test_ex = data.train, data.held, data.test
    if args.sample:  # a quick run: fewer shoppers to learn from, and a random share of the test cut-off
        train_ex, held_ex = train_ex[: args.sample], held_ex[: max(200, args.sample // 4)]
        test_ex = random.Random(args.seed).sample(test_ex, min(len(test_ex), 2 * args.sample))
    say(f"[classifier] churn: {len(train_ex)} train, {len(held_ex)} held-out, {len(test_ex)} test "
        f"({sum(e.churned for e in test_ex) / max(1, len(test_ex)):.0%} churned); "
        f"{data.skipped} unusable rows skipped")
    raw = np.array([e.features for e in train_ex])
    mean, std = raw.mean(axis=0), raw.std(axis=0) + 1e-6

    def examples(xs: list[ChurnExample]) -> Examples:
        feats = (np.array([e.features for e in xs]) - mean) / std
        return Examples([e.text for e in xs], np.array([e.churned for e in xs]), feats.astype(np.float32))

    train_d, held_d, test_d = examples(train_ex), examples(held_ex), examples(test_ex)
    assert train_d.features is not None and test_d.features is not None
    n_rfm = len(RFM_FEATURES)  # the baseline reads the first columns only
    base = LogisticRegression(max_iter=1000).fit(train_d.features[:, :n_rfm], train_d.labels)
    start = LogisticRegression(max_iter=1000).fit(train_d.features, train_d.labels)
    model, tokenizer = new_model(2, args.layers, n_features=len(CHURN_FEATURES))
    with torch.no_grad():  # start from the features' regression: text weights 0
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.weight[1, -len(CHURN_FEATURES):] = torch.tensor(start.coef_[0], dtype=torch.float32)
        model.head.bias[1] = float(start.intercept_[0])

    def score(logits: np.ndarray, y: np.ndarray) -> float:
        return auc(y, logits[:, 1] - logits[:, 0])

    started = time.perf_counter()
    cfg = args.train_config()
    result = train(model, tokenizer, train_d, held_d, cfg, score, desc="churn", say=say)
    held_logits, _ = predict_logits(model, Batcher(tokenizer, held_d, cfg.max_len))
    test_logits, test_loss = predict_logits(model, Batcher(tokenizer, test_d, cfg.max_len))
    config = ClassifierConfig(task="churn", labels=["stays", "churns"], max_len=cfg.max_len,
                              feature_names=list(CHURN_FEATURES), feature_mean=mean.tolist(), feature_std=std.tolist())
    config.temperature = fit_temperature(held_logits, held_d.labels)
    held_ece = binary_calibration_error(blend(config, held_logits, None)[:, 1], held_d.labels)
    unshifted = blend(config, test_logits, None)[:, 1]
    base_p = base.predict_proba(test_d.features[:, :n_rfm])[:, 1]
    start_p = start.predict_proba(test_d.features)[:, 1]
    y = test_d.labels
    probs = unshifted.copy()
    by_source: dict[str, Any] = {}
    offsets: dict[str, float] = {}

    def ece(p: np.ndarray, yy: np.ndarray) -> float:
        return round(binary_calibration_error(p, yy), 4)

    for source in ("online_retail", "demo"):
        sel = np.array([e.source == source for e in test_ex])
        if not sel.any():
            continue
        today = np.array([e.window for e in test_ex if e.source == source])
        ref_p = reference_predictions(data.reference[source], today)
        rate = float(ref_p.mean())
        logit = np.log(unshifted[sel]) - np.log1p(-unshifted[sel])
        offsets[source] = prior_offset(logit, rate)
        probs[sel] = 1 / (1 + np.exp(-(logit + offsets[source])))
        by_source[source] = {
            "examples": int(sel.sum()), "churn_rate": round(float(y[sel].mean()), 4),
            "estimated_churn_rate": round(rate, 4), "prior_offset": round(offsets[source], 4),
            "mean_predicted": round(float(probs[sel].mean()), 4),
            "auc": round(auc(y[sel], probs[sel]), 4), "baseline_auc": round(auc(y[sel], base_p[sel]), 4),
            "ece": ece(probs[sel], y[sel]), "baseline_ece": ece(base_p[sel], y[sel]),
            "ece_unshifted": ece(unshifted[sel], y[sel]),
            "ece_top_label": round(expected_calibration_error(np.c_[1 - probs[sel], probs[sel]], y[sel]), 4),
            "features_logreg": {"auc": round(auc(y[sel], start_p[sel]), 4), "ece": ece(start_p[sel], y[sel])},
            "reference_lookback": {"auc": round(auc(y[sel], ref_p), 4), "ece": ece(ref_p, y[sel]),
                                   "train_rows": len(data.reference[source][1])}}
    # the saved model serves the demo store, so it carries that population's offset
    served = offsets.get("demo", 0.0)
    config.bias = [0.0, served * config.temperature]
    retail = by_source.get("online_retail") or next(iter(by_source.values()))
    metrics: dict[str, Any] = {
        "task": "churn", "auc": retail["auc"], "baseline_auc": retail["baseline_auc"], "ece": retail["ece"],
        "ece_definition": "binary: |observed churn rate - mean P(churn)| over 15 equal-width bins of P(churn)",
        "baseline_rfm_logreg": {"auc": retail["baseline_auc"], "ece": retail["baseline_ece"]},
        "datasets": by_source, "auc_all": round(auc(y, probs), 4), "test_loss": round(test_loss, 4),
        "temperature": round(config.temperature, 4), "served_prior_offset": round(served, 4),
        "train_churn_rate": round(float(train_d.labels.mean()), 4),
        "held_auc_start": round(result.history["val_score"][0], 4), "held_auc_best": round(result.best_score, 4),
        "held_ece": round(held_ece, 4), "steps": result.steps,
        "skipped_rows": data.skipped, "train_minutes": round((time.perf_counter() - started) / 60, 2),
        "train_examples": len(train_d), "test_examples": len(test_d), "labels": config.labels,
        "layers": args.layers,
        "cutoffs": {"train": [c.date().isoformat() for c in RETAIL_TRAIN_CUTOFFS],
                    "test": RETAIL_TEST_CUTOFF.date().isoformat(), "horizon_days": HORIZON.days,
                    "demo_train_day": DEMO_TRAIN_DAYS, "demo_test_day": DEMO_TEST_DAYS,
                    "lookback_days": LOOKBACK_DAYS},
        "first_loss": result.history["train_loss"][0] if result.history["train_loss"] else None,
        "last_loss": result.history["train_loss"][-1] if result.history["train_loss"] else None,
    }
    out = write_run(args, model, tokenizer, config, metrics, result.history)
    plot_loss(out, result.history)
    fpr, tpr, _ = roc_curve(y, probs)
    bfpr, btpr, _ = roc_curve(y, base_p)
    plot_roc(out, {"text + RFM + rhythm (fine-tuned)": (fpr, tpr, metrics["auc_all"]),
                   "RFM + logistic regression": (bfpr, btpr, round(auc(y, base_p), 4))})
    retail_sel = np.array([e.source == "online_retail" for e in test_ex])
    plot_binary_calibration(out, {"fine-tuned, prior-shifted": probs[retail_sel],
                           "fine-tuned, before the shift": unshifted[retail_sel],
                           "RFM + logistic regression": base_p[retail_sel]}, y[retail_sel])
    say(f"[classifier] churn: AUC {metrics['auc']} (RFM baseline {metrics['baseline_auc']}), "
        f"ECE {metrics['ece']} (before the prior shift {retail['ece_unshifted']}); saved {out}")
    return out
