"""Churn: will a shopper make no purchase in the 90 days after a cut-off?

Examples come from Online Retail customers and demo-store shoppers at fixed
cut-off dates. Training cut-offs end their label window before the test
cut-off, so the test period is never seen; the held-out split (early stopping,
temperature) is a share of the training shoppers.

The model reads the rendered history and the standardised RFM features in one
head. The head starts as the RFM + logistic regression baseline (text weights
at zero), and early stopping scores that start too, so fine-tuning can only
keep or improve the baseline's held-out AUC.
"""

from __future__ import annotations

import csv
import gzip
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bot.shopper_history import RFM_FEATURES, HistoryEvent, render, rfm
from finetune.classifier import ClassifierArgs, new_model, write_run
from finetune.trainer import Batcher, Examples, predict_logits, train

HORIZON = timedelta(days=90)
RETAIL_TRAIN_CUTOFFS = (datetime(2011, 1, 10), datetime(2011, 2, 10), datetime(2011, 3, 10))
RETAIL_TEST_CUTOFF = datetime(2011, 6, 10)  # labels end 2011-09-08, inside the data
DEMO_TRAIN_DAYS, DEMO_TEST_DAYS = 60, 150


@dataclass(frozen=True)
class ChurnExample:
    shopper: str
    text: str
    features: list[float]
    churned: int
    source: str


def online_retail_histories(path: Path) -> tuple[dict[str, list[HistoryEvent]], int]:
    """Purchases and cancellations (as returns) per identified customer, and the count of unusable rows."""
    out: dict[str, list[HistoryEvent]] = defaultdict(list)
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
            title = (row.get("Description") or "").strip().title() or (row.get("StockCode") or "item")
            invoice = row.get("InvoiceNo") or ""
            kind = "return" if invoice.startswith("C") or qty < 0 else "purchase"
            out[customer].append(HistoryEvent(at, kind, title, abs(qty) * price, invoice))
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


def examples_at(histories: dict[str, list[HistoryEvent]], cutoff: datetime, source: str,
                shoppers: Iterable[str] | None = None) -> list[ChurnExample]:
    """One example per shopper who bought before ``cutoff``; churned = no purchase in the next 90 days."""
    out = []
    for shopper in sorted(shoppers if shoppers is not None else histories):
        events = [e if e.at.tzinfo is None else HistoryEvent(e.at.replace(tzinfo=None), e.kind, e.title, e.value,
                                                              e.order) for e in histories.get(shopper, [])]
        before = [e for e in events if e.at < cutoff]
        if not any(e.kind == "purchase" for e in before):
            continue
        came_back = any(e.kind == "purchase" and cutoff <= e.at < cutoff + HORIZON for e in events)
        out.append(ChurnExample(shopper, render(before, cutoff), rfm(before, cutoff), int(not came_back), source))
    return out


