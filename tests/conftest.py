"""Shared fixtures: models load once per session; databases are fresh per test."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.db import make_engine, migrate, session_factory
from bot.llm.managed import free_port
from bot.model_store import ModelError, check_generator, encoder_dir, generator_dir
from bot.store import load_demo_store
from retrieval.demo_store import DemoStore, generate
from retrieval.embed import Encoder
from retrieval.index import ProductIndex

REPO = Path(__file__).resolve().parents[1]
DATA = Settings().data
"""The public datasets folder (the ``AISLE_DATA`` setting, ``../shared/data`` by default)."""


def data(*folders: str) -> Path:
    """:data:`DATA`, once it holds these datasets; a missing one fails the test with one line naming the folder."""
    from retrieval.public_data import MissingData, require

    try:
        require(DATA, folders, "this test", flag="")
    except MissingData as exc:
        pytest.fail(str(exc), pytrace=False)
    return DATA
MODEL_DIR = generator_dir(REPO / "var")
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _postgres_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            pass
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


POSTGRES = _postgres_answers()


CLASSIFIERS = REPO / "var" / "models" / "classifiers"


SOAK = os.environ.get("AISLE_SOAK") == "1"
"""`make soak`: the volume tests at full size (replay, durability, cancellation)."""


def volume(test: int, soak: int) -> int:
    """A volume test's size: ``test`` in `make test` (the smallest that still shows the property), ``soak`` in
    `make soak`."""
    return soak if SOAK else test


ARTIFACTS = REPO / "test-artifacts"
VLLM_STARTS: list[str] = []
"""Every vLLM server this test session started (its model directory), the app's own managed ones included."""
_durations: dict[str, float] = {}


def _count_vllm_starts() -> None:
    from bot.llm.managed import ManagedVLLM, ManagedVLLMConfig

    start = ManagedVLLM.start

    def counted(self: ManagedVLLM) -> str:
        if type(self.config) is ManagedVLLMConfig:  # a real vLLM, not a unit test's stand-in command
            VLLM_STARTS.append(str(self.config.model_dir))
        return start(self)

    ManagedVLLM.start = counted  # type: ignore[method-assign]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Every test's duration (setup, call and teardown together), slowest first."""
    if not _durations:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    lines = [f"{seconds:9.2f}s  {nodeid}" for nodeid, seconds in sorted(_durations.items(), key=lambda kv: -kv[1])]
    total = sum(_durations.values())
    (ARTIFACTS / "durations.txt").write_text(f"{total:9.2f}s  total over {len(lines)} tests\n" + "\n".join(lines)
                                             + "\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(f"vLLM servers started by this run: {len(VLLM_STARTS)}"
                                + (f" ({', '.join(Path(m).name for m in VLLM_STARTS)})" if VLLM_STARTS else ""))
    if _durations:
        terminalreporter.write_line(f"every test's duration: {ARTIFACTS / 'durations.txt'}")


def pytest_configure(config: pytest.Config) -> None:
    from bot.signals import latest_model

    _count_vllm_starts()

    for task in ("intent", "sentiment", "churn"):
        if latest_model(CLASSIFIERS, task) is None:
            raise pytest.UsageError(f"no {task} classifier under {CLASSIFIERS}; `make install` trains one")
    try:
        check_generator(MODEL_DIR)
    except ModelError as exc:
        raise pytest.UsageError(
            f"{exc} (tests use the model under {MODEL_DIR}; `make install` prepares it)"
        ) from exc


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return Encoder(encoder_dir())


@pytest.fixture(scope="session")
def demo_store() -> DemoStore:
    """A small demo store: 60 products in each of the 16 categories, 80 shoppers."""
    return generate(seed=3, n_products=960, n_shoppers=80)


@pytest.fixture(scope="session")
def saved_index(tmp_path_factory: pytest.TempPathFactory, demo_store: DemoStore, encoder: Encoder) -> Path:
    """The demo store's index, embedded once and saved."""
    directory = tmp_path_factory.mktemp("index")
    index = ProductIndex(encoder.dim)
    index.upsert(demo_store.products, encoder.encode_documents([p.embedding_text() for p in demo_store.products]))
    index.save(directory)
    return directory


@pytest.fixture
def index(saved_index: Path) -> ProductIndex:
    return ProductIndex.load(saved_index)


@contextmanager
def _database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'aisle.db'}"
        return
    name = f"aisle_test_{uuid.uuid4().hex[:12]}"
    _create_database(name)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        _drop_database(name)


DB_PARAMS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql",
                 marks=pytest.mark.skipif(not POSTGRES, reason="PostgreSQL does not answer on 127.0.0.1:5432")),
]


