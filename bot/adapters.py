"""LoRA adapters: the registry (``adapters`` table) and the switch that serves the live one.

An adapter is registered as a *candidate* when training writes it, gets evaluation
figures in ``metrics``, and is *promoted* to *live* (the previous live one is
*retired*). Every app process polls the registry and hot-loads a newly live adapter
into vLLM, then starts new replies on it; replies already streaming finish on the
model they started with. ``AISLE_ADAPTER`` overrides the registry: a name pins replies
to that adapter (its registry row's files, or one the vLLM server already serves by that
name), and ``base`` keeps them on the base model. The path must be readable by the vLLM server (the same machine
for the managed server, a shared volume for an external one).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.llm.base import LLMBackend, LLMUnavailable
from bot.models import Adapter, AdapterStatus

log = logging.getLogger("aisle.adapters")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


class AdapterError(ValueError):
    """An adapter that is unknown, or whose files are missing; the message says which."""


def check_files(path: Path) -> None:
    missing = [f for f in ADAPTER_FILES if not (path / f).is_file()]
    if missing:
        raise AdapterError(f"{path} is not a LoRA adapter directory: {', '.join(missing)} missing")


def register(session: Session, *, name: str, base_model: str, path: Path, manifest: dict[str, Any],
             metrics: dict[str, Any]) -> Adapter:
    """Add a trained adapter as a candidate."""
    check_files(path)
    if find(session, name) is not None:
        raise AdapterError(f"an adapter named {name!r} is already registered")
    row = Adapter(name=name, base_model=base_model, path=str(path.resolve()), dataset_manifest=manifest,
                  metrics=metrics, status=AdapterStatus.CANDIDATE)
    session.add(row)
    session.flush()
    return row


def find(session: Session, name: str) -> Adapter | None:
    return session.scalar(select(Adapter).where(Adapter.name == name))


def get(session: Session, name: str) -> Adapter:
    row = session.scalar(select(Adapter).where(Adapter.name == name))
    if row is None:
        known = ", ".join(session.scalars(select(Adapter.name).order_by(Adapter.id))) or "none"
        raise AdapterError(f"no adapter named {name!r} (registered: {known})")
    return row


def live(session: Session) -> Adapter | None:
    return session.scalar(select(Adapter).where(Adapter.status == AdapterStatus.LIVE).order_by(Adapter.id.desc()))


def promote(session: Session, *, name: str) -> Adapter:
    """Make ``name`` the live adapter; the one live before is retired, and remembered for :func:`rollback`."""
    row = get(session, name)
    check_files(Path(row.path))
    replaced = None
    for other in session.scalars(select(Adapter).where(Adapter.status == AdapterStatus.LIVE)):
        if other.id != row.id:
            other.status, replaced = AdapterStatus.RETIRED, other.name
    if row.status != AdapterStatus.LIVE:
        row.metrics = {**(row.metrics or {}), "promoted": {"at": _now(), "replaced": replaced}}
    row.status = AdapterStatus.LIVE
    return row


def start_trial(session: Session, *, name: str, share: float) -> Adapter:
    """Serve ``name`` to ``share`` of new conversations beside the live adapter (A/B); a trial running
    before is retired. Each conversation keeps the arm it started on."""
    if not 0 < share < 1:
        raise AdapterError(f"an A/B share is between 0 and 1 (exclusive), not {share}")
    row = get(session, name)
    check_files(Path(row.path))
    if row.status == AdapterStatus.LIVE:
        raise AdapterError(f"{name} is live already")
    for other in session.scalars(select(Adapter).where(Adapter.status == AdapterStatus.TRIAL)):
        if other.id != row.id:
            other.status = AdapterStatus.RETIRED
    current = live(session)
    row.status = AdapterStatus.TRIAL
    row.metrics = {**(row.metrics or {}), "trial": {"share": share, "since": _now(),
                                                    "against": current.name if current else None}}
    return row


def trial(session: Session) -> Adapter | None:
    return session.scalar(select(Adapter).where(Adapter.status == AdapterStatus.TRIAL).order_by(Adapter.id.desc()))


def rollback(session: Session) -> tuple[Adapter, Adapter | None]:
    """Send all traffic back to the adapter that had it: a running A/B trial is retired (the live adapter
    keeps everything), else the live adapter is retired and the one it replaced is live again. Returns
    (retired, live).

    Raises:
        AdapterError: with nothing to roll back, or an earlier adapter whose files are gone.
    """
    if (running := trial(session)) is not None:
        running.status = AdapterStatus.RETIRED
        running.metrics = {**(running.metrics or {}), "rolled_back": {"at": _now(), "to": None}}
        return running, live(session)
    current = live(session)
    if current is None:
        raise AdapterError("no live adapter to roll back")
    previous_name = ((current.metrics or {}).get("promoted") or {}).get("replaced")
    if previous_name is None:
        raise AdapterError(f"{current.name} replaced no earlier adapter; `aisle adapters retire {current.name}` "
                           "serves the base model instead")
    previous = get(session, previous_name)
    check_files(Path(previous.path))
    current.status = AdapterStatus.RETIRED
    current.metrics = {**(current.metrics or {}), "rolled_back": {"at": _now(), "to": previous.name}}
    previous.status = AdapterStatus.LIVE
    return current, previous


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


def retire(session: Session, *, name: str) -> Adapter:
    """Stop serving ``name``; with no live adapter left, replies go back to the default model."""
    row = get(session, name)
    row.status = AdapterStatus.RETIRED
    return row


BASE = "base"
"""``AISLE_ADAPTER=base``: replies stay on the base model whatever the registry says."""


def chosen(session: Session, pin: str | None) -> tuple[str | None, str | None]:
    """The adapter replies should use and its directory: ``pin`` (AISLE_ADAPTER) if set, else the live one.

    A pinned name the registry does not hold has no directory: the server must serve it already
    (an external vLLM started with ``--lora-modules``).
    """
    if pin == BASE:
        return None, None
    if pin:
        row = session.scalar(select(Adapter).where(Adapter.name == pin))
        return pin, row.path if row is not None else None
    row = live(session)
    return (row.name, row.path) if row is not None else (None, None)


def trial_arm(session: Session) -> tuple[str, str, float] | None:
    """The A/B trial's name, directory and share of new conversations, if one runs."""
    row = trial(session)
    if row is None:
        return None
    return row.name, row.path, float((row.metrics or {}).get("trial", {}).get("share", 0.0))


