"""The fine-tuning jobs as the ``aisle finetune`` commands run them: export, LoRA, evaluate.

Each job reads the service's settings (database, index, models, ``AISLE_HOME``) and
reports progress on stderr; ``aisle bench lora`` runs the same three in a row.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.llm.base import LLMBackend
from finetune.data import ExportArgs
from finetune.evaluate import EvalArgs, better, compare, write_report
from finetune.examples import Example, read_examples
from finetune.lora import BOOTSTRAP_EXAMPLES, BOOTSTRAP_LR, BOOTSTRAP_STEPS, LoraArgs
from finetune.pairs import export_with_pairs
from retrieval.catalog import ProductDoc
from retrieval.search import ProductSearch

Say = Callable[[str], None]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def store_search(settings: Settings, factory: sessionmaker[Session]) -> tuple[ProductSearch, list[ProductDoc]]:
    """The store's product search, as serving builds it, and its catalog."""
    from bot.model_store import encoder_dir
    from bot.store import load_products, open_index
    from retrieval.embed import Encoder

    encoder = Encoder(encoder_dir())
    index = open_index(factory, encoder, settings.index_dir, say=_say)
    with factory() as session:
        products = load_products(session)
    return ProductSearch(index, encoder), products


def catalog_search(products: Sequence[ProductDoc]) -> ProductSearch:
    """A search over a catalog that is not the store's (a dataset to evaluate on), built in memory."""
    from bot.model_store import encoder_dir
    from retrieval.embed import Encoder
    from retrieval.index import ProductIndex

    encoder = Encoder(encoder_dir())
    index = ProductIndex(encoder.dim)
    index.upsert(list(products), encoder.encode_documents([p.embedding_text() for p in products]))
    return ProductSearch(index, encoder)


def export(settings: Settings, factory: sessionmaker[Session], args: ExportArgs, *, catalog_n: int | None = None,
           seed: int = 0, say: Say = _say) -> dict[str, Any]:
    """Logged dialogs (and their preference pairs) plus ``catalog_n`` bootstrap dialogs about the store's own
    catalog (None: ``settings.bootstrap_mix`` per logged example)."""
    from finetune.bootstrap_dialogs import bootstrap_examples
    from finetune.service_dialogs import Voice

    if catalog_n is None:
        catalog_n = round(settings.bootstrap_mix * count_logged(factory, args))
        say(f"[export] {catalog_n} bootstrap dialogs: {settings.bootstrap_mix:g} per logged example "
            "(AISLE_BOOTSTRAP_MIX; --catalog-examples N sets the number)")
    extra: list[Example] = []
    if catalog_n:
        search, products = store_search(settings, factory)
        voice = Voice(settings.store_name, settings.policies, settings.retention_offer or None)
        extra = bootstrap_examples(search, products, n=catalog_n, voice=voice, k=settings.retrieve_k, seed=seed)
    return export_with_pairs(factory, args, extra=extra, say=say)


def count_logged(factory: sessionmaker[Session], args: ExportArgs) -> int:
    """How many logged examples an export with ``args`` would hold (a dry read, nothing written)."""
    from collections import Counter

    from bot import crud
    from bot.pii import Scrubber
    from finetune.data import logged_examples

    with factory() as session:
        return sum(1 for _ in logged_examples(session, args, Scrubber(crud.known_names(session)), Counter(),
                                              progress=False))


def train(settings: Settings, factory: sessionmaker[Session], args: LoraArgs, say: Say = _say) -> Path:
    """Train the adapter and register it as a candidate; returns its directory.

    A name already taken, or a rank the evaluation's vLLM would refuse, is an
    :class:`~bot.adapters.AdapterError` before any training starts.
    """
    from bot import adapters
    from finetune.lora import default_name, main

    name = args.name or default_name()
    args = dataclasses.replace(args, name=name)
    if args.init is not None and not (args.init / "adapter_config.json").is_file():  # a registered name, or live
        with factory() as session:
            row = adapters.live(session) if str(args.init) == "live" else adapters.get(session, str(args.init))
            if row is None:
                raise adapters.AdapterError("--init live: no adapter is live")
            args = dataclasses.replace(args, init=Path(row.path))
            adapters.check_files(Path(row.path))
    if args.rank > settings.max_lora_rank:
        raise adapters.AdapterError(f"rank {args.rank} is above what vLLM serves (AISLE_MAX_LORA_RANK="
                                    f"{settings.max_lora_rank}); train with --rank {settings.max_lora_rank} or less")
    with factory() as session:
        if adapters.find(session, name) is not None:
            raise adapters.AdapterError(f"an adapter named {name!r} is already registered; pick another --name")
    out = main(args, say)
    report = json.loads((out / "train.json").read_text())
    with factory() as session, session.begin():
        adapters.register(session, name=out.name, base_model=str(args.base_model), path=out,
                          manifest=report.pop("dataset"), metrics={"train": report})
    say(f"[lora] registered {out.name} as a candidate; evaluate it with `aisle finetune evaluate --adapter "
        f"{out.name}`")
    return out


