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


async def test_every_token_while_few_replies_stream_then_the_interval_under_load() -> None:
    from bot.llm.base import LLMUnavailable

    backend = VLLMBackend(VLLMConfig(base_url="http://127.0.0.1:1", connect_timeout_s=0.5, stream_interval=3,
                                     every_token_below=2))
    assert "stream_interval" not in backend._payload(REQUEST)  # no stream open: every token
    backend.open_streams = 1
    assert "stream_interval" not in backend._payload(REQUEST)
    backend.open_streams = 2  # from this many on: chunks of 3
    assert backend._payload(REQUEST)["stream_interval"] == 3
    backend.open_streams = 0
    with pytest.raises(LLMUnavailable):  # nothing listens there: the failed stream is not left counted
        [item async for item in backend.stream(REQUEST)]
    assert backend.open_streams == 0
    await backend.aclose()
    with pytest.raises(ValueError, match="every_token_below"):
        VLLMConfig(base_url="http://127.0.0.1:1", every_token_below=-1)


async def test_a_minimum_length_is_asked_for_only_when_set_and_never_above_the_maximum() -> None:
    backend = VLLMBackend(VLLMConfig(base_url="http://127.0.0.1:1"))
    exact = GenerationRequest(messages=REQUEST.messages, max_tokens=8, min_tokens=8)
    assert backend._payload(exact)["min_tokens"] == 8 and "min_tokens" not in backend._payload(REQUEST)
    await backend.aclose()
    with pytest.raises(ValueError, match="min_tokens"):
        GenerationRequest(messages=REQUEST.messages, max_tokens=8, min_tokens=9)


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


def test_deadlines_follow_the_probed_speed_and_never_drop_below_the_configured_ones() -> None:
    from bot.llm.calibrate import calibrated

    fast = calibrated(0.2, first_token_s=8.0, token_gap_s=8.0)  # AVX512-BF16: a turn's prefill in 0.2 s
    assert (fast.first_token_s, fast.token_gap_s) == (8.0, 8.0)
    avx2 = calibrated(1.4, first_token_s=8.0, token_gap_s=8.0)  # float32 on an AVX2-only CPU
    assert avx2.first_token_s == avx2.token_gap_s == 22.4 and avx2.probe_s == 1.4
    emulated = calibrated(7.6, first_token_s=8.0, token_gap_s=8.0)  # emulated bfloat16 there: capped
    assert emulated.first_token_s == 120.0
    assert calibrated(None, first_token_s=5.0, token_gap_s=6.0).as_meta() == {
        "first_token_s": 5.0, "token_gap_s": 6.0, "probe_s": None}


def test_a_server_that_does_not_answer_the_probe_keeps_the_configured_deadlines(tmp_path: Path) -> None:
    from bot.config import Settings
    from bot.llm.factory import calibrate
    from bot.llm.managed import free_port

    settings = Settings(home=tmp_path, first_token_timeout_s=9.0, token_gap_timeout_s=7.0)
    d = calibrate(settings, f"http://127.0.0.1:{free_port()}", "aisle-base")
    assert (d.first_token_s, d.token_gap_s, d.probe_s) == (9.0, 7.0, None)
    off = calibrate(settings.model_copy(update={"calibrate_deadlines": False}), "http://127.0.0.1:1", "aisle-base")
    assert (off.first_token_s, off.token_gap_s, off.probe_s) == (9.0, 7.0, None)
