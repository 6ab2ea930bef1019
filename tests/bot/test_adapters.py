"""The adapter registry and the switch that follows it (a scripted backend stands in for vLLM)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot import adapters
from bot.adapters import AdapterError, AdapterSwitch
from bot.llm.scripted import ScriptedBackend
from bot.models import AdapterStatus
from tests.e2e.adapter_support import adapter_dir


def add(factory: sessionmaker[Session], root: Path, name: str) -> Path:
    path = adapter_dir(root, name)
    with factory() as s, s.begin():
        adapters.register(s, name=name, base_model="base", path=path, manifest={"examples": 1}, metrics={})
    return path


def status(factory: sessionmaker[Session], name: str) -> AdapterStatus:
    with factory() as s:
        return adapters.get(s, name).status


def promoted_a(factory: sessionmaker[Session], tmp_path: Path
               ) -> tuple[ScriptedBackend, list[str | None], AdapterSwitch, Path]:
    """A switch on a scripted backend (the adapters it is sent to are recorded) and a promoted adapter "a"."""
    llm = ScriptedBackend(lambda r: "ok")
    used: list[str | None] = []
    path = add(factory, tmp_path, "a")
    with factory() as s, s.begin():
        adapters.promote(s, name="a")
    return llm, used, AdapterSwitch(factory, llm, used.append), path


def test_promoting_retires_the_live_one(factory: sessionmaker[Session], tmp_path: Path) -> None:
    add(factory, tmp_path, "a")
    add(factory, tmp_path, "b")
    assert status(factory, "a") == AdapterStatus.CANDIDATE
    with factory() as s, s.begin():
        adapters.promote(s, name="a")
    with factory() as s, s.begin():
        adapters.promote(s, name="b")
    assert (status(factory, "a"), status(factory, "b")) == (AdapterStatus.RETIRED, AdapterStatus.LIVE)
    with factory() as s:
        live = adapters.live(s)
        assert live is not None and live.name == "b"


async def test_rollback_returns_new_replies_to_the_adapter_the_live_one_replaced(
        factory: sessionmaker[Session], tmp_path: Path) -> None:
    llm, used, switch, _ = promoted_a(factory, tmp_path)
    with pytest.raises(AdapterError, match="replaced no earlier adapter"), factory() as s, s.begin():
        adapters.rollback(s)  # "a" was the first: nothing to go back to
    add(factory, tmp_path, "b")
    with factory() as s, s.begin():
        adapters.promote(s, name="b")
    assert await switch.sync() == "b"
    with factory() as s, s.begin():
        retired, live = adapters.rollback(s)
        assert (retired.name, live.name) == ("b", "a") and retired.metrics["rolled_back"]["to"] == "a"
    assert (status(factory, "a"), status(factory, "b")) == (AdapterStatus.LIVE, AdapterStatus.RETIRED)
    assert await switch.sync() == "a" and used[-1] == "a"  # the running switch follows: no restart
    with factory() as s, s.begin():
        adapters.retire(s, name="a")
    with pytest.raises(AdapterError, match="no live adapter"), factory() as s, s.begin():
        adapters.rollback(s)


async def test_a_trial_is_served_beside_the_live_adapter_until_rollback(factory: sessionmaker[Session],
                                                                         tmp_path: Path) -> None:
    llm, used, switch, _ = promoted_a(factory, tmp_path)
    trials: list[tuple[str, float] | None] = []
    switch.on_trial = trials.append
    add(factory, tmp_path, "b")
    with pytest.raises(AdapterError, match="between 0 and 1"), factory() as s, s.begin():
        adapters.start_trial(s, name="b", share=1.0)
    with factory() as s, s.begin():
        adapters.start_trial(s, name="b", share=0.25)
    assert await switch.sync() == "a"
    assert set(llm.adapters) == {"a", "b"} and trials[-1] == ("b", 0.25)  # both loaded: side by side
    assert switch.status()["trial"] == {"name": "b", "share": 0.25} and status(factory, "b") == AdapterStatus.TRIAL
    with factory() as s, s.begin():
        retired, live = adapters.rollback(s)  # a running trial ends: all traffic stays on the live one
        assert (retired.name, live and live.name) == ("b", "a")
    await switch.sync()
    assert trials[-1] is None and set(llm.adapters) == {"a"} and used[-1] == "a"

    llm.side_by_side = False  # merged weights: one adapter at a time
    with factory() as s, s.begin():
        adapters.start_trial(s, name="b", share=0.5)
    await switch.sync()
    assert trials[-1] is None and "AISLE_ADAPTER_SERVING=runtime" in (switch.status()["trial_error"] or "")


def test_new_conversations_split_by_share_and_each_keeps_its_arm() -> None:
    from bot.dialogue import Dialogue, DialogueConfig, ab_bucket

    dialogue = Dialogue(factory=None, search=None, llm=ScriptedBackend(lambda r: "ok"),  # type: ignore[arg-type]
                        config=DialogueConfig())
    dialogue.adapter, dialogue.trial = "a", ("b", 0.3)
    arms = [dialogue.arm(cid, None) for cid in range(1, 4001)]
    assert abs(arms.count("b") / len(arms) - 0.3) < 0.03 and set(arms) == {"a", "b"}
    assert [ab_bucket(7)] * 2 == [ab_bucket(7), ab_bucket(7)]  # the same on every replica
    trial_cid = next(c for c in range(1, 100) if ab_bucket(c) < 0.3)
    live_cid = next(c for c in range(1, 100) if ab_bucket(c) >= 0.3)
    assert dialogue.arm(trial_cid, "a") == "a" and dialogue.arm(live_cid, "b") == "b"  # the arm it started on
    dialogue.trial = None  # the trial ended: its conversations go to the live adapter
    assert dialogue.arm(live_cid, "b") == "a" and dialogue.arm(trial_cid, None) == "a"


def test_unknown_names_duplicates_and_missing_files_are_refused(factory: sessionmaker[Session],
                                                                 tmp_path: Path) -> None:
    path = add(factory, tmp_path, "a")
    with pytest.raises(AdapterError, match=r"no adapter named 'zz' \(registered: a\)"), factory() as s:
        adapters.get(s, "zz")
    with pytest.raises(AdapterError, match="already registered"), factory() as s:
        adapters.register(s, name="a", base_model="base", path=path, manifest={}, metrics={})
    (path / "adapter_model.safetensors").unlink()
    with pytest.raises(AdapterError, match="adapter_model.safetensors missing"), factory() as s, s.begin():
        adapters.promote(s, name="a")
    assert status(factory, "a") == AdapterStatus.CANDIDATE


async def test_the_switch_loads_the_live_adapter_then_moves_new_replies(factory: sessionmaker[Session],
                                                                        tmp_path: Path) -> None:
    llm = ScriptedBackend(lambda r: "ok")
    used: list[str | None] = []
    switch = AdapterSwitch(factory, llm, used.append)
    assert await switch.sync() is None and used == []  # nothing live: the base model
    path = add(factory, tmp_path, "a")
    with factory() as s, s.begin():
        adapters.promote(s, name="a")
    assert await switch.sync() == "a"
    assert llm.adapters == {"a": str(path.resolve())} and used == ["a"]
    with factory() as s, s.begin():
        adapters.retire(s, name="a")
    assert await switch.sync() is None and used == ["a", None]


async def test_aisle_adapter_pins_an_adapter_or_the_base_model_over_the_registry(factory: sessionmaker[Session],
                                                                                 tmp_path: Path) -> None:
    add(factory, tmp_path, "a")
    b = add(factory, tmp_path, "b")
    with factory() as s, s.begin():
        adapters.promote(s, name="a")
    llm = ScriptedBackend(lambda r: "ok")
    used: list[str | None] = []
    assert await AdapterSwitch(factory, llm, used.append, pin="b").sync() == "b"  # a candidate, by name
    assert llm.adapters == {"b": str(b.resolve())}
    assert await AdapterSwitch(factory, llm, used.append, pin="base").sync() is None
    assert await AdapterSwitch(factory, llm, used.append, pin="served-elsewhere").sync() == "served-elsewhere"
    assert used == ["b", "served-elsewhere"]
    assert adapters.chosen_adapter(factory, "base") is None and adapters.chosen_adapter(factory, "served-elsewhere") \
        is None
    assert adapters.chosen_adapter(factory)[0] == "a"  # type: ignore[index]


async def test_an_adapter_the_server_refuses_leaves_replies_where_they_were(factory: sessionmaker[Session],
                                                                          tmp_path: Path) -> None:
    llm, used, switch, path = promoted_a(factory, tmp_path)
    llm.fail = True
    assert await switch.sync() is None and used == [] and "set to fail" in (switch.error or "")
    assert switch.status() == {"name": None, "error": switch.error, "trial": None, "trial_error": None}
    llm.fail = False
    (path / "adapter_config.json").unlink()  # deleted from disk after promotion
    assert await switch.sync() is None and "adapter_config.json missing" in (switch.error or "")
    (path / "adapter_config.json").write_text("{}")
    assert await switch.sync() == "a" and switch.error is None


async def test_a_retire_the_server_fails_is_tried_again(factory: sessionmaker[Session], tmp_path: Path) -> None:
    llm, used, switch, _ = promoted_a(factory, tmp_path)
    assert await switch.sync() == "a"
    with factory() as s, s.begin():
        adapters.retire(s, name="a")
    llm.fail = True  # a merged server cannot swap back to the base weights yet
    assert await switch.sync() == "a" and "set to fail" in (switch.error or "") and "a" in llm.adapters
    llm.fail = False
    assert await switch.sync() is None and llm.adapters == {} and switch.error is None
    assert used == ["a", None, None]


async def test_an_adapter_a_restarted_server_forgot_is_loaded_again(factory: sessionmaker[Session],
                                                                    tmp_path: Path) -> None:
    llm, used, switch, path = promoted_a(factory, tmp_path)
    assert await switch.sync() == "a"
    llm.adapters.clear()  # vLLM restarted: runtime-loaded adapters are gone
    assert await switch.sync() == "a" and llm.adapters == {"a": str(path.resolve())} and used == ["a"]
