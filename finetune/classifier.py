"""``aisle finetune classifier``: fine-tune the packaged MiniLM BERT with a task head.

The job trains with a warmup/decay schedule and early stopping on a held-out
split, calibrates the probabilities with temperature scaling, trains the
obvious baseline (TF-IDF + logistic regression) on the same split, and writes
a versioned model directory with a report: ``metrics.json`` and PNG plots of
the loss curve, the confusion matrix and the calibration curve.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TASKS = ("intent",)


@dataclass(frozen=True)
class ClassifierArgs:
    task: str = field(metadata={"help": "What to learn: intent."})
    out_dir: Path = field(metadata={"help": "Parent folder of the versioned model directory."})
    data_dir: Path = field(metadata={"help": "The shared datasets folder."})
    epochs: int = field(default=3, metadata={"help": "Most passes over the training data."})
    lr: float = field(default=8e-5, metadata={"help": "Peak learning rate."})
    batch_size: int = field(default=32, metadata={"help": "Examples per step."})
    max_len: int = field(default=48, metadata={"help": "Tokens per example."})
    patience: int = field(default=1, metadata={"help": "Epochs without improvement before stopping."})
    max_steps: int | None = field(default=None, metadata={"help": "Stop after this many steps (smoke runs)."})
    sample: int | None = field(default=None, metadata={"help": "Use only this many training examples."})
    seed: int = field(default=0, metadata={"help": "Random seed."})

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs, batch_size and lr must be positive")


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood on held-out logits."""
    import torch

    x = torch.tensor(logits, dtype=torch.float32)
    y = torch.tensor(labels)
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=100)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.exp().item())


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _plots(out: Path, history: dict[str, list[float]], cm: np.ndarray, labels: list[str],
           probs: np.ndarray, y: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(history["step"], history["train_loss"], label="train (running mean)")
    if history["val_step"]:
        ax.plot(history["val_step"], history["val_loss"], "o-", label="held-out")
    ax.set(xlabel="step", ylabel="cross-entropy", title="Loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 8))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (row-normalised, test)")
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=110)
    plt.close(fig)

    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.linspace(0, 1, 11)
    mids, accs = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            mids.append(conf[sel].mean())
            accs.append(correct[sel].mean())
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    ax.plot(mids, accs, "o-", label="model (calibrated)")
    ax.set(xlabel="confidence", ylabel="accuracy", title="Calibration (test)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "calibration.png", dpi=110)
    plt.close(fig)


def baseline(train_x: list[str], train_y: list[int], test_x: list[str], test_y: list[int]) -> dict[str, float]:
    """TF-IDF (1-2-grams) + class-balanced logistic regression on the same split."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
    model = LogisticRegression(max_iter=2000, class_weight="balanced", C=10.0)
    model.fit(vec.fit_transform(train_x), train_y)
    pred = model.predict(vec.transform(test_x))
    return {"accuracy": round(float(accuracy_score(test_y, pred)), 4),
            "macro_f1": round(float(f1_score(test_y, pred, average="macro")), 4)}


def main(args: ClassifierArgs, say: Any = None) -> Path:
    """Train, evaluate and save; returns the versioned model directory."""
    import torch
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
    from tqdm import tqdm
    from transformers import (
        AutoTokenizer,
        BertForSequenceClassification,
        get_linear_schedule_with_warmup,
    )

    from bot.model_store import encoder_dir
    from finetune.intents import intent_splits

    say = say or (lambda m: print(m, file=sys.stderr, flush=True))
    torch.manual_seed(args.seed)
    train, held, test = intent_splits(args.data_dir, args.seed)
    if args.sample:
        train = train[: args.sample]
    labels = sorted({e.label for e in train + held + test})
    index = {label: i for i, label in enumerate(labels)}
    say(f"[classifier] {args.task}: {len(train)} train, {len(held)} held-out, {len(test)} test, {len(labels)} labels")

    tokenizer = AutoTokenizer.from_pretrained(encoder_dir())
    model = BertForSequenceClassification.from_pretrained(encoder_dir(), num_labels=len(labels))
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = index

    def batches(examples: list[Any], shuffle: bool) -> list[tuple[Any, torch.Tensor]]:
        order = np.random.default_rng(args.seed).permutation(len(examples)) if shuffle else np.arange(len(examples))
        out = []
        for i in range(0, len(examples), args.batch_size):
            chunk = [examples[j] for j in order[i: i + args.batch_size]]
            enc = tokenizer([e.text for e in chunk], truncation=True, max_length=args.max_len, padding=True,
                            return_tensors="pt")
            out.append((enc, torch.tensor([index[e.label] for e in chunk])))
        return out

    def predict(examples: list[Any]) -> tuple[np.ndarray, float]:
        model.eval()
        logits, losses = [], []
        with torch.no_grad():
            for enc, y in batches(examples, False):
                out = model(**enc, labels=y)
                logits.append(out.logits.numpy())
                losses.append(float(out.loss) * len(y))
        model.train()
        return np.concatenate(logits), sum(losses) / len(examples)

    steps_per_epoch = -(-len(train) // args.batch_size)
    total = min(args.max_steps or 10**9, steps_per_epoch * args.epochs)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, int(0.06 * total), total)
    history: dict[str, list[float]] = {"step": [], "train_loss": [], "val_step": [], "val_loss": [], "val_acc": []}
    best_state, best_acc, stale, step, running = None, -1.0, 0, 0, None
    started = time.perf_counter()
    model.train()
    bar = tqdm(total=total, desc=f"fine-tuning {args.task}", file=sys.stderr)
    for _ in range(args.epochs):
        for enc, y in batches(train, True):
            loss = model(**enc, labels=y).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            value = loss.item()
            running = value if running is None else 0.9 * running + 0.1 * value
            history["step"].append(step)
            history["train_loss"].append(running)
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}")
            if step >= total:
                break
        logits, val_loss = predict(held)
        acc = float(accuracy_score([index[e.label] for e in held], logits.argmax(axis=1)))
        history["val_step"].append(step)
        history["val_loss"].append(val_loss)
        history["val_acc"].append(acc)
        say(f"[classifier] step {step}: held-out loss {val_loss:.4f}, accuracy {acc:.4f}")
        if acc > best_acc:
            best_acc, stale = acc, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale > args.patience:
                say("[classifier] early stop")
                break
        if step >= total:
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)

    held_logits, _ = predict(held)
    held_y = np.array([index[e.label] for e in held])
    temperature = fit_temperature(held_logits, held_y)
    test_logits, test_loss = predict(test)
    test_y = np.array([index[e.label] for e in test])
    probs = _softmax(test_logits / temperature)
    pred = probs.argmax(axis=1)
    metrics: dict[str, Any] = {
        "task": args.task,
        "accuracy": round(float(accuracy_score(test_y, pred)), 4),
        "macro_f1": round(float(f1_score(test_y, pred, average="macro")), 4),
        "test_loss": round(test_loss, 4),
        "ece": round(expected_calibration_error(probs, test_y), 4),
        "ece_uncalibrated": round(expected_calibration_error(_softmax(test_logits), test_y), 4),
        "temperature": round(temperature, 4),
        "baseline_tfidf_logreg": baseline([e.text for e in train], [index[e.label] for e in train],
                                          [e.text for e in test], test_y.tolist()),
        "steps": step, "train_minutes": round((time.perf_counter() - started) / 60, 2),
        "train_examples": len(train), "test_examples": len(test), "labels": labels,
        "first_loss": history["train_loss"][0], "last_loss": history["train_loss"][-1],
        "args": {k: str(v) for k, v in asdict(args).items()},
    }
    out = args.out_dir / f"{args.task}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=False)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "labels.json").write_text(json.dumps(labels))
    (out / "calibration.json").write_text(json.dumps({"temperature": temperature}))
    (out / "history.json").write_text(json.dumps(history))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    _plots(out, history, confusion_matrix(test_y, pred, labels=range(len(labels))), labels, probs, test_y)
    say(f"[classifier] accuracy {metrics['accuracy']} (baseline {metrics['baseline_tfidf_logreg']['accuracy']}), "
        f"ECE {metrics['ece']}; saved {out}")
    return out
