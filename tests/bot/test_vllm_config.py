"""What the app asks of vLLM: the request payload and the managed server's command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.llm.base import GenerationRequest
from bot.llm.managed import ManagedVLLMConfig, cpu_flags, pick_dtype
from bot.llm.vllm_http import VLLMBackend, VLLMConfig

REQUEST = GenerationRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=8)


async def test_the_stream_interval_is_asked_for_only_when_it_batches_tokens() -> None:
    chunky = VLLMBackend(VLLMConfig(base_url="http://127.0.0.1:1", stream_interval=3))
    plain = VLLMBackend(VLLMConfig(base_url="http://127.0.0.1:1"))
    assert chunky._payload(REQUEST)["stream_interval"] == 3
    assert "stream_interval" not in plain._payload(REQUEST)
    await chunky.aclose()
    await plain.aclose()
    with pytest.raises(ValueError, match="stream_interval"):
        VLLMConfig(base_url="http://127.0.0.1:1", stream_interval=0)


def test_the_managed_server_runs_below_the_apps_priority_unless_told_otherwise() -> None:
    niced = ManagedVLLMConfig(model_dir=Path("m")).command()
    assert niced[:3] == ["nice", "-n", "10"] and "vllm.entrypoints.openai.api_server" in niced
    assert ManagedVLLMConfig(model_dir=Path("m"), nice=0).command()[0] != "nice"
    with pytest.raises(ValueError, match="nice"):
        ManagedVLLMConfig(model_dir=Path("m"), nice=20)


def test_bfloat16_only_where_it_is_computed_natively(tmp_path: Path) -> None:
    avx2 = tmp_path / "avx2"
    avx2.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx fma avx2\n")
    sapphire = tmp_path / "amx"
    sapphire.write_text("processor\t: 0\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    assert pick_dtype(cpu_flags(avx2), cpu_build=True) == "float32"
    assert pick_dtype(cpu_flags(sapphire), cpu_build=True) == "bfloat16"
    assert pick_dtype(cpu_flags(avx2), cpu_build=False) == "bfloat16"  # a GPU build
    assert cpu_flags(tmp_path / "missing") == set()
    command = ManagedVLLMConfig(model_dir=Path("m"), dtype="float16").command()
    assert command[command.index("--dtype") + 1] == "float16"
    with pytest.raises(ValueError, match="dtype"):
        ManagedVLLMConfig(model_dir=Path("m"), dtype="int3")