@pytest.fixture(params=DB_PARAMS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: SQLite, and PostgreSQL when it answers."""
    with _database(request.param, tmp_path) as url:
        yield url


class StoreTemplates:
    """The small demo store, migrated and loaded once per database kind, then copied for each test: a file
    copy for SQLite, ``CREATE DATABASE ... TEMPLATE`` for PostgreSQL."""

    def __init__(self, directory: Path, store: DemoStore) -> None:
        self.directory, self.store = directory, store
        self.sqlite: Path | None = None
        self.postgres: str | None = None

    def _fill(self, url: str) -> None:
        engine = make_engine(url)
        migrate(engine)
        load_demo_store(session_factory(engine), self.store, say=lambda _: None)
        engine.dispose()

    def copy_into(self, url: str) -> None:
        """Make the empty database at ``url`` (from the ``db_url`` fixture) a copy of the loaded store."""
        import sqlite3

        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if self.sqlite is None:
                self.sqlite = self.directory / "store.db"
                self._fill(f"sqlite:///{self.sqlite}")
            with sqlite3.connect(self.sqlite) as source, sqlite3.connect(str(parsed.database)) as target:
                source.backup(target)
            return
        if self.postgres is None:
            self.postgres = f"aisle_template_{uuid.uuid4().hex[:12]}"
            _create_database(self.postgres)
            self._fill(url.replace(str(parsed.database), self.postgres))
        _drop_database(str(parsed.database))
        _create_database(str(parsed.database), template=self.postgres)

    def close(self) -> None:
        if self.postgres is not None:
            _drop_database(self.postgres)


def _create_database(name: str, template: str | None = None) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    admin.dispose()


def _drop_database(name: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def store_templates(tmp_path_factory: pytest.TempPathFactory, demo_store: DemoStore) -> Iterator[StoreTemplates]:
    templates = StoreTemplates(tmp_path_factory.mktemp("store-template"), demo_store)
    yield templates
    templates.close()


@pytest.fixture
def factory(db_url: str, store_templates: StoreTemplates) -> Iterator[sessionmaker[Session]]:
    """A migrated database holding the small demo store (a copy of the session's loaded one)."""
    store_templates.copy_into(db_url)
    engine = make_engine(db_url)
    yield session_factory(engine)
    engine.dispose()


@contextmanager
def vllm_server(directory: Path, *, enable_lora: bool = False) -> Iterator[str]:
    """A real vLLM server (CPU build here) on the prepared model; yields its URL."""
    from bot.llm.managed import ManagedVLLM, ManagedVLLMConfig

    server = ManagedVLLM(ManagedVLLMConfig(model_dir=MODEL_DIR, port=free_port(), log_path=directory / "vllm.log",
                                           startup_timeout_s=480, enable_lora=enable_lora))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def vllm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The one real vLLM server of the session, for every test that does not stop or restart one: LoRA
    enabled, so adapters load by name at run time beside the base model (`aisle-base`)."""
    with vllm_server(tmp_path_factory.mktemp("vllm"), enable_lora=True) as url:
        yield url


@pytest.fixture(scope="session")
def catalog_export(tmp_path_factory: pytest.TempPathFactory, demo_store: DemoStore, saved_index: Path,
                   encoder: Encoder) -> Path:
    """A small export of catalog-grounded dialogs about the demo store (held out: a quarter of the products, a
    category and a fifth of the phrasings, so a little under half)."""
    from collections import Counter

    from finetune.catalog_dialogs import catalog_examples
    from finetune.data import ExportArgs, write_export
    from retrieval.search import ProductSearch

    out = tmp_path_factory.mktemp("export")
    search = ProductSearch(ProductIndex.load(saved_index), encoder)
    examples = catalog_examples(search, demo_store.products, n=96, store_name="Aisle Demo Store", progress=False)
    write_export(out, examples, ExportArgs(out_dir=out, holdout=0.25), skipped=Counter(), pii=Counter())
    return out


@pytest.fixture(scope="session")
def tiny_adapter(tmp_path_factory: pytest.TempPathFactory, catalog_export: Path) -> Path:
    """A LoRA adapter from a few training steps: enough to be served and to differ from the base model."""
    from finetune.lora import LoraArgs, main

    return main(LoraArgs(data_dir=catalog_export, out_dir=tmp_path_factory.mktemp("adapters"), base_model=MODEL_DIR,
                         name="tiny-grounding", max_steps=6, batch_size=4, eval_examples=8, lr=1e-3),
                say=lambda _: None)


@pytest.fixture
def aisle_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> Iterator[Path]:
    """AISLE_HOME and AISLE_DATABASE_URL for the CLI; settings rebuilt around the test."""
    from bot.config import get_settings

    home = tmp_path / "home"
    monkeypatch.setenv("AISLE_HOME", str(home))
    monkeypatch.setenv("AISLE_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def stored_meta(factory: Any, frame: dict[str, Any]) -> dict[str, Any]:
    """The full ``meta`` stored with a ``message.completed`` frame's reply (the shopper's frame carries only
    bot.turn_events.SHOPPER_META)."""
    from bot.models import Message

    with factory() as s:
        return s.get_one(Message, frame["id"]).meta  # type: ignore[no-any-return]


def make_settings(home: Path, db_url: str, saved_index: Path, **overrides: object) -> Settings:
    """Settings for an app under test, with the session's index copied into its home."""
    if not (home / "index").exists():
        shutil.copytree(saved_index, home / "index")
    values: dict[str, object] = {
        "home": home, "database_url": db_url, "base_model": MODEL_DIR, "secret_key": "test-secret",
        "classifier_dir": CLASSIFIERS,
        "temperature": 0.0, "max_tokens": 96,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@contextmanager
def serve(app: object, **options: Any) -> Iterator[str]:
    """Run an ASGI app under uvicorn in a thread (``options`` go to uvicorn); yields its http base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
