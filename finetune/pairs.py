"""Preference pairs from logged dialogs, in the chosen/rejected form TRL's DPO trainer reads.

Two kinds, each against the prompt the rejected text was written from (rebuilt by
:meth:`bot.prompts.PromptRecord.messages`, as serving builds it):

- ``draft_edit``: a reply draft the agent changed before sending; the sent text is chosen, the
  model's draft rejected (a draft sent unchanged says nothing about preference and is left out);
- ``rated_down``: an assistant reply the shopper rated down; chosen is the agent's next message in
  the conversation, or else the assistant's next reply that was not rated down, not a fallback and
  not corrected by the guard.

Every text passes through the export's scrubber before it is written.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
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
from finetune.data import FIXED_BY_GUARD, ExportArgs, ExportError, export_dialogs
from finetune.examples import Example, held_out, sha256_file
from finetune.logged import Clean, scrubbed_prompt, served_history


@dataclass(frozen=True)
class Pair:
    id: str
    source: str  # draft_edit | rated_down
    group: str  # conversation:ID, for the held-out split
    prompt: list[dict[str, str]]
    chosen: list[dict[str, str]]
    rejected: list[dict[str, str]]
    edit_distance: int | None = None

    def row(self) -> dict[str, Any]:
        return asdict(self)


def _pair(*, id: str, source: str, conversation_id: int, record: PromptRecord, history: list[Turn],
          question: str, chosen: str, rejected: str, clean: Clean, edit_distance: int | None = None) -> Pair:
    _, prompt = scrubbed_prompt(record, history, question, clean)
    return Pair(id=id, source=source, group=f"conversation:{conversation_id}", prompt=prompt,
                chosen=[{"role": "assistant", "content": clean(as_references(chosen, record.products)) or ""}],
                rejected=[{"role": "assistant", "content": clean(as_references(rejected, record.products)) or ""}],
                edit_distance=edit_distance)


def _asked(meta: dict[str, Any] | None, by_id: dict[int, Message]) -> tuple[Message | None, PromptRecord | None]:
    """The shopper message a stored reply or draft answers, and the prompt it was generated from."""
    reply = ReplyMeta.stored(meta)
    if reply is None:
        return None, None
    return by_id.get(reply.reply_to), reply.prompt_record()


def _accepted(m: Message, ratings: dict[int, list[int]], fixed_by_guard: set[str]) -> bool:
    reply = ReplyMeta.stored(m.meta)
    return (m.role == Role.ASSISTANT and reply is not None and reply.status == "completed" and bool(m.text.strip())
            and not any(v < 0 for v in ratings.get(m.id, []))
            and not any(c.get("kind") in fixed_by_guard for c in reply.guard))


def preference_pairs(messages: list[Message], ratings: dict[int, list[int]], drafts: list[Draft], *,
                     history_turns: int, fixed_by_guard: set[str], clean: Clean,
                     skipped: Counter[str]) -> Iterator[Pair]:
    """One conversation's pairs (``messages`` in ``seq`` order)."""
    by_id = {m.id: m for m in messages}
    for d in drafts:
        question, record = _asked(d.meta, by_id)
        if not d.sent_text or d.sent_text.strip() == d.suggested_text.strip():
            continue  # not sent, or sent as it was: no preference to learn
        if question is None or record is None or not d.suggested_text.strip():
            skipped["pair_without_prompt"] += 1
            continue
        yield _pair(id=f"draft:{d.id}", source="draft_edit", conversation_id=d.conversation_id, record=record,
                    history=draft_turns([m for m in messages if m.seq < question.seq], history_turns),
                    question=question.text, chosen=d.sent_text, rejected=d.suggested_text, clean=clean,
                    edit_distance=d.edit_distance)
    for i, m in enumerate(messages):
        if m.role != Role.ASSISTANT or not any(v < 0 for v in ratings.get(m.id, [])):
            continue
        question, record = _asked(m.meta, by_id)
        later = messages[i + 1:]
        better = next((x for x in later if x.role == Role.AGENT), None) or next(
            (x for x in later if _accepted(x, ratings, fixed_by_guard)), None)
        if better is None:
            skipped["rated_down_without_better"] += 1
            continue
        if question is None or record is None or not m.text.strip():
            skipped["pair_without_prompt"] += 1
            continue
        yield _pair(id=f"message:{m.id}", source="rated_down", conversation_id=m.conversation_id, record=record,
                    history=served_history(messages, question.seq, history_turns),
                    question=question.text, chosen=better.text, rejected=m.text, clean=clean)


def logged_pairs(session: Session, args: ExportArgs, clean: Clean, skipped: Counter[str]) -> list[Pair]:
    """The pairs of every conversation whose shopper consented to training (erased shoppers never do)."""
    query = select(Conversation.id).join(User, User.id == Conversation.user_id).where(User.consent_training)
    if args.since is not None:
        query = query.where(Conversation.created_at >= args.since)
    pairs: list[Pair] = []
    for cid in session.scalars(query.order_by(Conversation.id)):
        messages = list(session.scalars(select(Message).where(Message.conversation_id == cid).order_by(Message.seq)))
        ratings: dict[int, list[int]] = {}
        for message_id, rating in session.execute(select(Feedback.message_id, Feedback.rating)
                                                  .where(Feedback.message_id.in_([m.id for m in messages]))):
            ratings.setdefault(message_id, []).append(rating)
        drafts = list(session.scalars(select(Draft).where(Draft.conversation_id == cid).order_by(Draft.id)))
        pairs.extend(preference_pairs(messages, ratings, drafts, history_turns=args.history_turns,
                                      fixed_by_guard=FIXED_BY_GUARD, clean=clean, skipped=skipped))
    return pairs


def export_with_pairs(factory: sessionmaker[Session], args: ExportArgs, *, extra: Iterable[Example] = (),
                      say: Callable[[str], None] | None = None, progress: bool = True) -> dict[str, Any]:
    """:func:`finetune.data.export_dialogs`, plus ``pairs.jsonl`` (each pair with the split of its
    conversation) and, in the manifest, the pairs per source, their conversations, what they skipped, the
    personal data they replaced, and the file's sha256.

    Raises:
        ExportError: as :func:`finetune.data.export_dialogs` (nothing is written then).
    """
    say = say or (lambda m: print(m, file=sys.stderr, flush=True))
    skipped = Counter[str]()
    if args.out_dir.exists() and any(args.out_dir.iterdir()) and not args.force:
        raise ExportError(f"{args.out_dir} is not empty; choose another --out or pass --force")
    with factory() as session:
        clean = Scrubber(crud.known_names(session))
        pairs = logged_pairs(session, args, clean, skipped)
    manifest = export_dialogs(factory, args, extra=extra, say=say, progress=progress)
    path = args.out_dir / "pairs.jsonl"
    with path.open("w") as f:
        for pair in pairs:
            split = "eval" if held_out(pair.group, args.holdout, args.seed) else "train"
            f.write(json.dumps({**pair.row(), "split": split}) + "\n")
    manifest.update(pairs=dict(Counter(p.source for p in pairs)), pair_groups=sorted({p.group for p in pairs}),
                    pair_skipped=dict(skipped), pair_pii_replaced=dict(clean.found))
    manifest["sha256"]["pairs"] = sha256_file(path)
    (args.out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    say(f"[export] {len(pairs)} preference pairs ({', '.join(f'{k} {v}' for k, v in manifest['pairs'].items())}) "
        f"in {path}")
    return manifest
