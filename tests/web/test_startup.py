"""A missing or corrupt classifier stops the app at startup with a clear error, unless signals are off."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.llm.scripted import ScriptedBackend
from bot.signals import SignalsError, latest_model
from tests.conftest import CLASSIFIERS, make_settings
from web.app import create_app


def _copy_latest(dest: Path) -> dict[str, Path]:
    out = {}
    for task in ("intent", "sentiment", "churn"):
        src = latest_model(CLASSIFIERS, task)
        assert src is not None, task
        out[task] = Path(shutil.copytree(src, dest / src.name))
    return out


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_corrupt_classifier_stops_startup_unless_signals_are_off(
    tmp_path: Path, db_url: str, factory, saved_index: Path  # type: ignore[no-untyped-def]
) -> None:
    # every task's model goes through the same loader: tests/finetune/test_classifier.py checks each
    # one; here the app is shown to stop on one of them (the churn model, loaded last)
    task = "churn"
    models = _copy_latest(tmp_path / "classifiers")
    (models[task] / "model.safetensors").write_bytes(b"\x00garbage")
    settings = make_settings(tmp_path / "home", db_url, saved_index, classifier_dir=tmp_path / "classifiers")
    app = create_app(settings, llm=ScriptedBackend(lambda _request: "ok"))
    with pytest.raises(SignalsError, match=rf"{task} classifier .* is corrupt.*--task {task}"):
        async with app.router.lifespan_context(app):
            pass
    shutil.rmtree(models[task])
    with pytest.raises(SignalsError, match=f"no {task} classifier found"):
        async with app.router.lifespan_context(app):
            pass
    off = create_app(settings.model_copy(update={"signals": False}), llm=ScriptedBackend(lambda _request: "ok"))
    async with off.router.lifespan_context(off):
        assert off.state.aisle.dialogue.scorer is None and off.state.aisle.dialogue.policy is None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_startup_that_fails_after_the_model_server_started_stops_it(
    tmp_path: Path, db_url: str, factory, saved_index: Path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    from bot.adapters import AdapterSwitch
    from bot.llm.factory import BuiltBackend

    class Stopped(ScriptedBackend):
        closed = False

        async def aclose(self) -> None:
            Stopped.closed = True

    async def registry_down(self: AdapterSwitch) -> None:
        raise OSError("the registry's database went away")

    monkeypatch.setattr("web.app.build_backend", lambda settings, live: BuiltBackend(Stopped(lambda _r: "ok")))
    monkeypatch.setattr(AdapterSwitch, "sync", registry_down)
    app = create_app(make_settings(tmp_path / "home", db_url, saved_index, signals=False))
    with pytest.raises(OSError, match="went away"):
        async with app.router.lifespan_context(app):
            pass
    assert Stopped.closed, "the model server started for the app was left running"
