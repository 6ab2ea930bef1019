"""``aisle bench classifier``: quality, latency and throughput of the signal models.

Quality figures (macro-F1, AUC, ECE, accuracy) are the held-out results each
training job measured and saved in its ``metrics.json``; this bench copies
them with the model path. Speed is measured here, on real messages (customer
turns from the Twitter customer-care data and Bitext utterances), with int8 and
float32 models side by side in one run, plus how often the two agree. The
served (int8) sentiment model is also scored here on each register's test set
(reviews, rated chat messages, the hand-written shop chat): the model `make run`
serves, not only the float32 one the job measured.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bot.bench.stats import percentiles
from bot.shopper_history import HistoryEvent, churn_features, render
from retrieval.datasets import read_bitext


@dataclass(frozen=True)
class ClassifierBenchArgs:
    json_out: Path = field(metadata={"help": "Where to write the figures."})
    classifiers: Path = field(metadata={"help": "Folder of versioned classifier directories."})
    data_dir: Path = field(metadata={"help": "The shared datasets folder."})
    threads: int = field(default=2, metadata={"help": "Torch threads (the machine's 2 cores)."})
    singles: int = field(default=300, metadata={"help": "Messages scored one at a time for latency."})
    batch: int = field(default=64, metadata={"help": "Messages per batch for throughput."})
    messages: int = field(default=1024, metadata={"help": "Messages scored in batches."})

    def __post_init__(self) -> None:
        if min(self.threads, self.singles, self.batch, self.messages) < 1:
            raise ValueError("threads, singles, batch and messages must be positive")


def real_messages(data_dir: Path, n: int) -> list[str]:
    """Customer turns from the Twitter customer-care conversations, then Bitext utterances."""
    out: list[str] = []
    dialogs = json.loads((data_dir / "twitter_customer_care" / "dev.json").read_text())
    for d in dialogs:
        for turn in d.get("dialogContent", []):
            if "client" in turn:  # the customer's turns; agents' turns carry "agent"
                text = str(turn.get("message") or "").strip()
                if text:
                    out.append(text)
    out += [e.text for e in read_bitext(data_dir / "bitext_intents" / "validation.csv")]
    return [out[i % len(out)] for i in range(n)]


def _throughput(fn: Any, texts: list[str], batch: int) -> float:
    fn(texts[:batch])  # warm-up
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        fn(texts[i: i + batch])
    return round(len(texts) / (time.perf_counter() - started), 1)


def _latency(fn: Any, texts: list[str]) -> dict[str, float]:
    for t in texts[:10]:
        fn([t])
    times = []
    for t in texts:
        started = time.perf_counter()
        fn([t])
        times.append((time.perf_counter() - started) * 1000)
    return percentiles(times)


def served_by_source(sentiment: Any, data_dir: Path) -> dict[str, dict[str, float]]:
    """Macro-F1 and negative recall of the served sentiment model on each register's test set."""
    from finetune.sentiment_data import LABELS, sentiment_splits
    from finetune.text_tasks import macro_f1

    splits = sentiment_splits(data_dir)
    out = {}
    for source in dict.fromkeys(splits.test_source):
        idx = splits.source(source)
        y = np.array([LABELS.index(splits.test[i].label) for i in idx])
        pred = sentiment.probs([splits.test[i].text for i in idx]).argmax(axis=1)
        out[source] = {"examples": len(idx), "macro_f1": round(macro_f1(pred, y, 3), 4),
                       "negative_recall": round(float((pred[y == 0] == 0).mean()), 4)}
    return out


def _metrics(path: Path) -> dict[str, Any]:
    return json.loads((path / "metrics.json").read_text())


