"""``aisle bench chat``: the chat server against raw vLLM, same prompts, same concurrency, one run.

The app runs as a subprocess (``aisle serve``) in front of one vLLM server.
Each round sends ``sessions`` concurrent questions through the WebSocket, then
rebuilds exactly the prompts the app sent (same products, same constraint,
same prompt builder) and sends them straight to vLLM at the same concurrency.
An untimed pass first sends each question once through the app, which gives
the exact prompt and warms vLLM's prefix cache equally for both sides. The
sides never overlap, each starts after a quiet pause, the side that goes first turns with the round, and
prompt token counts are compared to prove the prompts match.

By default the app serves the registry's live adapter as the CPU default does, merged into
the weights of its vLLM (``--adapter``), and a third side sends the same prompts to a second
vLLM serving the plain base model with LoRA off: what grounding costs the shopper in speed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bot.bench.serving import app_process, open_session
from bot.bench.stats import percentiles
from bot.turn_events import ReplyMeta

QUESTIONS = (
    "waterproof running shoes under $100",
    "a quiet blender for smoothies",
    "noise cancelling headphones for travel",
    "gift idea for a coffee lover under $40",
    "a warm sleeping bag for winter camping",
    "non-slip yoga mat",
    "cast iron skillet that works on induction",
    "rain jacket that packs small",
    "smart plug with energy monitoring",
    "durable chew toys for a large dog",
    "sunscreen for sensitive skin",
    "bike lights for night rides under $60",
)


QUIET_S = 1.5
"""Pause before each side. vLLM's CPU workers keep polling for work for a second after their last step
(its shared-memory queue busy-waits before it sleeps), so a side that started at once would share the
cores with the server the previous side used: with a base-model side, that was the app's side twice as
often as raw vLLM's."""


@dataclass(frozen=True)
class ChatBenchArgs:
    json_out: Path = field(metadata={"help": "Where to write the figures."})
    sessions: int = field(default=1, metadata={"help": "Concurrent sessions per round."})
    rounds: int = field(default=4, metadata={"help": "Rounds per side."})
    max_tokens: int = field(default=64, metadata={"help": "Tokens per reply (same on both sides)."})
    adapter: str = field(default="live", metadata={
        "help": "What the app serves: 'live' (the live adapter of AISLE_HOME's registry, the base model when "
                "there is none), a registered adapter's name, or 'base'."})

    def __post_init__(self) -> None:
        if self.sessions < 1 or self.rounds < 1 or self.max_tokens < 1:
            raise ValueError("sessions, rounds and max_tokens must be positive")


@dataclass
class Sample:
    ttft_ms: float
    tokens: int
    total_ms: float


async def _aisle_ask(ws: Any, question: str) -> tuple[Sample, dict[str, Any]]:
    """Send one question on an open socket; time to the first delta and to the completed reply (its frame)."""
    start = time.perf_counter()
    await ws.send(json.dumps({"type": "message.create", "client_id": "b1", "text": question}))
    first = None
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "message.delta" and first is None:
            first = time.perf_counter()
        if frame["type"] == "message.completed":
            end = time.perf_counter()
            if (status := frame["meta"].get("status")) != "completed":
                raise RuntimeError(f"reply did not complete: {status} (see the message's meta in the database)")
            return Sample(((first or end) - start) * 1000, int(frame["meta"]["tokens"]["completion"] or 0),
                          (end - start) * 1000), frame
        if frame["type"] == "error":
            raise RuntimeError(f"server error: {frame}")


async def _aisle_one(base: str, shopper: str, question: str) -> tuple[Sample, dict[str, Any]]:
    ws = await open_session(base, shopper)
    try:
        return await _aisle_ask(ws, question)
    finally:
        await ws.close()


def _stored_meta(factory: Any, message_id: int) -> ReplyMeta:
    """The reply's whole record (the shopper's frame carries only part of it)."""
    from bot.models import Message

    with factory() as s:
        return ReplyMeta.from_json(s.get_one(Message, message_id).meta)


