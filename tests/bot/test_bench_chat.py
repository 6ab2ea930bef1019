"""What `aisle bench chat` serves: the registry's live adapter by default, a named one, or the base model."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.bench.chat import chosen_adapter
from bot.cli import main
from bot.config import get_settings
from tests.e2e.adapter_support import adapter_dir, register


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_bench_serves_the_live_adapter_a_named_one_or_the_base_model(
        aisle_env: Path, tmp_path: Path, factory: sessionmaker[Session]) -> None:
    settings = get_settings()
    assert chosen_adapter(settings, "live") is None  # no adapter yet: the base model
    old, new = adapter_dir(tmp_path, "old"), adapter_dir(tmp_path, "new")
    register(factory, old, "old")
    register(factory, new, "new")  # promoting "new" retires "old"
    assert chosen_adapter(settings, "live") == ("new", new)
    assert chosen_adapter(settings, "old") == ("old", old)
    assert chosen_adapter(settings, "base") is None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_unknown_adapter_is_refused_before_anything_starts(
        aisle_env: Path, tmp_path: Path, factory: sessionmaker[Session], capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "chat.json"
    assert main(["bench", "chat", "--adapter", "no-such", "--json", str(out)]) == 2
    assert "no adapter named 'no-such'" in capsys.readouterr().err
    assert not out.exists() and not (aisle_env / "bench").exists()