def main(args: ClassifierBenchArgs) -> int:
    import torch

    from bot.signals import load_signals

    torch.set_num_threads(args.threads)
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    scorer, churn = load_signals(args.classifiers, int8=True)
    scorer32, _ = load_signals(args.classifiers, int8=False)
    texts = real_messages(args.data_dir, args.messages)
    singles = texts[: args.singles]
    say(f"[bench] {len(texts)} real messages; {args.threads} torch threads")
    figures: dict[str, Any] = {"threads": args.threads, "messages": len(texts), "batch": args.batch}
    short = [t for t in real_messages(args.data_dir, 20_000) if len(t) < 120][: args.messages]
    for name, sc in (("int8", scorer), ("float32", scorer32)):
        figures[name] = {
            "short_messages": {  # Bitext-length shop messages (under 120 characters)
                "both_latency_ms": _latency(sc.score, short[: args.singles]),
                "both_msgs_per_s": _throughput(sc.score, short, args.batch),
                "sentiment_msgs_per_s": _throughput(sc.sentiment.predict, short, args.batch)},
            "both_latency_ms": _latency(sc.score, singles),
            "sentiment_latency_ms": _latency(sc.sentiment.predict, singles),
            "both_msgs_per_s": _throughput(sc.score, texts, args.batch),
            "sentiment_msgs_per_s": _throughput(sc.sentiment.predict, texts, args.batch),
            "intent_msgs_per_s": _throughput(sc.intent.predict, texts, args.batch),
        }
        say(f"[bench] {name}: {figures[name]}")
    a, b = scorer.score(texts), scorer32.score(texts)
    figures["int8_agreement"] = {
        task: round(float(np.mean([x.as_meta()[task]["label"] == y.as_meta()[task]["label"]
                                   for x, y in zip(a, b, strict=True)])), 4) for task in ("sentiment", "intent")}
    served = figures["int8"]
    s_metrics, c_metrics = _metrics(scorer.sentiment.path), _metrics(churn.path)
    i_metrics = _metrics(scorer.intent.path)
    real = s_metrics.get("real_reviews") or {}  # the real clothing reviews only (the acceptance split)
    figures["sentiment"] = {
        "macro_f1": real.get("macro_f1", s_metrics["macro_f1"]),
        "baseline_macro_f1": real.get("baseline_macro_f1", s_metrics["baseline_tfidf_logreg"]["macro_f1"]),
        "real_reviews": real or None,
        "with_demo_reviews": {"macro_f1": s_metrics["macro_f1"],
                              "baseline_macro_f1": s_metrics["baseline_tfidf_logreg"]["macro_f1"]},
        "encoder_only_macro_f1": s_metrics.get("encoder_only_macro_f1"),
        "baseline_tuned_thresholds_macro_f1": s_metrics.get("baseline_tuned_thresholds_macro_f1"),
        "per_label_f1": s_metrics.get("per_label_f1"), "ece": s_metrics["ece"],
        "latency_ms": served["sentiment_latency_ms"], "batched_msgs_per_s": served["sentiment_msgs_per_s"],
        "with_intent_latency_ms": served["both_latency_ms"], "with_intent_msgs_per_s": served["both_msgs_per_s"],
        "short_messages": served["short_messages"],
        "model": str(scorer.sentiment.path), "train_minutes": s_metrics.get("train_minutes"),
        "by_source": s_metrics.get("by_source"),  # the job's figures per register (float32)
        "served_int8": served_by_source(scorer.sentiment, args.data_dir)}  # the same test sets, as served
    now = datetime(2026, 6, 1)  # a shopper with three orders, the last 40 days ago
    history = [HistoryEvent(now - timedelta(days=d), "purchase", "Wool Socks", 60.0, f"A{d}") for d in (200, 90, 40)]
    churn_text, features = render(history, now), [churn_features(history, now, churn.config.feature_names)]
    figures["churn"] = {
        "auc": c_metrics["auc"], "baseline_auc": c_metrics["baseline_auc"], "ece": c_metrics["ece"],
        "datasets": c_metrics.get("datasets"), "latency_ms": _latency(
            lambda t: churn.predict(t, features), [churn_text] * 50),
        "model": str(churn.path), "train_minutes": c_metrics.get("train_minutes")}
    figures["intent"] = {"accuracy": i_metrics["accuracy"], "baseline_accuracy":
                         i_metrics["baseline_tfidf_logreg"]["accuracy"], "ece": i_metrics["ece"],
                         "model": str(scorer.intent.path), "train_minutes": i_metrics.get("train_minutes")}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(figures, indent=2))
    chat = figures["sentiment"]["served_int8"]["chat"]
    say(f"[bench] sentiment macro-F1 {figures['sentiment']['macro_f1']} vs {figures['sentiment']['baseline_macro_f1']} "
        f"on reviews, {chat['macro_f1']} on chat (negative recall {chat['negative_recall']}); "
        f"sentiment+intent p95 {served['both_latency_ms']['p95']} ms; {served['sentiment_msgs_per_s']} msgs/s; "
        f"wrote {args.json_out}")
    return 0
