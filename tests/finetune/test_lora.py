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
