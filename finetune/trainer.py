"""The fine-tuning loop shared by the classifier tasks.

Texts are tokenised once and batched by similar length (far less padding on
reviews), the encoder's lower layers can stay frozen (``tune_layers``), the
head learns faster than the encoder, the schedule warms up then decays
linearly, and the held-out split is scored a few times per epoch; training
stops when it has not improved for ``patience`` evaluations and the best
weights are restored.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from bot.text_classifier import PooledClassifier


@dataclass(frozen=True)
class Examples:
    """Texts, integer labels and, for churn, numeric features (already standardised)."""

    texts: list[str]
    labels: np.ndarray
    features: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError("one label per text")
        if self.features is not None and len(self.features) != len(self.texts):
            raise ValueError("one feature row per text")

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = field(default=2, metadata={"help": "Most passes over the training data."})
    lr: float = field(default=8e-5, metadata={"help": "Peak learning rate of the encoder."})
    head_lr: float = field(default=2e-3, metadata={"help": "Peak learning rate of the head."})
    batch_size: int = field(default=32, metadata={"help": "Examples per step."})
    max_len: int = field(default=64, metadata={"help": "Tokens per example."})
    tune_layers: int = field(default=6, metadata={"help": "Top encoder layers to fine-tune (the rest stay frozen)."})
    evals_per_epoch: int = field(default=1, metadata={"help": "Held-out evaluations per epoch."})
    patience: int = field(default=2, metadata={"help": "Evaluations without improvement before stopping."})
    max_steps: int | None = field(default=None, metadata={"help": "Stop after this many steps (smoke runs)."})
    class_weights: tuple[float, ...] | None = field(default=None, metadata={"help": "Loss weight per label."})
    seed: int = field(default=0, metadata={"help": "Random seed."})

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.head_lr <= 0:
            raise ValueError("epochs, batch_size and learning rates must be positive")
        if self.evals_per_epoch < 1 or self.patience < 0:
            raise ValueError("evals_per_epoch must be positive and patience non-negative")


@dataclass
class TrainResult:
    history: dict[str, list[float]]
    best_score: float
    steps: int


class Batcher:
    """Tokenises once; yields padded batches grouped by length."""

    def __init__(self, tokenizer: Any, data: Examples, max_len: int) -> None:
        self.tokenizer = tokenizer
        self.data = data
        self.ids: list[list[int]] = tokenizer(data.texts, truncation=True, max_length=max_len)["input_ids"]

    def batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        enc = self.tokenizer.pad({"input_ids": [self.ids[i] for i in idx]}, return_tensors="pt")
        out = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
               "labels": torch.as_tensor(self.data.labels[idx], dtype=torch.long)}
        if self.data.features is not None:
            out["features"] = torch.as_tensor(self.data.features[idx], dtype=torch.float32)
        return out

    def order(self, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
        """Batches of similar length: shuffled pools sorted by length when training, plain order otherwise."""
        n = len(self.ids)
        if rng is None:
            by_len = np.argsort([len(x) for x in self.ids], kind="stable")
            return [by_len[i: i + batch_size] for i in range(0, n, batch_size)]
        perm = rng.permutation(n)
        pool = batch_size * 50
        batches = []
        for start in range(0, n, pool):
            chunk = perm[start: start + pool]
            chunk = chunk[np.argsort([len(self.ids[i]) for i in chunk], kind="stable")]
            batches += [chunk[i: i + batch_size] for i in range(0, len(chunk), batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]


def freeze_lower_layers(model: PooledClassifier, tune_layers: int) -> None:
    """Freeze the embeddings and all but the top ``tune_layers`` transformer layers.

    The embeddings (two thirds of the cut MiniLM's weights) never train, so a
    trained model is the packaged encoder plus its transformer layers and head:
    that is all a shipped model has to carry (``finetune.shipped_signals``).
    """
    layers = model.encoder.encoder.layer
    keep_from = max(0, len(layers) - tune_layers)
    model.encoder.embeddings.requires_grad_(False)
    for i, layer in enumerate(layers):
        layer.requires_grad_(i >= keep_from)


def predict_logits(model: PooledClassifier, batcher: Batcher, batch_size: int = 64) -> tuple[np.ndarray, float]:
    """Logits in the data's order and the mean cross-entropy."""
    was_training = model.training
    model.eval()
    out = np.zeros((len(batcher.data), model.head.out_features), dtype=np.float32)
    loss = 0.0
    with torch.inference_mode():
        for idx in batcher.order(batch_size, None):
            b = batcher.batch(idx)
            logits = model(b["input_ids"], b["attention_mask"], b.get("features"))
            loss += float(torch.nn.functional.cross_entropy(logits, b["labels"], reduction="sum"))
            out[idx] = logits.numpy()
    model.train(was_training)
    return out, loss / max(1, len(batcher.data))


def train(model: PooledClassifier, tokenizer: Any, train_data: Examples, held: Examples, cfg: TrainConfig,
          score: Callable[[np.ndarray, np.ndarray], float], *, desc: str,
          say: Callable[[str], None]) -> TrainResult:
    """Fine-tune in place, keeping the weights with the best held-out ``score`` (higher is better).

    The untrained model is scored first, so a model that starts from a fitted
    baseline (churn) never ends worse than that start on the held-out split.
    """
    from tqdm import tqdm
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(cfg.seed)
    freeze_lower_layers(model, cfg.tune_layers)
    rng = np.random.default_rng(cfg.seed)
    tb, hb = Batcher(tokenizer, train_data, cfg.max_len), Batcher(tokenizer, held, cfg.max_len)
    steps_per_epoch = -(-len(train_data) // cfg.batch_size)
    total = min(cfg.max_steps or 10**9, steps_per_epoch * cfg.epochs)
    eval_at = {max(1, round(steps_per_epoch * (k + 1) / cfg.evals_per_epoch)) for k in range(cfg.evals_per_epoch)}
    head = list(model.head.parameters())
    body = [p for p in model.encoder.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": body, "lr": cfg.lr}, {"params": head, "lr": cfg.head_lr}], weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, int(0.06 * total), total)
    weight = torch.tensor(cfg.class_weights, dtype=torch.float32) if cfg.class_weights else None
    history: dict[str, list[float]] = {"step": [], "train_loss": [], "val_step": [], "val_loss": [], "val_score": []}

    def evaluate(step: int) -> float:
        logits, loss = predict_logits(model, hb)
        value = score(logits, held.labels)
        history["val_step"].append(step)
        history["val_loss"].append(loss)
        history["val_score"].append(value)
        say(f"[classifier] step {step}: held-out loss {loss:.4f}, score {value:.4f}")
        return value

    best = evaluate(0)
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    stale, step, running = 0, 0, None
    model.train()
    bar = tqdm(total=total, desc=f"fine-tuning {desc}", file=sys.stderr)
    stop = False
    for _ in range(cfg.epochs):
        for i, idx in enumerate(tb.order(cfg.batch_size, rng)):
            b = tb.batch(idx)
            logits = model(b["input_ids"], b["attention_mask"], b.get("features"))
            loss = torch.nn.functional.cross_entropy(logits, b["labels"], weight=weight)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
            history["step"].append(step)
            history["train_loss"].append(running)
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}")
            if (i + 1) in eval_at or step >= total:
                value = evaluate(step)
                if value > best:
                    best, stale = value, 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    stale += 1
                    if stale > cfg.patience:
                        say("[classifier] early stop")
                        stop = True
            if stop or step >= total:
                stop = True
                break
        if stop:
            break
    bar.close()
    model.load_state_dict(best_state)
    round_to_int8_rows(model.encoder.encoder.layer)
    model.eval()
    return TrainResult(history, best, step)


def int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per output row: (codes, scales) with ``codes * scales[:, None]`` close to ``weight``."""
    scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127.0
    return torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8), scale


def round_to_int8_rows(module: torch.nn.Module) -> None:
    """Round every matrix of ``module`` to its int8-per-row value, in place.

    Done at the end of training, before anything is measured, so the figures a
    job reports are those of the weights that ship (stored as int8 codes).
    """
    with torch.no_grad():
        for p in module.parameters():
            if p.dim() == 2:
                codes, scale = int8_rows(p.data)
                p.data.copy_(codes.to(p.dtype) * scale[:, None])


