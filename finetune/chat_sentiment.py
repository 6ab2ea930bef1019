"""Sentiment in the chat register: rated tweet-like messages and shop chat.

Product reviews are long and polite; shoppers in a chat write like tweets:
short, sarcastic ("great, another delay"), with complaints phrased as
questions ("why does nobody answer my emails?"). Two sources teach that:

- ``chat_sentiment/tweets.tsv``: 3,360 messages, each rated -4..+4 by at least
  20 people; a mean rating <= -0.5 is negative, >= +0.5 positive, the rest
  neutral.
- generated shop chat (:func:`shop_chat`): complaints, sarcasm, questions,
  thanks, with the store's own words (orders, parcels, refunds).

The hand-written ``shop_chat_test.tsv`` beside this module is never trained
on: it is the test set for the shop register (sarcasm and complaints phrased as
questions included).
"""

from __future__ import annotations

import random
from pathlib import Path

from retrieval.datasets import LabelledText

SHOP_TEST = Path(__file__).with_name("shop_chat_test.tsv")


def read_labelled_tsv(path: Path) -> list[LabelledText]:
    """``label<TAB>text`` lines; blank lines and lines starting with # are skipped."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        label, sep, text = line.partition("\t")
        if not sep or label not in ("negative", "neutral", "positive") or not text.strip():
            raise ValueError(f"{path}:{n}: expected 'negative|neutral|positive<TAB>text'")
        out.append(LabelledText(text.strip(), label))
    return out


_THINGS = ("order", "package", "parcel", "delivery", "refund", "jacket", "shoes", "return", "replacement", "item")
_SLOTS = {
    "thing": _THINGS,
    "days": ("two days", "three days", "a week", "10 days", "two weeks", "a month"),
    "times": ("second", "third", "fourth", "fifth"),
    "order": ("A10023", "#48213", "B7741", "order 5521", "#90017"),
    "kind": ("running shoes", "a rain jacket", "hiking boots", "a backpack", "a wool sweater", "sneakers", "a tent"),
    "price": ("50", "80", "100", "120", "200"),
}
_NEGATIVE = (
    "my {thing} is late again",
    "this is the {times} time my {thing} is late",
    "still no {thing} after {days}. unacceptable",
    "where is my {thing}?? it's been {days}",
    "why is my {thing} {order} still not here?",
    "why does nobody answer my emails",
    "how many times do I have to ask about my {thing}?",
    "is anyone actually going to help me or not?",
    "what's the point of tracking if it never updates?",
    "why was I charged twice for {order}?",
    "you lot are hopeless",
    "worst service ever, I want my money back",
    "I'm really angry, {order} never arrived",
    "the {thing} arrived broken and no one cares",
    "I've waited {days} for a refund. ridiculous",
    "oh great, it's delayed again",
    "oh wonderful, my {thing} is lost again",
    "wow, {days} for a reply. amazing service",
    "love waiting {days} for nothing",
    "thanks for nothing",
    "sure, take your time, it's only been {days}",
    "fantastic, the wrong size AGAIN",
    "perfect, just perfect. still no refund",
    "nice, charged twice. thanks a lot",
    "I'm done with this store",
    "cancel everything, I'm never ordering again",
    "this is a joke. {days} and no {thing}",
    "so disappointed with {order}",
    "ugh. the {thing} is damaged :(",
    "seriously?? again??",
    "can I talk to a real person, the bot is useless",
    "do you even read messages?",
    "is it normal that my {thing} takes {days}??",
)
_NEUTRAL = (
    "where is my {thing}?",
    "when will {order} arrive?",
    "can you check the status of {order}",
    "do you have {kind} under ${price}?",
    "I'm looking for {kind}",
    "what sizes does it come in?",
    "how do returns work?",
    "can I change my delivery address",
    "is {kind} waterproof?",
    "what's the price of {kind}",
    "I need an invoice for {order}",
    "how long does shipping take",
    "ok",
    "my order number is {order}",
    "can I pay with paypal?",
    "do you ship abroad?",
    "which one is lighter?",
    "show me something for running",
    "I'd like to return {kind}",
    "hi, I have a question about {order}",
)
_POSITIVE = (
    "thanks, that was quick!",
    "great, thank you so much :)",
    "perfect, exactly what I needed",
    "love the {kind}, fits great",
    "awesome, the {thing} arrived early!",
    "you're the best, thanks for sorting {order}",
    "got my refund, thanks!",
    "super helpful, cheers",
    "amazing service as always",
    "yay, it's here! :D",
    "thank you, problem solved",
    "really happy with {kind}",
    "brilliant, I'll take it",
    "that's great news, thanks",
)


_PRAISE = ("great", "wonderful", "fantastic", "brilliant", "perfect", "amazing", "lovely", "awesome", "nice",
           "just great", "oh great", "wow", "cool", "well done", "thanks a lot", "love it", "so happy", "superb",
           "excellent", "just perfect")
_BAD = ("delayed again", "the parcel is late again", "my order is stuck in transit", "the box arrived smashed",
        "still no refund after {days}", "charged twice", "the wrong size again", "my package got lost",
        "nobody replied to my email", "the tracking hasn't updated in {days}", "the zip broke after one wear",
        "another week of waiting", "my return was rejected", "the courier left it in the rain",
        "waiting {days} for an answer", "the item is missing from the box", "the coupon doesn't work",
        "the replacement is broken too", "you cancelled it without telling me", "on hold for an hour",
        "the delivery window passed", "I got someone else's order")
_GOOD = ("it arrived a day early", "the refund is already in my account", "the {kind} fits perfectly",
         "you fixed it in minutes", "the replacement came today", "the coupon worked", "delivered right on time",
         "it's exactly as pictured", "the exchange went smoothly")
_SARCASM = ("{praise}, {bad}.", "{praise}. {bad}.", "{bad}. {praise}.", "{praise}!! {bad} :)", "oh {praise}, {bad}",
            "{bad}, {praise} job", "{bad}... {praise}", "{praise} service: {bad}", "{bad}. {praise}, really.")
_QUESTION_COMPLAINTS = ("why is it that {bad}?", "how come {bad}?", "is it normal that {bad}??",
                        "can someone explain why {bad}?", "seriously, why {bad}?", "so {bad}, and then what?")
_PRAISED = ("{praise}, {good}!", "{good}, {praise}!", "{praise}! {good} :)", "{good}. {praise}, thank you")


def _fill(template: str, rng: random.Random) -> str:
    """Fill every slot; a slot's value may hold slots itself (``{bad}`` holding ``{days}``)."""
    slots = {**_SLOTS, "praise": _PRAISE, "bad": _BAD, "good": _GOOD}
    while "{" in template:
        for slot, values in slots.items():
            while "{" + slot + "}" in template:
                template = template.replace("{" + slot + "}", rng.choice(values), 1)
    return template


def shop_chat(n: int = 2000, seed: int = 0) -> list[LabelledText]:
    """``n`` generated shop-chat messages over the three labels, with casing and punctuation varied.

    Besides plain templates, negatives pair praise with a bad event (sarcasm: the event decides, not
    the praise) or ask about a bad event (a complaint phrased as a question), and positives pair
    praise with a good event, so that the praise words alone tell nothing.
    """
    rng = random.Random(seed)
    pools = (("negative", (_NEGATIVE, _SARCASM, _QUESTION_COMPLAINTS), 0.45), ("neutral", (_NEUTRAL,), 0.30),
             ("positive", (_POSITIVE, _PRAISED), 0.25))
    out = []
    for label, families, share in pools:
        for _ in range(round(n * share)):
            text = _fill(rng.choice(rng.choice(families)), rng)
            style = rng.random()
            text = text.lower() if style < 0.3 else text[0].upper() + text[1:] if style < 0.6 else text
            out.append(LabelledText(text, label))
    rng.shuffle(out)
    return out
