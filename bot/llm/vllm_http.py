"""vLLM's OpenAI-compatible server over HTTP, streaming with per-token timeouts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import httpx

from bot.llm.base import (
    Delta,
    GenerationRequest,
    LLMBackend,
    LLMUnavailable,
    StreamItem,
    Usage,
    next_before,
)


@dataclass(frozen=True)
class VLLMConfig:
    """Where the server is and how long to wait for it."""

    base_url: str = field(metadata={"help": "Server root, e.g. http://127.0.0.1:8100"})
    served_model_name: str = field(default="aisle-base", metadata={"help": "Base model's served name."})
    connect_timeout_s: float = field(default=3.0, metadata={"help": "TCP connect timeout."})
    first_token_timeout_s: float = field(default=20.0, metadata={"help": "Wait for the first token."})
    token_gap_timeout_s: float = field(default=10.0, metadata={"help": "Longest gap between tokens."})
    stream_interval: int = field(default=1, metadata={"help": "Tokens per streamed chunk after the first."})
    every_token_below: int = field(default=0, metadata={
        "help": "While fewer streams than this are open, ask for every token (the first words reach the reader "
                "sooner); from this many on, every stream_interval tokens (fewer events under load). 0: always "
                "stream_interval."})

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        for name in ("connect_timeout_s", "first_token_timeout_s", "token_gap_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.stream_interval < 1:
            raise ValueError("stream_interval must be at least 1")
        if self.every_token_below < 0:
            raise ValueError("every_token_below must be non-negative")


class VLLMBackend(LLMBackend):
    """Talks to ``/v1/chat/completions`` with ``stream=true``; the adapter is the model name."""

    name = "vllm"
    side_by_side = True

    def __init__(self, config: VLLMConfig) -> None:
        self.config = config
        self.open_streams = 0
        self._client = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/"),
            timeout=httpx.Timeout(
                connect=config.connect_timeout_s,
                read=max(config.first_token_timeout_s, config.token_gap_timeout_s),
                write=config.connect_timeout_s,
                pool=config.connect_timeout_s,
            ),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    @property
    def model_name(self) -> str:
        return self.config.served_model_name

    def interval(self) -> int:
        """Tokens per chunk for a stream opened now: every token while few streams are open."""
        return 1 if self.open_streams < self.config.every_token_below else self.config.stream_interval

    def _payload(self, request: GenerationRequest) -> dict[str, object]:
        messages = request.messages
        if request.prefix:
            messages = [*messages, {"role": "assistant", "content": request.prefix}]
        payload: dict[str, object] = {
            "model": request.model or self.config.served_model_name,
            "messages": messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "repetition_penalty": request.repetition_penalty,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if (interval := self.interval()) > 1:
            payload["stream_interval"] = interval
        if request.stop:
            payload["stop"] = list(request.stop)
        if request.min_tokens:
            payload["min_tokens"] = request.min_tokens
        if request.prefix:
            payload["add_generation_prompt"] = False
            payload["continue_final_message"] = True
        return payload

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]:
        model = request.model or self.config.served_model_name
        usage: Usage | None = None
        finish: str | None = None
        got_token = False
        payload = self._payload(request)
        self.open_streams += 1
        try:
            async with self._client.stream("POST", "/v1/chat/completions", json=payload) as resp:
                if resp.status_code != 200:
                    body = (await resp.aread()).decode(errors="replace")[:300]
                    raise LLMUnavailable(f"vLLM answered {resp.status_code}: {body}")
                lines = resp.aiter_lines()
                loop = asyncio.get_running_loop()
                while True:
                    limit = self.config.token_gap_timeout_s if got_token else self.config.first_token_timeout_s
                    try:
                        line = await next_before(lines, loop.time() + limit)
                    except StopAsyncIteration:
                        break
                    except TimeoutError as exc:
                        which = "between tokens" if got_token else "for the first token"
                        raise LLMUnavailable(f"vLLM timed out after {limit:g}s {which}") from exc
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if chunk.get("usage"):
                        u = chunk["usage"]
                        usage = Usage(u.get("prompt_tokens", 0), u.get("completion_tokens", 0), finish, model)
                    for choice in chunk.get("choices", []):
                        finish = choice.get("finish_reason") or finish
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            got_token = True
                            yield Delta(text)
        except httpx.HTTPError as exc:
            raise LLMUnavailable(f"vLLM unreachable at {self.config.base_url}: {exc!r}") from exc
        finally:
            self.open_streams -= 1
        if usage is None:
            raise LLMUnavailable("vLLM closed the stream before it finished")
        yield Usage(usage.prompt_tokens, usage.completion_tokens, finish, model, adapter=request.model)

    async def health(self) -> bool:
        try:
            resp = await self._client.get("/health", timeout=self.config.connect_timeout_s)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    async def load_adapter(self, name: str, path: str) -> None:
        """Hot-load a LoRA adapter (the server needs ``--enable-lora`` and VLLM_ALLOW_RUNTIME_LORA_UPDATING);
        one that is already loaded is left as it is."""
        try:
            resp = await self._client.post("/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path},
                                           timeout=60)
        except httpx.HTTPError as exc:
            raise LLMUnavailable(f"vLLM unreachable at {self.config.base_url}: {exc!r}") from exc
        if resp.status_code == 200 or "already been loaded" in resp.text:
            return
        raise LLMUnavailable(f"vLLM refused adapter {name!r} from {path}: {resp.status_code} {resp.text[:300]}")

    async def aclose(self) -> None:
        await self._client.aclose()
