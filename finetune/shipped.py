"""The demo store's grounding adapter, shipped in the repository with a manifest of what it was trained from.

``aisle finetune bootstrap --ship`` trains and evaluates the adapter and writes it here
(``finetune/shipped/grounding/``): the LoRA weights, and ``manifest.json`` with the base model and
its checksum, the recipe, the train time, the held-out figures, the training data's sha256, and a
*fingerprint* of everything the training data is made from:

- the prompt format: :mod:`bot.prompts` output on fixed inputs;
- the catalog: the demo store's products, as the bootstrap reads them;
- the store's voice (name, policy texts, offer) and retrieval depth;
- the code that writes the bootstrap dialogs (its syntax tree, so comments do not count);
- the recipe (examples, steps, learning rate, seed).

``make install`` then copies the shipped adapter into the registry in seconds instead of training
one, whenever the fingerprint matches this store; any other store trains its own, as before.
``tests/finetune/test_shipped.py`` fails when the fingerprint no longer matches, naming
:data:`REBUILD`.
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bot.config import Settings
from retrieval.catalog import ProductDoc

SHIPPED = Path(__file__).resolve().parent / "shipped"
ADAPTER = SHIPPED / "grounding"
MANIFEST = "manifest.json"
REBUILD = "make shipped-adapter"
"""The one command that retrains the shipped adapter (`aisle finetune bootstrap --ship` on the demo store)."""
DIALOG_CODE = ("finetune.bootstrap_dialogs", "finetune.catalog_dialogs", "finetune.service_dialogs",
               "finetune.examples", "finetune.data")
"""The modules whose code decides what the bootstrap dialogs say."""
DEMO = {"seed": 7, "products": 2400, "shoppers": 600}
"""The demo store `make install` loads (`aisle demo-data` defaults)."""
WEIGHT_FILES = ("adapter_config.json", "adapter_model.safetensors")

Say = Callable[[str], None]


class StaleAdapter(RuntimeError):
    """The shipped adapter was trained from other data or another prompt format than this code makes."""


def json_sha256(value: Any) -> str:
    """sha256 of a JSON value, its keys sorted."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def prompt_format_sha256() -> str:
    """sha256 of :func:`bot.prompts.build_messages` on fixed inputs: every part of the prompt, filled."""
    from bot.prompts import PromptRecord, Turn

    products = [ProductDoc(sku="FMT-1", title="Trail Runner (blue)", category="shoes", price=89.5, currency="USD",
                           stock=3),
                ProductDoc(sku="FMT-2", title="Rain Jacket", category="outerwear", price=120.0, currency="EUR",
                           stock=0)]
    history = [Turn("user", "hi"), Turn("assistant", "Hello! How can I help?")]
    variants = [
        PromptRecord(store_name="Format Store", products=products, constraint="under $100", profile="likes running",
                     signals="the shopper sounds upset", offer="10% off with CODE10"),
        PromptRecord(store_name="Format Store", facts="Order A1 is shipped."),
        PromptRecord(store_name="Format Store"),
    ]
    rendered = [r.messages(history=history, text="waterproof shoes?") for r in variants]
    return json_sha256({"messages": rendered, "meta": [r.as_meta() for r in variants]})


def catalog_sha256(products: Sequence[ProductDoc]) -> str:
    """sha256 of what the bootstrap dialogs can quote of each product, in SKU order."""
    rows = sorted((p.sku, p.embedding_text(), p.title, p.category, p.brand, p.currency, f"{p.price:.2f}", p.stock)
                  for p in products)
    return json_sha256(rows)


def demo_catalog_sha256() -> str:
    """:func:`catalog_sha256` of the demo store that `make install` loads."""
    from retrieval.demo_store import generate

    return catalog_sha256(generate(DEMO["seed"], DEMO["products"], DEMO["shoppers"]).products)


def code_sha256(modules: Sequence[str] | None = None) -> str:
    """sha256 of the modules' syntax trees (default :data:`DIALOG_CODE`): a change of behaviour counts, a
    comment, a docstring or a blank line does not."""
    import importlib.util

    trees = []
    for name in DIALOG_CODE if modules is None else modules:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        tree = ast.parse(Path(spec.origin).read_text())
        for node in ast.walk(tree):  # docstrings are prose
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                    and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                body[0] = ast.Pass()
        trees.append(ast.dump(tree, annotate_fields=False))
    return json_sha256(trees)


def recipe() -> dict[str, Any]:
    """The bootstrap recipe: examples, steps and learning rate, and the LoRA defaults it trains with."""
    import dataclasses

    from finetune.lora import BOOTSTRAP_EXAMPLES, BOOTSTRAP_LR, BOOTSTRAP_STEPS, LoraArgs

    defaults = {f.name: f.default for f in dataclasses.fields(LoraArgs)
                if f.name in ("rank", "alpha", "dropout", "batch_size", "max_len", "top_layers", "seed")}
    return {"examples": BOOTSTRAP_EXAMPLES, "steps": BOOTSTRAP_STEPS, "lr": BOOTSTRAP_LR, **defaults}


def fingerprint(settings: Settings, products: Sequence[ProductDoc]) -> dict[str, str | dict[str, Any]]:
    """Everything the shipped adapter's training data is made from, for this store and this code."""
    voice = {"store_name": settings.store_name, "policies": settings.policies,
             "offer": settings.retention_offer or None, "k": settings.retrieve_k,
             "history_turns": settings.history_turns}
    return {"prompt_format": prompt_format_sha256(), "catalog": catalog_sha256(products), "voice": json_sha256(voice),
            "dialog_code": code_sha256(), "recipe": recipe()}


