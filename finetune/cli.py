"""The ``aisle finetune ...`` commands and the finetune benchmarks; :mod:`bot.cli` names them as
``"finetune.cli:NAME"`` and imports this module only when one of them runs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.cli import data_dir, given, open_db, say

# what `make` trains on a fresh machine; full runs are `aisle finetune classifier --task T`
QUICK: dict[str, dict[str, int]] = {"intent": {"epochs": 1}, "sentiment": {"sample": 4000, "epochs": 1},
                                    "churn": {"sample": 1500, "epochs": 1}}


def cmd_finetune_classifier(args: argparse.Namespace) -> int:
    from bot.config import get_settings
    from finetune import shipped_signals
    from retrieval.public_data import require

    settings = get_settings()
    data = data_dir(args)
    if not args.install:  # before anything slow
        require(data, shipped_signals.folders(args.task), f"training the {args.task} classifier")
    if args.install:
        try:
            shipped_signals.install(args.task, settings.classifiers_path, data, say=say)
        except shipped_signals.StaleSignals as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 3
        return 0
    if args.ship and (args.quick or args.sample or args.max_steps or args.epochs):
        print("error: --ship trains with the full recipe; leave out --quick, --sample, --max-steps and --epochs",
              file=sys.stderr)
        return 2
    from finetune.classifier import ClassifierArgs
    from finetune.train_classifier import main

    quick = QUICK[args.task] if args.quick else {}
    out = main(ClassifierArgs(task=args.task, out_dir=settings.classifiers_path, data_dir=data,
                              epochs=args.epochs or quick.get("epochs"), max_steps=args.max_steps,
                              sample=args.sample or quick.get("sample")))
    if args.ship:
        manifest = shipped_signals.write(out, data)
        say(f"[signals] shipped {out.name} as {shipped_signals.SIGNALS / args.task} "
             f"(weights {manifest['weights_sha256'][:10]}); commit it")
    return 0


def cmd_finetune_acts(args: argparse.Namespace) -> int:
    from bot.turn.acts import SHIPPED_ACTS
    from finetune.train_acts import train_acts
    from retrieval.public_data import require

    data = data_dir(args)
    require(data, ("bitext_intents",), "training the act classifier")
    figures = train_acts(data, args.out or SHIPPED_ACTS, say=say)
    print(json.dumps({k: v for k, v in figures.items() if not k.startswith("suite_")}, indent=2))
    return 0


def cmd_finetune_export(args: argparse.Namespace) -> int:
    import time

    from bot.config import get_settings
    from finetune.data import ExportArgs, ExportError
    from finetune.jobs import export

    settings = get_settings()
    out = args.out or settings.home / "exports" / f"dialogs-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        manifest = export(settings, open_db(), ExportArgs(
            out_dir=out, holdout=args.holdout, min_rating=args.min_rating, include_corrected=args.include_corrected,
            since=args.since, history_turns=settings.history_turns, force=args.force),
            catalog_n=args.catalog_examples)
    except (ExportError, ValueError) as exc:
        say(f"error: {exc}")
        return 2
    print(json.dumps({"out": str(out), "examples": manifest["examples"], "skipped": manifest["skipped"],
                      "pii_replaced": manifest["pii_replaced"]}))
    return 0


def cmd_finetune_lora(args: argparse.Namespace) -> int:
    from bot.adapters import AdapterError
    from bot.config import get_settings
    from finetune.examples import ExampleFileError
    from finetune.jobs import train
    from finetune.lora import LoraArgs

    settings = get_settings()
    try:
        out = train(settings, open_db(), LoraArgs(
            data_dir=args.data, out_dir=settings.adapters_path, base_model=settings.generator_path, name=args.name,
            rank=args.rank, lr=args.lr, batch_size=args.batch_size, epochs=args.epochs, max_steps=args.max_steps,
            init=Path(args.init) if args.init else None))
    except (ExampleFileError, AdapterError, ValueError) as exc:
        say(f"error: {exc}")
        return 2
    print(json.dumps({"adapter": out.name, "path": str(out)}))
    return 0


def cmd_finetune_evaluate(args: argparse.Namespace) -> int:
    import asyncio

    from bot.adapters import AdapterError
    from bot.config import get_settings
    from bot.llm.base import LLMUnavailable
    from finetune.evaluate import EvalArgs
    from finetune.examples import ExampleFileError
    from finetune.jobs import PromotionRefused, evaluate, held_out_examples, own_export

    settings = get_settings()
    factory = open_db()
    try:
        data = args.data or own_export(factory, args.adapter)
        datasets = {data.name: held_out_examples(data, args.limit)}
        if args.unseen_catalog:
            from finetune.jobs import dataset_examples
            from retrieval.importers import import_catalog

            unseen = import_catalog(args.unseen_catalog).products  # CatalogFileError is a ValueError
            datasets[f"unseen:{args.unseen_catalog.name}"] = dataset_examples(
                unseen, n=args.limit, store_name=settings.store_name, k=settings.retrieve_k)
        reports = asyncio.run(evaluate(
            settings, factory, name=args.adapter, datasets=datasets, url=args.vllm_url or
            settings.vllm_url, eval_args=EvalArgs(adapter=args.adapter, concurrency=args.concurrency,
                                                  served=not args.model_only),
            promote=args.promote))
    except (AdapterError, ExampleFileError, LLMUnavailable, KeyError, ValueError) as exc:
        say(f"error: {exc}")
        return 2
    except PromotionRefused as exc:
        say(f"not promoted: {exc}")
        return 1
    print(json.dumps({d: {k: r[k] for k in ("base", "adapter")} for d, r in reports.items()}))
    return 0


def cmd_finetune_bootstrap(args: argparse.Namespace) -> int:
    from bot.config import get_settings
    from bot.llm.base import LLMUnavailable
    from finetune.data import ExportError
    from finetune.jobs import bootstrap, refresh_shipped
    from finetune.shipped import StaleAdapter
    from retrieval.public_data import require

    if args.ship or args.refresh:  # the shipped adapter's service dialogs quote the Bitext utterances
        require(get_settings().data, ["bitext_intents"], f"aisle finetune bootstrap --{'ship' if args.ship else 'refresh'}",
                flag="")
    try:
        if args.refresh:
            refresh_shipped(get_settings(), open_db(), say=say)
            return 0
        live = bootstrap(get_settings(), open_db(), eval_limit=args.limit, ship=args.ship,
                         **given(args, steps="steps", lr="lr", catalog_n="catalog_examples"))
    except (ExportError, LLMUnavailable, StaleAdapter, ValueError) as exc:
        say(f"error: {exc}")
        return 2
    print(json.dumps({"live": live}))
    return 0


def cmd_finetune_status(args: argparse.Namespace) -> int:
    """The registry with each adapter's live outcomes (95% intervals) and retraining flags."""
    from sqlalchemy import select

    from bot.models import Adapter
    from bot.outcomes import adapter_outcomes

    with open_db()() as session:
        outcomes = adapter_outcomes(session, since=args.since)
        registry = {a.name: {"status": a.status.value, "retrain": a.retrain_reason, "path": a.path}
                    for a in session.scalars(select(Adapter).order_by(Adapter.id))}
    report = {name: {**registry.get(name, {"status": "unregistered", "retrain": None, "path": None}),
                     "outcomes": outcomes.get(name)} for name in [*registry, *(n for n in outcomes if n not in registry)]}

    def show(value: float | None, ci: list[float] | tuple[float, float] | None) -> str:
        return "-" if value is None else f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"

    say(f"{'adapter':34} {'status':10} {'replies':>7} {'thumbs up (rated)':>26} {'handoff':>22} "
        f"{'corrections/reply':>22} {'fallbacks':>22}")
    for name, row in report.items():
        o = row["outcomes"] or {}
        say(f"{name[:34]:34} {row['status']:10} {o.get('replies', 0):>7} "
            f"{show(o.get('thumbs_up_rate'), o.get('thumbs_up_ci')) + ' (' + str(o.get('rated', 0)) + ')':>26} "
            f"{show(o.get('handoff_rate'), o.get('handoff_ci')):>22} "
            f"{show(o.get('corrections_per_reply'), o.get('corrections_ci')):>22} "
            f"{show(o.get('fallback_rate'), o.get('fallback_ci')):>22}"
            + (f"\n  RETRAIN: {row['retrain']}" if row["retrain"] else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    return 0


def cmd_finetune_promote(args: argparse.Namespace) -> int:
    import asyncio

    from bot import adapters
    from bot.config import get_settings
    from bot.llm.base import LLMUnavailable
    from finetune.evaluate import EvalArgs
    from finetune.examples import ExampleFileError
    from finetune.jobs import PromotionRefused, held_out_examples, own_export, promote_gated

    if args.share is not None and not 0 < args.share <= 1:
        say(f"error: --share is a share of new conversations, in (0, 1]; got {args.share}")
        return 2
    settings = get_settings()
    factory = open_db()
    try:
        data = args.data or own_export(factory, args.name)
        report = asyncio.run(promote_gated(
            settings, factory, name=args.name, examples=held_out_examples(data, args.limit),
            url=args.vllm_url or settings.vllm_url, share=args.share,
            eval_args=EvalArgs(adapter=args.name, concurrency=args.concurrency)))
    except (adapters.AdapterError, ExampleFileError, LLMUnavailable, KeyError, ValueError) as exc:
        say(f"error: {exc}")
        return 2
    except PromotionRefused as exc:
        say(f"not promoted: {exc}")
        return 1
    print(json.dumps({k: report[k] for k in ("candidate_name", "live_name", "examples")}))
    return 0


def cmd_finetune_rollback(args: argparse.Namespace) -> int:
    from bot import adapters

    try:
        with open_db()() as session, session.begin():
            retired, now_live = adapters.rollback(session)
            names = retired.name, now_live.name if now_live is not None else None
    except adapters.AdapterError as exc:
        say(f"error: {exc}")
        return 2
    say(f"[rollback] {names[0]} retired; all new conversations go to {names[1] or 'the base model'}. Running apps "
        "follow within AISLE_ADAPTER_POLL_S seconds, with no restart; replies already streaming finish where "
        "they started.")
    print(json.dumps({"retired": names[0], "live": names[1]}))
    return 0


def bench_lora(args: argparse.Namespace) -> int:
    from finetune.bench_lora import LoraBenchArgs
    from finetune.bench_lora import main as lora_main

    return lora_main(LoraBenchArgs(json_out=args.json, data_dir=args.data, **given(args, steps="steps", lr="lr"),
                                   top_layers=args.top_layers, eval_examples=args.eval_examples,
                                   serving=not args.no_serving))


def bench_learning(args: argparse.Namespace) -> int:
    from bot.config import get_settings
    from finetune.bench_learning import LearningBenchArgs
    from finetune.bench_learning import main as learning_main

    return learning_main(get_settings(), LearningBenchArgs(json_out=args.json, **given(
        args, steps="steps", lr="lr", url="vllm_url")))


def bench_classifier(args: argparse.Namespace) -> int:
    from bot.config import get_settings
    from finetune.bench_classifier import ClassifierBenchArgs
    from finetune.bench_classifier import main as classifier_main

    return classifier_main(ClassifierBenchArgs(json_out=args.json, classifiers=get_settings().classifiers_path,
                                               data_dir=args.data))
