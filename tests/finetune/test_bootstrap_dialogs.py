"""The bootstrap dialogs: every kind of turn, prompted as served, answered from the facts, held out honestly."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from bot.config import Settings
from bot.guard import PRICE
from bot.mentions import REFERENCE, references, rendered
from bot.prompts import PromptRecord
from bot.routing import ORDER_NUMBER
from finetune.bootstrap_dialogs import MIX, bootstrap_examples
from finetune.catalog_dialogs import ASKS, FOLLOW_UPS, HoldOut
from finetune.data import ExportArgs, write_export
from finetune.evaluate import asks_for_products, judge, kind_of, rates
from finetune.examples import Example, read_examples
from finetune.service_dialogs import BITEXT, Voice, held
from retrieval.demo_store import DemoStore
from retrieval.embed import Encoder
from retrieval.index import ProductIndex
from retrieval.search import ProductSearch
from tests.conftest import data

SETTINGS = Settings()
VOICE = Voice("Test Store", SETTINGS.policies, "10% off your next order with code STAY10")
FORBIDDEN = re.compile(r"https?://|www\.|\.com\b|@|\b\d{3}[-. ]\d{3,4}[-. ]\d{4}\b")


@pytest.fixture(scope="module")
def search(saved_index, encoder: Encoder) -> ProductSearch:  # type: ignore[no-untyped-def]
    return ProductSearch(ProductIndex.load(saved_index), encoder)


@pytest.fixture(scope="module")
def generated(demo_store: DemoStore, search: ProductSearch) -> list[Example]:
    return bootstrap_examples(search, demo_store.products, n=500, voice=VOICE, progress=False)


def test_every_kind_of_turn_is_in_the_mix(generated: list[Example]) -> None:
    kinds = Counter(kind_of(ex) for ex in generated)
    service = set(MIX) - {"product"}
    assert service <= set(kinds), kinds
    product = {"find", "budget", "price", "stock", "best", "cheapest", "compare", "no_match"}
    assert product <= set(kinds), kinds
    assert 0.5 < sum(kinds[k] for k in product) / len(generated) < 0.75
    assert any("+more." in ex.kind for ex in generated)  # follow-ups that refer to an earlier turn
    assert any("+more.second" in ex.kind for ex in generated)  # "the second one?"
    data("bitext_intents")  # the customer-service wording is the Bitext set's
    bitext = {row.split(",")[0].lower() for row in BITEXT.read_text().splitlines()}
    assert sum(ex.question.lower() in bitext for ex in generated if kind_of(ex) in ("policy", "human")) >= 10


def test_no_target_answer_carries_anything_the_guard_would_cut(generated: list[Example]) -> None:
    for ex in generated:
        assert not FORBIDDEN.search(ex.completion), ex.completion
        assert not judge(ex.completion, ex).hallucinated, (ex.kind, ex.completion)
        codes = set(re.findall(r"\b[A-Z]{3,}\d+\b", ex.completion))
        assert codes <= ({"STAY10"} if ex.offer else set()), ex.completion


def test_product_answers_refer_to_listed_products_and_never_copy_a_title_or_price(generated: list[Example]) -> None:
    answers = [ex for ex in generated if asks_for_products(ex) and ex.catalog
               and not re.search(r"couldn't|don't have anything|don't carry|don't sell|afraid", ex.completion)]
    assert len(answers) > 200
    for ex in answers:
        v = judge(ex.completion, ex)  # judged with its references written out, as the shopper reads it
        assert v.grounded and not v.over_budget, (ex.question, ex.completion)
        assert 1 <= len(references(ex.completion, ex.products())) <= 3
        assert not PRICE.search(ex.completion) and not any(p["title"] in ex.completion for p in ex.catalog)
    assert len({REFERENCE.sub("", ex.completion)[:12] for ex in answers}) >= 8  # wording varies, not only the slots


def test_follow_ups_show_the_first_answer_as_the_shopper_read_it(generated: list[Example]) -> None:
    follow = [ex for ex in generated if "+more." in ex.kind]
    assert follow
    for ex in follow:
        earlier = ex.messages[-2]["content"]
        assert earlier == rendered(earlier, ex.products()) and not REFERENCE.search(earlier)


def test_compare_turns_put_both_products_side_by_side(generated: list[Example]) -> None:
    both = [ex for ex in generated if kind_of(ex) == "compare" and "is cheaper than" in ex.completion]
    assert both
    for ex in both:
        a, b = references(ex.completion, ex.products())
        assert a.price < b.price and ex.completion.index(f"[{ex.products().index(a) + 1}]") == 0


def test_service_turns_are_prompted_as_serving_prompts_them(generated: list[Example]) -> None:
    orders = [ex for ex in generated if kind_of(ex) == "order"]
    found = [ex for ex in orders if ex.prefix.startswith("Your order ")]
    assert found and any("can't find" in ex.prefix for ex in orders)
    for ex in found:
        number = ex.prefix.split()[2]
        assert ex.facts and ex.facts.startswith(f"Order {number}: status ")
        assert ex.prefix.split()[4].rstrip(" (") in ex.facts  # the real status, written by the server
        asked = ORDER_NUMBER.search(ex.question)
        assert asked is None or asked.group(1) == number  # the number the shopper quotes is this order's
        assert "$" not in ex.completion  # the reply adds only what the facts say
    for ex in [ex for ex in generated if kind_of(ex) == "policy"]:
        assert ex.prefix.startswith("Our ") and ex.prefix.split(" policy: ")[1].strip() in SETTINGS.policies.values()
    upset = [ex for ex in generated if kind_of(ex) == "upset"]
    assert all("the shopper sounds" in ex.messages[0]["content"] for ex in upset)
    assert any("talk to a human" in ex.prefix for ex in upset) and any(not ex.prefix for ex in upset)
    offered = [ex for ex in generated if kind_of(ex) == "discount" and ex.offer]
    assert offered and all("STAY10" in ex.completion for ex in offered)
    assert all("STAY10" not in ex.completion for ex in generated if kind_of(ex) == "discount" and not ex.offer)
    for ex in [ex for ex in generated if kind_of(ex) in ("injection", "language", "human")]:
        assert not references(ex.completion, ex.products()), ex.completion  # no product pushed
    for ex in found:  # the prompt is bot.prompts' own: the facts replace the catalog
        plain = PromptRecord("Test Store", facts=ex.facts).messages(history=[], text=ex.question)
        assert ex.messages[0]["content"].startswith(plain[0]["content"]) and ex.messages[1:] == plain[1:]


def test_held_out_phrasings_and_the_held_out_category_never_reach_training(
        generated: list[Example], demo_store: DemoStore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    manifest = write_export(tmp_path, generated, ExportArgs(out_dir=tmp_path, holdout=0.1), skipped=Counter(),
                            pii=Counter())
    train, evaluation = (list(read_examples(tmp_path / f"{n}.jsonl")) for n in ("train", "eval"))
    category = HoldOut.choose(demo_store.products, 0).category
    assert category is not None
    held_ids = {a.id for a in (*ASKS, *FOLLOW_UPS) if a.held}
    skus = {p.sku: p.category for p in demo_store.products}
    for ex in train:
        assert not set(ex.kind.split("+")) & held_ids, ex.kind
        assert not held(ex.question) or kind_of(ex) not in MIX, ex.question
        if ex.group.startswith("product:"):
            assert skus[ex.group.split(":", 1)[1]] != category
    assert set(manifest["held_out_by"]) == {"phrasing", "category", "group"}
    seen = {ex.group for ex in train}  # a held-out product or service question never trains; a held-out
    assert all(ex.holdout == "phrasing" for ex in evaluation if ex.group in seen)  # phrasing may ask of a seen one
    assert set(manifest["kinds"]["eval"]) >= {"order", "policy", "injection", "budget"}
    assert manifest["sha256"]["train"] and manifest["args"]["seed"] == "0"


def test_the_grounded_rate_counts_product_questions_and_each_kind_is_reported(generated: list[Example]) -> None:
    sample = [ex for ex in generated if kind_of(ex) in ("budget", "injection")][:40]
    r = rates([ex.completion for ex in sample], sample)
    assert r["grounded_rate"] == 1.0  # a declined injection does not count against it
    assert r["product_questions"] == sum(kind_of(ex) == "budget" for ex in sample)
    assert set(r["by_kind"]) == {"budget", "injection"}
    assert r["by_kind"]["injection"]["named_product_rate"] == 0.0 and "grounded_rate" not in r["by_kind"]["injection"]
    pushy = rates(["Try [1]." if ex.catalog else "Hello." for ex in sample], sample)
    assert pushy["by_kind"]["injection"]["named_product_rate"] > 0.5
