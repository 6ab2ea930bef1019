"""Seeded personal data never reaches an export: 1,000 logged conversations full of canaries, none in the files."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot import conversations, crud
from bot.agents import add_agent
from bot.dialogue import Dialogue, DialogueConfig
from bot.llm.base import GenerationRequest
from bot.llm.scripted import ScriptedBackend
from bot.models import Feedback, Role
from bot.pii import luhn_valid
from bot.turn_events import ReplyCompleted
from finetune.data import ExportArgs
from finetune.pairs import export_with_pairs
from retrieval.embed import Encoder
from retrieval.index import ProductIndex
from retrieval.search import ProductSearch

CONVERSATIONS = 1000
EMAIL = "zoe.kowalczyk+orders@example.org"
PHONES = ("+1 415 555 0134", "(415) 555-0134", "415.555.0134")
CARD = "4539 1488 0343 6467"
ADDRESS = "742 Evergreen Terrace"
SHOPPER = "Zoe Kowalczyk"  # a shopper the storefront signed in: the store knows her name
AGENT = "Marguerite"
CANARIES = (EMAIL, *PHONES, CARD, CARD.replace(" ", ""), ADDRESS, SHOPPER, *SHOPPER.split(), AGENT)

TEMPLATES = (
    "hi, {name} here. my card {card} was charged twice",
    "please send it to {address}, apt 4",
    "you can reach me on {phone} or {email}",
    "this is {name}, order for {address} never came",
    "charge {card_plain} again please, it's {first}",
    "{last} here, phone is {phone}",
    "it's {name_lower}, email me at {email}",
    "Any running shoes under $100? {first} ({email})",
)


def message(rng: random.Random) -> str:
    first, last = SHOPPER.split()
    return rng.choice(TEMPLATES).format(name=SHOPPER, name_lower=SHOPPER.lower(), first=first, last=last,
                                        card=CARD, card_plain=CARD.replace(" ", ""), address=ADDRESS,
                                        phone=rng.choice(PHONES), email=EMAIL)


def echo(request: GenerationRequest) -> str:
    """A model that repeats what the shopper told it, as small models do."""
    said = request.messages[-1]["content"]
    return f"Thanks {SHOPPER.split()[0]}! I noted: {said}. {AGENT} from our team can help too."


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the export reads both kinds alike
async def test_no_canary_reaches_any_exported_file(factory: sessionmaker[Session], index: ProductIndex,
                                                   encoder: Encoder, tmp_path: Path) -> None:
    assert luhn_valid(CARD.replace(" ", ""))
    rng = random.Random(5)
    dialogue = Dialogue(factory=factory, search=ProductSearch(index, encoder), llm=ScriptedBackend(echo),
                        config=DialogueConfig(store_name="Test Store", history_turns=2))
    with factory() as s, s.begin():
        agent = add_agent(s, name=AGENT, password="canary-test-password")
    for i in range(CONVERSATIONS):
        shopper = f"cust-{i}"
        with factory() as s, s.begin():
            if i % 2:  # a signed-in shopper: the storefront gave her name
                conversations.name_shopper(s, external_id=shopper, name=SHOPPER)
            conv = conversations.open_for_shopper(s, external_id=shopper).conversation_id
        events = [e async for e in dialogue.run_turn(conversation_id=conv, text=message(rng), client_id=f"c{i}")]
        done = events[-1]
        assert isinstance(done, ReplyCompleted)
        if i % 5 == 0:  # rated down, then an agent's better answer: a preference pair
            with factory() as s, s.begin():
                s.add(Feedback(message_id=done.message.id, rating=-1))
                crud.add_message(s, conversation_id=conv, role=Role.AGENT, client_id=f"a{i}",
                                 text=f"{AGENT} here: {SHOPPER}, I've updated {ADDRESS} and will call {PHONES[1]}.",
                                 meta={"agent_id": agent.id})

    out = tmp_path / "export"
    manifest = export_with_pairs(factory, ExportArgs(out_dir=out, holdout=0.2, history_turns=2),
                                 say=lambda _: None, progress=False)
    assert manifest["examples"]["train"] + manifest["examples"]["eval"] >= CONVERSATIONS // 2
    assert sum(manifest["pairs"].values()) > 0
    text = "\n".join(p.read_text() for p in sorted(out.iterdir()) if p.suffix in (".jsonl", ".json"))
    found = {c: text.lower().count(c.lower()) for c in CANARIES if c.lower() in text.lower()}
    numbers = [re.sub(r"\D", "", run) for run in re.findall(r"[\d()+][\d\s().+-]{6,}", text)]
    for canary in (*PHONES, CARD):  # in any other spacing or punctuation too
        digits = re.sub(r"\D", "", canary)
        found[canary] = found.get(canary, 0) + sum(digits[-10:] in n for n in numbers)
    found = {c: n for c, n in found.items() if n}
    assert found == {}
    assert {"email", "phone", "card", "address", "name"} <= set(manifest["pii_replaced"])