def chosen_adapter(factory: sessionmaker[Session], pin: str | None = None) -> tuple[str, Path] | None:
    """The name and directory of the adapter a server should start on, if it has files to load."""
    with factory() as session:
        name, path = chosen(session, pin)
        return (name, Path(path)) if name is not None and path is not None else None


def record_metrics(session: Session, *, name: str, metrics: dict[str, Any]) -> None:
    row = get(session, name)
    row.metrics = {**(row.metrics or {}), **metrics}


@dataclass
class AdapterSwitch:
    """Keeps a process's replies on the registry's live adapter, and on its A/B trial.

    ``target`` is where new replies go: it gets the adapter name (None = base model). ``on_trial`` gets
    the trial's (name, share) once it is loaded, None when no trial runs; a backend that cannot serve two
    adapters side by side (merged weights) runs no trial, and says so in :meth:`status`.
    """

    factory: sessionmaker[Session]
    llm: LLMBackend
    target: Callable[[str | None], None]
    pin: str | None = None  # AISLE_ADAPTER: a name, "base", or None (follow the registry)
    current: str | None = None
    error: str | None = None
    on_trial: Callable[[tuple[str, float] | None], None] | None = None
    trial: tuple[str, float] | None = None
    trial_error: str | None = None

    def _wanted(self) -> tuple[str | None, str | None]:
        with self.factory() as session:
            return chosen(session, self.pin)

    async def sync(self) -> str | None:
        """Load and switch to the live adapter if it changed; returns the adapter in use.

        A new adapter is loaded before replies move to it; when replies leave one, they move first
        and the backend may then let it go (a merged server swaps back to the base weights). The
        switch counts as done only once both have happened, so a failed step is tried again on the
        next poll. The live adapter is loaded again on every poll: a vLLM server that restarted
        has forgotten it, and loading one that is already there changes nothing.
        """
        name, path = await asyncio.to_thread(self._wanted)
        previous = self.current
        try:
            if path is not None:
                if name != previous:
                    await asyncio.to_thread(check_files, Path(path))
                await self.llm.load_adapter(name or "", path)
            if name != previous:
                self.target(name)
                if previous is not None:
                    await self.llm.unload_adapter(previous)
                self.current = name
        except (AdapterError, LLMUnavailable) as exc:
            if str(exc) != self.error:
                log.error("adapter %s not served, replies stay on %s: %s", name, previous or "the base model", exc)
            self.error = str(exc)
            return self.current
        if name != previous:
            log.info("replies now use %s (was %s)", name or "the base model", previous or "the base model")
        self.error = None
        await self._sync_trial()
        return name

    async def _sync_trial(self) -> None:
        """Load the registry's A/B trial beside the live adapter, or end the one that stopped."""
        if self.on_trial is None or self.pin is not None:
            return
        with self.factory() as session:
            wanted = trial_arm(session)
        before = self.trial
        try:
            if wanted is not None and not self.llm.side_by_side:
                raise AdapterError(f"{self.llm.name} serves one adapter at a time (merged weights); the A/B trial "
                                   f"of {wanted[0]} needs AISLE_ADAPTER_SERVING=runtime")
            if wanted is not None:
                await self.llm.load_adapter(wanted[0], wanted[1])
            self.trial = (wanted[0], wanted[2]) if wanted is not None else None
            self.on_trial(self.trial)
            if before is not None and (self.trial is None or before[0] != self.trial[0]) \
                    and before[0] != self.current:  # an ended trial that did not become the live adapter
                await self.llm.unload_adapter(before[0])
            self.trial_error = None
        except (AdapterError, LLMUnavailable) as exc:
            if str(exc) != self.trial_error:
                log.error("no A/B trial served: %s", exc)
            self.trial_error = str(exc)
            self.trial = None
            self.on_trial(None)
        if self.trial != before:
            log.info("A/B trial now %s (was %s)", self.trial, before)

    async def run(self, every_s: float) -> None:
        """Sync forever, every ``every_s`` seconds (cancel to stop)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.sync()
            except Exception:  # the registry's database may be briefly away; the next poll retries
                log.exception("adapter sync failed")

    def status(self) -> dict[str, Any]:
        trial = {"name": self.trial[0], "share": self.trial[1]} if self.trial else None
        return {"name": self.current, "error": self.error, "trial": trial, "trial_error": self.trial_error}
