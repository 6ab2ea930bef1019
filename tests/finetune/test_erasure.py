"""``aisle shoppers forget``: the shopper's data goes, anonymous counts stay, exports leave them out, and
adapters trained on their conversations are flagged. Real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot import adapters
from bot.cli import main
from bot.llm.scripted import ScriptedBackend
from bot.models import (
    Adapter,
    Conversation,
    ConversationState,
    Draft,
    Event,
    EventType,
    Feedback,
    Message,
    Order,
    Product,
    Review,
    User,
)
from finetune.data import ExportArgs
from finetune.pairs import export_with_pairs
from tests.finetune.test_export import cli_home, logged  # noqa: F401  (fixtures)


def fake_adapter(directory: Path) -> Path:
    directory.mkdir(parents=True)
    for name in adapters.ADAPTER_FILES:
        (directory / name).write_text("{}")
    return directory


async def test_forget_erases_the_shopper_keeps_counts_leaves_exports_and_flags_adapters(
        factory: sessionmaker[Session], logged: tuple[ScriptedBackend, dict[str, int]], cli_home: Path,  # noqa: F811
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = export_with_pairs(factory, ExportArgs(out_dir=tmp_path / "before", holdout=0.0), say=lambda _: None,
                            progress=False)
    with factory() as s, s.begin():
        user = s.scalars(select(User).where(User.external_id == "drafted")).one()
        conv_id = s.scalars(select(Conversation.id).where(Conversation.user_id == user.id)).one()
        product = s.scalars(select(Product).limit(1)).one()
        s.add_all([Event(user_id=user.id, product_id=product.id, type=EventType.CART),
                   Review(user_id=user.id, product_id=product.id, rating=2, text="my kettle leaked"),
                   Order(number="ERASE-1", user_id=user.id, status="delivered", items=[product.sku], total=9.0)])
        s.add(Feedback(message_id=s.scalars(select(Message.id).where(Message.conversation_id == conv_id,
                                                                     Message.role == "assistant")).first(),
                       rating=1))
        for name, manifest in (("with-them", before), ("without-them", {"groups": {"train": ["conversation:0"]}})):
            adapters.register(s, name=name, base_model="m", path=fake_adapter(tmp_path / name), manifest=manifest,
                              metrics={})
    assert f"conversation:{conv_id}" in before["groups"]["train"]

    assert main(["shoppers", "forget", "drafted"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert (done["conversations"], done["events"], done["reviews"], done["orders"]) == (1, 1, 1, 1)
    assert done["messages"] == 6 and done["adapters_flagged"] == ["with-them"]

    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Message).where(Message.conversation_id == conv_id)) == 0
        assert s.scalar(select(func.count()).select_from(Draft).where(Draft.conversation_id == conv_id)) == 0
        for table in (Event, Review, Order):
            assert s.scalar(select(func.count()).select_from(table).where(table.user_id == user.id)) == 0, table
        gone = s.get_one(User, user.id)
        assert gone.external_id != "drafted" and gone.forgotten_at is not None and not gone.consent_training
        conv = s.get_one(Conversation, conv_id)  # the anonymous counts stay
        assert conv.state == ConversationState.CLOSED and conv.outcome is not None
        assert conv.outcome["messages"] == {"shopper": 2, "assistant": 1, "system": 1, "agent": 2}
        assert conv.outcome["handoff"] is True
        assert [c["thumbs_up"] for c in conv.outcome["by_adapter"].values()] == [1]
        flagged = {a.name: a.retrain_reason for a in s.scalars(select(Adapter))}
        assert "erased shopper" in (flagged["with-them"] or "") and flagged["without-them"] is None
        assert s.scalar(select(func.count()).select_from(User).where(User.external_id == "kept")) == 1  # others stay

    after = export_with_pairs(factory, ExportArgs(out_dir=tmp_path / "after", holdout=0.0), say=lambda _: None,
                           progress=False)
    used = set(after["groups"]["train"]) | set(after["groups"]["eval"]) | set(after["pair_groups"])
    assert f"conversation:{conv_id}" not in used and after["skipped"]["no_training_consent"] == 2  # and "private"
    text = "".join(p.read_text() for p in (tmp_path / "after").glob("*.jsonl"))
    assert "blue kettle" not in text and "blue kettle" in (tmp_path / "before" / "train.jsonl").read_text()

    assert main(["adapters", "list"]) == 0
    listed = capsys.readouterr().out
    assert "with-them" in listed and "RETRAIN" in listed.split("with-them", 1)[1].splitlines()[0]
    assert main(["shoppers", "forget", "drafted"]) == 2  # already gone: a clear error, nothing changes
    assert "No shopper 'drafted'" in capsys.readouterr().err
