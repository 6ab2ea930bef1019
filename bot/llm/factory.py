"""Build the configured backend (and the managed vLLM process when one is needed)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Settings
from bot.llm.base import LLMBackend
from bot.llm.managed import ManagedVLLM, ManagedVLLMConfig
from bot.llm.resilient import CircuitBreaker, ResilientBackend
from bot.llm.vllm_http import VLLMBackend, VLLMConfig


@dataclass
class BuiltBackend:
    backend: LLMBackend
    managed: ManagedVLLM | None = None

    async def aclose(self) -> None:
        await self.backend.aclose()
        if self.managed is not None:
            self.managed.stop()


def vllm_config(settings: Settings, base_url: str) -> VLLMConfig:
    return VLLMConfig(
        base_url=base_url,
        served_model_name=settings.served_model_name,
        connect_timeout_s=settings.connect_timeout_s,
        first_token_timeout_s=settings.first_token_timeout_s,
        token_gap_timeout_s=settings.token_gap_timeout_s,
        stream_interval=settings.stream_interval,
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
    )


def build_backend(settings: Settings) -> BuiltBackend:
    """The backend named by ``settings.llm``; starts vLLM when no URL is configured (blocking)."""
    if settings.llm == "local":
        from bot.llm.local import LocalBackend
        from bot.model_store import check_generator

        return BuiltBackend(LocalBackend(check_generator(settings.generator_path), settings.served_model_name))
    def resilient(url: str) -> ResilientBackend:
        return ResilientBackend(VLLMBackend(vllm_config(settings, url)),
                                CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s),
                                first_token_deadline_s=settings.first_token_timeout_s)

    if settings.vllm_url:
        return BuiltBackend(resilient(settings.vllm_url))
    managed = ManagedVLLM(managed_config(settings))
    return BuiltBackend(resilient(managed.start()), managed)
