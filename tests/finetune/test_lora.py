"""LoRA fine-tuning writes an adapter vLLM can load, trained on the replies only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune.examples import Example
from finetune.lora import LoraArgs, collate, encode, main
from tests.conftest import MODEL_DIR


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(MODEL_DIR)


def test_only_the_reply_and_its_end_of_turn_are_trained_on(tokenizer) -> None:  # type: ignore[no-untyped-def]
    ex = Example(id="a", source="catalog", group="g", prefix="Your order A1 has shipped.",
                 messages=[{"role": "system", "content": "facts"}, {"role": "user", "content": "where is A1?"}],
                 completion=" It arrives Friday.")
    enc = encode(tokenizer, ex)
    batch = collate([enc, encode(tokenizer, ex)], tokenizer.eos_token_id)
    trained = batch["labels"][0][batch["labels"][0] != -100].tolist()
    assert tokenizer.decode(trained) == " It arrives Friday." + tokenizer.eos_token
    context = tokenizer.decode(enc.ids[:enc.context])
    rendered = tokenizer.apply_chat_template(ex.messages, add_generation_prompt=True, tokenize=False)
    assert context == rendered + ex.prefix  # what vLLM renders for a continued reply


@pytest.mark.slow  # trains the session's small adapter (tiny_adapter)
def test_a_short_run_writes_a_servable_adapter_and_learns(tiny_adapter: Path) -> None:
    config = json.loads((tiny_adapter / "adapter_config.json").read_text())
    assert config["r"] == 16 and config["bias"] == "none" and not config.get("modules_to_save")
    assert {"q_proj", "v_proj", "down_proj"} <= set(config["target_modules"])
    assert (tiny_adapter / "adapter_model.safetensors").stat().st_size > 100_000
    report = json.loads((tiny_adapter / "train.json").read_text())
    assert report["steps"] == 6 and report["train_examples"] > 30
    assert report["eval_loss_after"] < report["eval_loss_before"] * 0.9, report
    assert report["dataset"]["examples"]["train"] == report["train_examples"]
    assert (tiny_adapter / "loss.png").stat().st_size > 5_000


def test_an_export_without_training_examples_is_refused(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("")
    with pytest.raises(ValueError, match="no training examples"):
        main(LoraArgs(data_dir=tmp_path, out_dir=tmp_path / "out", base_model=MODEL_DIR), say=lambda _: None)
    with pytest.raises(ValueError, match="rank"):
        LoraArgs(data_dir=tmp_path, out_dir=tmp_path, base_model=MODEL_DIR, rank=0)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_taken_name_or_a_rank_vllm_refuses_stops_before_any_training(
        tmp_path: Path, db_url: str, factory, catalog_export: Path, tiny_adapter: Path,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import adapters
    from bot.adapters import AdapterError
    from bot.config import Settings
    from finetune.jobs import train

    def args(**kw: object) -> LoraArgs:
        return LoraArgs(data_dir=catalog_export, out_dir=tmp_path / "adapters", base_model=MODEL_DIR, **kw)  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="already exists"):  # on disk: refused before the model loads
        main(LoraArgs(data_dir=catalog_export, out_dir=tiny_adapter.parent, base_model=MODEL_DIR,
                      name=tiny_adapter.name), say=lambda _: None)
    monkeypatch.setattr("finetune.lora.main", lambda *a, **k: pytest.fail("training started"))
    with factory() as s, s.begin():
        adapters.register(s, name="taken", base_model="base", path=tiny_adapter, manifest={}, metrics={})
    settings = Settings(max_lora_rank=16)
    with pytest.raises(AdapterError, match="'taken' is already registered"):
        train(settings, factory, args(name="taken"), say=lambda _: None)
    with pytest.raises(AdapterError, match="rank 32 is above what vLLM serves"):
        train(settings, factory, args(rank=32), say=lambda _: None)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_training_continues_from_the_live_adapter(
        tmp_path: Path, db_url: str, factory, catalog_export: Path, tiny_adapter: Path) -> None:  # type: ignore[no-untyped-def]
    from safetensors.torch import load_file

    from bot import adapters
    from bot.adapters import AdapterError
    from bot.config import Settings
    from finetune.jobs import train

    def args(**kw: object) -> LoraArgs:
        return LoraArgs(data_dir=catalog_export, out_dir=tmp_path / "adapters", base_model=MODEL_DIR, max_steps=2,
                        batch_size=4, eval_examples=4, lr=1e-4, **kw)  # type: ignore[arg-type]

    with pytest.raises(AdapterError, match="no adapter is live"):
        train(Settings(), factory, args(init=Path("live")), say=lambda _: None)
    with factory() as s, s.begin():
        adapters.register(s, name="tiny-live", base_model="base", path=tiny_adapter, manifest={}, metrics={})
        adapters.promote(s, name="tiny-live")
    out = train(Settings(), factory, args(init=Path("live"), name="tiny-next"), say=lambda _: None)
    before, after = load_file(tiny_adapter / "adapter_model.safetensors"), load_file(out / "adapter_model.safetensors")
    assert before.keys() == after.keys()  # the same rank and layers
    moved = [k for k in before if not (before[k] == after[k]).all()]
    close = [k for k in before if (before[k] - after[k]).abs().max() < 0.005]  # a fresh init is ~0.04 away
    assert moved and len(close) == len(before)  # it went on from there: a few small steps, not a fresh start
    assert json.loads((out / "train.json").read_text())["args"]["init"] == str(tiny_adapter)
