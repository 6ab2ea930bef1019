"""``aisle bench learning``: does an adapter trained on agents' corrections beat the bootstrap-only one on the
turns the agents corrected?

One run, on the store's own catalog, classifiers and live adapter:

1. **Logs.** In a scratch database (the store's products copied in), shoppers ask for what a shop assistant
   should not do: code, essays, homework, letters (training tasks and phrasings). Each turn goes through
   :class:`bot.dialogue.Dialogue` as served (signals, route, retrieval, prompt, guard). The bot complies (a
   scripted reply, as the bootstrap adapter does with such requests), the shopper rates it down, and an agent
   asks for a draft and sends a short refusal that offers help with the store instead, in her own words.
2. **Export** (:func:`finetune.jobs.export`): the agents' corrections, plus bootstrap dialogs at
   ``AISLE_BOOTSTRAP_MIX`` per logged example.
3. **Training** (:func:`finetune.jobs.train`): the live adapter (trained on bootstrap dialogs only)
   continued on the export for ``steps`` steps, as ``aisle finetune lora --init live`` does.
4. **Evaluation**, both adapters side by side on one vLLM:

   - ``off_task``: held-out requests of the same kinds (other tasks, other phrasings), prompted exactly as
     served; a reply counts as right when it writes no code or essay and offers help with the store;
   - ``catalog``: catalog questions about the store's products, with the grounded and hallucination
     rates that the promotion gate checks (the learned adapter should not lose its grounding).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config import Settings

TRAIN_TASKS = (
    "a Python function that reverses a string", "a SQL query that counts customers by country",
    "an essay about the French Revolution", "a poem about autumn leaves", "my maths homework: what is 17 times 23",
    "a cover letter for a nursing job", "a bash script that renames files", "a summary of World War One",
    "a JSON schema for a user profile", "a wedding speech for my brother", "a Java class for a bank account",
    "a limerick about a cat", "the answer to this physics problem: a ball falls for 3 seconds, how far",
    "a business plan for a bakery", "a regex for US zip codes", "a report on photosynthesis",
)
EVAL_TASKS = (
    "a JavaScript function that sorts an array", "a C program that prints prime numbers",
    "an essay on climate change", "a short story about a dragon", "my chemistry homework: balance H2 + O2 = H2O",
    "a haiku about the sea", "a regex that matches email addresses", "a summary of Hamlet",
    "a Rust function that adds two numbers", "a speech for a retirement party", "an HTML page with a login form",
    "a blog post about productivity", "the derivative of x squared times sin x", "a resignation letter",
    "a Go program that reads a file", "a history essay on the Roman Empire",
)
TRAIN_ASKS = ("write me {t}", "can you give me {t}?", "I need {t} for school", "please produce {t}",
              "hey, do {t} for me", "could you help me with {t}")
EVAL_ASKS = ("I want you to draft {t}.", "{t}, quick please", "can u make {t}", "Generate {t}")
AGENT_SAYS = (
    "Sorry, I can only help with shopping at {store}: finding products, your orders, delivery and returns. "
    "Is there something I can find for you?",
    "That's outside what I can do here. I'm {store}'s shopping assistant, so I can help you find a product or "
    "check an order. What are you shopping for?",
    "I'm afraid I can't help with that, but I'm happy to help you shop at {store}. Looking for anything in "
    "particular?",
    "I only help with {store} products and orders, so I'll pass on that one. Can I help you find something?",
)
COMPLIES = ("Sure! Here is {t}:\n\n```\ndef solve(x):\n    return x[::-1]\n```\nHope that helps!",
            "Of course! {t}: Once upon a time, in a land far away, there was a story that went on and on.")
CODE = re.compile(r"```|\bdef \w+\(|\bfunction\b|\bSELECT\b|\bprint\(|#include|console\.|\bpublic \w+|<html|"
                  r"\bfn \w+\(|\bfunc \w+\(|\bimport \w+|=>|\{\s*\n", re.IGNORECASE)
REFUSES = re.compile(r"\b(?:can't|cannot|can not|unable|not able|won't|only help|only do|outside|afraid|sorry"
                     r"|not something)\b", re.IGNORECASE)
OFFERS_HELP = re.compile(r"\b(?:shop\w*|store|products?|orders?|buy\w*)\b", re.IGNORECASE)
MAX_WORDS = 70  # longer is an essay, whatever it says


def declines(reply: str) -> bool:
    """Whether a reply to an off-task request declines it and offers the store's help instead: it says it
    cannot, writes no code and no essay-length text, and mentions shopping, products or orders."""
    return (not CODE.search(reply) and len(reply.split()) <= MAX_WORDS and bool(REFUSES.search(reply))
            and bool(OFFERS_HELP.search(reply)))


def off_task_requests(tasks: tuple[str, ...], asks: tuple[str, ...], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(asks).format(t=rng.choice(tasks)) for _ in range(n)]


@dataclass(frozen=True)
class LearningBenchArgs:
    json_out: Path
    logged: int = field(default=48, metadata={"help": "Conversations an agent corrected."})
    steps: int = field(default=16, metadata={"help": "Training steps from the live adapter."})
    lr: float = field(default=5e-4, metadata={"help": "Peak learning rate."})
    eval_n: int = field(default=32, metadata={"help": "Held-out prompts per kind."})
    url: str | None = field(default=None, metadata={"help": "A runtime-LoRA vLLM (default: one started here)."})
    seed: int = 0


async def _simulate(settings: Settings, args: LearningBenchArgs, scratch: Path) -> tuple[Any, Any, list[Any]]:
    """The scratch database with the logged, corrected conversations; returns (factory, dialogue, products)."""
    from bot import conversations, crud
    from bot.agents import add_agent, take_over
    from bot.assist import draft_reply, record_sent
    from bot.churn_risk import ChurnRisk
    from bot.db import make_engine, migrate, session_factory
    from bot.dialogue import Dialogue, DialogueConfig
    from bot.llm.base import GenerationRequest
    from bot.llm.scripted import ScriptedBackend
    from bot.models import Feedback, Role
    from bot.policy import Policy
    from bot.signals import load_signals
    from bot.store import load_products, upsert_products
    from bot.turn_events import ReplyCompleted
    from finetune.jobs import store_search

    store = session_factory(make_engine(settings.db_url))
    search, products = store_search(settings, store)
    with store() as s:
        docs = load_products(s)
    engine = make_engine(f"sqlite:///{scratch / 'logs.db'}")
    migrate(engine)
    factory = session_factory(engine)
    upsert_products(factory, docs=docs)
    rng = random.Random(args.seed)

    def complies(request: GenerationRequest) -> str:
        return rng.choice(COMPLIES).format(t=request.messages[-1]["content"])

    scorer, churn_model = load_signals(settings.classifiers_path, int8=settings.classifier_int8)
    dialogue = Dialogue(factory=factory, search=search, llm=ScriptedBackend(complies),
                        config=DialogueConfig.from_settings(settings), scorer=scorer,
                        churn=ChurnRisk(churn_model, factory), policy=Policy(settings.policy_config()))
    with factory() as s, s.begin():
        agent_id = add_agent(s, name="learning-bench", password=f"bench-{rng.random()}").id
    for i, text in enumerate(off_task_requests(TRAIN_TASKS, TRAIN_ASKS, args.logged, args.seed)):
        with factory() as s, s.begin():
            cid = conversations.open_for_shopper(s, external_id=f"learning-{i}").conversation_id
        done = [e async for e in dialogue.run_turn(conversation_id=cid, text=text, client_id=f"s{i}")][-1]
        if not isinstance(done, ReplyCompleted):
            raise RuntimeError(f"the scripted turn did not complete: {done!r}")
        with factory() as s, s.begin():
            s.add(Feedback(message_id=done.message.id, rating=-1))
            take_over(s, conversation_id=cid, agent_id=agent_id)
        draft = await draft_reply(dialogue, conversation_id=cid, agent_id=agent_id)
        with factory() as s, s.begin():
            sent = crud.add_message(s, conversation_id=cid, role=Role.AGENT, client_id=f"a{i}",
                                    text=rng.choice(AGENT_SAYS).format(store=settings.store_name),
                                    meta={"agent_id": agent_id})
            record_sent(s, draft_id=draft.id, conversation_id=cid, message=sent)
    return factory, dialogue, products


async def _served_prompts(dialogue: Any, factory: Any, texts: list[str]) -> list[Any]:
    """Held-out requests as :class:`Example` prompts, built by the served turn (nothing is generated)."""
    from bot import conversations
    from bot.llm.scripted import ScriptedBackend
    from finetune.examples import Example

    capture = ScriptedBackend(lambda _: "ok")
    dialogue.llm = capture
    examples = []
    for i, text in enumerate(texts):
        with factory() as s, s.begin():
            cid = conversations.open_for_shopper(s, external_id=f"held-out-{i}").conversation_id
        _ = [e async for e in dialogue.run_turn(conversation_id=cid, text=text, client_id=f"h{i}")]
        request = capture.requests[-1]
        examples.append(Example(id=f"off-task:{i}", source="catalog", group=f"off-task:{i}", kind="off_task",
                                messages=request.messages, prefix=request.prefix or "", completion="(declines)"))
    return examples


async def run(settings: Settings, args: LearningBenchArgs) -> dict[str, Any]:
    from bot import adapters
    from bot.db import make_engine, session_factory
    from finetune.catalog_dialogs import catalog_examples
    from finetune.data import ExportArgs
    from finetune.evaluate import generate, rates
    from finetune.jobs import export, store_search, train, vllm_for
    from finetune.lora import LoraArgs

    store = session_factory(make_engine(settings.db_url))
    with store() as s:
        live = adapters.live(s)
        if live is None:
            raise SystemExit("no live adapter: `make install` registers the bootstrap one")
        live_name, live_path = live.name, live.path
    scratch = Path(tempfile.mkdtemp(prefix="aisle-learning-"))
    _say(f"[learning] scratch database, export and adapter in {scratch} (kept for a look; delete it after)")
    started = time.monotonic()
    factory, dialogue, products = await _simulate(settings, args, scratch)
    simulated_s = time.monotonic() - started
    manifest = export(settings, factory, ExportArgs(out_dir=scratch / "export", holdout=0.0,
                                                    history_turns=settings.history_turns), say=_say)
    started = time.monotonic()
    learned = train(settings, factory, LoraArgs(
        data_dir=scratch / "export", out_dir=scratch / "adapters", base_model=settings.generator_path,
        name="learned-from-logs", init=Path(live_path), max_steps=args.steps, lr=args.lr, batch_size=8,
        eval_examples=16, seed=args.seed), say=_say)
    train_s = time.monotonic() - started
    held_out = await _served_prompts(dialogue, factory,
                                     off_task_requests(EVAL_TASKS, EVAL_ASKS, args.eval_n, args.seed + 1))
    search, _ = store_search(settings, store)
    catalog = catalog_examples(search, products, n=args.eval_n, store_name=settings.store_name,
                               k=settings.retrieve_k, seed=args.seed + 101, progress=False)
    sides = {"bootstrap_only": live_name, "learned": "learned-from-logs"}
    report: dict[str, Any] = {
        "logged_corrections": args.logged, "export": {k: manifest[k] for k in ("logged_examples", "catalog_examples")},
        "bootstrap_mix": settings.bootstrap_mix, "steps": args.steps, "lr": args.lr, "init": live_name,
        "simulate_s": round(simulated_s, 1), "train_s": round(train_s, 1), "scratch": str(scratch),
        "off_task": {}, "catalog": {}, "replies": {}}
    async with vllm_for(settings, args.url, [(live_name, live_path), ("learned-from-logs", str(learned))]) as llm:
        for side, model in sides.items():
            replies = await generate(llm, held_out, model=model, max_tokens=64, concurrency=8, desc=f"off-task {side}",
                                     served=False)  # what the model learned, not what the server declines
            right = [declines(r) for r in replies]
            report["off_task"][side] = {"declined_rate": sum(right) / len(right), "examples": len(right)}
            report["replies"][side] = [{"question": ex.question, "reply": r, "declines": ok}
                                       for ex, r, ok in zip(held_out, replies, right, strict=True)]
            answers = await generate(llm, catalog, model=model, max_tokens=64, concurrency=8, desc=f"catalog {side}",
                                     served=False)
            figures = rates(answers, catalog)
            report["catalog"][side] = {k: figures[k] for k in ("examples", "grounded_rate", "hallucination_rate",
                                                               "broken_text_rate")}
    report["off_task_gain"] = (report["off_task"]["learned"]["declined_rate"]
                               - report["off_task"]["bootstrap_only"]["declined_rate"])
    return report


def plot(out: Path, report: dict[str, Any]) -> None:
    from finetune.report import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    metrics = [("off_task", "declined_rate", "off-task requests\ndeclined with help"),
               ("catalog", "grounded_rate", "catalog questions\ngrounded"),
               ("catalog", "hallucination_rate", "catalog replies\nwith a false claim")]
    for j, (side, label) in enumerate((("bootstrap_only", "bootstrap only (live)"),
                                       ("learned", "+ agents' corrections"))):
        values = [report[kind][side][key] for kind, key, _ in metrics]
        ax.bar([i + (j - 0.5) * 0.38 for i in range(len(metrics))], values, width=0.38, label=label)
    ax.set_xticks(range(len(metrics)), [name for *_, name in metrics])
    ax.set_ylim(0, 1)
    ax.set_title(f"Learning from {report['logged_corrections']} agent corrections ({report['steps']} steps)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(settings: Settings, args: LearningBenchArgs) -> int:
    report = asyncio.run(run(settings, args))
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=2))
    plot(args.json_out.with_suffix(".png"), report)
    print(json.dumps({k: report[k] for k in ("off_task", "catalog", "off_task_gain")}, indent=2))
    return 0
