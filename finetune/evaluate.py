"""``aisle finetune evaluate``: the base model and an adapter on held-out examples, side by side on vLLM.

Both answer every held-out prompt through the same vLLM server (temperature 0),
and each raw reply, before any output guard, is judged against the products its
prompt listed, with its product references ("[2]") written out as the catalog
writes them (:mod:`bot.mentions`):

- **grounded**: it names at least one listed product together with that product's
  exact catalog price, and makes no claim the catalog contradicts (with no product
  listed: it quotes no price at all);
- **hallucinated**: it refers to a number that was not listed, states a SKU, a
  price or a stock level that the listed catalog facts contradict or do not
  contain, or carries a link, a discount code, an email or a phone number (what
  :class:`bot.guard.StreamGuard` would have to correct or cut);
- **over budget**: it names a listed product outside the shopper's price limits;
- **broken**: it reads as if something was cut out of it (``bot.guard.holes``);
- **correct**: it is right for its kind of turn (:mod:`finetune.correctness`: the cheapest product
  for "cheapest", the cheaper one called cheaper, the product asked about, a refusal that stays
  on task...), reported overall and per kind;
- **invented name**: it writes a product name, brand or model code that its prompt never gave it,
  priced or not (counted in every kind's correctness too).

Each figure is measured on the raw reply and again on what the guard lets through
(``after_guard``).

The report (JSON and a bar chart) goes beside the adapter and into its registry
row; ``--promote`` makes the adapter live when it is more grounded than the base
model and hallucinates no more often.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.comparison import shown_first
from bot.guard import PRICE, StreamGuard, holes
from bot.llm.base import Delta, GenerationRequest, LLMBackend
from bot.mentions import rendered
from bot.routing import server_reply
from finetune.correctness import correct, invented_names, turn_kind
from finetune.examples import Example
from retrieval.catalog import ProductDoc
from retrieval.query import parse_filters

HALLUCINATIONS = {"reference", "sku", "price", "stock", "link", "email", "phone", "code"}
"""What the guard corrects or cuts that counts as a false claim (invented policy is reported apart)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    grounded: bool
    hallucinated: bool
    named: bool
    over_budget: bool
    broken: bool
    problems: list[dict[str, str]]
    correct: bool | None = None  # None: no check for the example's kind
    invented: bool = False  # names a product (or brand, or model code) the prompt never gave


def _names(title: str) -> tuple[str, ...]:
    return (title.lower(), title.split(" (")[0].lower())


def _quotes_price(reply: str, p: ProductDoc) -> bool:
    """Whether the reply quotes the product's price in its currency ("£0.85" or "GBP 0.85", not "$0.85")."""
    signs = {"USD": r"(?:\$|USD\s?)", "GBP": r"(?:£|GBP\s?)", "EUR": r"(?:€|EUR\s?)"}.get(p.currency, p.currency)
    amounts = {f"{p.price:.2f}", f"{p.price:,.2f}"} | ({str(int(p.price))} if p.price == int(p.price) else set())
    return any(re.search(rf"{signs}\s?{re.escape(a)}(?![\d])", reply) for a in amounts)


def guard_for(ex: Example) -> StreamGuard:
    """The serving guard over an example's facts: its products, the shopper's words, the configured text."""
    return StreamGuard(ex.products(), allowed_text=f"{ex.facts or ''} {ex.question} {ex.prefix}",
                       policy_text=f"{ex.facts or ''} {ex.prefix} {ex.offer}")


def judge(reply: str, ex: Example) -> Verdict:
    """Whether ``reply`` is grounded on the example's catalog facts, hallucinates, names a product outside
    the shopper's budget, or reads as if something was cut out of it."""
    products = ex.products()
    guard = guard_for(ex)
    guard.feed(reply)
    guard.finish()
    problems = [c for c in guard.corrections if c["kind"] in HALLUCINATIONS]
    right = correct(reply, ex, guard.corrections)
    invented = bool(invented_names(reply, ex))
    reply = rendered(reply, products)
    low = reply.lower()
    named = [p for p in products if any(n in low for n in _names(p.title)) or p.sku.lower() in low]
    wanted = parse_filters(ex.question)
    over = [p for p in named if (wanted.max_price is not None and p.price > wanted.max_price + 0.005)
            or (wanted.min_price is not None and p.price < wanted.min_price - 0.005)]
    in_budget = [p for p in named if p not in over]
    if products:
        grounded = not problems and not over and any(_quotes_price(reply, p) for p in in_budget)
    else:
        grounded = not problems and PRICE.search(reply) is None
    return Verdict(grounded, bool(problems), bool(named), bool(over), bool(holes(reply)), problems, right, invented)


def guarded(reply: str, ex: Example) -> str:
    """What the serving guard lets through of a reply (its references still unrendered: :func:`judge` and the
    shopper's widget render them)."""
    guard = guard_for(ex)
    return guard.feed(reply) + guard.finish()


SERVICE_KINDS = frozenset({"order", "policy", "upset", "discount", "injection", "language", "human"})
"""Bootstrap turns that are not product questions: they count in every figure but the grounded rate."""


