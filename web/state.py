"""What the lifespan builds once and routes reach through accessors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.adapters import AdapterSwitch
from bot.config import Settings
from bot.dialogue import Dialogue
from bot.llm.base import LLMBackend
from retrieval.index import ProductIndex
from web.auth import AgentTokenSigner, TokenSigner
from web.connections import Connections
from web.hub import Hub
from web.queue_feed import QueueFeed


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    index: ProductIndex
    llm: LLMBackend
    dialogue: Dialogue
    signer: TokenSigner
    connections: Connections
    agent_signer: AgentTokenSigner
    adapters: AdapterSwitch
    queue: QueueFeed
    hub: Hub
    deadlines: Callable[[], dict[str, float | None] | None] = lambda: None  # the LLM's, for /healthz
