"""LoRA adapters on a runtime-LoRA vLLM (the session's, as on GPUs or an external server): hot-loaded when
promoted, used for new replies, evaluated side by side."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot import adapters
from bot.models import Conversation
from finetune.evaluate import EvalArgs
from finetune.examples import read_examples
from finetune.jobs import evaluate
from tests.conftest import make_settings, serve
from tests.e2e.adapter_support import (
    QUESTION,
    register,
    served_by,
    settings_for,
    until_adapter,
    until_trial,
)
from tests.web.wsclient import ask, open_chat
from web.app import create_app


@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_promoted_adapter_is_hot_loaded_and_new_replies_use_it(
        tmp_path: Path, db_url: str, factory: sessionmaker[Session], saved_index: Path, vllm_url: str,
        tiny_adapter: Path) -> None:
    with serve(create_app(settings_for(tmp_path, db_url, saved_index, vllm_url))) as base:
        ws, ready = await open_chat(base, "lora-shopper")
        assert served_by(await ask(ws, QUESTION, "a1")) is None
        register(factory, tiny_adapter, "tiny-grounding")
        await until_adapter(base, "tiny-grounding")
        models = {m["id"] for m in httpx.get(f"{vllm_url}/v1/models", timeout=10).json()["data"]}
        assert "tiny-grounding" in models
        assert served_by(await ask(ws, QUESTION, "a2")) == "tiny-grounding"
        with factory() as s:
            assert s.get_one(Conversation, ready["conversation_id"]).adapter == "tiny-grounding"
        with factory() as s, s.begin():
            adapters.retire(s, name="tiny-grounding")
        await until_adapter(base, None)
        assert served_by(await ask(ws, QUESTION, "a3")) is None
        await ws.close()


@pytest.mark.vllm
async def test_the_adapter_changes_what_vllm_answers(vllm_url: str, tiny_adapter: Path,
                                                     catalog_export: Path) -> None:
    ex = next(iter(read_examples(catalog_export / "eval.jsonl")))
    async with httpx.AsyncClient(base_url=vllm_url, timeout=120) as client:
        await client.post("/v1/load_lora_adapter", json={"lora_name": "tiny-grounding", "lora_path": str(tiny_adapter)})
        replies = []
        for model in ("aisle-base", "tiny-grounding"):
            resp = await client.post("/v1/chat/completions", json={
                "model": model, "messages": ex.messages, "max_tokens": 32, "temperature": 0})
            resp.raise_for_status()
            replies.append(resp.json()["choices"][0]["message"]["content"])
    assert replies[0] != replies[1], replies


@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_an_adapter_vllm_refuses_leaves_replies_on_the_base_model(
        tmp_path: Path, db_url: str, factory: sessionmaker[Session], saved_index: Path, vllm_url: str) -> None:
    broken = tmp_path / "broken-adapter"
    broken.mkdir()
    (broken / "adapter_config.json").write_text('{"r": "sixteen"}')
    (broken / "adapter_model.safetensors").write_bytes(b"not safetensors")
    with serve(create_app(settings_for(tmp_path, db_url, saved_index, vllm_url))) as base:
        register(factory, broken, "broken")
        status = await until_adapter(base, None, error=True)
        assert "broken" in status["error"]
        ws, _ = await open_chat(base, "still-served")
        assert served_by(await ask(ws, QUESTION, "b1")) is None
        await ws.close()


@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_evaluation_compares_base_and_adapter_on_vllm_and_records_it(
        tmp_path: Path, db_url: str, factory: sessionmaker[Session], saved_index: Path, vllm_url: str,
        tiny_adapter: Path, catalog_export: Path) -> None:
    register(factory, tiny_adapter, "tiny-eval", promote=False)
    examples = list(read_examples(catalog_export / "eval.jsonl"))[:6]
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=vllm_url)
    reports = await evaluate(settings, factory, name="tiny-eval", datasets={"demo": examples}, url=vllm_url,
                             eval_args=EvalArgs(adapter="tiny-eval", max_tokens=48), promote=False,
                             say=lambda _: None)
    report = reports["demo"]
    for who in ("base", "adapter"):
        assert report[who]["examples"] == 6
        assert 0 <= report[who]["grounded_rate"] <= 1 and 0 <= report[who]["hallucination_rate"] <= 1
    assert len(report["replies"]) == 6 and all(r["base"] and r["adapter"] for r in report["replies"])
    saved = json.loads((tiny_adapter / "eval.json").read_text())
    assert saved["demo"]["base"] == report["base"]
    assert (tiny_adapter / "eval.png").stat().st_size > 5_000
    with factory() as s:
        row = adapters.get(s, "tiny-eval")
        assert row.metrics["eval"]["demo"]["adapter"] == report["adapter"]
        assert row.status == "candidate"



@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_an_ab_trial_serves_its_share_conversations_keep_their_arm_and_rollback_ends_it(
        tmp_path: Path, db_url: str, factory: sessionmaker[Session], saved_index: Path, vllm_url: str,
        tiny_adapter: Path) -> None:
    import shutil

    from bot.dialogue import ab_bucket

    second = tmp_path / "tiny-v2"  # every version has its own directory and name
    shutil.copytree(tiny_adapter, second)
    register(factory, tiny_adapter, "tiny-v1")
    register(factory, second, "tiny-v2", promote=False)
    with serve(create_app(settings_for(tmp_path, db_url, saved_index, vllm_url))) as base:
        await until_adapter(base, "tiny-v1")
        old, _ = await open_chat(base, "before-the-trial")
        assert served_by(await ask(old, QUESTION, "o1")) == "tiny-v1"
        with factory() as s, s.begin():
            adapters.start_trial(s, name="tiny-v2", share=0.5)
        await until_trial(base, "tiny-v2")
        models = {m["id"] for m in httpx.get(f"{vllm_url}/v1/models", timeout=10).json()["data"]}
        assert {"tiny-v1", "tiny-v2"} <= models  # served side by side
        arms: dict[int, tuple[object, str]] = {}
        for i in range(20):  # until both arms have conversations
            ws, ready = await open_chat(base, f"ab-{i}")
            cid = ready["conversation_id"]
            arm = "tiny-v2" if ab_bucket(cid) < 0.5 else "tiny-v1"
            assert served_by(await ask(ws, QUESTION, f"q{i}")) == arm
            arms[cid] = (ws, arm)
            if {a for _, a in arms.values()} == {"tiny-v1", "tiny-v2"}:
                break
        assert {a for _, a in arms.values()} == {"tiny-v1", "tiny-v2"}
        assert served_by(await ask(old, "and one with a hood?", "o2")) == "tiny-v1"  # it keeps the arm it had
        for cid, (ws, arm) in arms.items():
            assert served_by(await ask(ws, "and one with a hood?", f"again-{cid}")) == arm  # sticky
        with factory() as s:
            assert {cid: s.get_one(Conversation, cid).adapter for cid in arms} == {c: a for c, (_, a) in arms.items()}

        with factory() as s, s.begin():
            retired, live = adapters.rollback(s)
            assert (retired.name, live and live.name) == ("tiny-v2", "tiny-v1")
        await until_trial(base, None)
        for i in range(40):  # a new conversation that would have been on the trial is on tiny-v1
            ws, ready = await open_chat(base, f"after-{i}")
            if ab_bucket(ready["conversation_id"]) < 0.5:
                assert served_by(await ask(ws, QUESTION, f"r{i}")) == "tiny-v1"
                break
            await ws.close()
        else:
            raise AssertionError("no conversation fell in the trial's share")
        trial_ws = next(ws for ws, arm in arms.values() if arm == "tiny-v2")
        assert served_by(await ask(trial_ws, "in red?", "moved")) == "tiny-v1"  # its arm is gone: the live one
