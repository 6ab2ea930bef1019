"""Build the configured backend (and the managed vLLM process when one is needed)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bot.config import Settings
from bot.llm.base import LLMBackend
from bot.llm.calibrate import Deadlines, calibrated, probe
from bot.llm.managed import ManagedVLLM, ManagedVLLMConfig, free_port
from bot.llm.resilient import CircuitBreaker, ResilientBackend
from bot.llm.vllm_http import VLLMBackend, VLLMConfig

log = logging.getLogger(__name__)


@dataclass
class BuiltBackend:
    """The backend, the managed server it runs on (if any), and the adapter it already serves."""

    backend: LLMBackend
    managed: ManagedVLLM | None = None
    serving: str | None = None
    deadlines: list[Deadlines] = field(default_factory=list)  # one per server connected to, newest last

    def deadlines_now(self) -> dict[str, float | None] | None:
        """The deadlines the newest server's replies are held to (None: a backend without deadlines)."""
        return self.deadlines[-1].as_meta() if self.deadlines else None

    async def aclose(self) -> None:
        await self.backend.aclose()
        if self.managed is not None:
            self.managed.stop()


def vllm_config(settings: Settings, base_url: str, served_model_name: str | None = None) -> VLLMConfig:
    return VLLMConfig(
        base_url=base_url,
        served_model_name=served_model_name or settings.served_model_name,
        connect_timeout_s=settings.connect_timeout_s,
        first_token_timeout_s=settings.first_token_timeout_s,
        token_gap_timeout_s=settings.token_gap_timeout_s,
        stream_interval=settings.stream_interval,
        every_token_below=settings.stream_every_token_below,
    )


def managed_config(settings: Settings) -> ManagedVLLMConfig:
    return ManagedVLLMConfig(
        model_dir=settings.generator_path,
        served_model_name=settings.served_model_name,
        port=settings.vllm_port,
        log_path=settings.log_dir / "vllm.log",
        kvcache_gib=settings.vllm_kvcache_gib,
        max_model_len=settings.max_model_len,
        startup_timeout_s=settings.vllm_startup_timeout_s,
        nice=settings.vllm_nice,
        dtype=settings.vllm_dtype,
        enable_lora=not settings.merged_adapters,
        eager=settings.vllm_eager,
        max_lora_rank=settings.max_lora_rank,
    )


def build_backend(settings: Settings, live: tuple[str, Path] | None = None) -> BuiltBackend:
    """The backend named by ``settings.llm``; starts vLLM when no URL is configured (blocking).

    ``live`` is the registry's live adapter: a merged-serving managed server starts on it directly
    (a runtime-LoRA server loads it when the app syncs its adapter).
    """
    if settings.llm == "local":
        from bot.llm.local import LocalBackend
        from bot.model_store import check_generator

        return BuiltBackend(LocalBackend(check_generator(settings.generator_path), settings.served_model_name))

    deadlines: list[Deadlines] = []

    def tuned(url: str, model: str) -> Settings:
        """``settings`` with deadlines calibrated on the server at ``url`` (the first one's also rule the retry)."""
        d = calibrate(settings, url, model)
        deadlines.append(d)
        return settings.model_copy(update={"first_token_timeout_s": d.first_token_s,
                                           "token_gap_timeout_s": d.token_gap_s})

    def connect(url: str, name: str | None = None) -> VLLMBackend:
        return VLLMBackend(vllm_config(tuned(url, name or settings.served_model_name), url, name))

    def resilient(inner: LLMBackend) -> ResilientBackend:
        first = deadlines[0].first_token_s if deadlines else settings.first_token_timeout_s
        return ResilientBackend(inner, CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s),
                                first_token_deadline_s=first)

    if settings.vllm_url:
        return BuiltBackend(resilient(connect(settings.vllm_url)), serving=settings.served_adapter, deadlines=deadlines)
    if settings.merged_adapters:
        from bot.llm.swap import SwappingVLLM
        from bot.model_store import merge_adapter

        def merge(source: Path, name: str) -> Path:
            return merge_adapter(settings.generator_path, source, settings.merged_path(name))

        swapping = SwappingVLLM(managed_config(settings), connect=connect, merge=merge, port_for=free_port)
        swapping.start(live)
        return BuiltBackend(resilient(swapping), serving=swapping.adapter, deadlines=deadlines)
    managed = ManagedVLLM(managed_config(settings))
    return BuiltBackend(resilient(connect(managed.start())), managed, serving=settings.served_adapter,
                        deadlines=deadlines)


def calibrate(settings: Settings, url: str, model: str) -> Deadlines:
    """The first-token and token-gap deadlines for the server at ``url``, from one timed probe; the
    configured ones when the server does not answer it (an external vLLM that is down, say)."""
    if not settings.calibrate_deadlines:
        return calibrated(None, first_token_s=settings.first_token_timeout_s, token_gap_s=settings.token_gap_timeout_s)
    try:
        probe_s: float | None = probe(url, model, timeout_s=min(120.0, settings.vllm_startup_timeout_s))
    except httpx.HTTPError as exc:
        log.warning("vLLM at %s did not answer the speed probe (%s): configured deadlines stand", url, exc)
        probe_s = None
    d = calibrated(probe_s, first_token_s=settings.first_token_timeout_s, token_gap_s=settings.token_gap_timeout_s)
    log.info("vLLM at %s: a turn's prefill took %s s; first-token deadline %.1f s, token gap %.1f s", url,
             "?" if probe_s is None else f"{probe_s:.2f}", d.first_token_s, d.token_gap_s)
    return d
