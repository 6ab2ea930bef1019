from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot import crud
from bot.db import make_engine, migrate, table_names
from bot.models import Event, Message, Order, Product, Review, Role, User
from bot.store import load_demo_store
from retrieval.demo_store import DemoStore

TABLES = {"products", "users", "events", "reviews", "orders", "conversations", "messages",
          "feedback", "drafts", "agents", "adapters", "alembic_version"}


def test_migration_creates_every_table_and_is_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    migrate(engine)
    assert set(table_names(engine)) >= TABLES
    engine.dispose()


def test_sqlite_runs_wal_with_full_sync(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()


def test_demo_store_loads_completely(factory: sessionmaker[Session], demo_store: DemoStore) -> None:
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Product)) == len(demo_store.products)
        assert s.scalar(select(func.count()).select_from(User)) == len(demo_store.shoppers)
        assert s.scalar(select(func.count()).select_from(Event)) == len(demo_store.events)
        assert s.scalar(select(func.count()).select_from(Review)) == len(demo_store.reviews)
        assert s.scalar(select(func.count()).select_from(Order)) == len(demo_store.orders)


def test_demo_store_refuses_a_non_empty_database(factory: sessionmaker[Session], demo_store: DemoStore) -> None:
    with pytest.raises(RuntimeError, match="already has products"):
        load_demo_store(factory, demo_store, say=lambda _: None)


def test_messages_get_consecutive_seq_and_unique_client_ids(factory: sessionmaker[Session]) -> None:
    with factory() as s, s.begin():
        user = crud.get_or_create_user(s, external_id="shopper-x")
        conv = crud.open_conversation(s, user=user)
        a = crud.add_message(s, conversation_id=conv.id, role=Role.SHOPPER, text="hi", client_id="c1")
        b = crud.add_message(s, conversation_id=conv.id, role=Role.ASSISTANT, text="hello")
        assert (a.seq, b.seq) == (1, 2)
        conv_id = conv.id
    with factory() as s, s.begin():
        assert crud.get_or_create_user(s, external_id="shopper-x").id == user.id
        assert crud.open_conversation(s, user=user).id == conv_id
        assert [m.seq for m in crud.messages_after(s, conversation_id=conv_id, seq=1)] == [2]
    with pytest.raises(IntegrityError), factory() as s, s.begin():
        s.add(Message(conversation_id=conv_id, seq=3, role=Role.SHOPPER, text="again", client_id="c1"))