@asynccontextmanager
async def vllm_for(settings: Settings, url: str | None, adapters: Sequence[tuple[str, str]] = ()):  # type: ignore[no-untyped-def]
    """A vLLM backend on ``url``, or on a managed server started for the job, with ``adapters`` loaded."""
    from bot.llm.factory import managed_config, vllm_config
    from bot.llm.managed import ManagedVLLM, free_port
    from bot.llm.vllm_http import VLLMBackend

    managed = None
    if url is None:  # beside the app's own server, never on its port
        runtime = managed_config(settings.model_copy(update={"adapter_serving": "runtime"}))
        managed = ManagedVLLM(dataclasses.replace(runtime, port=free_port(),
                                                  log_path=settings.log_dir / "vllm-evaluate.log"))
        try:
            url = await asyncio.to_thread(managed.start)
        except BaseException:  # cancelled (Ctrl-C, SIGTERM) while its thread still waits: that server stops too
            managed.stop()
            raise
    config = vllm_config(settings.model_copy(update={"first_token_timeout_s": 120.0,
                                                     "token_gap_timeout_s": 60.0}), url)
    llm: LLMBackend = VLLMBackend(config)
    try:
        for name, path in adapters:
            await llm.load_adapter(name, path)
        yield llm
    finally:
        await llm.aclose()
        if managed is not None:
            managed.stop()


def own_export(factory: sessionmaker[Session], name: str) -> Path:
    """The export folder the adapter was trained on (its manifest says).

    Raises:
        ValueError: the adapter was not trained here (a shipped one) or its export folder is gone.
    """
    from bot import adapters

    with factory() as session:
        manifest = adapters.get(session, name).dataset_manifest or {}
    out_dir = (manifest.get("args") or {}).get("out_dir")
    if not out_dir:
        raise ValueError(f"adapter {name!r} was not trained from an export on this machine (a shipped adapter "
                         "is installed with its weights only): pass --data DIR, a folder that "
                         "`aisle finetune export --out DIR` wrote")
    if not (Path(out_dir) / "eval.jsonl").is_file():
        raise ValueError(f"adapter {name!r} was trained on {out_dir}, which no longer holds eval.jsonl: "
                         "pass --data DIR, a folder that `aisle finetune export --out DIR` wrote")
    return Path(out_dir)


def held_out_examples(data_dir: Path, limit: int | None) -> list[Example]:
    """The export's held-out examples; with a ``limit``, that many taken in turn from each kind of turn (in
    file order within a kind), so that a small sample still has every kind the export holds."""
    from finetune.correctness import turn_kind

    examples = list(read_examples(data_dir / "eval.jsonl"))
    if not limit or limit >= len(examples):
        return examples
    by_kind: dict[str, list[Example]] = {}
    for ex in examples:
        by_kind.setdefault(turn_kind(ex), []).append(ex)
    queues = [iter(group) for group in by_kind.values()]
    picked: list[Example] = []
    while len(picked) < limit:
        for queue in queues:
            taken = next(queue, None)
            if taken is not None and len(picked) < limit:
                picked.append(taken)
    return picked


