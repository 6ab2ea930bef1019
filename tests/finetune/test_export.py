"""The training export: logged turns become examples with the prompt serving built, minus personal data."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from rapidfuzz.distance import Levenshtein
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot import crud
from bot.agents import add_agent
from bot.assist import draft_reply, record_sent
from bot.cli import main
from bot.config import get_settings
from bot.dialogue import Dialogue, DialogueConfig
from bot.llm.base import GenerationRequest
from bot.llm.scripted import ScriptedBackend
from bot.models import Draft, Feedback, Message, Role
from bot.pii import scrub
from bot.turn_events import ReplyCompleted
from finetune.data import ExportArgs, ExportError, export_dialogs
from finetune.examples import Example, read_examples, sha256_file
from finetune.pairs import export_with_pairs
from retrieval.embed import Encoder
from retrieval.index import ProductIndex
from retrieval.search import ProductSearch

HISTORY = 2  # earlier messages in a prompt, as served and as exported
SECRETS = ["221B Baker Street", "+44 20 7946 0958", "maria.lopez@example.com", "4111 1111 1111 1111",
           "ana@shop.example"]


def first_product(request: GenerationRequest) -> str:
    """The reply of a model that refers to the first listed product (the shopper reads its title and price;
    the export turns them back into the reference)."""
    assert "\n1. [" in request.messages[0]["content"]
    return "My pick is [1], a good one."


async def turn(dialogue: Dialogue, conv: int, text: str, client_id: str) -> ReplyCompleted:
    events = [e async for e in dialogue.run_turn(conversation_id=conv, text=text, client_id=client_id)]
    done = events[-1]
    assert isinstance(done, ReplyCompleted)
    return done


def conversation(factory: sessionmaker[Session], shopper: str, consent: bool = True) -> int:
    with factory() as s, s.begin():
        user = crud.get_or_create_user(s, external_id=shopper)
        user.consent_training = consent
        return crud.open_conversation(s, user=user).id


@pytest.fixture
async def logged(factory: sessionmaker[Session], index: ProductIndex, encoder: Encoder
                 ) -> tuple[ScriptedBackend, dict[str, int]]:
    """Turns as the app logs them: kept ones, a reply rated down, a fallback, no consent, an agent's edit."""
    llm = ScriptedBackend(first_product)
    dialogue = Dialogue(factory=factory, search=ProductSearch(index, encoder), llm=llm,
                        config=DialogueConfig(store_name="Test Store", history_turns=HISTORY))
    ids: dict[str, int] = {}
    kept = conversation(factory, "kept")
    await turn(dialogue, kept, "Hi, I live at 221B Baker Street, call +44 20 7946 0958. Running shoes under $100?",
               "k1")
    ids["second"] = (await turn(dialogue, kept, "my email is maria.lopez@example.com, any cheaper?", "k2")).message.id
    rated = conversation(factory, "rated")
    ids["rated_down"] = (await turn(dialogue, rated, "a warm winter jacket", "r1")).message.id
    with factory() as s, s.begin():
        s.add(Feedback(message_id=ids["rated_down"], rating=-1))
    llm.fail = True
    await turn(dialogue, conversation(factory, "fallback"), "a yoga mat", "f1")
    llm.fail = False
    await turn(dialogue, conversation(factory, "private", consent=False), "coffee beans please", "p1")
    drafted = conversation(factory, "drafted")
    await turn(dialogue, drafted, "my card 4111 1111 1111 1111 was charged twice for my kettle", "d1")
    with factory() as s, s.begin():  # an agent takes over (a system note in the chat) and asks for a draft
        ana = add_agent(s, name="ana", password="ana-pass")
        crud.add_message(s, conversation_id=drafted, role=Role.SYSTEM, text="ana joined the chat.",
                         client_id="system:joined")
        crud.add_message(s, conversation_id=drafted, role=Role.SHOPPER, text="it was the blue kettle", client_id="d2")
    drafted_reply = await draft_reply(dialogue, conversation_id=drafted, agent_id=ana.id)
    ids["draft_request"] = len(llm.requests) - 1
    with factory() as s, s.begin():  # she edits it and sends it
        agent_text = "So sorry! I've asked billing to refund the second charge; they write from ana@shop.example."
        msg = crud.add_message(s, conversation_id=drafted, role=Role.AGENT, text=agent_text, client_id="agent:a1")
        record_sent(s, draft_id=drafted_reply.id, conversation_id=drafted, message=msg)
        crud.add_message(s, conversation_id=drafted, role=Role.AGENT, text="Anything else?", client_id="agent:a2")
    return llm, ids


