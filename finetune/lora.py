"""``aisle finetune lora``: LoRA supervised fine-tuning of the generator on an export.

Each example is rendered with the generator's own chat template, exactly as vLLM
renders a request: the prompt (and any server-written opening) is context, and only
the reply and its end-of-turn token are trained on. Batches group examples of
similar length; the schedule warms up and decays linearly; the held-out examples
are scored before and after. The run writes a versioned adapter directory that
vLLM loads as it is (``adapter_config.json``, ``adapter_model.safetensors``), with
``train.json`` (figures, arguments, the dataset manifest) and ``loss.png``, and
registers it in the ``adapters`` table as a candidate.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from finetune.examples import Example, read_examples
from finetune.report import plot_loss

Say = Callable[[str], None]
BOOTSTRAP_EXAMPLES = 600
"""Bootstrap dialogs written for a store's first adapter (about two thirds train)."""
BOOTSTRAP_STEPS = 120
"""Training steps of the first adapter (batches of 8); with the rest of :class:`LoraArgs`' defaults, the recipe
behind the figures in docs/benchmarks.md."""
BOOTSTRAP_LR = 1e-3
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraArgs:
    data_dir: Path = field(metadata={"help": "An export folder (train.jsonl, eval.jsonl, manifest.json)."})
    out_dir: Path = field(metadata={"help": "Parent folder of the versioned adapter directory."})
    base_model: Path = field(metadata={"help": "The generator directory the adapter is trained on."})
    name: str | None = field(default=None, metadata={"help": "Adapter name (default grounding-TIMESTAMP)."})
    rank: int = field(default=16, metadata={"help": "LoRA rank (vLLM serves up to --max-lora-rank 16)."})
    alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator."})
    dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    lr: float = field(default=3e-4, metadata={"help": "Peak learning rate."})
    batch_size: int = field(default=8, metadata={"help": "Examples per step."})
    epochs: int = field(default=1, metadata={"help": "Passes over the training examples (at least)."})
    max_steps: int | None = field(default=None, metadata={"help": "Exactly this many steps, over as many passes "
                                                                   "as they take."})
    max_len: int = field(default=1024, metadata={"help": "Longer examples are left out."})
    eval_examples: int = field(default=64, metadata={"help": "Held-out examples scored before and after."})
    top_layers: int = field(default=15, metadata={
        "help": "LoRA on the last N decoder layers only (0 = all): the layers below run forward only, no backward "
                "(15 of SmolLM2-135M's 30: 1.7x faster steps)."})
    bf16_weights: bool = field(default=True, metadata={
        "help": "Hold the frozen base weights in bfloat16 where the steps run in bfloat16 (the adapter stays float32)."})
    init: Path | None = field(default=None, metadata={
        "help": "An adapter directory to continue training from (its rank and layers are kept)."})
    threads: int = field(default=0, metadata={"help": "Torch threads (0 = torch's default)."})
    seed: int = field(default=0, metadata={"help": "Random seed."})

    def __post_init__(self) -> None:
        if not 1 <= self.rank <= 64:
            raise ValueError(f"rank must be between 1 and 64, got {self.rank}")
        if self.lr <= 0 or self.batch_size < 1 or self.epochs < 1 or self.max_len < 32:
            raise ValueError("lr, batch_size and epochs must be positive and max_len at least 32")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("max_steps must be positive")
        if self.name is not None and not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"adapter names are letters, digits, '-' and '_', got {self.name!r}")


@dataclass
class Encoded:
    """Token ids of one example and how many of them are context (not trained on)."""

    ids: list[int]
    context: int


def encode(tokenizer: Any, ex: Example) -> Encoded:
    """The example as the model sees it in serving: chat template, opening, reply, end of turn."""
    prompt = tokenizer.apply_chat_template(ex.messages, add_generation_prompt=True, tokenize=False)
    context = tokenizer(prompt + ex.prefix, add_special_tokens=False)["input_ids"]
    reply = tokenizer(ex.completion + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    return Encoded(context + reply, len(context))


def batches(items: Sequence[Encoded], batch_size: int, rng: Any) -> list[list[int]]:
    """Indices in batches of similar length, in shuffled order."""
    order = rng.permutation(len(items))
    pool = batch_size * 16
    out: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: len(items[i].ids))
        out += [list(chunk[i:i + batch_size]) for i in range(0, len(chunk), batch_size)]
    return [out[i] for i in rng.permutation(len(out))]


