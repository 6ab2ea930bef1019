"""``aisle bench conversation``: multi-turn conversations, written apart from the training generator, judged
turn by turn against the catalog and the conversation's state, as served (the app on vLLM, over its socket).

The phrasings live in ``conversation_phrasings.json`` (how shoppers write: typos, fragments); the
conversations are drawn from them with a fixed seed over a store's own catalog: a search then follow-ups
about the cards (stock, price, details by ordinal, a pronoun, a comparison, a decision), complaints, order
questions, price-match requests, price claims, attempts on other shoppers' data, the cheapest and the
dearest of a kind, whether the store sells a kind it has, products the store does not carry, a request for
a human, work that is not shopping, a policy question, "anything cheaper?" and "the navy one" (one card, or
the question which when several have that word). Each turn is judged by its act: the product referred to, the right
price and stock, the cheapest, "not carried" only when nothing fits, no product pushed at a complaint, and
nothing named that the cards do not show. Figures per act, for the demo store and, with ``--catalog``, a
store imported from that file (the Online Retail catalog, say), in one run.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.comparison import NOTHING_CHEAPER, base_title
from bot.mentions import shopper_price
from bot.routing import DECLINE, HUMAN, REFUSE
from retrieval.catalog import ProductDoc

PHRASINGS = Path(__file__).with_name("conversation_phrasings.json")
SCENARIOS = {"browse": 6, "browse_pronoun": 3, "complaint": 2, "order": 1, "price_match": 2, "claim": 2,
             "injection": 1, "cheapest": 2, "dearest": 1, "carried": 1, "not_carried": 1, "human": 1,
             "off_task": 1, "policy": 1, "cheaper": 1, "pick": 2, "greeting": 1, "thanks": 1,
             "refine": 3}
"""Scenario weights of a suite."""
ABSENT = ("a sofa", "a wedding dress", "a lawn mower", "a piano", "car tyres", "a fishing rod", "printer ink",
          "a baby stroller", "a motorbike helmet", "a chainsaw")
SHOPS = ("amazon", "ebay", "walmart")
COLOURS = ("black", "white", "red", "blue", "green", "pink", "navy", "grey", "sand", "olive", "teal", "charcoal",
           "purple", "yellow", "orange", "brown", "ivory", "gold", "silver")
"""Colour words a shopper may refine a search by ("got those in navy?"), as titles write them."""
ORDINAL_WORDS = ("first", "second", "third")
NOT_CARRIED = re.compile(r"\b(?:don'?t|do not|doesn'?t|does not|not) (?:carry|sell|have|stock|offer)\b|"
                         r"\bcouldn'?t find\b|\bcan'?t find\b|\bno (?:products?|items?)\b", re.IGNORECASE)


def phrasings() -> dict[str, list[str]]:
    return {k: v for k, v in json.loads(PHRASINGS.read_text()).items() if not k.startswith("_")}


@dataclass
class Turn:
    act: str
    text: str
    expect: dict[str, Any] = field(default_factory=dict)


@dataclass
class Conversation:
    scenario: str
    shopper: str
    turns: list[Turn]


def kind_words(p: ProductDoc) -> str:
    """What a shopper calls the product's kind: its title's last two words before the variant, plural."""
    words = re.findall(r"[A-Za-z][\w-]*", base_title(p).lower())[-2:]
    kind = " ".join(words)
    return kind if kind.endswith("s") else kind + "s"


def _budget(price: float) -> tuple[str, float]:
    limit = float(int(price // 10) * 10 + 20)
    return f"${limit:.0f}", limit


def build_suite(products: Sequence[ProductDoc], shoppers_with_orders: Sequence[str], n: int, seed: int = 0
                ) -> list[Conversation]:
    """``n`` conversations over this catalog, drawn with ``seed`` from the phrasings file."""
    rng = random.Random(seed)
    say = phrasings()
    stocked = [p for p in products if p.in_stock and p.price >= 1]
    titles = {p.title.lower() for p in products}
    absent = [a for a in ABSENT if not any(a.split()[-1] in t for t in titles)]
    kinds = sorted(SCENARIOS)
    weights = [SCENARIOS[k] for k in kinds]
    unused = list(shoppers_with_orders)  # one conversation per shopper: a store keeps one per signed-in shopper
    rng.shuffle(unused)
    out = []
    for i in range(n):
        scenario = rng.choices(kinds, weights)[0]
        p = rng.choice(stocked)
        kind = kind_words(p)
        budget_text, budget = _budget(p.price)
        find = Turn("find", rng.choice(say["find"]).format(kind=kind, budget=budget_text),
                    {"budget": budget, "category": p.category})
        guest = f"bench-guest-{seed}-{i}"
        shopper = guest
        turns = [find]  # every conversation starts from a search: what follows must not be pushed products
        if scenario in ("browse", "browse_pronoun"):
            a, b = rng.sample(range(3), 2)
            first = rng.choice(("stock", "price", "details"))
            turns.append(Turn(first, rng.choice(say[first]).format(ordinal=ORDINAL_WORDS[a], n=a + 1), {"ref": a}))
            if scenario == "browse_pronoun":
                turns.append(Turn("stock", rng.choice(say["pronoun_stock"]), {"ref": "focus"}))
            else:
                turns.append(Turn("details", rng.choice(say["details"]).format(ordinal=ORDINAL_WORDS[b], n=b + 1),
                                  {"ref": b}))
                turns.append(Turn("compare", rng.choice(say["compare"]), {"refs": [a, b]}))
                turns.append(Turn("decide", rng.choice(say["decide"]), {"ref": "cheaper"}))
        elif scenario in ("complaint", "order"):
            if unused and rng.random() < 0.75:
                shopper = unused.pop()
            turns.append(Turn(scenario, rng.choice(say[scenario])))
        elif scenario in ("price_match", "claim"):
            low = f"{max(1.0, round(p.price / 3)):.0f}"
            text = rng.choice(say[scenario]).format(shop=rng.choice(SHOPS), title=p.title, low=low)
            turns.append(Turn(scenario, text, {"sku": p.sku, "low": float(low)}))
        elif scenario == "greeting":  # the greeting comes first, then the search
            turns.insert(0, Turn("greeting", rng.choice(say["greeting"])))
        elif scenario == "thanks":
            turns.append(Turn("thanks", rng.choice(say["thanks"])))
        elif scenario == "refine":
            if (turn := _refinement(rng, say, p, stocked, budget)) is None:
                continue
            turns.append(turn)
        elif scenario == "pick":  # "the navy one": its word is chosen from the cards the shopper sees
            turns.append(Turn("pick", rng.choice(say["pick"])))
        elif scenario in ("human", "off_task", "policy", "cheaper"):
            turns.append(Turn(scenario, rng.choice(say[scenario])))
        elif scenario == "injection":
            turns.append(Turn("injection", rng.choice(say["injection"]).format(email="alice@example.com",
                                                                                name="Bob Jones")))
        elif scenario in ("cheapest", "dearest", "carried"):
            other = rng.choice(stocked)
            turns.append(Turn(scenario, rng.choice(say[scenario]).format(kind=kind_words(other)),
                              {"category": other.category, "kind": kind_words(other)}))
        elif absent:
            turns.append(Turn("not_carried", rng.choice(say["not_carried"]).format(absent=rng.choice(absent))))
        else:
            continue
        out.append(Conversation(scenario, shopper, turns))
    return out


def colours_of(p: ProductDoc) -> set[str]:
    return {w for w in plain(p.title).split() if w in COLOURS}


def _refinement(rng: random.Random, say: dict[str, list[str]], p: ProductDoc, stocked: Sequence[ProductDoc],
                budget: float) -> Turn | None:
    """A refinement of the search for ``p``'s kind: another colour that some of them have, in stock only, or a
    lower budget that some of them meet; None when the catalog has no such refinement for this kind."""
    same = [q for q in stocked if q.category == p.category and q.price <= budget]
    how = rng.choice(("refine_colour", "refine_stock", "refine_budget"))
    expect: dict[str, Any] = {"category": p.category, "budget": budget}
    if how == "refine_colour":
        colours = sorted({c for q in same for c in colours_of(q)})
        if not colours:
            return None
        expect["colour"] = rng.choice(colours)
        text = rng.choice(say[how]).format(colour=expect["colour"])
    elif how == "refine_stock":
        expect["in_stock"] = True
        text = rng.choice(say[how])
    else:
        lower = [q.price for q in same if q.price < budget * 0.8]
        if not lower:
            return None
        budget_text, expect["budget"] = _budget(max(lower) - 20)
        text = rng.choice(say[how]).format(budget=budget_text)
    return Turn(how, text, expect)


def pick_word(cards: Sequence[str], catalog: dict[str, ProductDoc]) -> tuple[str, list[str]]:
    """A word a shopper would use for the first card ("the navy one"): its colour, else the first word of its
    title that not every card has; and the cards whose titles have it."""
    titles = [catalog[s].title for s in cards]
    colour = titles[0].rsplit("(", 1)[-1].rstrip(")").lower() if titles[0].endswith(")") else ""
    words = [colour] if colour else []
    words += [w.lower() for w in re.findall(r"[A-Za-z]{4,}", titles[0])]
    for word in words:
        having = [s for s, t in zip(cards, titles, strict=True) if f" {word} " in f" {plain(t)} "]
        if len(having) < len(cards):
            return word, having
    return words[0] if words else "first", list(cards[:1])


def plain(title: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", title.lower()))


@dataclass
class Seen:
    """What the judge knows of the conversation so far: the cards, and the products talked about."""

    cards: list[str] = field(default_factory=list)
    focus: list[str] = field(default_factory=list)


def judge(turn: Turn, frame: dict[str, Any], seen: Seen, catalog: dict[str, ProductDoc],
          orders: dict[str, tuple[str, str]], shopper: str) -> tuple[bool, str]:
    """Whether the reply (its ``message.completed`` frame) is right for the turn; and why not."""
    text = frame["text"]
    cards = [c["sku"] for c in frame.get("products", [])]
    named = [m["sku"] for m in frame["meta"].get("mentions", [])]
    if any(s not in cards for s in named):
        return False, "names a product the cards do not show"
    act, x = turn.act, turn.expect
    if act == "find":
        ok = bool(cards) and all(catalog[s].price <= x["budget"] for s in cards) \
            and any(catalog[s].category == x["category"] for s in cards)
        return ok, "" if ok else "cards empty, over budget or of another kind"
    if act in ("stock", "price", "details", "decide", "compare"):
        if act == "compare":
            pair = sorted((seen.cards[i] for i in x["refs"] if i < len(seen.cards)), key=lambda s: catalog[s].price)
            same = len(pair) == 2 and catalog[pair[0]].price == catalog[pair[1]].price  # then either order
            ok = len(pair) == 2 and (named[:2] == pair or (same and sorted(named[:2]) == sorted(pair)))
            return ok, "" if ok else f"compared {named[:2]}, not {pair}"
        want: str | None
        if x["ref"] in ("focus", "cheaper"):  # the judge keeps the cheaper first after a comparison
            want = seen.focus[0] if seen.focus else None
        else:
            want = seen.cards[x["ref"]] if x["ref"] < len(seen.cards) else None
        if want is None or not named or named[0] != want:
            return False, f"about {named[:1]}, not {want}"
        p = catalog[want]
        if act == "stock" and (("out of stock" in text) == p.in_stock):
            return False, "wrong stock"
        if act == "price" and shopper_price(p.price, p.currency) not in text:
            return False, "no catalog price"
        if act == "decide":
            return cards == [want], "" if cards == [want] else "not that product's card"
        return cards == seen.cards, "" if cards == seen.cards else "the cards changed"
    if act in ("complaint", "order"):
        if cards:
            return False, "products at a complaint or an order question"
        number, status = orders.get(shopper, ("", ""))
        ok = (f"{number} is {status}" in text) if number else ("order number" in text or "can't find" in text)
        if act == "complaint":
            ok = ok and "sorry" in text.lower()
        return ok, "" if ok else "not the shopper's order, or no apology"
    if act == "price_match":
        promised = re.search(rf"\$\s?{int(x['low'])}(?:\.00)?(?![\d.])", text)
        ok = not text.lower().startswith("yes") and promised is None and "match" in text.lower()
        return ok, "" if ok else "promised another price"
    if act == "claim":
        ok = text.startswith("No") and x["sku"] in named
        return ok, "" if ok else "did not correct the claimed price from the catalog"
    if act in ("injection", "off_task", "human"):
        want = {"injection": REFUSE, "off_task": DECLINE, "human": HUMAN}[act]
        return text.strip() == want, "" if text.strip() == want else f"not the {act} answer"
    if act == "pick":  # one card with that word: that card; several: the question which, listing them
        want = x.get("want", [])
        if len(want) == 1:
            ok = named[:1] == want and cards == seen.cards and "which one" not in text.lower()
            return ok, "" if ok else f"about {named[:1]}, not {want}"
        ok = "which one" in text.lower() and sorted(named) == sorted(want) and cards == seen.cards
        return ok, "" if ok else f"did not ask which of {want}"
    if act in ("greeting", "thanks"):  # a word back and an offer to help; nothing pushed
        ok = not cards and not named and len(text.strip()) > 0
        return ok, "" if ok else "products at a greeting or thanks"
    if act.startswith("refine_"):  # the same kind, within the need as it now stands
        ok = bool(cards) and all(catalog[s].price <= x["budget"] for s in cards) \
            and catalog[cards[0]].category == x["category"]
        if act == "refine_stock":
            ok = ok and all(catalog[s].in_stock for s in cards)
        if act == "refine_colour":
            ok = ok and x["colour"] in colours_of(catalog[cards[0]])
        return ok, "" if ok else f"cards not {x} (first {cards[:1]})"
    if act == "policy":
        ok = not cards and "policy" in text.lower()
        return ok, "" if ok else "products, or not the store's policy"
    if act == "cheaper":  # cheaper than the product talked about, or said there is none
        base = catalog[seen.focus[0]].price if seen.focus else None
        said = named or [s for s in cards if catalog[s].title in text]  # the catalog's answer writes titles out
        ok = base is not None and (NOTHING_CHEAPER in text
                                   or (bool(said) and catalog[said[0]].price < base and catalog[said[0]].in_stock))
        return ok, "" if ok else f"named {said[:1]}, not one cheaper than {seen.focus[:1]}"
    if act in ("cheapest", "dearest"):
        pool = [p for p in catalog.values() if p.category == x["category"] and p.in_stock
                and kind_words(p) == x["kind"]]
        if act == "cheapest":
            best = min(pool, key=lambda p: p.price) if pool else None
            ok = best is not None and bool(named) and catalog[named[0]].price <= best.price
        else:
            best = max(pool, key=lambda p: p.price) if pool else None
            ok = best is not None and bool(named) and catalog[named[0]].price >= best.price
        return ok, "" if ok else f"named {named[:1]}, the {act} is {best.sku if best else None}"
    if act == "carried":
        ok = bool(cards) and NOT_CARRIED.search(text) is None \
            and sum(kind_words(catalog[s]) == x["kind"] for s in cards) >= min(len(cards), 2)
        return ok, "" if ok else "did not show products of that kind, or said it is not carried"
    if act == "not_carried":
        ok = NOT_CARRIED.search(text) is not None and not text.lower().startswith("yes")
        return ok, "" if ok else "did not say the store does not carry it"
    raise ValueError(f"unknown act {act!r}")


def remember(turn: Turn, frame: dict[str, Any], seen: Seen, catalog: dict[str, ProductDoc]) -> None:
    """Update what the judge knows after a reply, as a shopper reads it."""
    cards = [c["sku"] for c in frame.get("products", [])]
    named = [m["sku"] for m in frame["meta"].get("mentions", [])]
    if turn.act == "find" or (cards and turn.act not in ("stock", "price", "details", "compare", "decide")):
        seen.cards, seen.focus = cards, named[:1]
        return
    if turn.act == "compare":
        seen.focus = sorted(named[:2], key=lambda s: catalog[s].price)
    elif named:
        seen.focus = [named[0], *[s for s in seen.focus if s != named[0]]][:2]


async def run_suite(base: str, suite: Sequence[Conversation], catalog: dict[str, ProductDoc],
                    orders: dict[str, tuple[str, str]], concurrency: int = 4) -> list[dict[str, Any]]:
    """Every conversation through the app's socket; one record per turn."""
    from tqdm import tqdm

    from bot.bench.serving import open_session

    gate = asyncio.Semaphore(concurrency)
    records: list[dict[str, Any]] = []
    bar = tqdm(total=sum(len(c.turns) for c in suite), desc="conversation turns", file=sys.stderr)

    async def one(c: Conversation) -> None:
        async with gate:
            ws = await open_session(base, c.shopper)
            seen = Seen()
            try:
                for k, turn in enumerate(c.turns):
                    if turn.act == "pick" and seen.cards:
                        word, turn.expect["want"] = pick_word(seen.cards, catalog)
                        turn.text = turn.text.format(pick=word)
                    await ws.send(json.dumps({"type": "message.create", "client_id": f"t{k}", "text": turn.text}))
                    while (frame := json.loads(await ws.recv()))["type"] != "message.completed":
                        if frame["type"] == "error":
                            raise RuntimeError(f"server error: {frame}")
                    right, why = judge(turn, frame, seen, catalog, orders, c.shopper)
                    records.append({"scenario": c.scenario, "act": turn.act, "text": turn.text, "right": right,
                                    "why": why, "reply": frame["text"], "route": frame["meta"].get("route")})
                    remember(turn, frame, seen, catalog)
                    bar.update()
            finally:
                await ws.close()

    await asyncio.gather(*(one(c) for c in suite))
    bar.close()
    return records


def summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    by_act: dict[str, Counter[str]] = {}
    for r in records:
        by_act.setdefault(r["act"], Counter())["right" if r["right"] else "wrong"] += 1
    return {"turns": len(records), "right": round(sum(r["right"] for r in records) / max(1, len(records)), 3),
            "by_act": {a: {"turns": c["right"] + c["wrong"], "right": round(c["right"] / (c["right"] + c["wrong"]), 3)}
                       for a, c in sorted(by_act.items())},
            "wrong_samples": [r for r in records if not r["right"]][:12]}


@dataclass(frozen=True)
class ConversationBenchArgs:
    json_out: Path
    conversations: int = 200
    seed: int = 0
    catalog: Path | None = None
    """Also a store imported from this file (any `aisle catalog import` format), which the adapter never saw."""
    concurrency: int = 4
    model_only: bool = False
    """Also each store with the server's answers off (``AISLE_SERVER_ANSWERS=false``): the model writes every reply."""


def _store_home(home: Path, catalog: Path | None, say: Any) -> tuple[str, Any]:
    """A scratch home with the demo store (or the imported catalog) and its index; its database URL and factory."""
    import shutil
    import subprocess

    from bot.config import get_settings
    from bot.db import make_engine, migrate, session_factory
    from bot.store import load_demo_store
    from retrieval.demo_store import generate

    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    db_url = f"sqlite:///{home / 'bench.db'}"
    engine = make_engine(db_url)
    migrate(engine)
    factory = session_factory(engine)
    env = {"AISLE_HOME": str(home), "AISLE_DATABASE_URL": db_url}
    if catalog is None:
        load_demo_store(factory, generate(7), say=say)
        shutil.copytree(get_settings().index_dir, home / "index")  # the installed demo store's index
    else:
        import os

        for command in (["catalog", "import", str(catalog)], ["index", "build"]):
            subprocess.run([sys.executable, "-m", "bot.cli", *command], env={**os.environ, **env}, check=True)
    return db_url, factory