def files_text(out: Path) -> str:
    return (out / "train.jsonl").read_text() + (out / "eval.jsonl").read_text()


async def test_examples_carry_the_prompt_serving_built_and_no_personal_data(
        factory: sessionmaker[Session], logged: tuple[ScriptedBackend, dict[str, int]], tmp_path: Path) -> None:
    llm, ids = logged
    manifest = export_dialogs(factory, ExportArgs(out_dir=tmp_path / "x", holdout=0.0, history_turns=HISTORY),
                              say=lambda _: None, progress=False)
    examples = {ex.id: ex for ex in read_examples(tmp_path / "x" / "train.jsonl")}
    assert sorted(ex.source for ex in examples.values()) == ["assistant", "assistant", "assistant", "draft"]
    assert manifest["skipped"] == {"rated_down": 1, "status_fallback": 1, "no_training_consent": 1,
                                   "agent_without_draft": 1}
    # the second turn's prompt is exactly what the model was sent, with the personal data replaced
    second = examples[f"message:{ids['second']}"]
    sent = llm.requests[1].messages
    assert second.messages == [{**m, "content": scrub(m["content"]).text} for m in sent]
    assert second.messages[0] == sent[0]  # the catalog and instructions are untouched
    assert len(second.messages) == 4 and "[address]" in second.messages[1]["content"]
    assert second.completion == first_product(llm.requests[1])
    draft = next(ex for ex in examples.values() if ex.source == "draft")
    assert draft.completion.startswith("So sorry!") and "[email]" in draft.completion
    # its prompt is the one the draft was written from: the last HISTORY turns, the agent's join note left out
    drafted_from = llm.requests[ids["draft_request"]].messages
    assert draft.messages == [{**m, "content": scrub(m["content"]).text} for m in drafted_from]
    assert len(draft.messages) == 2 + HISTORY and not any("joined" in m["content"] for m in draft.messages)
    assert "[card]" in draft.messages[1]["content"] and draft.question == "it was the blue kettle"
    text = files_text(tmp_path / "x")
    assert not any(secret in text for secret in SECRETS)
    # turn 1 comes again as history; the card is in a reply's question and in the draft's
    assert manifest["pii_replaced"] == {"address": 2, "phone": 2, "email": 2, "card": 2}
    assert manifest["sha256"]["train"] == sha256_file(tmp_path / "x" / "train.jsonl")


async def test_preference_pairs_from_an_edited_draft_and_a_reply_rated_down(
        factory: sessionmaker[Session], logged: tuple[ScriptedBackend, dict[str, int]], tmp_path: Path) -> None:
    llm, ids = logged
    with factory() as s, s.begin():
        down = s.get_one(Message, ids["rated_down"])
        rejected_reply = down.text
        crud.add_message(s, conversation_id=down.conversation_id, role=Role.AGENT, client_id="agent:r2",
                         text="Our Alpine parka is warmer; write to me at maria.lopez@example.com")
        draft = s.scalars(select(Draft)).one()
        suggested, sent, distance = draft.suggested_text, draft.sent_text, draft.edit_distance
    manifest = export_with_pairs(factory, ExportArgs(out_dir=tmp_path / "x", holdout=0.0, history_turns=HISTORY),
                                 say=lambda _: None, progress=False)
    path = tmp_path / "x" / "pairs.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert manifest["pairs"] == {"draft_edit": 1, "rated_down": 1} and len(rows) == 2
    assert manifest["pair_pii_replaced"] == {"card": 1, "email": 2}  # the draft's prompt; both agents' replies
    assert manifest["examples"]["train"] == 4  # the examples are those export_dialogs writes
    assert manifest["sha256"]["pairs"] == sha256_file(path)
    for row in rows:  # the conversational form TRL's DPO trainer reads
        assert row["split"] == "train" and row["prompt"][0]["role"] == "system"
        assert [m["role"] for m in row["chosen"] + row["rejected"]] == ["assistant", "assistant"]
    edit, rated = sorted(rows, key=lambda r: r["source"])
    assert sent is not None and distance == Levenshtein.distance(suggested, sent) > 0
    assert edit["edit_distance"] == distance
    assert edit["chosen"][0]["content"] == scrub(sent).text and "[email]" in edit["chosen"][0]["content"]
    # the draft as the model wrote it: the mention the agent saw rendered is its reference again
    assert edit["rejected"][0]["content"] == first_product(llm.requests[ids["draft_request"]]) != suggested
    drafted_from = llm.requests[ids["draft_request"]].messages
    assert edit["prompt"] == [{**m, "content": scrub(m["content"]).text} for m in drafted_from]
    assert rated["rejected"][0]["content"] == first_product(llm.requests[2]) != rejected_reply  # the rated-down
    # reply, as the model wrote it ...
    assert rated["chosen"][0]["content"].startswith("Our Alpine parka")  # ... against the agent's answer
    assert rated["prompt"] == llm.requests[2].messages  # the prompt the rated reply was written from
    assert not any(secret in path.read_text() for secret in SECRETS)