def kind_of(ex: Example) -> str:
    """The example's turn kind in one word: 'budget', 'compare', 'order', 'injection'... ('logged' for logs)."""
    return ex.kind.split("+")[0].split(".")[0] if ex.kind else "logged"


def asks_for_products(ex: Example) -> bool:
    """A product question whose right answer names a listed product ("anything cheaper?" may have none)."""
    if kind_of(ex) in SERVICE_KINDS or ex.route != "product":
        return False
    products = ex.products()
    target = rendered(ex.completion, products).lower()
    return not products or any(n in target for p in products for n in _names(p.title))


def _shares(verdicts: Sequence[Verdict], examples: Sequence[Example]) -> dict[str, float]:
    n = max(len(verdicts), 1)
    asked = [v for v, ex in zip(verdicts, examples, strict=True) if asks_for_products(ex)]
    grounded = {"grounded_rate": round(sum(v.grounded for v in asked) / len(asked), 4)} if asked else {}
    checked = [v.correct for v in verdicts if v.correct is not None]
    if checked:
        grounded["correct_rate"] = round(sum(checked) / len(checked), 4)
    return {**grounded, "hallucination_rate": round(sum(v.hallucinated for v in verdicts) / n, 4),
            "constraint_violation_rate": round(sum(v.over_budget for v in verdicts) / n, 4),
            "invented_name_rate": round(sum(v.invented for v in verdicts) / n, 4),
            "broken_text_rate": round(sum(v.broken for v in verdicts) / n, 4)}


def rates(replies: Sequence[str], examples: Sequence[Example]) -> dict[str, Any]:
    """Each figure on the model's raw text, and again (``after_guard``) on what the guard lets through.

    The grounded rate counts product questions whose right answer names a product (an order or an
    injection turn, or "anything cheaper?" with nothing cheaper listed, has none to name); ``by_kind``
    breaks the raw figures down by turn kind, with how often each kind named a product, and ``by_holdout`` by why the example was held out: an unseen ``product`` (or conversation), a ``category``
    never trained on, or a ``phrasing`` never trained on.
    """
    pairs = list(zip(replies, examples, strict=True))
    raw = [judge(r, ex) for r, ex in pairs]
    after = [judge(guarded(r, ex), ex) for r, ex in pairs]
    n = max(len(raw), 1)
    def breakdown(key: Callable[[Example], str]) -> dict[str, dict[str, float]]:
        out = {}
        for value in sorted({key(ex) for ex in examples}):
            picked = [(v, ex) for v, ex in zip(raw, examples, strict=True) if key(ex) == value]
            verdicts, exs = [v for v, _ in picked], [ex for _, ex in picked]
            out[value] = {"examples": len(picked), **_shares(verdicts, exs),
                          "named_product_rate": round(sum(v.named for v in verdicts) / len(picked), 4)}
        return out

    return {"examples": len(raw), "product_questions": sum(asks_for_products(ex) for ex in examples),
            **_shares(raw, examples), "named_product_rate": round(sum(v.named for v in raw) / n, 4),
            "problems": sum(len(v.problems) for v in raw), "after_guard": _shares(after, examples),
            "by_kind": breakdown(kind_of), "by_turn": breakdown(turn_kind),
            "by_holdout": breakdown(lambda ex: ex.holdout or "product")}


def served_reply(ex: Example) -> str | None:
    """The reply the server writes itself for this example's turn in serving, or None (the model answers)."""
    previous = ex.messages[-2]["content"] if len(ex.messages) > 2 and ex.messages[-2]["role"] == "assistant" else ""
    products = ex.products()
    answer = server_reply(ex.question, products, shown=shown_first(previous, products))
    return answer[1] if answer else None


async def generate(llm: LLMBackend, examples: Sequence[Example], *, model: str | None, max_tokens: int,
                   concurrency: int, desc: str, served: bool = True) -> list[str]:
    """Each example's reply (the prefix not included), ``concurrency`` requests at a time. A turn the server
    answers itself in serving (:func:`served_reply`) gets the server's reply, for the base model and the
    adapter alike; ``served`` False: the model answers all."""
    from tqdm import tqdm

    gate = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(examples), desc=desc, file=sys.stderr)

    async def one(ex: Example) -> str:
        if served and (answer := served_reply(ex)) is not None:
            bar.update(1)  # the server answers this one itself, as in serving: no model call
            return answer
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
    served: bool = field(default=True, metadata={
        "help": "Turns the server answers itself in serving get the server's reply; False: the model answers all."})

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
                          desc="base model", served=args.served)
    report: dict[str, Any] = {"examples": len(examples), "base": rates(base, examples),
                              "answered_by_server": sum(served_reply(ex) is not None
                                                        for ex in examples) if args.served else 0}
    tuned: list[str] = []
    if args.adapter:
        tuned = await generate(llm, examples, model=args.adapter, max_tokens=args.max_tokens,
                               concurrency=args.concurrency, desc=f"adapter {args.adapter}", served=args.served)
        report["adapter"] = rates(tuned, examples)
        report["adapter_name"] = args.adapter
    report["replies"] = [{"id": ex.id, "question": ex.question, "base": b, "adapter": tuned[i] if tuned else None,
                          "expected": ex.completion} for i, (ex, b) in enumerate(zip(examples, base, strict=True))]
    return report