async def evaluate(settings: Settings, factory: sessionmaker[Session], *, name: str,
                   datasets: dict[str, list[Example]], url: str | None, eval_args: EvalArgs,
                   promote: bool, say: Say = _say) -> dict[str, dict[str, Any]]:
    """Base vs adapter on each dataset; the report goes beside the adapter and into the registry."""
    from bot import adapters

    with factory() as session:
        row = adapters.get(session, name)
        path = row.path
    reports: dict[str, dict[str, Any]] = {}
    async with vllm_for(settings, url, [(name, path)]) as llm:
        for dataset, examples in datasets.items():
            say(f"[evaluate] {dataset}: {len(examples)} held-out prompts, base model and {name}")
            reports[dataset] = await compare(llm, examples, eval_args)
    out = write_report(Path(path), reports)
    summary = {d: {k: r[k] for k in ("base", "adapter") if k in r} for d, r in reports.items()}
    with factory() as session, session.begin():
        adapters.record_metrics(session, name=name, metrics={"eval": summary})
    for dataset, r in reports.items():
        say(f"[evaluate] {dataset}: grounded {r['base']['grounded_rate']:.3f} -> "
            f"{r['adapter']['grounded_rate']:.3f}, hallucinating {r['base']['hallucination_rate']:.3f} -> "
            f"{r['adapter']['hallucination_rate']:.3f}, right for the kind of turn "
            f"{r['base'].get('correct_rate', 0.0):.3f} -> {r['adapter'].get('correct_rate', 0.0):.3f}")
    say(f"[evaluate] report {out} (and eval.png, correct.png)")
    if promote:
        first, report = next(iter(reports.items()))
        if not better(report):
            raise PromotionRefused(f"{name} is not better than the base model on {first}; it stays a candidate")
        with factory() as session, session.begin():
            adapters.promote(session, name=name)
        say(f"[evaluate] {name} is now live: running apps switch to it within AISLE_ADAPTER_POLL_S seconds")
    return reports


async def promote_gated(settings: Settings, factory: sessionmaker[Session], *, name: str, examples: list[Example],
                        url: str | None, eval_args: EvalArgs, share: float | None = None,
                        say: Say = _say) -> dict[str, Any]:
    """Evaluate the candidate against the live adapter (or the base model) on held-out prompts, served side
    by side; unless it is worse on a gated metric, it serves ``share`` of new conversations beside the live
    adapter (A/B, default ``AISLE_AB_SHARE``), or all of them (share 1, no live adapter yet, or merged
    serving, which cannot serve two adapters at once). Returns the report.

    Raises:
        PromotionRefused: naming each gated metric the candidate is worse on (it stays a candidate).
    """
    from bot import adapters
    from finetune.evaluate import against_live

    with factory() as session:
        row = adapters.get(session, name)
        current = adapters.live(session)
        if current is not None and current.name == name:
            raise adapters.AdapterError(f"{name} is already live")
        served = [(name, row.path)] + ([(current.name, current.path)] if current is not None else [])
        live_name = current.name if current is not None else None
    async with vllm_for(settings, url, served) as llm:
        say(f"[promote] {len(examples)} held-out prompts: {name} against {live_name or 'the base model'}")
        report, failed = await against_live(llm, examples, candidate=name, live=live_name, args=eval_args)
    (Path(row.path) / "gate.json").write_text(json.dumps(report, indent=2))
    verdict = {"against": live_name or "base", "examples": len(examples), "failed": failed,
               **{k: {m: report[k][m] for m in ("grounded_rate", "hallucination_rate", "broken_text_rate")}
                  for k in ("candidate", "live")}}
    with factory() as session, session.begin():
        adapters.record_metrics(session, name=name, metrics={"gate": verdict})
    if failed:
        raise PromotionRefused(f"{name} stays a candidate: worse than {live_name or 'the base model'} on "
                               + "; ".join(failed))
    share = settings.ab_share if share is None else share
    if share < 1 and live_name is not None and not settings.merged_adapters:
        with factory() as session, session.begin():
            adapters.start_trial(session, name=name, share=share)
        say(f"[promote] A/B: {name} serves {share:.0%} of new conversations beside {live_name} (each keeps its "
            f"arm); compare them with `aisle finetune status`, then `aisle adapters promote {name}` gives it all "
            "traffic and `aisle finetune rollback` ends the trial")
        return report
    if share < 1 and live_name is not None:
        say("[promote] merged serving runs one adapter at a time: no A/B; it takes all traffic "
            "(AISLE_ADAPTER_SERVING=runtime serves a trial beside the live adapter)")
    with factory() as session, session.begin():
        adapters.promote(session, name=name)
    say(f"[promote] {name} is live (it replaced {live_name or 'the base model'}); running apps switch new replies "
        "within AISLE_ADAPTER_POLL_S seconds; `aisle finetune rollback` goes back")
    return report


class PromotionRefused(RuntimeError):
    """The adapter was evaluated but did not beat the base model, so it was not promoted."""


def dataset_examples(products: Sequence[ProductDoc], *, n: int, store_name: str, k: int,
                    seed: int = 1) -> list[Example]:
    """Catalog-grounded examples on another catalog (a dataset the adapter never trained on)."""
    from finetune.catalog_dialogs import catalog_examples

    return catalog_examples(catalog_search(products), products, n=n, store_name=store_name, k=k, seed=seed,
                            other_currency_share=0.0)  # asked as that catalog prices its products


