"""``aisle finetune export``: logged dialogs -> chat examples for fine-tuning, with personal data scrubbed.

What becomes an example:
- an assistant reply that completed, that no shopper rated down, and that the output
  guard did not have to correct (``--include-corrected`` keeps those too; ``--min-rating 1``
  keeps only replies rated up);
- an agent's message sent from a reply draft: the agent's text is the target, the prompt
  is the one the draft was written from.

The prompt is rebuilt from the record each reply stores (``meta.prompt``) with
:meth:`bot.prompts.PromptRecord.messages`, the function serving uses, and from the
messages before it in the conversation, as serving reads them. Shoppers who did not
consent to training are left out. Every text from a person (shopper and agent messages,
replies, profile and order facts) passes through :func:`bot.pii.scrub`. Conversations
are split into train and eval by a hash of their id, so the split is stable as logs grow.
Anything skipped is counted by reason in ``manifest.json``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot import crud
from bot.assist import draft_turns
from bot.mentions import as_references
from bot.models import Conversation, Draft, Feedback, Message, Role, User
from bot.pii import Scrubber
from bot.prompts import PromptRecord, Turn
from bot.turn_events import ReplyMeta
from finetune.examples import Example, held_out, sha256_file, write_examples
from finetune.logged import scrubbed_prompt, served_history

Say = Callable[[str], None]
FIXED_BY_GUARD = {"sku", "price", "stock", "markup", "link", "email", "phone", "code", "policy"}


class ExportError(RuntimeError):
    """The export cannot be written; the message says why."""


@dataclass(frozen=True)
class ExportArgs:
    out_dir: Path = field(metadata={"help": "Folder for train.jsonl, eval.jsonl and manifest.json."})
    holdout: float = field(default=0.1, metadata={"help": "Share of conversations kept for evaluation."})
    min_rating: int = field(default=0, metadata={"help": "0: replies not rated down; 1: rated up only."})
    include_corrected: bool = field(default=False, metadata={"help": "Keep replies the guard corrected."})
    since: datetime | None = field(default=None, metadata={"help": "Only conversations started since."})
    history_turns: int = field(default=6, metadata={"help": "Earlier messages in each prompt, as served."})
    force: bool = field(default=False, metadata={"help": "Overwrite a non-empty output folder."})
    seed: int = field(default=0, metadata={"help": "Seed of the train/eval split."})

    def __post_init__(self) -> None:
        if not 0 <= self.holdout < 1:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout}")
        if self.min_rating not in (0, 1):
            raise ValueError(f"min_rating must be 0 or 1, got {self.min_rating}")
        if self.history_turns < 0:
            raise ValueError("history_turns must not be negative")


def _example(*, id: str, source: str, conversation_id: int, record: PromptRecord, history: list[Turn],
             question: str, prefix: str, completion: str, route: str, clean: Scrubber) -> Example:
    record, messages = scrubbed_prompt(record, history, question, clean)
    return Example(id=id, source=source, group=f"conversation:{conversation_id}", messages=messages,
                   prefix=clean(prefix) or "", completion=clean(as_references(completion, record.products)) or "",
                   catalog=record.as_meta()["catalog"], facts=record.facts, route=route)


def _reply_skipped(reply: ReplyMeta | None, question: Message | None, votes: list[int], args: ExportArgs
                   ) -> str | None:
    """Why a logged reply is not an example, or None."""
    if reply is None:
        return "no_prompt_record"
    if reply.status != "completed":
        return f"status_{reply.status}"
    if question is None:
        return "no_prompt_record"
    if any(v < 0 for v in votes):
        return "rated_down"
    if args.min_rating > 0 and not any(v > 0 for v in votes):
        return "not_rated_up"
    if not args.include_corrected and any(c.get("kind") in FIXED_BY_GUARD for c in reply.guard):
        return "corrected_by_guard"
    return None


def _reply_examples(messages: list[Message], ratings: dict[int, list[int]], args: ExportArgs,
                    clean: Scrubber, skipped: Counter[str]) -> Iterator[Example]:
    by_id = {m.id: m for m in messages}
    for m in messages:
        if m.role != Role.ASSISTANT:
            continue
        reply = ReplyMeta.stored(m.meta)
        question = by_id.get(reply.reply_to) if reply else None
        reason = _reply_skipped(reply, question, ratings.get(m.id, []), args)
        record = reply.prompt_record() if reply and reason is None else None
        text = m.text.strip()
        prefix = record.opening if record and record.opening and text.startswith(record.opening) else ""
        if reason is None:
            reason = "bad_prompt_record" if record is None else "empty_reply" if not text[len(prefix):].strip() \
                else None
        if reason is not None:
            skipped[reason] += 1
            continue
        assert reply is not None and record is not None and question is not None  # _reply_skipped said so
        yield _example(id=f"message:{m.id}", source="assistant", conversation_id=m.conversation_id,
                       record=record, history=served_history(messages, question.seq, args.history_turns),
                       question=question.text, prefix=prefix, completion=text[len(prefix):],
                       route=reply.route, clean=clean)


def _draft_examples(messages: list[Message], drafts: list[Draft], args: ExportArgs, clean: Scrubber,
                    skipped: Counter[str]) -> Iterator[Example]:
    by_id = {m.id: m for m in messages}
    from_drafts = {d.message_id for d in drafts}
    skipped["agent_without_draft"] += sum(1 for m in messages if m.role == Role.AGENT and m.id not in from_drafts)
    for d in drafts:
        reply = ReplyMeta.stored(d.meta)
        if not d.sent_text or d.message_id is None:
            skipped["draft_not_sent"] += 1
            continue
        question = by_id.get(reply.reply_to) if reply else None
        record = reply.prompt_record() if reply else None
        if reply is None or record is None or question is None:
            skipped["no_prompt_record"] += 1
            continue
        yield _example(id=f"draft:{d.id}", source="draft", conversation_id=d.conversation_id,
                       record=record,
                       history=draft_turns([m for m in messages if m.seq < question.seq], args.history_turns),
                       question=question.text, prefix="", completion=d.sent_text, route=reply.route, clean=clean)


def logged_examples(session: Session, args: ExportArgs, clean: Scrubber, skipped: Counter[str],
                    progress: bool = True) -> Iterator[Example]:
    """Examples from every conversation whose shopper consented to training."""
    from tqdm import tqdm

    query = select(Conversation.id, User.consent_training).join(User, User.id == Conversation.user_id)
    if args.since is not None:
        query = query.where(Conversation.created_at >= args.since)
    conversations = session.execute(query.order_by(Conversation.id)).all()
    for cid, consent in tqdm(conversations, desc="exporting conversations", file=sys.stderr, disable=not progress):
        if not consent:
            skipped["no_training_consent"] += 1
            continue
        messages = list(session.scalars(select(Message).where(Message.conversation_id == cid).order_by(Message.seq)))
        ids = [m.id for m in messages]
        ratings: dict[int, list[int]] = {}
        for message_id, rating in session.execute(
                select(Feedback.message_id, Feedback.rating).where(Feedback.message_id.in_(ids))):
            ratings.setdefault(message_id, []).append(rating)
        drafts = list(session.scalars(select(Draft).where(Draft.conversation_id == cid).order_by(Draft.id)))
        yield from _reply_examples(messages, ratings, args, clean, skipped)
        yield from _draft_examples(messages, drafts, args, clean, skipped)


def prepare_out_dir(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise ExportError(f"{out_dir} is not empty; choose another --out or pass --force")
    out_dir.mkdir(parents=True, exist_ok=True)


def write_export(out_dir: Path, examples: Iterable[Example], args: ExportArgs, *, skipped: Counter[str],
                 pii: Counter[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Split ``examples`` by group, write both files and the manifest; returns the manifest."""
    train: list[Example] = []
    held: list[Example] = []
    for ex in examples:
        (held if ex.holdout or held_out(ex.group, args.holdout, args.seed) else train).append(ex)
    if not train:
        reasons = ", ".join(f"{k} {v}" for k, v in skipped.most_common()) or "no conversations"
        raise ExportError(f"nothing to train on: 0 training examples ({len(held)} held out); skipped: {reasons}")
    files = {"train": out_dir / "train.jsonl", "eval": out_dir / "eval.jsonl"}
    counts = {name: write_examples(path, rows) for (name, path), rows in zip(files.items(), (train, held),
                                                                             strict=True)}
    manifest = {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "args": {k: str(v) for k, v in dataclasses.asdict(args).items()},
        "examples": counts,
        "sources": {name: dict(Counter(ex.source for ex in rows)) for name, rows in (("train", train),
                                                                                    ("eval", held))},
        "kinds": {name: dict(Counter((ex.kind or ex.route).split("+")[0].split(".")[0] for ex in rows)) for name, rows in (("train", train),
                                                                                            ("eval", held))},
        "held_out_by": dict(Counter(ex.holdout or "group" for ex in held)),
        "groups": {"train": sorted({ex.group for ex in train}), "eval": sorted({ex.group for ex in held})},
        "skipped": dict(skipped),
        "pii_replaced": dict(pii),
        "sha256": {name: sha256_file(path) for name, path in files.items()},
        **(extra or {}),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def export_dialogs(factory: sessionmaker[Session], args: ExportArgs, *, extra: Iterable[Example] = (),
                   say: Say | None = None, progress: bool = True) -> dict[str, Any]:
    """Write the export; ``extra`` adds examples from elsewhere (the catalog-grounded set).

    Raises:
        ExportError: for a non-empty output folder without ``force``, or nothing to train on.
    """
    say = say or (lambda m: print(m, file=sys.stderr, flush=True))
    prepare_out_dir(args.out_dir, args.force)
    skipped: Counter[str] = Counter()
    with factory() as session:
        clean = Scrubber(crud.known_names(session))
        logged = list(logged_examples(session, args, clean, skipped, progress))
    extra = list(extra)
    manifest = write_export(args.out_dir, [*logged, *extra], args, skipped=skipped, pii=clean.found,
                            extra={"logged_examples": len(logged), "catalog_examples": len(extra)})
    say(f"[export] {manifest['examples']['train']} train / {manifest['examples']['eval']} eval examples "
        f"({len(logged)} from logged dialogs, {len(extra)} from the catalog) in {args.out_dir}")
    if skipped:
        say("[export] skipped: " + ", ".join(f"{k} {v}" for k, v in skipped.most_common()))
    if clean.found:
        say("[export] personal data replaced: " + ", ".join(f"{k} {v}" for k, v in clean.found.most_common()))
    return manifest
