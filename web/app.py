"""``create_app(settings)``: the FastAPI app and the lifespan that builds everything once."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from bot.adapters import AdapterSwitch, chosen_adapter
from bot.churn_risk import ChurnRisk
from bot.config import Settings, get_settings
from bot.db import make_engine, migrate, session_factory
from bot.dialogue import Dialogue, DialogueConfig
from bot.llm.base import LLMBackend
from bot.llm.factory import BuiltBackend, build_backend
from bot.llm.gate import DispatchGate
from bot.model_store import encoder_dir
from bot.models import Message
from bot.personalize import Personalizer
from bot.policy import Policy
from bot.signals import load_signals
from bot.store import open_index
from bot.turn.acts import ActModel
from bot.turn.assortment import store_threshold
from bot.turn.language import preload as preload_language_id
from bot.turn.retrieve import TurnBatchers
from retrieval.batching import MicroBatcher
from retrieval.embed import Encoder
from retrieval.search import ProductSearch
from web import agent, api, chat, logs
from web.auth import AgentTokenSigner, TokenSigner
from web.bus import bus_for
from web.connections import Connections
from web.hub import Hub
from web.protocol import stored_frame
from web.queue_feed import QueueFeed
from web.state import AppState

log = logging.getLogger("aisle.web")
STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings, *, llm: LLMBackend | None = None) -> FastAPI:
    """Build the app. ``llm`` replaces the configured backend (tests of orchestration only)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # database calls run in this pool (model calls have their own threads in the micro-batchers);
        # on PostgreSQL its 32 threads commit side by side, on SQLite they queue for the one connection
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(32, thread_name_prefix="aisle-io"))
        # a thread waiting for the GIL waits up to one switch interval: at Python's 5 ms, a burst of turns
        # convoys behind whichever thread holds the database connection; 1 ms keeps the queue moving
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(0.001)
        if settings.torch_threads:
            import torch

            torch.set_num_threads(settings.torch_threads)
        engine = make_engine(settings.db_url)
        await asyncio.to_thread(migrate, engine)
        factory = session_factory(engine)
        encoder = await asyncio.to_thread(Encoder, encoder_dir())
        index = await asyncio.to_thread(open_index, factory, encoder, settings.index_dir, log.info)
        personalizer = (await asyncio.to_thread(Personalizer, factory, index)) if settings.personalize else None
        scorer = churn = policy = None
        if settings.signals:  # a missing or corrupt classifier stops startup with a clear error
            scorer, churn_model = await asyncio.to_thread(
                load_signals, settings.classifiers_path, int8=settings.classifier_int8)
            churn, policy = ChurnRisk(churn_model, factory), Policy(settings.policy_config())
        await asyncio.to_thread(preload_language_id)  # its model loads once, not on a shopper's first turn
        acts = await asyncio.to_thread(ActModel.load)  # the act classifier shipped in finetune/shipped/acts/
        live = await asyncio.to_thread(chosen_adapter, factory, settings.adapter)
        built = BuiltBackend(llm) if llm is not None else await asyncio.to_thread(build_backend, settings, live)
        watcher: asyncio.Task[None] | None = None
        batchers: TurnBatchers | None = None
        bus = bus_for(settings.db_url, settings.fanout)
        try:  # from here on, a failed startup stops what was started (a managed vLLM, the micro-batchers)
            batchers = TurnBatchers(MicroBatcher(encoder.encode_queries),
                                    MicroBatcher(scorer.score) if scorer is not None else None)
            dialogue = Dialogue(factory=factory, search=ProductSearch(index, encoder), llm=built.backend,
                                config=DialogueConfig.from_settings(settings), personalizer=personalizer,
                                scorer=scorer, churn=churn, policy=policy, batchers=batchers,
                                gate=DispatchGate(settings.dispatch_wait_ms / 1000), acts=acts)
            await asyncio.to_thread(store_threshold, dialogue.search)  # the store's not-carried threshold, once

            def use_adapter(name: str | None) -> None:
                dialogue.adapter = name

            def use_trial(arm: tuple[str, float] | None) -> None:
                dialogue.trial = arm

            switch = AdapterSwitch(factory, built.backend, use_adapter, pin=settings.adapter,
                                   current=built.serving, on_trial=use_trial)
            use_adapter(built.serving)
            await switch.sync()  # the registry's live adapter is loaded before the first shopper arrives
            watcher = asyncio.create_task(switch.run(settings.adapter_poll_s), name="adapter-switch")

            async def reload(message_id: int) -> BaseModel | None:  # a message another replica announced
                msg = await asyncio.to_thread(_message, factory, message_id)
                return stored_frame(index, msg, full=True) if msg is not None else None

            await bus.start()
            app.state.aisle = AppState(
                settings=settings, engine=engine, factory=factory, index=index, llm=built.backend,
                dialogue=dialogue, signer=TokenSigner(settings.signing_key(), settings.session_ttl_s),
                connections=Connections(settings.sockets_per_ip, settings.sessions_per_ip_per_min,
                                        settings.session_burst_per_ip),
                agent_signer=AgentTokenSigner(settings.signing_key(), settings.agent_session_ttl_s),
                adapters=switch, deadlines=built.deadlines_now,
                hub=Hub(bus, reload), queue=QueueFeed(factory, churn_high=settings.policy_churn_high, bus=bus),
            )
            log.info("aisle ready: %d products, backend %s, adapter %s", len(index), built.backend.name,
                     switch.current or "none (base model)")
            yield
        finally:
            if (aisle := getattr(app.state, "aisle", None)) is not None:
                await aisle.queue.close()
            await bus.close()
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            if batchers is not None:
                await batchers.aclose()
            if llm is None:
                await built.aclose()
            engine.dispose()
            sys.setswitchinterval(switch_interval)

    logs.install()
    app = FastAPI(title="aisle", version="0.1.0", lifespan=lifespan)
    app.include_router(api.router)
    app.include_router(chat.router)
    app.include_router(agent.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _message(factory: sessionmaker[Session], message_id: int) -> Message | None:
    with factory() as session:
        return session.get(Message, message_id)


def app_from_env() -> FastAPI:
    """The app built from ``AISLE_*`` settings (the factory ``aisle serve`` hands to uvicorn)."""
    return create_app(get_settings())
