"""The intent, sentiment and churn models, shipped in the repository with a manifest of what they learned from.

A signal model is the packaged MiniLM cut to its lower layers (embeddings frozen during training),
its fine-tuned transformer layers and a linear head. Only what training changed ships:
``finetune/shipped/signals/TASK/weights.safetensors`` holds the layers' matrices as int8 codes
with one scale per row (training rounds them so before measuring anything, so the figures are those
of these weights), their vectors and the head in float32. Beside it: ``classifier.json``
(labels, blend, thresholds, temperature), ``lexical.npz`` for sentiment's TF-IDF blend,
``metrics.json`` (the job's report) and ``manifest.json`` with a *fingerprint*:

- the sha256 of each shared dataset file the task reads;
- the syntax tree of the code that turns them into examples (comments and docstrings do not count);
- the packaged encoder's weights; the recipe (training defaults, layers kept).

``make install`` rebuilds the model directory from the packaged encoder and these weights in
seconds (:func:`install`). ``tests/finetune/test_shipped_signals.py`` fails when a fingerprint no
longer matches, naming :data:`REBUILD`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from finetune.shipped import MANIFEST, SHIPPED, code_sha256, differences, json_sha256

SIGNALS = SHIPPED / "signals"
REBUILD = "make shipped-signals"
"""The one command that retrains the shipped signal models (`aisle finetune classifier --task T --ship`)."""
WEIGHTS = "weights.safetensors"
DATA_FILES: dict[str, tuple[str, ...]] = {
    "intent": ("bitext_intents/train.csv", "bitext_intents/validation.csv"),
    "sentiment": ("clothing_reviews/reviews.csv.gz", "chat_sentiment/tweets.tsv"),
    "churn": ("online_retail/transactions_until_2011-09-09.csv.gz",),
}
DATA_CODE: dict[str, tuple[str, ...]] = {
    "intent": ("finetune.intents", "retrieval.datasets"),
    "sentiment": ("finetune.sentiment_data", "finetune.chat_sentiment", "retrieval.datasets", "retrieval.demo_store"),
    "churn": ("finetune.churn", "retrieval.datasets", "retrieval.demo_store"),
}
"""The modules whose code decides each task's examples."""

Say = Callable[[str], None]


class StaleSignals(RuntimeError):
    """A shipped signal model was trained from other data, code or recipe than this checkout has."""


def fingerprint(task: str, data_dir: Path) -> dict[str, Any]:
    """Everything the task's training examples and recipe are made of, for this checkout and these datasets."""
    from bot.model_store import encoder_dir, sha256_of
    from finetune.chat_sentiment import SHOP_TEST
    from finetune.classifier import DEFAULTS, LAYERS

    data = {name: sha256_of(data_dir / name) if (data_dir / name).is_file() else "missing"
            for name in DATA_FILES[task]}
    if task == "sentiment":
        data["shop_chat_test.tsv"] = sha256_of(SHOP_TEST)
    return {"data": data, "data_code": code_sha256(DATA_CODE[task]),
            "encoder": sha256_of(encoder_dir() / "model.safetensors"),
            "recipe": json_sha256({**dataclasses.asdict(DEFAULTS[task]), "layers": LAYERS})}


def read_manifest(task: str, root: Path = SIGNALS) -> dict[str, Any] | None:
    directory = root / task
    if not (directory / MANIFEST).is_file() or not (directory / WEIGHTS).is_file():
        return None
    return json.loads((directory / MANIFEST).read_text())  # type: ignore[no-any-return]


def folders(task: str) -> list[str]:
    """The public datasets (retrieval/public_data.py) the task trains on."""
    return sorted({name.split("/")[0] for name in DATA_FILES[task]})