def refresh_shipped(settings: Settings, factory: sessionmaker[Session], say: Say = _say) -> dict[str, Any]:
    """Write the demo store's bootstrap data as this code makes it and, when it is byte for byte what the
    shipped adapter was trained on, give the adapter this code's fingerprint (:func:`finetune.shipped.refresh`):
    about two minutes instead of a retraining. Run on a home that holds the demo store alone."""
    import tempfile

    from bot.store import load_products
    from finetune import shipped

    with factory() as session:
        products = load_products(session)
    fingerprint = shipped.fingerprint(settings, products)
    if fingerprint["catalog"] != shipped.demo_catalog_sha256():
        raise ValueError(f"--refresh checks the demo store's data: run it on a home that holds the demo store alone "
                         f"(`{shipped.REBUILD}-refresh` makes one)")
    with tempfile.TemporaryDirectory() as tmp:
        data = export(settings, factory, ExportArgs(out_dir=Path(tmp) / "data", history_turns=settings.history_turns),
                      catalog_n=BOOTSTRAP_EXAMPLES, say=say)
    manifest = shipped.refresh(fingerprint, data["sha256"])
    say(f"[bootstrap] the bootstrap data is unchanged ({data['sha256']['train'][:10]}); the shipped adapter "
        f"{shipped.shipped_name(manifest)} now carries this code's fingerprint: commit {shipped.ADAPTER}")
    return manifest


def bootstrap(settings: Settings, factory: sessionmaker[Session], *, eval_limit: int, steps: int = BOOTSTRAP_STEPS,
              catalog_n: int = BOOTSTRAP_EXAMPLES, lr: float = BOOTSTRAP_LR, ship: bool = False,
              say: Say = _say) -> str | None:
    """A store's first adapter: the shipped one when it was trained for this store, else export, train,
    evaluate, and promote it if it beats the base model.

    Does nothing when the registry already has an adapter (a retired one stays retired), unless ``ship``:
    then it always trains, and writes the adapter it promotes to :data:`finetune.shipped.ADAPTER` with its
    manifest (the demo store's default adapter). Returns the name of the adapter that went live, if one
    did. Evaluation runs on ``AISLE_VLLM_URL`` when it is set (that server needs runtime LoRA), else on a
    managed server of its own.
    """
    import time

    from sqlalchemy import select

    from bot.models import Adapter
    from bot.store import load_products
    from finetune import shipped

    with factory() as session:
        if not ship and session.scalar(select(Adapter.name).limit(1)) is not None:
            say("[bootstrap] the registry already has adapters; nothing to do (see `aisle adapters list`)")
            return None
        products = load_products(session)
    fingerprint = shipped.fingerprint(settings, products)
    if ship:
        if (steps, catalog_n, lr) != (BOOTSTRAP_STEPS, BOOTSTRAP_EXAMPLES, BOOTSTRAP_LR):
            raise ValueError("--ship trains the shipped recipe: leave out --steps, --lr and --catalog-examples")
        if fingerprint["catalog"] != shipped.demo_catalog_sha256():
            raise ValueError("--ship trains the demo store's default adapter: run it on a home that holds the demo "
                             f"store alone (`{shipped.REBUILD}` makes one)")
    else:
        installed = shipped.install(settings, products, factory, say=say)
        if installed is not None:
            return installed
    stamp = time.strftime("%Y%m%d-%H%M%S")
    data = settings.home / "exports" / f"bootstrap-{stamp}"
    manifest = export(settings, factory, ExportArgs(out_dir=data, history_turns=settings.history_turns),
                      catalog_n=catalog_n, say=say)
    name = f"grounding-{stamp}"
    out = train(settings, factory, LoraArgs(data_dir=data, out_dir=settings.adapters_path,
                                            base_model=settings.generator_path, name=name, max_steps=steps, lr=lr,
                                            eval_examples=24),
                say=say)
    try:
        reports = asyncio.run(evaluate(settings, factory, name=name,
                                       datasets={"held-out": held_out_examples(data, eval_limit)},
                                       url=settings.vllm_url, eval_args=EvalArgs(adapter=name), promote=True, say=say))
    except PromotionRefused as exc:
        say(f"[bootstrap] {exc}")
        return None
    if ship:
        summary = {d: {k: r[k] for k in ("base", "adapter")} for d, r in reports.items()}
        written = shipped.write(out, fingerprint=fingerprint, figures=summary,
                                train=json.loads((out / "train.json").read_text()), data_sha256=manifest["sha256"])
        say(f"[bootstrap] wrote the shipped adapter to {shipped.ADAPTER} ({written['weights_sha256'][:10]}); "
            f"commit it")
    return name