def differences(shipped: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The fingerprint's parts that differ, by name."""
    return [k for k in sorted(set(shipped) | set(current)) if shipped.get(k) != current.get(k)]


def read_manifest(directory: Path = ADAPTER) -> dict[str, Any] | None:
    path = directory / MANIFEST
    if not path.is_file() or not all((directory / f).is_file() for f in WEIGHT_FILES):
        return None
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def check(settings: Settings, products: Sequence[ProductDoc], directory: Path = ADAPTER) -> dict[str, Any]:
    """The shipped adapter's manifest, if it was trained from what this store and this code would train from.

    Raises:
        StaleAdapter: naming what changed and the command that rebuilds it.
    """
    manifest = read_manifest(directory)
    if manifest is None:
        raise StaleAdapter(f"no shipped adapter under {directory}; build it with `{REBUILD}`")
    changed = differences(manifest["fingerprint"], fingerprint(settings, products))
    if changed:
        raise StaleAdapter(f"the shipped adapter in {directory} was trained from another {', '.join(changed)} "
                           f"than this code makes; rebuild it with `{REBUILD}` and commit the result (`{REBUILD}-refresh` "
                           f"keeps its weights, in minutes, when the training data did not change)")
    return manifest


def shipped_name(manifest: dict[str, Any]) -> str:
    """The adapter's registry name: one per version (its weights' sha256), so a new version never reuses a name."""
    return f"grounding-shipped-{manifest['weights_sha256'][:10]}"


def write(adapter_dir: Path, *, fingerprint: dict[str, Any], figures: dict[str, Any], train: dict[str, Any],
          data_sha256: dict[str, str], directory: Path = ADAPTER) -> dict[str, Any]:
    """Copy a trained adapter's weights into ``directory`` with its manifest; returns the manifest."""
    from bot.model_store import GENERATOR_WHEEL, GGUF_SHA256, sha256_of

    staging = directory.with_name(directory.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in WEIGHT_FILES:
        shutil.copy2(adapter_dir / name, staging / name)
    manifest = {
        "base_model": {"source": GENERATOR_WHEEL, "gguf_sha256": GGUF_SHA256},
        "weights_sha256": sha256_of(staging / "adapter_model.safetensors"),
        "fingerprint": fingerprint,
        "data_sha256": data_sha256,
        "recipe": fingerprint["recipe"],
        "train_minutes": train.get("train_minutes"),
        "train": {k: train[k] for k in ("steps", "train_examples", "eval_examples", "eval_loss_before", "eval_loss_after", "train_loss_end")
                  if k in train},
        "held_out": figures,
        "trained_from": adapter_dir.name,
        "rebuild": REBUILD,
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    return manifest


def refresh(fingerprint: dict[str, Any], data_sha256: dict[str, str], directory: Path = ADAPTER) -> dict[str, Any]:
    """Give the shipped adapter this code's fingerprint when this code writes the very training data it was
    trained on (same sha256 for train and eval, same recipe): a change that leaves the data as it was (a
    refactor, a new export feature) then needs no retraining. Returns the rewritten manifest.

    Raises:
        StaleAdapter: the data or the recipe differ; only retraining (:data:`REBUILD`) fits this code then.
    """
    manifest = read_manifest(directory)
    if manifest is None:
        raise StaleAdapter(f"no shipped adapter under {directory}; build it with `{REBUILD}`")
    changed = [k for k in ("train", "eval") if manifest["data_sha256"].get(k) != data_sha256.get(k)]
    if fingerprint["recipe"] != manifest["recipe"]:
        changed.append("recipe")
    if changed:
        raise StaleAdapter(f"this code trains from another {', '.join(changed)} than the shipped adapter was "
                           f"trained on; retrain it with `{REBUILD}`")
    manifest["fingerprint"] = fingerprint
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def install(settings: Settings, products: Sequence[ProductDoc], factory: Any, *, say: Say,
            directory: Path = ADAPTER) -> str | None:
    """Register the shipped adapter and make it live, when it was trained for this store; returns its name.

    The weights are copied under ``AISLE_HOME`` (the registry points at files no checkout change can alter).
    Returns None, saying why, when the shipped adapter does not fit this store or this code.
    """
    from bot import adapters
    from bot.model_store import sha256_of

    try:
        manifest = check(settings, products, directory)
    except StaleAdapter as exc:
        say(f"[bootstrap] {exc}; training one for this store instead")
        return None
    name = shipped_name(manifest)
    target = settings.adapters_path / name
    if not (target / MANIFEST).is_file():
        staging = target.with_name(name + ".copy")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(directory, staging)
        staging.rename(target)
    if sha256_of(target / "adapter_model.safetensors") != manifest["weights_sha256"]:
        raise StaleAdapter(f"{target} does not hold the weights its manifest names; delete it and run "
                           f"`aisle finetune bootstrap` again")
    with factory() as session, session.begin():
        adapters.register(session, name=name, base_model=str(settings.generator_path), path=target,
                          manifest={"shipped": manifest["fingerprint"], "data_sha256": manifest["data_sha256"]},
                          metrics={"eval": manifest["held_out"], "train": manifest["train"]})
        adapters.promote(session, name=name)
    held: dict[str, Any] = next(iter(manifest["held_out"].values()), {})
    figures = (f"held-out grounded {held['base']['grounded_rate']:.2f} -> {held['adapter']['grounded_rate']:.2f}"
               if "adapter" in held else "no figures")
    say(f"[bootstrap] installed the shipped adapter {name} ({figures}); it is live")
    return name
