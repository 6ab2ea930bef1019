"""The grounding adapter shipped in the repository matches what `aisle finetune bootstrap` would train from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot import adapters
from bot.config import Settings
from bot.model_store import sha256_of
from bot.store import load_products
from finetune import shipped
from finetune.jobs import own_export
from retrieval.demo_store import DemoStore, generate


@pytest.fixture(scope="module")
def demo_products():  # type: ignore[no-untyped-def]
    """The demo store `make install` loads, as `aisle finetune bootstrap` reads it."""
    return generate(shipped.DEMO["seed"], shipped.DEMO["products"], shipped.DEMO["shoppers"]).products


def test_the_shipped_adapter_was_trained_from_what_this_code_makes(tmp_path: Path, demo_products) -> None:  # type: ignore[no-untyped-def]
    manifest = shipped.check(Settings(home=tmp_path), demo_products)  # raises, naming `make shipped-adapter`
    assert manifest["rebuild"] == shipped.REBUILD
    assert manifest["base_model"]["gguf_sha256"] and manifest["train_minutes"] > 0
    held = manifest["held_out"]["held-out"]
    assert held["adapter"]["grounded_rate"] > held["base"]["grounded_rate"]
    assert held["adapter"]["hallucination_rate"] <= held["base"]["hallucination_rate"]
    weights = shipped.ADAPTER / "adapter_model.safetensors"
    assert sha256_of(weights) == manifest["weights_sha256"]
    assert weights.stat().st_size < 15 * 2**20  # every shipped model file together stays under 30 MB


def test_a_changed_prompt_format_makes_the_check_fail_with_the_rebuild_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_products) -> None:  # type: ignore[no-untyped-def]
    import bot.prompts

    monkeypatch.setattr(bot.prompts, "SYSTEM", bot.prompts.SYSTEM.replace("short sentences", "sentences"))
    with pytest.raises(shipped.StaleAdapter, match="prompt_format") as caught:
        shipped.check(Settings(home=tmp_path), demo_products)
    assert f"`{shipped.REBUILD}`" in str(caught.value)


def test_another_catalog_voice_or_dialog_code_is_stale_too(tmp_path: Path, demo_products,  # type: ignore[no-untyped-def]
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(home=tmp_path)
    with pytest.raises(shipped.StaleAdapter, match="catalog"):
        shipped.check(settings, demo_products[:-1])
    with pytest.raises(shipped.StaleAdapter, match="voice"):
        shipped.check(Settings(home=tmp_path, store_name="Another Store"), demo_products)
    monkeypatch.setattr(shipped, "DIALOG_CODE", ("finetune.bootstrap_dialogs",))
    with pytest.raises(shipped.StaleAdapter, match="dialog_code"):
        shipped.check(settings, demo_products)


def test_the_code_hash_ignores_comments_and_docstrings_but_not_code(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "dialogs_under_test.py"
    monkeypatch.syspath_prepend(str(tmp_path))
    module.write_text('"""Doc."""\n\nRATE = 0.5\n')
    before = shipped.code_sha256(["dialogs_under_test"])
    module.write_text('"""Another doc."""\n# a comment\n\nRATE = 0.5  # same\n')
    assert shipped.code_sha256(["dialogs_under_test"]) == before
    module.write_text('"""Doc."""\n\nRATE = 0.6\n')
    assert shipped.code_sha256(["dialogs_under_test"]) != before


def test_the_catalog_hash_is_the_same_read_back_from_the_database(factory: sessionmaker[Session],
                                                                  demo_store: DemoStore) -> None:
    with factory() as s:
        stored = load_products(s)
    assert shipped.catalog_sha256(stored) == shipped.catalog_sha256(demo_store.products)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_install_registers_the_shipped_adapter_live_for_its_store_only(
        tmp_path: Path, db_url: str, factory: sessionmaker[Session], demo_products) -> None:  # type: ignore[no-untyped-def]
    said: list[str] = []
    settings = Settings(home=tmp_path / "home", database_url=db_url)
    assert shipped.install(settings, demo_products[:100], factory, say=said.append) is None
    assert "training one for this store instead" in said[-1] and "catalog" in said[-1]

    name = shipped.install(settings, demo_products, factory, say=said.append)
    assert name is not None and name.startswith("grounding-shipped-")
    with factory() as s:
        row = adapters.live(s)
        assert row is not None and row.name == name
        assert Path(row.path).parent == settings.adapters_path  # a copy under AISLE_HOME, not the checkout
        assert row.metrics["eval"] == json.loads((shipped.ADAPTER / shipped.MANIFEST).read_text())["held_out"]
    for file in shipped.WEIGHT_FILES:
        assert (Path(row.path) / file).read_bytes() == (shipped.ADAPTER / file).read_bytes()
    with pytest.raises(ValueError, match="--data DIR"):  # `aisle finetune evaluate` without --data says what to pass
        own_export(factory, name)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_copy_whose_weights_changed_is_refused(tmp_path: Path, demo_products,  # type: ignore[no-untyped-def]
                                                 factory: sessionmaker[Session]) -> None:
    copy = tmp_path / "grounding"
    shutil.copytree(shipped.ADAPTER, copy)
    with (copy / "adapter_model.safetensors").open("ab") as fh:
        fh.write(b"\0")
    settings = Settings(home=tmp_path / "home")
    with pytest.raises(shipped.StaleAdapter, match="weights"):
        shipped.install(settings, demo_products, factory, say=lambda _: None, directory=copy)


def test_refresh_takes_this_codes_fingerprint_only_for_the_same_data_and_recipe(
        tmp_path: Path, demo_products) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "grounding"
    shutil.copytree(shipped.ADAPTER, copy)
    manifest = shipped.read_manifest(copy)
    assert manifest is not None
    settings = Settings(home=tmp_path / "home")
    new = {**shipped.fingerprint(settings, demo_products), "dialog_code": "0" * 64}  # the code changed
    with pytest.raises(shipped.StaleAdapter, match="train.*make shipped-adapter"):
        shipped.refresh(new, {**manifest["data_sha256"], "train": "1" * 64}, directory=copy)
    with pytest.raises(shipped.StaleAdapter, match="recipe"):
        shipped.refresh({**new, "recipe": {**new["recipe"], "steps": 1}}, manifest["data_sha256"], directory=copy)
    assert shipped.read_manifest(copy) == manifest  # a refusal writes nothing
    shipped.refresh(new, manifest["data_sha256"], directory=copy)
    refreshed = shipped.read_manifest(copy)
    assert refreshed == {**manifest, "fingerprint": new}
    with pytest.raises(shipped.StaleAdapter, match="dialog_code"):
        shipped.check(settings, demo_products, copy)  # this code's real fingerprint is not the one written