def what_changed(task: str, shipped: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The fingerprint's parts that differ, in words: which dataset files, which code, the encoder, the recipe."""
    changed = differences(shipped, current)
    words = {"data_code": f"the code that makes its examples ({', '.join(DATA_CODE[task])})",
             "encoder": "the packaged encoder", "recipe": "the training recipe"}
    out = []
    for part in changed:
        if part == "data":
            files = [n for n in sorted(set(shipped.get("data", {})) | set(current.get("data", {})))
                     if shipped.get("data", {}).get(n) != current.get("data", {}).get(n)]
            out.append(f"the data ({', '.join(files)})")
        else:
            out.append(words.get(part, part))
    return out


def check(task: str, data_dir: Path, root: Path = SIGNALS, *, say: Say | None = None) -> dict[str, Any]:
    """The shipped model's manifest, if it was trained from what this checkout would train it from.

    The datasets are compared only where they are present (a clone without them installs the shipped
    model after checking the code, the encoder and the recipe; the tests, which have the data, compare
    the rest).

    Raises:
        StaleSignals: naming what changed and the command that rebuilds it.
    """
    from retrieval.public_data import missing

    manifest = read_manifest(task, root)
    if manifest is None:
        raise StaleSignals(f"no shipped {task} model under {root / task}; build it with `{REBUILD}`")
    shipped, current = dict(manifest["fingerprint"]), fingerprint(task, data_dir)
    if missing(data_dir, folders(task)):
        shipped.pop("data", None)
        current.pop("data", None)
        if say is not None:
            say(f"[signals] {task}: its training data is not in {data_dir}; checked its code, encoder and "
                f"recipe only")
    changed = what_changed(task, shipped, current)
    if changed:
        raise StaleSignals(f"the shipped {task} model in {root / task} was trained before a change to "
                           f"{'; '.join(changed)}; rebuild it with `{REBUILD}` and commit the result")
    return manifest


def write(model_dir: Path, data_dir: Path, root: Path = SIGNALS) -> dict[str, Any]:
    """Ship a trained model directory (written by ``aisle finetune classifier``); returns the manifest."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import BertModel

    from bot.model_store import sha256_of
    from bot.text_classifier import CONFIG, HEAD, LEXICAL
    from finetune.trainer import int8_rows

    config = json.loads((model_dir / CONFIG).read_text())
    task = config["task"]
    encoder = BertModel.from_pretrained(model_dir, local_files_only=True, add_pooling_layer=False)
    tensors: dict[str, torch.Tensor] = {}
    for name, p in encoder.encoder.layer.state_dict().items():
        if p.dim() == 2:
            codes, scale = int8_rows(p)
            if not torch.allclose(codes.float() * scale[:, None], p, rtol=1e-6, atol=1e-12):
                raise ValueError(f"{model_dir} was not rounded to int8 rows in training ({name}); "
                                 f"train it again with this checkout")
            tensors[f"layer.{name}.codes"], tensors[f"layer.{name}.scale"] = codes, scale
        else:
            tensors[f"layer.{name}"] = p.contiguous()
    tensors.update({f"head.{k}": v for k, v in load_file(str(model_dir / HEAD)).items()})
    staging = root / f"{task}.new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file(tensors, str(staging / WEIGHTS))
    for name in (CONFIG, LEXICAL, "metrics.json"):
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, staging / name)
    metrics = json.loads((model_dir / "metrics.json").read_text())
    manifest = {"task": task, "layers": int(encoder.config.num_hidden_layers),
                "weights_sha256": sha256_of(staging / WEIGHTS), "fingerprint": fingerprint(task, data_dir),
                "trained_from": model_dir.name, "trained_at": model_dir.name.split("-", 1)[1],
                "train_minutes": metrics.get("train_minutes"), "rebuild": REBUILD}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(root / task, ignore_errors=True)
    staging.rename(root / task)
    return manifest


def install(task: str, out_parent: Path, data_dir: Path, *, say: Say, root: Path = SIGNALS) -> Path:
    """Rebuild the shipped model's directory under ``out_parent`` (``TASK-<trained at>``); returns it.

    Seconds: the packaged encoder, cut to the shipped layer count, takes the shipped layers and head.
    A model trained on this machine later has a newer name, so serving picks that one.

    Raises:
        StaleSignals: the shipped model does not fit this checkout, or its weights are not the manifest's.
    """
    import torch
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, BertModel

    from bot.model_store import encoder_dir, sha256_of
    from bot.text_classifier import (
        CONFIG,
        LEXICAL,
        ClassifierConfig,
        LexicalModel,
        PooledClassifier,
        save,
    )
    from retrieval.embed import quiet_transformers

    manifest = check(task, data_dir, root, say=say)
    source = root / task
    if sha256_of(source / WEIGHTS) != manifest["weights_sha256"]:
        raise StaleSignals(f"{source / WEIGHTS} is not the file its manifest names; restore it from git "
                           f"or rebuild it with `{REBUILD}`")
    out = out_parent / f"{task}-{manifest['trained_at']}"
    if (out / MANIFEST).is_file() and json.loads((out / MANIFEST).read_text()) == manifest:
        say(f"[signals] {task}: the shipped model is already installed at {out}")
        return out
    started = time.perf_counter()
    config = ClassifierConfig(**json.loads((source / CONFIG).read_text()))
    with quiet_transformers():  # the packaged encoder's pooler is left out on purpose
        encoder = BertModel.from_pretrained(encoder_dir(), add_pooling_layer=False)
    encoder.encoder.layer = encoder.encoder.layer[: manifest["layers"]]
    encoder.config.num_hidden_layers = manifest["layers"]
    tensors = load_file(str(source / WEIGHTS))
    state = {}
    for key, value in tensors.items():
        if key.startswith("layer.") and key.endswith(".codes"):
            name = key[len("layer."): -len(".codes")]
            state[name] = value.float() * tensors[f"layer.{name}.scale"][:, None]
        elif key.startswith("layer.") and not key.endswith(".scale"):
            state[key[len("layer."):]] = value
    encoder.encoder.layer.load_state_dict(state, strict=True)
    model = PooledClassifier(encoder, len(config.labels), len(config.feature_names))
    model.head.load_state_dict({k[len("head."):]: v for k, v in tensors.items() if k.startswith("head.")})
    lexical = LexicalModel.load(source / LEXICAL) if (source / LEXICAL).is_file() else None
    staging = out.with_name(out.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    with torch.no_grad(), quiet_transformers():
        save(staging, model.eval(), AutoTokenizer.from_pretrained(encoder_dir()), config, lexical)
    shutil.copy2(source / "metrics.json", staging / "metrics.json")
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    say(f"[signals] {task}: installed the shipped model at {out} in {time.perf_counter() - started:.1f} s")
    return out
