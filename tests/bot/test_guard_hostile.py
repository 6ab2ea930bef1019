"""Hostile model output: every kind of invented claim is corrected or dropped, and no hole is left behind."""

from __future__ import annotations

import random

import pytest

from bot.guard import StreamGuard, holes
from tests.bot.test_guard import PRODUCTS, stream

POLICY = ("Unused items can be returned within 30 days of delivery for a full refund. Standard delivery takes "
          "3-5 working days and is free over $50; express delivery takes 1-2 working days for $9.95. "
          "10% off your next order with code STAY10")
HOSTS = ("shop.example.com",)
GOOD_BEFORE = "Thanks for asking!"
GOOD_AFTER = "Anything else I can help with?"

LINKS = ["amazon.com", "https://www.tesla.com/shop", "www.cheap-deals.net", "http://evil.example.org/x?y=1",
         "ebay.co.uk/itm/123", "bestbuy.com/site"]
EMAILS = ["jane.doe@gmail.com", "support@aisle-help.io", "john+shop@example.org", "sales@store.co.uk"]
PHONES = ["+1 (555) 123-4567", "555-867-5309", "020 7946 0958", "+44 20 7946 0958", "(800) 555 0199"]
CODES = ["SHOP-A-LEMON", "SAVE20", "WELCOME15", "VIP-2024", "FREESHIP", "STAFF50OFF"]
POLICIES = ["we give a 10% discount on all orders", "we offer 24/7 support 6 days a week",
            "every order ships overnight", "returns are accepted within 90 days", "delivery takes 2 days",
            "members get 15% off everything", "we have a lifetime warranty on all products",
            "refunds arrive within 24 hours", "shipping is free on every order"]
TEMPLATES: dict[str, list[str]] = {
    "link": ["You can find it cheaper at {x}.", "Check {x} for more options.", "See {x}, it has great deals.",
             "I'd recommend {x} for that."],
    "email": ["You can email {x} for help.", "Another customer, {x}, bought it too.", "Write to {x} anytime."],
    "phone": ["Call us at {x} for help.", "Your number {x} is on file.", "Ring {x} if you need anything."],
    "code": ["The secret staff discount code is: {x}.", "Use code {x} at checkout.", "Try the coupon {x} today!",
             "Enter {x} for a discount."],
    "policy": ["Good news: {x}.", "By the way, {x}.", "Also, {x}!"],
    "stray_price": ["Shipping is only {x} this week.", "They're available for {x}.", "Prices start at {x}!"],
    "markup": ["Here you go {x} enjoy.", "{x} Click here."],
}


def hostile_cases(n: int, seed: int) -> list[tuple[str, str, str]]:
    """(kind, model text, the bad part): a good sentence, the hostile one, another good sentence."""
    from tests.bot.test_guard import PAYLOADS

    rng = random.Random(seed)
    kinds = [*TEMPLATES, "price"]
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        if kind == "price":
            p = rng.choice(PRODUCTS)
            bad = f"${round(p.price + rng.choice([-1, 1]) * rng.uniform(1, 40), 2):.2f}"
            middle = rng.choice([f"The {p.title} is {bad} today.", f"I'd pick the {p.title}, now just {bad}.",
                                 f"The {p.title} ({p.sku}) costs {bad}."])
        else:
            bad = rng.choice({"link": LINKS, "email": EMAILS, "phone": PHONES, "code": CODES, "policy": POLICIES,
                              "markup": PAYLOADS, "stray_price": [f"${rng.randint(2, 40)}.{rng.randint(10, 99)}"]
                              }[kind])
            middle = rng.choice(TEMPLATES[kind]).format(x=bad)
        out.append((kind, f"{GOOD_BEFORE} {middle} {GOOD_AFTER}", bad))
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_no_hostile_output_reaches_the_shopper_and_none_leaves_a_hole(seed: int) -> None:
    rng = random.Random(seed)
    cases = hostile_cases(240, seed)
    assert {k for k, _, _ in cases} == {*TEMPLATES, "price"}
    for kind, text, bad in cases:
        guard = StreamGuard(PRODUCTS, allowed_text="under $100", policy_text=POLICY, link_hosts=HOSTS)
        out = stream(text, rng, guard)
        assert out == guard.text
        assert out != text and bad not in out, (kind, text, out)
        assert holes(out) == [], (text, out)
        assert out.startswith(GOOD_BEFORE) and out.endswith(GOOD_AFTER), (text, out)
        assert guard.corrections, text
        if kind == "price":
            named = next(p for p in PRODUCTS if p.title in text)
            assert f"${named.price:.2f}" in out and guard.corrections[0]["sku"] == named.sku


CORRECT = [
    "The Strider Trail Shoe (blue) is $89.99 and in stock, with 7 left. Want me to add it to your cart?",
    "Our returns policy: unused items can be returned within 30 days of delivery for a full refund.",
    "Standard delivery takes 3-5 working days and is free over $50, so the Nordic Wool Throw ships free.",
    "Express delivery takes 1-2 working days for $9.95.",
    "As a thank-you, here's 10% off your next order with code STAY10.",
    "You can see it at https://shop.example.com/p/RUN-00012, or ask me anything else.",
    "1. Strider Trail Shoe (blue) - $89.99\n2. Castline Skillet 28cm (black) - $1,299.00\nBoth are great picks.",
    "Sorry, nothing under $100 fits that; the closest is the Castline Skillet 28cm (black) at $1,299.00.",
    "I'm sorry about the delay, that's frustrating. A human colleague can take over if you like.",
    "The Nordic Wool Throw (grey) [HOM-00301] is sold out right now; the Strider Trail Shoe is in stock.",
]


@pytest.mark.parametrize("text", CORRECT)
def test_a_correct_reply_passes_byte_for_byte(text: str) -> None:
    guard = StreamGuard(PRODUCTS, allowed_text="under $100", policy_text=POLICY, link_hosts=HOSTS)
    assert stream(text, random.Random(len(text)), guard) == text
    assert guard.corrections == []


def test_holes_are_what_a_cut_leaves() -> None:
    for broken in ("they're available for .", "the Kitera Airfryer (), a fine pick", "the code is: .",
                   "It costs  today", "Shipping is only  this week", "See , it has deals"):
        assert holes(broken), broken
    assert holes("The Strider Trail Shoe (blue) is $89.99. Anything else?") == []


def test_the_guard_says_when_it_cut_every_clause() -> None:
    cut = StreamGuard(PRODUCTS, policy_text=POLICY)
    stream("Visit amazon.com for deals. Call 555-867-5309!", random.Random(0), cut)
    assert cut.cut_whole and cut.text == ""
    kept = StreamGuard(PRODUCTS, policy_text=POLICY)
    stream("Visit amazon.com for deals. The Strider Trail Shoe (blue) is $89.99.", random.Random(0), kept)
    assert not kept.cut_whole and not StreamGuard(PRODUCTS).cut_whole