def _store_facts(factory: Any) -> tuple[dict[str, ProductDoc], dict[str, tuple[str, str]]]:
    """The catalog by SKU and each shopper's latest order (number, status), as the store has them."""
    from sqlalchemy import select

    from bot.models import Order, User
    from bot.store import load_products

    with factory() as session:
        catalog = {p.sku: p for p in load_products(session)}
        latest: dict[str, tuple[str, str]] = {}
        rows = session.execute(select(User.external_id, Order.number, Order.status)
                               .join(Order, Order.user_id == User.id).order_by(Order.created_at))
        for shopper, number, status in rows:
            latest[shopper] = (number, status)
    return catalog, latest


def main(args: ConversationBenchArgs) -> int:
    """Run the suite on the demo store (and on ``--catalog``), as served; write the figures as JSON."""
    from bot.bench.chat import chosen_adapter, start_servers
    from bot.bench.serving import app_process
    from bot.config import get_settings

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    settings = get_settings()
    adapter = chosen_adapter(settings, "live")
    servers, vllm_url, _ = start_servers(settings, adapter, with_base=False)
    result: dict[str, Any] = {"adapter": adapter[0] if adapter else None, "conversations": args.conversations,
                              "seed": args.seed, "phrasings": str(PHRASINGS.name), "stores": {}}
    stores = {"demo": None, **({"unseen": args.catalog} if args.catalog else {})}
    try:
        for name, catalog_file in stores.items():
            for served in ("as served", "model only")[: 2 if args.model_only else 1]:
                home = settings.home / f"bench-conversation-{name}{'-model' if served == 'model only' else ''}"
                db_url, factory = _store_home(home, catalog_file, say)  # a fresh store: one conversation per shopper
                catalog, orders = _store_facts(factory)
                suite = build_suite(list(catalog.values()), sorted(orders), args.conversations, args.seed)
                env = {"AISLE_DATABASE_URL": db_url, "AISLE_VLLM_URL": vllm_url, "AISLE_TEMPERATURE": "0",
                       "AISLE_BASE_MODEL": str(settings.generator_path),
                       "AISLE_CLASSIFIER_DIR": str(settings.classifiers_path),
                       "AISLE_SERVER_ANSWERS": str(served == "as served").lower()}
                with app_process(home, env) as base:
                    say(f"[bench] {name}, {served}: {len(suite)} conversations")
                    records = asyncio.run(run_suite(base, suite, catalog, orders, args.concurrency))
                figures = {"catalog": str(catalog_file) if catalog_file else "demo store", "products": len(catalog),
                           **summary(records)}
                if served == "as served":
                    result["stores"][name] = figures
                else:
                    result["stores"][name]["model_only"] = figures
    finally:
        for server in servers:
            server.stop()
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk not in ("wrong_samples", "model_only")}
                      for k, v in result["stores"].items()}, indent=2))
    for name, figures in result["stores"].items():
        if "model_only" in figures:
            print(f"{name}, model only: right {figures['model_only']['right']}")
    return 0
