"""``aisle finetune evaluate``: the base model and an adapter on held-out examples, side by side on vLLM.

Both answer every held-out prompt through the same vLLM server (temperature 0),
and each raw reply, before any output guard, is judged against the products its
prompt listed:

- **grounded**: it names at least one listed product together with that product's
  exact catalog price, and makes no claim the catalog contradicts (with no product
  listed: it quotes no price at all);
- **hallucinated**: it states a SKU, a price or a stock level that the listed
  catalog facts contradict or do not contain (what :class:`bot.guard.StreamGuard`
  would have to correct or remove).

The report (JSON and a bar chart) goes beside the adapter and into its registry
row; ``--promote`` makes the adapter live when it is more grounded than the base
model and hallucinates no more often.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.guard import PRICE, StreamGuard
from bot.llm.base import Delta, GenerationRequest, LLMBackend
from finetune.examples import Example

CLAIMS = {"sku", "price", "stock"}


@dataclass(frozen=True, slots=True)
class Verdict:
    grounded: bool
    hallucinated: bool
    named: bool
    problems: list[dict[str, str]]


def _names(title: str) -> tuple[str, ...]:
    return (title.lower(), title.split(" (")[0].lower())


def _quotes_price(reply: str, price: float) -> bool:
    return any(f"{price:{fmt}}" in reply for fmt in (".2f", ",.2f")) or (
        price == int(price) and re.search(rf"[$£€]\s?{int(price)}(?![\d.])", reply) is not None)


def judge(reply: str, ex: Example) -> Verdict:
    """Whether ``reply`` is grounded on the example's catalog facts, and whether it hallucinates."""
    products = ex.products()
    guard = StreamGuard(products, allowed_text=f"{ex.facts or ''} {ex.question} {ex.prefix}")
    guard.feed(reply)
    guard.finish()
    problems = [c for c in guard.corrections if c["kind"] in CLAIMS]
    low = reply.lower()
    named = [p for p in products if any(n in low for n in _names(p.title)) or p.sku.lower() in low]
    if products:
        grounded = not problems and any(_quotes_price(reply, p.price) for p in named)
    else:
        grounded = not problems and PRICE.search(reply) is None
    return Verdict(grounded, bool(problems), bool(named), problems)


def rates(replies: Sequence[str], examples: Sequence[Example]) -> dict[str, Any]:
    verdicts = [judge(r, ex) for r, ex in zip(replies, examples, strict=True)]
    n = max(len(verdicts), 1)
    return {"examples": len(verdicts),
            "grounded_rate": round(sum(v.grounded for v in verdicts) / n, 4),
            "hallucination_rate": round(sum(v.hallucinated for v in verdicts) / n, 4),
            "named_product_rate": round(sum(v.named for v in verdicts) / n, 4),
            "problems": sum(len(v.problems) for v in verdicts)}


async def generate(llm: LLMBackend, examples: Sequence[Example], *, model: str | None, max_tokens: int,
                   concurrency: int, desc: str) -> list[str]:
    """Each example's reply (the prefix not included), ``concurrency`` requests at a time."""
    from tqdm import tqdm

    gate = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(examples), desc=desc, file=sys.stderr)

    async def one(ex: Example) -> str:
        request = GenerationRequest(messages=ex.messages, max_tokens=max_tokens, temperature=0.0, model=model,
                                    repetition_penalty=1.1, prefix=ex.prefix)
        async with gate:
            parts = [item.text async for item in llm.stream(request) if isinstance(item, Delta)]
        bar.update(1)
        return "".join(parts).strip()

    try:  # a task group: when one request fails, the others are cancelled, not left running on vLLM
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(ex)) for ex in examples]
    except* Exception as errors:  # the first failure, as it was raised (LLMUnavailable, usually)
        raise errors.exceptions[0] from None
    finally:
        bar.close()
    return [t.result() for t in tasks]


@dataclass(frozen=True)
class EvalArgs:
    adapter: str | None = field(metadata={"help": "Adapter (vLLM model name) to compare with the base model."})
    max_tokens: int = field(default=96, metadata={"help": "Cap on each reply, as in serving."})
    concurrency: int = field(default=8, metadata={"help": "Requests in flight at once."})

    def __post_init__(self) -> None:
        if self.max_tokens < 1 or self.concurrency < 1:
            raise ValueError("max_tokens and concurrency must be positive")


async def compare(llm: LLMBackend, examples: Sequence[Example], args: EvalArgs) -> dict[str, Any]:
    """The base model's and the adapter's figures on the same examples, with every reply (to judge again).

    Raises:
        LLMUnavailable: when vLLM cannot answer (no partial report is written).
    """
    if not examples:
        raise ValueError("no examples to evaluate on")
    base = await generate(llm, examples, model=None, max_tokens=args.max_tokens, concurrency=args.concurrency,
                          desc="base model")
    report: dict[str, Any] = {"examples": len(examples), "base": rates(base, examples)}
    tuned: list[str] = []
    if args.adapter:
        tuned = await generate(llm, examples, model=args.adapter, max_tokens=args.max_tokens,
                               concurrency=args.concurrency, desc=f"adapter {args.adapter}")
        report["adapter"] = rates(tuned, examples)
        report["adapter_name"] = args.adapter
    report["replies"] = [{"id": ex.id, "question": ex.question, "base": b, "adapter": tuned[i] if tuned else None,
                          "expected": ex.completion} for i, (ex, b) in enumerate(zip(examples, base, strict=True))]
    return report


def better(report: dict[str, Any]) -> bool:
    """Whether the adapter is more grounded than the base model and hallucinates no more often."""
    a, b = report.get("adapter"), report["base"]
    return a is not None and a["grounded_rate"] > b["grounded_rate"] and \
        a["hallucination_rate"] <= b["hallucination_rate"]


def plot(out: Path, reports: dict[str, dict[str, Any]]) -> None:
    """Grounded and hallucination rates, base vs adapter, for each evaluated dataset."""
    from finetune.report import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    names = list(reports)
    for ax, metric, title in ((axes[0], "grounded_rate", "Grounded replies"),
                              (axes[1], "hallucination_rate", "Replies with a false claim")):
        for j, who in enumerate(("base", "adapter")):
            values = [reports[n].get(who, {}).get(metric, 0.0) for n in names]
            ax.bar([i + (j - 0.5) * 0.38 for i in range(len(names))], values, width=0.38,
                   label="base model" if who == "base" else "adapter")
        ax.set_xticks(range(len(names)), names)
        ax.set(title=title, ylim=(0, 1))
    axes[0].set_ylabel("share of held-out replies")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def write_report(out_dir: Path, reports: dict[str, dict[str, Any]]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "eval.json"
    path.write_text(json.dumps(reports, indent=2, ensure_ascii=False))
    plot(out_dir / "eval.png", reports)
    return path


__all__ = ["EvalArgs", "Verdict", "better", "compare", "judge", "rates", "write_report"]
