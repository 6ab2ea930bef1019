"""The bus between replicas on a real PostgreSQL: notices cross, one's own are skipped, a bad one is
dropped without stopping the listener, and a frame too big for a notice travels as its message id."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from bot.config import Settings
from tests.conftest import DB_PARAMS
from web.bus import Bus, NoticeTooLarge, PostgresBus, bus_for
from web.hub import Hub


class Frame(BaseModel):
    type: str = "message.completed"
    id: int
    text: str


class Watcher:
    def __init__(self) -> None:
        self.got: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue()

    async def relay(self, conversation_id: int, frame: BaseModel) -> None:
        await self.got.put((conversation_id, frame.model_dump(mode="json")))


@pytest.mark.parametrize("db_url", DB_PARAMS[1:], indirect=True)
async def test_notices_cross_between_replicas_and_big_frames_go_by_id(db_url: str) -> None:
    a, b = bus_for(db_url, "auto"), bus_for(db_url, "auto")
    assert isinstance(a, PostgresBus) and a.origin != b.origin
    reloaded: list[int] = []

    async def reload(message_id: int) -> BaseModel:
        reloaded.append(message_id)
        return Frame(id=message_id, text="read back from the database")

    hub_a, hub_b = Hub(a), Hub(b, reload)
    here, there = Watcher(), Watcher()
    hub_a.watch(7, here)
    hub_b.watch(7, there)
    await a.start()
    await b.start()
    try:
        await hub_a.publish(7, Frame(id=1, text="small"))
        assert (await asyncio.wait_for(here.got.get(), 5))[1]["text"] == "small"  # here at once
        assert await asyncio.wait_for(there.got.get(), 5) == (7, {"type": "message.completed", "id": 1, "text": "small"})

        await hub_a.publish(7, Frame(id=2, text="x" * 9000))  # over PostgreSQL's payload limit
        assert (await asyncio.wait_for(there.got.get(), 5))[1]["text"] == "read back from the database"
        assert reloaded == [2]

        await a.notify("not json")  # a broken notice is dropped; the listener goes on
        await hub_a.publish(7, Frame(id=3, text="after"))
        assert (await asyncio.wait_for(there.got.get(), 5))[1]["id"] == 3
        await asyncio.sleep(0.2)
        assert here.got.qsize() == 2 and there.got.empty()  # A never hears its own notices back
    finally:
        await a.close()
        await b.close()


def test_one_process_buses_share_nothing_and_the_limit_holds_everywhere() -> None:
    bus = bus_for("sqlite:///x.db", "auto")
    assert type(bus) is Bus and not bus.shared
    with pytest.raises(NoticeTooLarge):
        asyncio.run(bus.send("publish", {"frame": "x" * 9000}))
    with pytest.raises(ValueError, match="PostgreSQL"):
        bus_for("sqlite:///x.db", "postgres")
    assert Settings(fanout="local").fanout == "local"
