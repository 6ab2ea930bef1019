"""Live outcomes per adapter from the logs, with their intervals; erased shoppers still count anonymously."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot import crud
from bot.cli import main
from bot.config import get_settings
from bot.erasure import forget
from bot.models import Conversation, Feedback, Role
from bot.outcomes import adapter_outcomes, mean_interval, wilson


def test_intervals_match_the_textbook_values() -> None:
    assert wilson(5, 10) == (0.2366, 0.7634) and wilson(0, 10) == (0.0, 0.2775) and wilson(10, 10) == (0.7225, 1.0)
    assert wilson(0, 0) is None and mean_interval(0, 0, 0) is None
    assert mean_interval(3, 5, 4) == (0.0, 1.6883)  # 0, 1, 1, 1: mean 0.75, clipped at 0
    wide, narrow = wilson(8, 10), wilson(80, 100)
    assert wide and narrow and wide[1] - wide[0] > narrow[1] - narrow[0]  # more data, tighter


def chat(factory: sessionmaker[Session], shopper: str, adapter: str,
         replies: list[tuple[str, int | None, int]], agent: bool = False) -> int:
    """A conversation on ``adapter``: each reply (status, rating or None, guard corrections)."""
    with factory() as s, s.begin():
        conv = crud.open_conversation(s, user=crud.get_or_create_user(s, external_id=shopper))
        conv.adapter = adapter
        for i, (status, rating, corrections) in enumerate(replies):
            crud.add_message(s, conversation_id=conv.id, role=Role.SHOPPER, text=f"question {i}")
            msg = crud.add_message(s, conversation_id=conv.id, role=Role.ASSISTANT, text="answer",
                                   meta={"adapter": adapter, "status": status,
                                         "guard": [{"kind": "price"}] * corrections})
            if rating is not None:
                s.add(Feedback(message_id=msg.id, rating=rating))
        if agent:
            crud.add_message(s, conversation_id=conv.id, role=Role.AGENT, text="I can help")
        return conv.id


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_outcomes_per_adapter_count_ratings_handoffs_corrections_and_erased_shoppers(
        factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, db_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    chat(factory, "o-1", "arm-a", [("completed", 1, 0), ("completed", 1, 2)])
    chat(factory, "o-2", "arm-a", [("completed", -1, 0)], agent=True)
    chat(factory, "o-3", "arm-b", [("fallback", None, 0), ("completed", None, 1)])
    erased = chat(factory, "o-4", "arm-b", [("completed", 1, 0)], agent=True)
    with factory() as s, s.begin():
        forget(s, shopper="o-4")
    with factory() as s:
        figures = adapter_outcomes(s)
        assert s.get_one(Conversation, erased).outcome is not None
    a, b = figures["arm-a"], figures["arm-b"]
    assert (a["replies"], a["rated"], a["thumbs_up_rate"], a["conversations"], a["handoff_rate"]) == (3, 3, 0.6667, 2, 0.5)
    assert a["corrections_per_reply"] == pytest.approx(2 / 3, abs=1e-4) and a["fallback_rate"] == 0.0
    assert a["thumbs_up_ci"] == wilson(2, 3) and a["handoff_ci"] == wilson(1, 2)
    # arm-b: two live replies (one a fallback) and the erased shopper's one, rated up, with a handoff
    assert (b["replies"], b["thumbs_up_rate"], b["fallback_rate"], b["erased_conversations"]) == (3, 1.0, 0.3333, 1)
    assert (b["conversations"], b["handoff_rate"]) == (2, 0.5)

    monkeypatch.setenv("AISLE_DATABASE_URL", db_url)
    monkeypatch.setenv("AISLE_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert main(["finetune", "status", "--json", str(tmp_path / "status.json")]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert report == json.loads((tmp_path / "status.json").read_text())
    assert report["arm-a"]["status"] == "unregistered" and report["arm-a"]["outcomes"] == json.loads(json.dumps(a))
    assert "arm-b" in out.err and "[" in out.err  # the table, with intervals