async def _raw_one(llm: Any, messages: list[dict[str, str]], max_tokens: int,
                   penalty: float, *, exact: bool = False) -> tuple[Sample, int]:
    """One streamed request straight to vLLM; ``exact`` makes the reply exactly ``max_tokens`` long."""
    from bot.llm.base import Delta, GenerationRequest

    start = time.perf_counter()
    first = None
    usage = None
    request = GenerationRequest(messages=messages, max_tokens=max_tokens, temperature=0.0,
                                repetition_penalty=penalty, min_tokens=max_tokens if exact else 0)
    async for item in llm.stream(request):
        if isinstance(item, Delta):
            first = first or time.perf_counter()
        else:
            usage = item
    end = time.perf_counter()
    assert usage is not None
    return Sample(((first or end) - start) * 1000, usage.completion_tokens, (end - start) * 1000), usage.prompt_tokens


def _rebuild_prompt(question: str, meta: ReplyMeta) -> list[dict[str, str]]:
    """The turn's own prompt, rebuilt from the record its reply stored (``meta.prompt``) by the same
    function the turn built it with (a one-question session has no history)."""
    from bot.prompts import PromptRecord

    return PromptRecord.from_meta(meta.prompt).messages(history=[], text=question)


async def _run(args: ChatBenchArgs, base: str, vllm_url: str, factory: Any, settings: Any,
               base_url: str | None = None) -> dict[str, Any]:
    """The timed rounds; ``base_url``, when given, is a vLLM serving the plain base model (a third side)."""
    from bot.llm.factory import vllm_config
    from bot.llm.vllm_http import VLLMBackend

    backends = {"raw": VLLMBackend(vllm_config(settings, vllm_url))}
    if base_url:
        backends["base"] = VLLMBackend(vllm_config(settings, base_url))
    penalty = settings.repetition_penalty
    aisle: list[Sample] = []
    raws: dict[str, list[Sample]] = {side: [] for side in backends}
    walls = dict.fromkeys(("aisle", *backends), 0.0)
    prompt_mismatch = 0
    # the server's own stage times (meta.latency_ms): the request reaches vLLM, of which query embedding,
    # intent and sentiment (batched); the model's first token; the first text the guard let out
    stages: dict[str, list[float]] = {"before_llm": [], "embed_classify": [], "first_token": [], "first_words": []}
    # Untimed discovery pass: one reply per question through the app gives the exact
    # prompt it sends, and warms vLLM's prefix cache equally for both measured sides.
    used = sorted({(r * args.sessions + i) % len(QUESTIONS) for r in range(args.rounds) for i in range(args.sessions)})
    prompts: dict[str, list[dict[str, str]]] = {}
    prompt_tokens: dict[str, int] = {}
    reply_tokens: dict[str, int] = {}  # how long the app's reply to each question is
    for n in tqdm(used, desc="discovering prompts", file=sys.stderr):
        sample, frame = await _aisle_one(base, f"bench-discover-{n}", QUESTIONS[n])
        meta = _stored_meta(factory, frame["id"])
        prompts[QUESTIONS[n]] = _rebuild_prompt(QUESTIONS[n], meta)
        prompt_tokens[QUESTIONS[n]] = int(meta.tokens["prompt"] or 0)
        reply_tokens[QUESTIONS[n]] = max(1, sample.tokens)
    # The base model writes replies of other lengths than the adapter's, and a batch of short replies
    # is mostly prefill: it is asked for exactly the app's number of tokens per question, so the two
    # sides do the same work and the ratio is what serving the adapter costs, not what it says.
    if "base" in backends:  # the base server's prefix cache is warmed the same way (untimed)
        for q, messages in prompts.items():
            await _raw_one(backends["base"], messages, reply_tokens[q], penalty, exact=True)

    async def aisle_side(r: int, questions: list[str]) -> None:
        # sessions open first, untimed, as the raw side's connections are already pooled;
        # then every question leaves at once, as on the raw side
        sockets = await asyncio.gather(*(open_session(base, f"bench-{r}-{i}") for i in range(len(questions))))
        t = time.perf_counter()
        try:
            results = await asyncio.gather(*(_aisle_ask(ws, q) for ws, q in zip(sockets, questions, strict=True)))
            walls["aisle"] += time.perf_counter() - t
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))
        aisle.extend(s for s, _ in results)
        for stage, values in stages.items():
            values.extend(float(f["meta"]["latency_ms"][stage] or 0) for _, f in results)

    async def raw_side(side: str, questions: list[str]) -> None:
        nonlocal prompt_mismatch
        llm = backends[side]
        exact = side == "base"
        t = time.perf_counter()
        results = await asyncio.gather(*(_raw_one(llm, prompts[q], reply_tokens[q] if exact else args.max_tokens,
                                                  penalty, exact=exact) for q in questions))
        walls[side] += time.perf_counter() - t
        raws[side].extend(s for s, _ in results)
        prompt_mismatch += sum(pt != prompt_tokens[q] for (_, pt), q in zip(results, questions, strict=True))

    sides = ["aisle", *backends]
    for r in tqdm(range(args.rounds), desc="bench chat rounds", file=sys.stderr):
        questions = [QUESTIONS[(r * args.sessions + i) % len(QUESTIONS)] for i in range(args.sessions)]
        for side in sides[r % len(sides):] + sides[:r % len(sides)]:  # who goes first turns with the round
            await asyncio.sleep(QUIET_S)
            await (aisle_side(r, questions) if side == "aisle" else raw_side(side, questions))
    for llm in backends.values():
        await llm.aclose()
    raw = raws["raw"]
    a_ttft = percentiles([s.ttft_ms for s in aisle])
    r_ttft = percentiles([s.ttft_ms for s in raw])
    a_tps = sum(s.tokens for s in aisle) / walls["aisle"]
    r_tps = sum(s.tokens for s in raw) / walls["raw"]
    extra: dict[str, Any] = {}
    if "base" in raws:
        b_ttft = percentiles([s.ttft_ms for s in raws["base"]])
        b_tps = sum(s.tokens for s in raws["base"]) / walls["base"]
        extra = {"base_vllm": {"ttft_ms": {"p50": b_ttft["p50"], "p95": b_ttft["p95"]}, "tokens_per_s": round(b_tps, 1),
                               "reply_tokens": "the app's, per question"},
                 "ratio_vs_base": round(a_tps / b_tps, 3) if b_tps else None}
    figures = {
        "sessions": args.sessions,
        "rounds": args.rounds,
        "requests": len(aisle),
        "max_tokens": args.max_tokens,
        "stream_interval": settings.stream_interval,
        "stream_every_token_below": settings.stream_every_token_below,
        "ttft_ms": {"p50": a_ttft["p50"], "p95": a_ttft["p95"]},
        "tokens_per_s": round(a_tps, 1),
        "raw_vllm": {"ttft_ms": {"p50": r_ttft["p50"], "p95": r_ttft["p95"]}, "tokens_per_s": round(r_tps, 1)},
        "overhead_ttft_ms": {"p50": round(a_ttft["p50"] - r_ttft["p50"], 1),
                             "p95": round(a_ttft["p95"] - r_ttft["p95"], 1)},
        "throughput_ratio": round(a_tps / r_tps, 3) if r_tps else None,
        **{f"server_{stage}_ms": percentiles(values) for stage, values in stages.items()},
        "completion_tokens": {"aisle": sum(s.tokens for s in aisle)} | {
            side: sum(s.tokens for s in samples) for side, samples in raws.items()},
        "prompt_token_mismatches": prompt_mismatch,
    }
    return figures | extra


