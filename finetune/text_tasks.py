"""Intent and sentiment: text in, one label out."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from finetune.classifier import ClassifierArgs, new_model, write_run
from finetune.report import (
    expected_calibration_error,
    fit_temperature,
    plot_calibration,
    plot_confusion,
    plot_loss,
)
from finetune.trainer import Batcher, Examples, predict_logits, train
from retrieval.datasets import LabelledText


def macro_f1(pred: np.ndarray, y: np.ndarray, n: int) -> float:
    """Macro-averaged F1 over ``n`` labels (fast enough for grid searches)."""
    tp = np.bincount(y[pred == y], minlength=n).astype(float)
    f1 = 2 * tp / np.maximum(np.bincount(pred, minlength=n) + np.bincount(y, minlength=n), 1)
    return float(f1.mean())


def tune_blend(enc: np.ndarray, lex: np.ndarray, y: np.ndarray,
               groups: list[str] | None = None) -> tuple[float, np.ndarray, float]:
    """Encoder weight and per-label biases that maximise held-out macro-F1: (weight, bias, macro-F1).

    With ``groups`` (a register per example: reviews, chat), the score is the mean of each group's
    macro-F1, so the larger register does not set the thresholds alone. The first label's bias stays
    0; the others move on a grid of log-odds offsets.
    """
    from bot.text_classifier import log_softmax

    n = enc.shape[1]
    parts = [np.array([i for i, g in enumerate(groups) if g == name]) for name in dict.fromkeys(groups)] \
        if groups else [np.arange(len(y))]

    def grouped_f1(pred: np.ndarray) -> float:
        return float(np.mean([macro_f1(pred[idx], y[idx], n) for idx in parts]))

    enc_lp = log_softmax(enc)
    grid = np.round(np.arange(-1.5, 1.51, 0.1), 2)
    best = (1.0, np.zeros(n), -1.0)
    for w in np.round(np.arange(0.0, 1.001, 0.05), 2):
        z = w * enc_lp + (1 - w) * lex
        bias = np.zeros(n)
        for _ in range(2):  # coordinate ascent over the labels' offsets
            for k in range(1, n):
                scores = []
                for b in grid:
                    trial = bias.copy()
                    trial[k] = b
                    scores.append(grouped_f1((z + trial).argmax(axis=1)))
                bias[k] = grid[int(np.argmax(scores))]
        f1 = grouped_f1((z + bias).argmax(axis=1))
        if f1 > best[2]:
            best = (float(w), bias.copy(), f1)
    return best


def _data(args: ClassifierArgs, say: Callable[[str], None]) -> tuple[list[LabelledText], list[LabelledText], list[LabelledText],
                                                                     list[str], dict[str, Any]]:
    extra: dict[str, Any] = {}
    if args.task == "intent":
        from finetune.intents import intent_splits

        train_ex, held_ex, test_ex = intent_splits(args.data_dir, args.seed)
        labels = sorted({e.label for e in train_ex + held_ex + test_ex})
        sources = ["intent"] * len(test_ex)
    else:
        from finetune.sentiment_data import LABELS, sentiment_splits

        splits = sentiment_splits(args.data_dir, args.seed)
        train_ex, held_ex, test_ex, labels = splits.train, splits.held, splits.test, list(LABELS)
        sources = splits.test_source
        extra["skipped_rows"] = splits.skipped_rows
        extra["held_source"] = splits.held_source
        if splits.skipped_rows:
            say(f"[classifier] skipped {splits.skipped_rows} rows without text or a rating")
    if args.sample:
        train_ex = train_ex[: args.sample]
        held_ex = held_ex[: max(200, args.sample // 5)]
        if "held_source" in extra:
            extra["held_source"] = extra["held_source"][: len(held_ex)]
        keep = np.random.default_rng(args.seed).permutation(len(test_ex))[: max(200, args.sample // 5)]
        keep.sort()
        test_ex, sources = [test_ex[i] for i in keep], [sources[i] for i in keep]
    extra["test_source"] = sources
    return train_ex, held_ex, test_ex, labels, extra


def source_figures(probs: np.ndarray, encoder_logits: np.ndarray, baseline_pred: np.ndarray, y: np.ndarray,
                   sources: list[str]) -> dict[str, dict[str, float]]:
    """Per test source: macro-F1 and negative recall of the served model, the encoder alone and the baseline."""
    neg = 0  # LABELS[0]
    out = {}
    for name in dict.fromkeys(sources):
        idx = np.array([i for i, s in enumerate(sources) if s == name])
        yi, pred, base = y[idx], probs[idx].argmax(axis=1), baseline_pred[idx]

        def recall(p: np.ndarray, yi: np.ndarray = yi) -> float:
            return round(float((p[yi == neg] == neg).mean()), 4) if (yi == neg).any() else float("nan")

        out[name] = {"examples": int(len(idx)), "macro_f1": round(macro_f1(pred, yi, 3), 4),
                     "baseline_macro_f1": round(macro_f1(base, yi, 3), 4),
                     "encoder_only_macro_f1": round(macro_f1(encoder_logits[idx].argmax(axis=1), yi, 3), 4),
                     "negative_recall": recall(pred), "baseline_negative_recall": recall(base),
                     "ece": round(expected_calibration_error(probs[idx], yi), 4)}
    return out


def run_text_task(args: ClassifierArgs, say: Callable[[str], None]) -> Path:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    from bot.text_classifier import ClassifierConfig, LexicalModel, blend

    train_ex, held_ex, test_ex, labels, extra = _data(args, say)
    sources = extra.pop("test_source")
    held_groups = extra.pop("held_source", None)
    index = {label: i for i, label in enumerate(labels)}

    def examples(xs: list[LabelledText]) -> Examples:
        return Examples([e.text for e in xs], np.array([index[e.label] for e in xs]))

    train_d, held_d, test_d = examples(train_ex), examples(held_ex), examples(test_ex)
    say(f"[classifier] {args.task}: {len(train_d)} train, {len(held_d)} held-out, {len(test_d)} test, "
        f"{len(labels)} labels")
    cfg = args.train_config()
    if args.task == "sentiment":  # imbalanced: weight the loss by inverse square-root frequency
        counts = np.bincount(train_d.labels, minlength=len(labels)).astype(float)
        w = 1 / np.sqrt(np.maximum(counts, 1))
        cfg = replace(cfg, class_weights=tuple(float(x) for x in w / w.mean()))
    model, tokenizer = new_model(len(labels), args.layers)

    def score(logits: np.ndarray, y: np.ndarray) -> float:
        pred = logits.argmax(axis=1)
        return macro_f1(pred, y, len(labels)) if args.task == "sentiment" else float((pred == y).mean())

    started = time.perf_counter()
    result = train(model, tokenizer, train_d, held_d, cfg, score, desc=args.task, say=say)
    held_logits, _ = predict_logits(model, Batcher(tokenizer, held_d, cfg.max_len))
    test_logits, test_loss = predict_logits(model, Batcher(tokenizer, test_d, cfg.max_len))

    say("[classifier] TF-IDF + logistic regression on the same split")
    lexical = LexicalModel.fit(train_d.texts, train_d.labels.tolist())
    base_pred = lexical.log_probs(test_d.texts).argmax(axis=1)
    metrics: dict[str, Any] = {"task": args.task, **extra}
    config = ClassifierConfig(task=args.task, labels=labels, max_len=cfg.max_len)
    keep_lexical = None
    if args.task == "sentiment":
        held_lex, test_lex = lexical.log_probs(held_d.texts), lexical.log_probs(test_d.texts)
        weight, bias, held_f1 = tune_blend(held_logits, held_lex, held_d.labels, held_groups)
        config.encoder_weight, config.bias = weight, [float(b) for b in bias]
        keep_lexical = lexical if weight < 1.0 else None
        _, base_bias, _ = tune_blend(np.zeros_like(held_lex), held_lex, held_d.labels, held_groups)  # lexical only
        tuned_base = (test_lex + base_bias).argmax(axis=1)
        metrics.update(encoder_weight=weight, bias=config.bias, held_macro_f1=round(held_f1, 4),
                       encoder_only_macro_f1=round(macro_f1(test_logits.argmax(axis=1), test_d.labels, 3), 4),
                       baseline_tuned_thresholds_macro_f1=round(macro_f1(tuned_base, test_d.labels, 3), 4))
        held_z = np.log(blend(config, held_logits, held_lex if keep_lexical else None))
        test_lex_used = test_lex if keep_lexical else None
    else:
        held_z, test_lex_used = held_logits, None
    config.temperature = fit_temperature(held_z, held_d.labels)
    probs = blend(config, test_logits, test_lex_used)
    pred = probs.argmax(axis=1)
    y = test_d.labels
    if args.task == "sentiment":  # the acceptance figures: each register on its own
        metrics["by_source"] = source_figures(probs, test_logits, base_pred, y, sources)
        metrics["real_reviews"] = metrics["by_source"].get("reviews")
    metrics.update({
        "accuracy": round(float(accuracy_score(y, pred)), 4),
        "macro_f1": round(float(f1_score(y, pred, average="macro")), 4),
        "per_label_f1": dict(zip(labels, np.round(f1_score(y, pred, average=None), 4).tolist(), strict=True))
        if len(labels) <= 6 else None,
        "test_loss": round(test_loss, 4),
        "ece": round(expected_calibration_error(probs, y), 4),
        "temperature": round(config.temperature, 4),
        "baseline_tfidf_logreg": {"accuracy": round(float(accuracy_score(y, base_pred)), 4),
                                  "macro_f1": round(float(f1_score(y, base_pred, average="macro")), 4)},
        "steps": result.steps, "train_minutes": round((time.perf_counter() - started) / 60, 2),
        "train_examples": len(train_d), "test_examples": len(test_d), "labels": labels,
        "layers": args.layers, "tune_layers": cfg.tune_layers,
        "first_loss": result.history["train_loss"][0], "last_loss": result.history["train_loss"][-1],
    })
    out = write_run(args, model, tokenizer, config, metrics, result.history, keep_lexical)
    plot_loss(out, result.history)
    plot_confusion(out, confusion_matrix(y, pred, labels=range(len(labels))), labels)
    plot_calibration(out, probs, y)
    say(f"[classifier] {args.task}: accuracy {metrics['accuracy']}, macro-F1 {metrics['macro_f1']} "
        f"(baseline {metrics['baseline_tfidf_logreg']['macro_f1']}), ECE {metrics['ece']}; saved {out}")
    return out