GATED = (("grounded_rate", "grounded rate", +1), ("hallucination_rate", "hallucination rate", -1),
         ("broken_text_rate", "broken-text rate", -1))
"""The metrics a candidate may not be worse on than the live adapter: (key, name, +1 higher is better)."""


def gate(candidate: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """Each gated metric on which the candidate is worse than the live adapter, in words (empty: it passes)."""
    failed = []
    for key, name, sign in GATED:
        c, r = candidate[key], live[key]
        if (c - r) * sign < 0:
            failed.append(f"{name} {c:.3f} {'<' if sign > 0 else '>'} live {r:.3f}")
    return failed


async def against_live(llm: LLMBackend, examples: Sequence[Example], *, candidate: str, live: str | None,
                       args: EvalArgs) -> tuple[dict[str, Any], list[str]]:
    """The candidate's and the live model's figures on the same held-out examples (``live`` None: the base
    model), and the gated metrics the candidate fails."""
    if not examples:
        raise ValueError("no examples to evaluate on")
    report: dict[str, Any] = {"examples": len(examples), "candidate_name": candidate, "live_name": live or "base"}
    replies = {}
    for role, model in (("live", live), ("candidate", candidate)):
        replies[role] = await generate(llm, examples, model=model, max_tokens=args.max_tokens,
                                       concurrency=args.concurrency, desc=f"{role} {model or 'base'}",
                                       served=args.served)
        report[role] = rates(replies[role], examples)
    report["replies"] = [{"id": ex.id, "question": ex.question, "live": replies["live"][i],
                          "candidate": replies["candidate"][i]} for i, ex in enumerate(examples)]
    return report, gate(report["candidate"], report["live"])


def better(report: dict[str, Any]) -> bool:
    """Whether the adapter is more grounded than the base model and hallucinates no more often."""
    a, b = report.get("adapter"), report["base"]
    return a is not None and a["grounded_rate"] > b["grounded_rate"] and \
        a["hallucination_rate"] <= b["hallucination_rate"]


PLOTTED = (("grounded_rate", "Grounded replies"), ("correct_rate", "Right replies"),
           ("hallucination_rate", "Replies with a false claim"),
           ("constraint_violation_rate", "Replies naming a product over budget"),
           ("broken_text_rate", "Replies with a hole in the text"))


def plot(out: Path, reports: dict[str, dict[str, Any]]) -> None:
    """Each figure, base vs adapter, raw and after the guard, for each evaluated dataset."""
    from finetune.report import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(PLOTTED), figsize=(4 * len(PLOTTED), 4), sharey=True)
    names = list(reports)
    bars = [(who, side) for who in ("base", "adapter") for side in ("raw", "after guard")]
    width = 0.8 / len(bars)
    for ax, (metric, title) in zip(axes, PLOTTED, strict=True):
        for j, (who, side) in enumerate(bars):
            figures = [reports[n].get(who, {}) for n in names]
            values = [(f.get("after_guard", {}) if side == "after guard" else f).get(metric, 0.0) for f in figures]
            ax.bar([i + (j - (len(bars) - 1) / 2) * width for i in range(len(names))], values, width=width,
                   label=f"{'base model' if who == 'base' else 'adapter'}, {side}",
                   hatch="//" if side == "after guard" else None)
        ax.set_xticks(range(len(names)), names)
        ax.set(title=title, ylim=(0, 1))
    axes[0].set_ylabel("share of held-out replies")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_correctness(out: Path, reports: dict[str, dict[str, Any]]) -> None:
    """The share of right replies per turn kind, base vs adapter, one panel per evaluated dataset."""
    from finetune.report import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(len(reports), 1, figsize=(12, 3.2 * len(reports)), squeeze=False)
    for ax, (name, report) in zip(axes[:, 0], reports.items(), strict=True):
        sides = [who for who in ("base", "adapter") if who in report]
        kinds = sorted({k for who in sides for k, v in report[who]["by_turn"].items() if "correct_rate" in v})
        for j, who in enumerate(sides):
            values = [report[who]["by_turn"].get(k, {}).get("correct_rate", 0.0) for k in kinds]
            ax.bar([i + (j - (len(sides) - 1) / 2) * 0.4 for i in range(len(kinds))], values, width=0.4,
                   label=f"{'base model' if who == 'base' else 'adapter'} (overall "
                         f"{report[who].get('correct_rate', 0.0):.2f})")
        ax.set_xticks(range(len(kinds)), kinds, rotation=30, ha="right")
        ax.set(title=f"{name}: right replies per kind of turn", ylim=(0, 1))
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def write_report(out_dir: Path, reports: dict[str, dict[str, Any]]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "eval.json"
    path.write_text(json.dumps(reports, indent=2, ensure_ascii=False))
    plot(out_dir / "eval.png", reports)
    plot_correctness(out_dir / "correct.png", reports)
    return path


__all__ = ["EvalArgs", "Verdict", "better", "compare", "guarded", "judge", "rates", "write_report"]