def chosen_adapter(settings: Any, wanted: str) -> tuple[str, Path] | None:
    """The adapter to serve: the home registry's live one (none: the base model), a named one, or none."""
    if wanted == "base":
        return None
    from bot import adapters
    from bot.db import make_engine, session_factory

    engine = make_engine(settings.db_url)
    try:
        with session_factory(engine)() as s:
            row = adapters.live(s) if wanted == "live" else adapters.get(s, wanted)
            return (row.name, Path(row.path)) if row is not None else None
    finally:
        engine.dispose()


def start_servers(settings: Any, adapter: tuple[str, Path] | None, *, with_base: bool = True
                  ) -> tuple[list[Any], str, str | None]:
    """vLLM for the app, on the adapter merged into the weights as the CPU default serves it, and, with an
    adapter and ``with_base``, a second vLLM on the plain base model with LoRA off. Returns the servers and
    both URLs."""
    import dataclasses

    from bot.llm.factory import managed_config
    from bot.llm.managed import ManagedVLLM, free_port
    from bot.model_store import merge_adapter

    plain = managed_config(settings.model_copy(update={"vllm_port": free_port()}))
    plain = dataclasses.replace(plain, enable_lora=False, log_path=plain.log_path.with_name("vllm-bench-base.log"))
    configs = [plain]
    if adapter is not None:
        name, source = adapter
        merged = merge_adapter(settings.generator_path, source, settings.merged_path(name))
        configs.insert(0, dataclasses.replace(plain, model_dir=merged, served_model_name=name, port=free_port(),
                                              aliases=(plain.served_model_name,),  # the app asks for the base name
                                              log_path=plain.log_path.with_name(f"vllm-bench-{name}.log")))
        configs = configs if with_base else configs[:1]
    servers: list[ManagedVLLM] = []
    try:
        for config in configs:
            print(f"[bench] starting vLLM on {config.served_model_name}", file=sys.stderr)
            servers.append(ManagedVLLM(config))
            servers[-1].start()
    except BaseException:
        for server in servers:
            server.stop()
        raise
    urls = [server.config.url for server in servers]
    return servers, urls[0], urls[1] if len(urls) > 1 else None


