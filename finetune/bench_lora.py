"""``aisle bench lora``: export, train a grounding adapter, and compare it with the base model on vLLM.

One run: the store's logged dialogs plus catalog-grounded ones are exported, a LoRA
adapter is trained on them (timed), and the base model and the adapter answer the
same held-out prompts through one vLLM server, on two catalogs:

- ``demo``: the export's held-out examples (products never trained on);
- ``online_retail``: questions about the real Online Retail catalog, which the
  adapter never saw, retrieved from an index built over it.

Top-level ``grounded_rate`` and ``hallucination_rate`` are the demo store's;
``datasets`` has both. ``serving`` measures what serving the adapter costs, side by side on
the same held-out prompts (64 tokens each, one request and 16 at once): the base model on a
server without LoRA, the base model and the adapter on a LoRA-enabled server (runtime
loading), and the adapter merged into the weights on a server without LoRA (what the managed
server does on the CPU build).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune.lora import BOOTSTRAP_LR, BOOTSTRAP_STEPS


async def _speed(url: str, model: str, examples: list[Any], concurrency: int) -> dict[str, float]:
    """Time to first token (p50) and aggregate tokens/s for ``concurrency`` requests of 64 tokens at once."""
    import httpx

    from bot.bench.stats import percentiles

    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        async def one(messages: list[dict[str, str]]) -> tuple[float, int]:
            started, first, tokens = time.perf_counter(), None, 0
            body = {"model": model, "messages": messages, "max_tokens": 64, "temperature": 0, "stream": True,
                    "ignore_eos": True, "stream_options": {"include_usage": True}}
            async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
                resp.raise_for_status()
                async for line in resp.aiter_lines():
                    if not line.startswith("data:") or line.strip() == "data: [DONE]":
                        continue
                    chunk = json.loads(line[5:])
                    if first is None and any((c.get("delta") or {}).get("content") for c in chunk["choices"]):
                        first = time.perf_counter() - started
                    if chunk.get("usage"):
                        tokens = chunk["usage"]["completion_tokens"]
            return (first or 0.0) * 1000, tokens

        batch = [ex.messages for ex in examples[:concurrency]]
        await asyncio.gather(*(one(m) for m in batch))  # warm the prefix cache and the engine
        started = time.perf_counter()
        results = await asyncio.gather(*(one(m) for m in batch))
        elapsed = time.perf_counter() - started
    return {"ttft_ms_p50": percentiles([r[0] for r in results])["p50"],
            "tokens_per_s": round(sum(r[1] for r in results) / elapsed, 1)}


def serving_costs(settings: Any, adapter: Path, examples: list[Any]) -> dict[str, Any]:
    """Base and adapter speed on three servers started one after another on the same prompts."""
    import dataclasses

    import httpx

    from bot.llm.factory import managed_config
    from bot.llm.managed import ManagedVLLM, free_port
    from bot.model_store import merge_adapter

    merged = merge_adapter(settings.generator_path, adapter, settings.merged_path(adapter.name))
    plain = dataclasses.replace(managed_config(settings), port=free_port(), enable_lora=False, aliases=(),
                                log_path=settings.log_dir / "vllm-bench-lora.log")
    setups = {
        "no_lora_server": (plain, [("base", plain.served_model_name)]),
        "lora_server": (dataclasses.replace(plain, enable_lora=True),
                        [("base", plain.served_model_name), ("adapter_runtime", adapter.name)]),
        "merged_server": (dataclasses.replace(plain, model_dir=merged), [("adapter_merged", plain.served_model_name)]),
    }
    out: dict[str, Any] = {}
    for server, (config, models) in setups.items():
        managed = ManagedVLLM(config)
        url = managed.start()
        try:
            if config.enable_lora:
                httpx.post(f"{url}/v1/load_lora_adapter", json={"lora_name": adapter.name, "lora_path": str(adapter)},
                           timeout=120).raise_for_status()
            for label, model in models:
                out[f"{server}.{label}"] = {f"concurrency_{n}": asyncio.run(_speed(url, model, examples, n))
                                            for n in (1, 16)}
                print(f"[bench] {server} {label}: {out[f'{server}.{label}']}", file=sys.stderr, flush=True)
        finally:
            managed.stop()
    return out


@dataclass(frozen=True)
class LoraBenchArgs:
    json_out: Path = field(metadata={"help": "Where to write the figures."})
    data_dir: Path = field(metadata={"help": "The shared datasets folder (Online Retail)."})
    steps: int = field(default=BOOTSTRAP_STEPS, metadata={"help": "LoRA training steps."})
    lr: float = field(default=BOOTSTRAP_LR, metadata={"help": "Peak learning rate."})
    top_layers: int = field(default=15, metadata={"help": "LoRA on the last N decoder layers (0 = all)."})
    catalog_examples: int = field(default=800, metadata={"help": "Catalog-grounded dialogs in the export."})
    eval_examples: int = field(default=120, metadata={"help": "Held-out prompts per dataset."})
    serving: bool = field(default=True, metadata={"help": "Also measure what serving the adapter costs."})

    def __post_init__(self) -> None:
        if min(self.steps, self.catalog_examples, self.eval_examples) < 1:
            raise ValueError("steps, catalog_examples and eval_examples must be positive")


def main(args: LoraBenchArgs) -> int:
    from bot.config import get_settings
    from bot.db import make_engine, migrate, session_factory
    from bot.store import count_products
    from finetune import jobs
    from finetune.data import ExportArgs
    from finetune.evaluate import EvalArgs
    from finetune.lora import LoraArgs
    from retrieval.importers import import_catalog

    settings = get_settings()
    engine = make_engine(settings.db_url)
    migrate(engine)
    factory = session_factory(engine)
    with factory() as session:
        if not count_products(session):
            print("error: the store has no products; run `aisle demo-data` first", file=sys.stderr)
            return 2
    stamp = time.strftime("%Y%m%d-%H%M%S")
    export_dir = settings.home / "exports" / f"bench-lora-{stamp}"
    manifest = jobs.export(settings, factory, ExportArgs(out_dir=export_dir, holdout=0.15,
                                                         history_turns=settings.history_turns),
                           catalog_n=args.catalog_examples)
    adapter = jobs.train(settings, factory, LoraArgs(data_dir=export_dir, out_dir=settings.adapters_path,
                                                     base_model=settings.generator_path, name=f"bench-{stamp}",
                                                     max_steps=args.steps, lr=args.lr,
                                                     top_layers=args.top_layers))
    trained = json.loads((adapter / "train.json").read_text())
    retail = import_catalog(args.data_dir / "online_retail" / "transactions_until_2011-09-09.csv.gz").products
    datasets = {
        "demo": jobs.held_out_examples(export_dir, args.eval_examples),
        "online_retail": jobs.dataset_examples(retail, n=args.eval_examples, store_name=settings.store_name,
                                               k=settings.retrieve_k),
    }
    reports = asyncio.run(jobs.evaluate(settings, factory, name=adapter.name, datasets=datasets,
                                        url=settings.vllm_url, eval_args=EvalArgs(adapter=adapter.name),
                                        promote=False))
    demo = reports["demo"]
    out: dict[str, Any] = {
        "adapter": adapter.name,
        "grounded_rate": {"base": demo["base"]["grounded_rate"], "adapter": demo["adapter"]["grounded_rate"]},
        "hallucination_rate": {"base": demo["base"]["hallucination_rate"],
                               "adapter": demo["adapter"]["hallucination_rate"],
                               "after_guard": {who: demo[who]["after_guard"]["hallucination_rate"]
                                               for who in ("base", "adapter")}},
        "constraint_violation_rate": {"base": demo["base"]["constraint_violation_rate"],
                                      "adapter": demo["adapter"]["constraint_violation_rate"]},
        "broken_text_rate": {"after_guard": demo["adapter"]["after_guard"]["broken_text_rate"],
                             "after_guard_base": demo["base"]["after_guard"]["broken_text_rate"]},
        "unseen_catalog": {"grounded_rate": {who: reports["online_retail"][who]["grounded_rate"]
                                             for who in ("base", "adapter")}},
        "after_render_and_guard": {name: {who: {k: r[who]["after_guard"].get(k) for k in
                                                ("grounded_rate", "hallucination_rate", "correct_rate")}
                                          for who in ("base", "adapter")} for name, r in reports.items()},
        "correct_rate": {name: {who: r[who].get("correct_rate") for who in ("base", "adapter")}
                         for name, r in reports.items()},
        "correct_by_turn": {name: {kind: v.get("correct_rate") for kind, v in r["adapter"]["by_turn"].items()}
                            for name, r in reports.items()},
        "train_minutes": trained["train_minutes"],
        "steps": trained["steps"],
        "train_examples": trained["train_examples"],
        "eval_loss": {"before": trained["eval_loss_before"], "after": trained["eval_loss_after"]},
        "export": {"examples": manifest["examples"], "logged": manifest["logged_examples"],
                   "catalog": manifest["catalog_examples"]},
        "datasets": {name: {k: r[k] for k in ("base", "adapter", "examples")} for name, r in reports.items()},
        "report": str(adapter / "eval.json"),
    }
    if args.serving:
        out["serving"] = serving_costs(settings, adapter, datasets["demo"])
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(out, indent=2))
    print(json.dumps({k: out[k] for k in ("grounded_rate", "hallucination_rate", "correct_rate", "train_minutes")}))
    return 0