async def test_the_split_follows_groups_and_is_stable(
        factory: sessionmaker[Session], logged: tuple[ScriptedBackend, dict[str, int]], tmp_path: Path) -> None:
    extra = [Example(id=f"c{i}", source="catalog", group=f"product:P-{i % 20}", completion="ok",
                     messages=[{"role": "user", "content": f"question {i}"}]) for i in range(60)]
    first = export_dialogs(factory, ExportArgs(out_dir=tmp_path / "a", holdout=0.3, seed=3), extra=extra,
                           say=lambda _: None, progress=False)
    again = export_dialogs(factory, ExportArgs(out_dir=tmp_path / "b", holdout=0.3, seed=3), extra=extra[::-1],
                           say=lambda _: None, progress=False)
    assert first["groups"] == again["groups"] and first["groups"]["eval"]
    assert not set(first["groups"]["train"]) & set(first["groups"]["eval"])
    for split in ("train", "eval"):
        groups = {ex.group for ex in read_examples(tmp_path / "a" / f"{split}.jsonl")}
        assert groups == set(first["groups"][split])
    assert {g for g in first["groups"]["train"] + first["groups"]["eval"] if g.startswith("conversation:")}


async def test_only_replies_rated_up_with_min_rating(
        factory: sessionmaker[Session], logged: tuple[ScriptedBackend, dict[str, int]], tmp_path: Path) -> None:
    _, ids = logged
    with factory() as s, s.begin():
        s.add(Feedback(message_id=ids["second"], rating=1))
    manifest = export_dialogs(factory, ExportArgs(out_dir=tmp_path / "x", holdout=0.0, min_rating=1),
                              say=lambda _: None, progress=False)
    kept = [ex for ex in read_examples(tmp_path / "x" / "train.jsonl") if ex.source == "assistant"]
    assert [ex.id for ex in kept] == [f"message:{ids['second']}"]
    assert manifest["skipped"]["not_rated_up"] == 2


async def test_a_non_empty_folder_or_nothing_to_train_on_is_a_clear_error(
        factory: sessionmaker[Session], tmp_path: Path) -> None:
    out = tmp_path / "x"
    with pytest.raises(ExportError, match="nothing to train on"):
        export_dialogs(factory, ExportArgs(out_dir=out), say=lambda _: None, progress=False)
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not empty"):
        export_dialogs(factory, ExportArgs(out_dir=out), say=lambda _: None, progress=False)
    assert (out / "notes.txt").read_text() == "keep me"


def test_a_broken_examples_file_names_its_line(tmp_path: Path) -> None:
    good = Example(id="a", source="catalog", group="product:X", messages=[{"role": "user", "content": "hi"}],
                   completion="hello")
    path = tmp_path / "train.jsonl"
    path.write_text(good.to_json() + "\n{not json\n")
    from finetune.examples import ExampleFileError

    with pytest.raises(ExampleFileError, match="line 2"):
        list(read_examples(path))



@pytest.fixture
def cli_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, saved_index: Path,
             factory: sessionmaker[Session]) -> Iterator[Path]:
    """AISLE_HOME (with the session's index) and AISLE_DATABASE_URL for the CLI."""
    home = tmp_path / "home"
    shutil.copytree(saved_index, home / "index")
    monkeypatch.setenv("AISLE_HOME", str(home))
    monkeypatch.setenv("AISLE_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def test_the_export_command_writes_catalog_dialogs_and_refuses_to_overwrite(
        cli_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = cli_home / "exports" / "x"
    args = ["finetune", "export", "--out", str(out), "--catalog-examples", "30", "--since", "2020-01-01"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert sum(summary["examples"].values()) == 30
    assert json.loads((out / "manifest.json").read_text())["catalog_examples"] == 30
    assert main(args) == 2
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["finetune", "export", "--since", "last tuesday"])


def test_the_export_mixes_bootstrap_dialogs_at_the_configured_ratio(
        logged: tuple[ScriptedBackend, dict[str, int]], cli_home: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AISLE_BOOTSTRAP_MIX", "1.5")
    get_settings.cache_clear()
    out = cli_home / "exports" / "mixed"
    assert main(["finetune", "export", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["logged_examples"] > 0
    assert manifest["catalog_examples"] == round(1.5 * manifest["logged_examples"])
    assert "1.5 per logged example" in capsys.readouterr().err