def main(args: ChatBenchArgs) -> int:
    """Run the benchmark and write its JSON; returns a process exit code."""
    from bot.config import Settings, get_settings
    from bot.db import make_engine, migrate, session_factory
    from bot.model_store import check_generator
    from bot.store import count_products, load_demo_store
    from retrieval.demo_store import generate

    base_settings = get_settings()
    # what to serve is settled first: an unknown adapter is refused before anything starts
    adapter = None if base_settings.vllm_url else chosen_adapter(base_settings, args.adapter)
    model = check_generator(base_settings.generator_path)
    home = base_settings.home / "bench"
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "index").exists() and (base_settings.index_dir).exists():
        shutil.copytree(base_settings.index_dir, home / "index")
    db_url = f"sqlite:///{home / 'bench.db'}"
    if (home / "bench.db").exists():
        (home / "bench.db").unlink()
    engine = make_engine(db_url)
    migrate(engine)
    factory = session_factory(engine)
    with factory() as s:
        empty = count_products(s) == 0
    if empty:
        load_demo_store(factory, generate(7), say=lambda m: print(m, file=sys.stderr))

    servers: list[Any] = []
    base_url = None
    vllm_url = base_settings.vllm_url
    if vllm_url:
        print("[bench] AISLE_VLLM_URL is set: measuring what that server serves (no --adapter, no base side)",
              file=sys.stderr)
    else:
        servers, vllm_url, base_url = start_servers(base_settings, adapter)
    env = dict(AISLE_DATABASE_URL=db_url, AISLE_VLLM_URL=vllm_url,
               AISLE_BASE_MODEL=str(model), AISLE_TEMPERATURE="0", AISLE_MAX_TOKENS=str(args.max_tokens),
               AISLE_CLASSIFIER_DIR=str(base_settings.classifiers_path),
               AISLE_STREAM_INTERVAL=str(base_settings.stream_interval),
               AISLE_STREAM_EVERY_TOKEN_BELOW=str(base_settings.stream_every_token_below))
    # the raw side sends what the app sends: same sampling, same streaming interval
    settings = Settings(home=home, database_url=db_url, vllm_url=vllm_url, base_model=model,
                        temperature=0, max_tokens=args.max_tokens, stream_interval=base_settings.stream_interval,
                        stream_every_token_below=base_settings.stream_every_token_below)
    try:
        with app_process(home, env) as base:
            print(f"[bench] {args.sessions} sessions x {args.rounds} rounds", file=sys.stderr)
            result = asyncio.run(_run(args, base, vllm_url, factory, settings, base_url))
    finally:
        for server in servers:
            server.stop()
        engine.dispose()
    result["adapter"] = adapter[0] if adapter else None
    result["device"] = "cpu" if not os.environ.get("CUDA_VISIBLE_DEVICES") else "gpu"
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    if result["prompt_token_mismatches"]:  # the two sides did not send the same prompts: no fair ratio
        print(f"[bench] error: {result['prompt_token_mismatches']} prompts differ between aisle and raw vLLM; "
              "the comparison is not like for like", file=sys.stderr)
        return 1
    return 0