def collate(items: Sequence[Encoded], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(e.ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, e in enumerate(items):
        n = len(e.ids)
        ids[row, :n] = torch.tensor(e.ids)
        labels[row, e.context:n] = ids[row, e.context:n]
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


@dataclass(frozen=True)
class Precision:
    """Where and in what precision the steps run: bfloat16 autocast on GPUs and on CPUs that compute it
    natively (about twice as fast as float32 there), float32 elsewhere."""

    device: str
    bf16: bool

    @classmethod
    def detect(cls) -> Precision:
        import torch

        from bot.llm.managed import NATIVE_BF16, cpu_flags

        if torch.cuda.is_available():
            return cls("cuda", True)
        return cls("cpu", bool(cpu_flags() & NATIVE_BF16))

    def autocast(self) -> Any:
        import torch

        return torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16)


def reply_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Mean cross-entropy of the reply tokens. Only their positions go through the output layer: the
    prompt is most of each sequence, and its 49k-way logits would cost as much as the rest of the step."""
    import torch

    inner = model.get_base_model()
    hidden = inner.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    labels = batch["labels"][:, 1:]
    keep = labels != -100
    logits = inner.lm_head(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), labels[keep])


def mean_loss(model: Any, items: Sequence[Encoded], pad_id: int, precision: Precision,
              batch_size: int = 8) -> float:
    """Token-weighted cross-entropy of the replies."""
    import torch

    total, tokens = 0.0, 0
    model.eval()
    with torch.inference_mode(), precision.autocast():
        for i in range(0, len(items), batch_size):
            batch = {k: v.to(precision.device) for k, v in collate(items[i:i + batch_size], pad_id).items()}
            n = int((batch["labels"][:, 1:] != -100).sum())
            total += float(reply_loss(model, batch)) * n
            tokens += n
    model.train()
    return total / max(tokens, 1)


def load_split(data_dir: Path, name: str, tokenizer: Any, max_len: int) -> tuple[list[Encoded], int]:
    items = [encode(tokenizer, ex) for ex in read_examples(data_dir / f"{name}.jsonl")]
    kept = [e for e in items if len(e.ids) <= max_len and e.context < len(e.ids)]
    return kept, len(items) - len(kept)


def default_name() -> str:
    return f"grounding-{time.strftime('%Y%m%d-%H%M%S')}"


def main(args: LoraArgs, say: Say | None = None) -> Path:
    """Train, score and save the adapter; returns its directory.

    Raises:
        finetune.examples.ExampleFileError: for a missing or broken export.
        ValueError: for an export with no usable training examples, or a name already on disk.
    """
    import numpy as np
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_linear_schedule_with_warmup

    say = say or (lambda m: print(m, file=sys.stderr, flush=True))
    name = args.name or default_name()
    out = args.out_dir / name
    if out.exists():  # found now, not after the training it would have thrown away
        raise ValueError(f"{out} already exists; pick another --name")
    started = time.monotonic()
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    manifest_path = args.data_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    tokenizer = AutoTokenizer.from_pretrained(args.base_model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train, too_long = load_split(args.data_dir, "train", tokenizer, args.max_len)
    if not train:
        raise ValueError(f"no training examples of at most {args.max_len} tokens in {args.data_dir}")
    held = load_split(args.data_dir, "eval", tokenizer, args.max_len)[0][: args.eval_examples]
    precision = Precision.detect()
    say(f"[lora] {len(train)} training examples ({too_long} longer than {args.max_len} tokens left out), "
        f"{len(held)} held out; {precision.device}, {'bfloat16' if precision.bf16 else 'float32'}")
    weights = torch.bfloat16 if precision.bf16 and args.bf16_weights else torch.float32
    base: Any = AutoModelForCausalLM.from_pretrained(args.base_model, dtype=weights)
    base = base.to(precision.device)
    n_layers = int(base.config.num_hidden_layers)
    layers = list(range(max(0, n_layers - args.top_layers), n_layers)) if args.top_layers else None
    if args.init is not None:  # continue from an adapter (the live one, say): its weights, rank and layers
        model = PeftModel.from_pretrained(base, str(args.init), is_trainable=True)
        say(f"[lora] continuing from {args.init}")
    else:
        model = get_peft_model(base, LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=args.dropout,
                                                 target_modules=list(TARGET_MODULES), layers_to_transform=layers,
                                                 task_type="CAUSAL_LM"))
    for p in model.parameters():  # the adapter trains in float32 whatever the base weights are
        if p.requires_grad:
            p.data = p.data.float()
    rng = np.random.default_rng(args.seed)
    per_epoch = -(-len(train) // args.batch_size)
    epochs = max(args.epochs, -(-args.max_steps // per_epoch)) if args.max_steps else args.epochs
    plan = [b for _ in range(epochs) for b in batches(train, args.batch_size, rng)]  # max_steps may take more
    plan = plan[: args.max_steps] if args.max_steps else plan
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.0)
    sched = get_linear_schedule_with_warmup(opt, max(1, len(plan) // 20), len(plan))
    history: dict[str, list[float]] = {"step": [], "train_loss": [], "val_step": [], "val_loss": []}
    before = mean_loss(model, held, pad_id, precision) if held else None
    if before is not None:
        history["val_step"].append(0)
        history["val_loss"].append(before)
    model.train()
    running = None
    bar = tqdm(plan, desc="LoRA fine-tuning", file=sys.stderr)
    for step, idx in enumerate(bar, 1):
        batch = {k: v.to(precision.device) for k, v in collate([train[i] for i in idx], pad_id).items()}
        with precision.autocast():
            loss = reply_loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        value = loss.detach().item()
        running = value if running is None else 0.9 * running + 0.1 * value
        history["step"].append(step)
        history["train_loss"].append(running)
        bar.set_postfix(loss=f"{running:.3f}")
    after = mean_loss(model, held, pad_id, precision) if held else None
    if after is not None:
        history["val_step"].append(len(plan))
        history["val_loss"].append(after)
    out.mkdir(parents=True, exist_ok=False)
    model.save_pretrained(str(out))
    minutes = (time.monotonic() - started) / 60
    report = {"name": name, "base_model": str(args.base_model), "steps": len(plan), "train_examples": len(train),
              "eval_examples": len(held), "eval_loss_before": before, "eval_loss_after": after,
              "train_loss_end": running, "train_minutes": round(minutes, 2),
              "precision": {"device": precision.device, "bf16": precision.bf16},
              "args": {k: str(v) for k, v in asdict(args).items()}, "dataset": manifest}
    (out / "train.json").write_text(json.dumps(report, indent=2))
    (out / "history.json").write_text(json.dumps(history))
    plot_loss(out, history, ylabel="cross-entropy per reply token", title="LoRA fine-tuning")
    say(f"[lora] {name}: {len(plan)} steps in {minutes:.1f} min; held-out loss "
        f"{before if before is None else round(before, 4)} -> {after if after is None else round(after, 4)}; "
        f"saved {out}")
    return out
