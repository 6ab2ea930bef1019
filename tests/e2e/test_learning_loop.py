"""The learning loop end to end on the session's runtime-LoRA vLLM.

Conversations are logged through the WebSocket: one rated up, one rated down and answered by an agent
from an edited draft, one left unrated. They are exported, a small adapter is trained on the export
from the live one, evaluated, and put through the gate against the live adapter. It is promoted into
the running vLLM as an A/B arm; new conversations are served by it while old ones keep their arm, and
a rollback returns new conversations to the adapter before it. An adapter trained on shuffled answers
is refused by the gate, which names the metric it failed.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from websockets.asyncio.client import ClientConnection

from bot import adapters
from bot.agents import add_agent
from bot.dialogue import ab_bucket
from finetune.data import ExportArgs
from finetune.evaluate import EvalArgs
from finetune.examples import read_examples
from finetune.jobs import (
    PromotionRefused,
    evaluate,
    export,
    held_out_examples,
    promote_gated,
    train,
)
from finetune.lora import LoraArgs
from tests.conftest import MODEL_DIR, serve
from tests.e2e.adapter_support import (
    QUESTION,
    installed_adapter,
    register,
    served_by,
    settings_for,
    until_adapter,
    until_trial,
)
from tests.web.wsclient import ask, open_chat, open_console, recv_until
from web.app import create_app

SHARE = 0.5
pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]


async def rate(ws: ClientConnection, frames: list[dict[str, object]], rating: int) -> None:
    await ws.send(json.dumps({"type": "feedback.create", "message_id": frames[-1]["id"], "rating": rating}))


async def agent_answers(console: ClientConnection, cid: int) -> str:
    """The agent takes the conversation, has a draft written, sends it edited, and gives it back."""
    await console.send(json.dumps({"type": "conversation.takeover", "conversation_id": cid}))
    await recv_until(console, "conversation.transcript", 30)
    await console.send(json.dumps({"type": "draft.create", "conversation_id": cid}))
    draft, _ = await recv_until(console, "draft.created", 120)
    sent = f"Sorry about that! {draft['products'][0]['title']} is the warmest we have; shall I hold one for you?"
    await console.send(json.dumps({"type": "message.create", "conversation_id": cid, "client_id": f"agent-{cid}",
                                   "text": sent, "draft_id": draft["draft_id"]}))
    await recv_until(console, "message.created", 30)
    await console.send(json.dumps({"type": "conversation.release", "conversation_id": cid}))
    return sent


async def first_on_each_arm(base: str, prefix: str, share: float) -> dict[str, tuple[ClientConnection, int]]:
    """New conversations until one falls on each side of ``share``: {"trial"|"live": (socket, id)}."""
    found: dict[str, tuple[ClientConnection, int]] = {}
    for i in range(40):
        ws, ready = await open_chat(base, f"{prefix}-{i}")
        arm = "trial" if ab_bucket(ready["conversation_id"]) < share else "live"
        if arm in found:
            await ws.close()
            continue
        found[arm] = (ws, ready["conversation_id"])
        if len(found) == 2:
            return found
    raise AssertionError(f"40 new conversations fell on one side of {share}")


async def test_logged_dialogs_train_an_adapter_the_gate_passes_into_an_ab_trial_that_rolls_back(
        tmp_path: Path, db_url: str, factory: sessionmaker[Session], saved_index: Path, vllm_url: str,
        tiny_adapter: Path) -> None:
    register(factory, tiny_adapter, "loop-v1")  # the live adapter the loop starts from
    with factory() as s, s.begin():
        add_agent(s, name="ana", password="loop-test-password")
    settings = settings_for(tmp_path / "home", db_url, saved_index, vllm_url, ab_share=SHARE)
    with serve(create_app(settings)) as base:
        await until_adapter(base, "loop-v1")
        # 1. conversations logged through the socket: rated up, rated down and answered by an agent, unrated
        console, _ = await open_console(base, "ana", "loop-test-password")
        chats = {}
        for kind, question in (("up", QUESTION), ("down", "a warm hat for hiking?"), ("unrated", "gloves for ski")):
            ws, ready = await open_chat(base, f"loop-{kind}")
            frames = await ask(ws, question, f"{kind}-1")
            assert served_by(frames) == "loop-v1"
            chats[kind] = (ws, ready["conversation_id"])
            if kind != "unrated":
                await rate(ws, frames, 1 if kind == "up" else -1)
        sent = await agent_answers(console, chats["down"][1])
        await console.close()

        # 2. the export: the logged replies, the agent's answer and a preference pair, with catalog dialogs
        out = tmp_path / "export"
        # the export and the training run off this loop, which must keep answering the open sockets' pings
        manifest = await asyncio.to_thread(
            export, settings, factory, ExportArgs(out_dir=out, holdout=0.25, history_turns=settings.history_turns),
            catalog_n=48, say=lambda _: None)
        rows = [json.loads(line) for name in ("train.jsonl", "eval.jsonl") for line in (out / name).open()]
        logged = [row for row in rows if row["source"] in ("assistant", "draft")]  # the rest: catalog dialogs
        assert sorted(row["source"] for row in logged) == ["assistant", "assistant", "draft"], logged
        title = sent.split("! ", 1)[1].split(" is the warmest")[0]
        as_sent = re.escape(sent).replace(re.escape(title), r"\[\d{1,2}\]")  # the product named by reference
        assert any(re.fullmatch(as_sent, row["completion"]) for row in logged), (sent, logged)
        assert manifest["skipped"].get("rated_down") == 1 and manifest["pairs"].get("rated_down", 0) >= 1
        groups = {*manifest["groups"]["train"], *manifest["groups"]["eval"]}
        assert {f"conversation:{cid}" for _, cid in chats.values()} <= groups

        # 3. a few steps from the live adapter on the export
        path = await asyncio.to_thread(train, settings, factory, LoraArgs(
            data_dir=out, out_dir=tmp_path / "adapters", base_model=MODEL_DIR, name="loop-v2", init=Path("live"),
            max_steps=3, batch_size=4, eval_examples=8, lr=1e-5), say=lambda _: None)
        trained = json.loads((path / "train.json").read_text())
        assert trained["steps"] == 3 and 0 < trained["train_loss_end"] < 20
        assert trained["dataset"]["sha256"] == manifest["sha256"]  # the adapter names the export it learned from

        # 4. evaluated on the export's held-out prompts, base model against the adapter
        held_out = held_out_examples(out, 6)
        reports = await evaluate(settings, factory, name="loop-v2", datasets={"logged": held_out}, url=vllm_url,
                                 eval_args=EvalArgs(adapter="loop-v2", max_tokens=48), promote=False,
                                 say=lambda _: None)
        assert reports["logged"]["adapter"]["examples"] == len(held_out) == 6

        # 5. the gate against the live adapter, then an A/B arm in the running vLLM
        old_ws = chats["up"][0]
        report = await promote_gated(settings, factory, name="loop-v2", examples=held_out, url=vllm_url,
                                     eval_args=EvalArgs(adapter="loop-v2", max_tokens=48), share=SHARE, say=lambda _: None)
        assert report["live_name"] == "loop-v1" and json.loads((path / "gate.json").read_text())["candidate"]
        with factory() as s:
            assert adapters.get(s, "loop-v2").metrics["gate"]["failed"] == []
        await until_trial(base, "loop-v2")

        # 6. new conversations by their arm; an old one keeps the arm it started on
        arms = await first_on_each_arm(base, "after-promote", SHARE)
        assert served_by(await ask(arms["trial"][0], QUESTION, "t1")) == "loop-v2"
        assert served_by(await ask(arms["live"][0], QUESTION, "l1")) == "loop-v1"
        assert served_by(await ask(old_ws, "and in blue?", "up-2")) == "loop-v1"  # started before the trial

        # 7. rollback: new conversations are on the previous adapter again
        with factory() as s, s.begin():
            retired, live = adapters.rollback(s)
            assert (retired.name, live and live.name) == ("loop-v2", "loop-v1")
        await until_trial(base, None)
        arms = await first_on_each_arm(base, "after-rollback", SHARE)
        for arm, (ws, _) in arms.items():
            assert served_by(await ask(ws, QUESTION, f"r-{arm}")) == "loop-v1"
        for ws, _ in (*chats.values(), *arms.values()):
            await ws.close()


async def test_an_adapter_trained_on_shuffled_answers_is_refused_naming_the_metric(
        tmp_path: Path, db_url: str, factory: sessionmaker[Session], saved_index: Path, vllm_url: str,
        catalog_export: Path) -> None:
    name, path = installed_adapter()
    register(factory, path, name)  # the shipped grounding adapter is live
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    rows = [json.loads(line) for line in (catalog_export / "train.jsonl").open()]
    answers = [row["completion"] for row in rows]
    random.Random(0).shuffle(answers)  # every answer now belongs to another question and its products
    with (shuffled / "train.jsonl").open("w") as f:
        for row, answer in zip(rows, answers, strict=True):
            row["completion"] = answer
            f.write(json.dumps(row) + "\n")
    for name_ in ("eval.jsonl", "manifest.json"):
        (shuffled / name_).write_bytes((catalog_export / name_).read_bytes())
    settings = settings_for(tmp_path / "home", db_url, saved_index, vllm_url)
    train(settings, factory, LoraArgs(data_dir=shuffled, out_dir=tmp_path / "adapters", base_model=MODEL_DIR,
                                      name="shuffled", max_steps=6, batch_size=4, eval_examples=8, lr=1e-3),
          say=lambda _: None)
    held_out = list(read_examples(catalog_export / "eval.jsonl"))[:8]
    with pytest.raises(PromotionRefused, match=r"grounded rate|hallucination rate|broken-text rate") as refused:
        await promote_gated(settings, factory, name="shuffled", examples=held_out, url=vllm_url,
                            eval_args=EvalArgs(adapter="shuffled", max_tokens=48),
                            say=lambda _: None)
    with factory() as s:
        row = adapters.get(s, "shuffled")
        assert row.status == "candidate" and adapters.live(s).name == name  # type: ignore[union-attr]
        assert row.metrics["gate"]["failed"] and all(f.split()[0] in str(refused.value) for f in
                                                       row.metrics["gate"]["failed"])
