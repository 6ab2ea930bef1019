"""Checks that an install under HOME (argv[1]) has the three shipped classifiers and a live shipped adapter."""

import sys
from pathlib import Path

from sqlalchemy import select

from bot.db import make_engine, session_factory
from bot.models import Adapter, AdapterStatus
from bot.signals import latest_model
from finetune.shipped import read_manifest, shipped_name

home = Path(sys.argv[1]).resolve()
for task in ("intent", "sentiment", "churn"):
    model = latest_model(home / "models" / "classifiers", task)
    assert model is not None and (model / "manifest.json").is_file(), f"no installed {task} classifier under {home}"
    print(f"[standalone] {task} classifier: {model.name}")
manifest = read_manifest()
assert manifest is not None, "no shipped adapter in the checkout"
with session_factory(make_engine(f"sqlite:///{home / 'aisle.db'}"))() as session:
    live = session.scalar(select(Adapter).where(Adapter.status == AdapterStatus.LIVE))
assert live is not None and live.name == shipped_name(manifest), f"live adapter: {live and live.name}"
print(f"[standalone] live adapter: {live.name}")