def churn_splits(data_dir: Path, seed: int = 0, held_share: float = 0.15
                 ) -> tuple[list[ChurnExample], list[ChurnExample], list[ChurnExample], int]:
    """(train, held-out, test, skipped rows): time-split by cut-off, held-out split by shopper."""
    retail, skipped = online_retail_histories(data_dir / "online_retail" / "transactions_until_2011-09-09.csv.gz")
    demo, start = demo_histories()
    held_ids = {s for s in list(retail) + list(demo) if random.Random(f"{seed}:{s}").random() < held_share}
    pool = [ex for c in RETAIL_TRAIN_CUTOFFS for ex in examples_at(retail, c, "online_retail")]
    pool += examples_at(demo, start + timedelta(days=DEMO_TRAIN_DAYS), "demo")
    test = examples_at(retail, RETAIL_TEST_CUTOFF, "online_retail")
    test += examples_at(demo, start + timedelta(days=DEMO_TEST_DAYS), "demo")
    train_ex = [e for e in pool if e.shopper not in held_ids]
    held = [e for e in pool if e.shopper in held_ids]
    random.Random(seed).shuffle(train_ex)
    return train_ex, held, test, skipped


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
        expected_calibration_error,
        fit_temperature,
        plot_calibration,
        plot_loss,
        plot_roc,
    )

    train_ex, held_ex, test_ex, skipped = churn_splits(args.data_dir, args.seed)
    if args.sample:  # a quick run: fewer shoppers to learn from, and a random share of the test cut-off
        train_ex, held_ex = train_ex[: args.sample], held_ex[: max(200, args.sample // 4)]
        test_ex = random.Random(args.seed).sample(test_ex, min(len(test_ex), 2 * args.sample))
    say(f"[classifier] churn: {len(train_ex)} train, {len(held_ex)} held-out, {len(test_ex)} test "
        f"({sum(e.churned for e in test_ex) / max(1, len(test_ex)):.0%} churned); {skipped} unusable rows skipped")
    raw = np.array([e.features for e in train_ex])
    mean, std = raw.mean(axis=0), raw.std(axis=0) + 1e-6

    def examples(xs: list[ChurnExample]) -> Examples:
        feats = (np.array([e.features for e in xs]) - mean) / std
        return Examples([e.text for e in xs], np.array([e.churned for e in xs]), feats.astype(np.float32))

    train_d, held_d, test_d = examples(train_ex), examples(held_ex), examples(test_ex)
    base = LogisticRegression(max_iter=1000).fit(train_d.features, train_d.labels)
    model, tokenizer = new_model(2, args.layers, n_features=len(RFM_FEATURES))
    with torch.no_grad():  # start from the baseline: text weights 0, RFM weights from the regression
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.weight[1, -len(RFM_FEATURES):] = torch.tensor(base.coef_[0], dtype=torch.float32)
        model.head.bias[1] = float(base.intercept_[0])

    def score(logits: np.ndarray, y: np.ndarray) -> float:
        return auc(y, logits[:, 1] - logits[:, 0])

    started = time.perf_counter()
    cfg = args.train_config()
    result = train(model, tokenizer, train_d, held_d, cfg, score, desc="churn", say=say)
    held_logits, _ = predict_logits(model, Batcher(tokenizer, held_d, cfg.max_len))
    test_logits, test_loss = predict_logits(model, Batcher(tokenizer, test_d, cfg.max_len))
    config = ClassifierConfig(task="churn", labels=["stays", "churns"], max_len=cfg.max_len,
                              feature_names=list(RFM_FEATURES), feature_mean=mean.tolist(), feature_std=std.tolist())
    config.temperature = fit_temperature(held_logits, held_d.labels)
    probs = blend(config, test_logits, None)
    base_p = base.predict_proba(test_d.features)[:, 1]
    y = test_d.labels
    by_source: dict[str, Any] = {}
    train_rate = float(train_d.labels.mean())

    def ece(p: np.ndarray, yy: np.ndarray) -> float:
        return round(expected_calibration_error(np.c_[1 - p, p], yy), 4)

    for source in ("online_retail", "demo"):
        sel = np.array([e.source == source for e in test_ex])
        if sel.any():
            by_source[source] = {
                "examples": int(sel.sum()), "churn_rate": round(float(y[sel].mean()), 4),
                "mean_predicted": round(float(probs[sel, 1].mean()), 4),
                "auc": round(auc(y[sel], probs[sel, 1]), 4), "baseline_auc": round(auc(y[sel], base_p[sel]), 4),
                "ece": ece(probs[sel, 1], y[sel]), "baseline_ece": ece(base_p[sel], y[sel])}
    retail = by_source.get("online_retail") or next(iter(by_source.values()))
    metrics: dict[str, Any] = {
        "task": "churn", "auc": retail["auc"], "baseline_auc": retail["baseline_auc"], "ece": retail["ece"],
        "baseline_rfm_logreg": {"auc": retail["baseline_auc"], "ece": retail["baseline_ece"]},
        "datasets": by_source, "auc_all": round(auc(y, probs[:, 1]), 4), "test_loss": round(test_loss, 4),
        "temperature": round(config.temperature, 4), "train_churn_rate": round(train_rate, 4), "held_auc_start": round(result.history["val_score"][0], 4),
        "held_auc_best": round(result.best_score, 4),
        "held_ece": ece(blend(config, held_logits, None)[:, 1], held_d.labels), "steps": result.steps, "skipped_rows": skipped,
        "train_minutes": round((time.perf_counter() - started) / 60, 2), "train_examples": len(train_d),
        "test_examples": len(test_d), "labels": config.labels, "layers": args.layers,
        "cutoffs": {"train": [c.date().isoformat() for c in RETAIL_TRAIN_CUTOFFS],
                    "test": RETAIL_TEST_CUTOFF.date().isoformat(), "horizon_days": HORIZON.days,
                    "demo_train_day": DEMO_TRAIN_DAYS, "demo_test_day": DEMO_TEST_DAYS},
        "first_loss": result.history["train_loss"][0] if result.history["train_loss"] else None,
        "last_loss": result.history["train_loss"][-1] if result.history["train_loss"] else None,
    }
    out = write_run(args, model, tokenizer, config, metrics, result.history)
    plot_loss(out, result.history)
    fpr, tpr, _ = roc_curve(y, probs[:, 1])
    bfpr, btpr, _ = roc_curve(y, base_p)
    plot_roc(out, {"text + RFM (fine-tuned)": (fpr, tpr, metrics["auc_all"]),
                   "RFM + logistic regression": (bfpr, btpr, round(auc(y, base_p), 4))})
    retail_sel = np.array([e.source == "online_retail" for e in test_ex])
    plot_calibration(out, probs[retail_sel], y[retail_sel], positive=1)
    say(f"[classifier] churn: AUC {metrics['auc']} (RFM baseline {metrics['baseline_auc']}), "
        f"ECE {metrics['ece']}; saved {out}")
    return out
