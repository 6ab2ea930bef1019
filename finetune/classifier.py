"""What every classifier task shares: its arguments, the packaged MiniLM with a head, and how a run is
written (a versioned model directory with ``metrics.json``). The job itself is
:mod:`finetune.train_classifier`; the tasks are :mod:`finetune.text_tasks` and :mod:`finetune.churn`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from finetune.trainer import TrainConfig

TASKS = ("intent", "sentiment", "churn")

# Per-task training defaults; each was chosen on the held-out split (see docs/benchmarks.md).
DEFAULTS: dict[str, TrainConfig] = {
    "intent": TrainConfig(epochs=2, lr=1e-4, max_len=48, tune_layers=3),
    "sentiment": TrainConfig(epochs=2, lr=1e-4, max_len=128, tune_layers=3, evals_per_epoch=2, patience=2),
    "churn": TrainConfig(epochs=2, lr=5e-5, head_lr=1e-3, max_len=128, tune_layers=3, evals_per_epoch=2),
}
LAYERS = 3  # encoder layers kept: the lower half of MiniLM, so scoring stays fast on CPU


@dataclass(frozen=True)
class ClassifierArgs:
    task: str = field(metadata={"help": "What to learn: intent, sentiment or churn."})
    out_dir: Path = field(metadata={"help": "Parent folder of the versioned model directory."})
    data_dir: Path = field(metadata={"help": "The shared datasets folder."})
    epochs: int | None = field(default=None, metadata={"help": "Most passes over the data (task default)."})
    lr: float | None = field(default=None, metadata={"help": "Peak encoder learning rate (task default)."})
    batch_size: int = field(default=32, metadata={"help": "Examples per step."})
    layers: int = field(default=LAYERS, metadata={"help": "Lower MiniLM layers to keep (1-6)."})
    max_steps: int | None = field(default=None, metadata={"help": "Stop after this many steps (smoke runs)."})
    sample: int | None = field(default=None, metadata={"help": "Use only this many training examples."})
    seed: int = field(default=0, metadata={"help": "Random seed."})

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if not 1 <= self.layers <= 6:
            raise ValueError("layers must be between 1 and 6")
        if (self.epochs is not None and self.epochs < 1) or self.batch_size < 1 or (self.lr is not None and self.lr <= 0):
            raise ValueError("epochs, batch_size and lr must be positive")

    def train_config(self) -> TrainConfig:
        base = DEFAULTS[self.task]
        return replace(base, epochs=self.epochs or base.epochs, lr=self.lr or base.lr, batch_size=self.batch_size,
                       max_steps=self.max_steps, seed=self.seed, tune_layers=min(base.tune_layers, self.layers))


def new_model(n_labels: int, layers: int, n_features: int = 0) -> tuple[Any, Any]:
    """The packaged MiniLM cut to its lower ``layers`` with a fresh head, and its tokenizer."""
    from transformers import AutoTokenizer, BertModel

    from bot.model_store import encoder_dir
    from bot.text_classifier import PooledClassifier

    encoder = BertModel.from_pretrained(encoder_dir(), add_pooling_layer=False)
    encoder.encoder.layer = encoder.encoder.layer[:layers]
    encoder.config.num_hidden_layers = layers
    return PooledClassifier(encoder, n_labels, n_features), AutoTokenizer.from_pretrained(encoder_dir())


def write_run(args: ClassifierArgs, model: Any, tokenizer: Any, config: Any, metrics: dict[str, Any],
              history: dict[str, list[float]], lexical: Any = None) -> Path:
    """Save the versioned model directory with its metrics and history; returns it."""
    from bot.text_classifier import save

    out = args.out_dir / f"{args.task}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=False)
    save(out, model, tokenizer, config, lexical)
    metrics["args"] = {k: str(v) for k, v in asdict(args).items()}
    (out / "history.json").write_text(json.dumps(history))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return out
