"""``aisle bench chat``: the chat server against raw vLLM, same prompts, same concurrency, one run.

The app runs as a subprocess (``aisle serve``) in front of one vLLM server.
Each round sends ``sessions`` concurrent questions through the WebSocket, then
rebuilds exactly the prompts the app sent (same products, same constraint,
same prompt builder) and sends them straight to vLLM at the same concurrency.
An untimed pass first sends each question once through the app, which gives
the exact prompt and warms vLLM's prefix cache equally for both sides. The
two sides never overlap, the side that goes first alternates by round, and
prompt token counts are compared to prove the prompts match.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

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


@dataclass(frozen=True)
class ChatBenchArgs:
    json_out: Path = field(metadata={"help": "Where to write the figures."})
    sessions: int = field(default=1, metadata={"help": "Concurrent sessions per round."})
    rounds: int = field(default=4, metadata={"help": "Rounds per side."})
    max_tokens: int = field(default=64, metadata={"help": "Tokens per reply (same on both sides)."})

    def __post_init__(self) -> None:
        if self.sessions < 1 or self.rounds < 1 or self.max_tokens < 1:
            raise ValueError("sessions, rounds and max_tokens must be positive")


@dataclass
class Sample:
    ttft_ms: float
    tokens: int
    total_ms: float


async def _open_session(base: str, shopper: str) -> Any:
    """A shopper session and its chat socket, past ``session.ready`` (not timed: a session opens once)."""
    from websockets.asyncio.client import connect

    async with httpx.AsyncClient() as client:
        resp = await client.post(f"{base}/api/session", json={"shopper_id": shopper})
        if resp.status_code != 200:
            raise RuntimeError(f"POST /api/session answered {resp.status_code}: {resp.text[:200]}")
        token = resp.json()["token"]
    ws = await connect(base.replace("http", "ws", 1) + f"/ws/chat?token={token}", max_queue=None)
    json.loads(await ws.recv())
    return ws


async def _aisle_ask(ws: Any, question: str) -> tuple[Sample, ReplyMeta]:
    """Send one question on an open socket; time to the first delta and to the completed reply."""
    start = time.perf_counter()
    await ws.send(json.dumps({"type": "message.create", "client_id": "b1", "text": question}))
    first = None
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "message.delta" and first is None:
            first = time.perf_counter()
        if frame["type"] == "message.completed":
            end = time.perf_counter()
            meta = ReplyMeta.from_json(frame["meta"])
            if meta.status != "completed":
                raise RuntimeError(f"reply did not complete: {meta.status} {meta.error}")
            return Sample(((first or end) - start) * 1000, int(meta.tokens["completion"] or 0),
                          (end - start) * 1000), meta
        if frame["type"] == "error":
            raise RuntimeError(f"server error: {frame}")


async def _aisle_one(base: str, shopper: str, question: str) -> tuple[Sample, ReplyMeta]:
    ws = await _open_session(base, shopper)
    try:
        return await _aisle_ask(ws, question)
    finally:
        await ws.close()


async def _raw_one(llm: Any, messages: list[dict[str, str]], max_tokens: int,
                   penalty: float) -> tuple[Sample, int]:
    from bot.llm.base import Delta, GenerationRequest

    start = time.perf_counter()
    first = None
    usage = None
    request = GenerationRequest(messages=messages, max_tokens=max_tokens, temperature=0.0,
                                repetition_penalty=penalty)
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


async def _run(args: ChatBenchArgs, base: str, vllm_url: str, factory: Any, settings: Any) -> dict[str, Any]:
    from bot.llm.factory import vllm_config
    from bot.llm.vllm_http import VLLMBackend

    llm = VLLMBackend(vllm_config(settings, vllm_url))
    penalty = settings.repetition_penalty
    aisle: list[Sample] = []
    raw: list[Sample] = []
    walls = {"aisle": 0.0, "raw": 0.0}
    prompt_mismatch = 0
    before_llm: list[float] = []  # server time spent before the request reaches vLLM
    embed_ms: list[float] = []  # of which: query embedding, intent and sentiment (batched)
    # Untimed discovery pass: one reply per question through the app gives the exact
    # prompt it sends, and warms vLLM's prefix cache equally for both measured sides.
    used = sorted({(r * args.sessions + i) % len(QUESTIONS) for r in range(args.rounds) for i in range(args.sessions)})
    prompts: dict[str, list[dict[str, str]]] = {}
    prompt_tokens: dict[str, int] = {}
    for n in tqdm(used, desc="discovering prompts", file=sys.stderr):
        _, meta = await _aisle_one(base, f"bench-discover-{n}", QUESTIONS[n])
        prompts[QUESTIONS[n]] = _rebuild_prompt(QUESTIONS[n], meta)
        prompt_tokens[QUESTIONS[n]] = int(meta.tokens["prompt"] or 0)

    async def aisle_side(r: int, questions: list[str]) -> None:
        # sessions open first, untimed, as the raw side's connections are already pooled;
        # then every question leaves at once, as on the raw side
        sockets = await asyncio.gather(*(_open_session(base, f"bench-{r}-{i}") for i in range(len(questions))))
        t = time.perf_counter()
        try:
            results = await asyncio.gather(*(_aisle_ask(ws, q) for ws, q in zip(sockets, questions, strict=True)))
            walls["aisle"] += time.perf_counter() - t
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))
        aisle.extend(s for s, _ in results)
        before_llm.extend(float(m.latency_ms["before_llm"] or 0) for _, m in results)
        embed_ms.extend(float(m.latency_ms["embed_classify"] or 0) for _, m in results)

    async def raw_side(questions: list[str]) -> None:
        nonlocal prompt_mismatch
        t = time.perf_counter()
        results = await asyncio.gather(*(_raw_one(llm, prompts[q], args.max_tokens, penalty) for q in questions))
        walls["raw"] += time.perf_counter() - t
        raw.extend(s for s, _ in results)
        prompt_mismatch += sum(pt != prompt_tokens[q] for (_, pt), q in zip(results, questions, strict=True))

    for r in tqdm(range(args.rounds), desc="bench chat rounds", file=sys.stderr):
        questions = [QUESTIONS[(r * args.sessions + i) % len(QUESTIONS)] for i in range(args.sessions)]
        if r % 2 == 0:
            await aisle_side(r, questions)
            await raw_side(questions)
        else:
            await raw_side(questions)
            await aisle_side(r, questions)
    await llm.aclose()
    a_ttft = percentiles([s.ttft_ms for s in aisle])
    r_ttft = percentiles([s.ttft_ms for s in raw])
    a_tps = sum(s.tokens for s in aisle) / walls["aisle"]
    r_tps = sum(s.tokens for s in raw) / walls["raw"]
    return {
        "sessions": args.sessions,
        "rounds": args.rounds,
        "requests": len(aisle),
        "max_tokens": args.max_tokens,
        "stream_interval": settings.stream_interval,
        "ttft_ms": {"p50": a_ttft["p50"], "p95": a_ttft["p95"]},
        "tokens_per_s": round(a_tps, 1),
        "raw_vllm": {"ttft_ms": {"p50": r_ttft["p50"], "p95": r_ttft["p95"]}, "tokens_per_s": round(r_tps, 1)},
        "overhead_ttft_ms": {"p50": round(a_ttft["p50"] - r_ttft["p50"], 1),
                             "p95": round(a_ttft["p95"] - r_ttft["p95"], 1)},
        "throughput_ratio": round(a_tps / r_tps, 3) if r_tps else None,
        "server_before_llm_ms": percentiles(before_llm),
        "server_embed_classify_ms": percentiles(embed_ms),
        "completion_tokens": {"aisle": sum(s.tokens for s in aisle), "raw": sum(s.tokens for s in raw)},
        "prompt_token_mismatches": prompt_mismatch,
    }


def main(args: ChatBenchArgs) -> int:
    """Run the benchmark and write its JSON; returns a process exit code."""
    from bot.config import Settings, get_settings
    from bot.db import make_engine, migrate, session_factory
    from bot.llm.factory import managed_config
    from bot.llm.managed import ManagedVLLM, free_port
    from bot.model_store import check_generator
    from bot.store import count_products, load_demo_store
    from retrieval.demo_store import generate

    base_settings = get_settings()
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

    managed = None
    vllm_url = base_settings.vllm_url
    if not vllm_url:
        managed = ManagedVLLM(managed_config(base_settings.model_copy(update={"vllm_port": free_port()})))
        print("[bench] starting vLLM", file=sys.stderr)
        vllm_url = managed.start()
    port = free_port()
    env = dict(os.environ, AISLE_HOME=str(home), AISLE_DATABASE_URL=db_url, AISLE_VLLM_URL=vllm_url,
               AISLE_BASE_MODEL=str(model), AISLE_TEMPERATURE="0", AISLE_MAX_TOKENS=str(args.max_tokens),
               AISLE_CLASSIFIER_DIR=str(base_settings.classifiers_path),
               AISLE_STREAM_INTERVAL=str(base_settings.stream_interval),
               # every simulated shopper comes from this one address: lift the per-IP caps
               AISLE_SESSIONS_PER_IP_PER_MIN="100000", AISLE_SESSION_BURST_PER_IP="100000",
               AISLE_SOCKETS_PER_IP="100000")
    # the raw side sends what the app sends: same sampling, same streaming interval
    settings = Settings(home=home, database_url=db_url, vllm_url=vllm_url, base_model=model,
                        temperature=0, max_tokens=args.max_tokens, stream_interval=base_settings.stream_interval)
    log = (home / "serve.log").open("w")
    app = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port)], env=env,
                           stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if app.poll() is not None:
                raise RuntimeError(f"the app exited; see {home / 'serve.log'}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the app did not become healthy")
            time.sleep(0.5)
        print(f"[bench] {args.sessions} sessions x {args.rounds} rounds", file=sys.stderr)
        result = asyncio.run(_run(args, base, vllm_url, factory, settings))
    finally:
        app.terminate()
        app.wait(timeout=30)
        log.close()
        if managed:
            managed.stop()
        engine.dispose()
    result["device"] = "cpu" if not os.environ.get("CUDA_VISIBLE_DEVICES") else "gpu"
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    if result["prompt_token_mismatches"]:  # the two sides did not send the same prompts: no fair ratio
        print(f"[bench] error: {result['prompt_token_mismatches']} prompts differ between aisle and raw vLLM; "
              "the comparison is not like for like", file=sys.stderr)
        return 1
    return 0
