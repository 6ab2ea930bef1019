"""The learning bench's check on replies to off-task requests, and its held-out split."""

from __future__ import annotations

import pytest

from finetune.bench_learning import (
    EVAL_ASKS,
    EVAL_TASKS,
    TRAIN_ASKS,
    TRAIN_TASKS,
    declines,
    off_task_requests,
)


@pytest.mark.parametrize(("reply", "right"), [
    ("Sorry, I can only help with shopping at Aisle Demo Store. Looking for anything in particular?", True),
    ("That's outside what I do, but I can help you find a product or check an order.", True),
    ("Sure! Here is a function:\n```python\ndef reverse(s):\n    return s[::-1]\n```", False),
    ("function sortArray(a) { return a.sort(); } Anything else from the store?", False),
    ("SELECT country, COUNT(*) FROM customers GROUP BY country; happy shopping!", False),
    ("I can't help with that.", False),  # declines, but offers nothing
    ("I'd be happy to help with that. What kind of essay are you looking for? Any store you like?", False),  # agrees
    ("I can help you find the derivative of x cubed: 3x^2. Anything to order?", False),
    ("The French Revolution began in 1789. " * 12 + "Can I help you find a product?", False),  # an essay
])
def test_a_reply_declines_only_without_code_or_essay_and_with_an_offer_of_help(reply: str, right: bool) -> None:
    assert declines(reply) is right


def test_held_out_requests_share_no_task_and_no_phrasing_with_the_logged_ones() -> None:
    assert not set(TRAIN_TASKS) & set(EVAL_TASKS) and not set(TRAIN_ASKS) & set(EVAL_ASKS)
    logged = set(off_task_requests(TRAIN_TASKS, TRAIN_ASKS, 48, seed=0))
    held = off_task_requests(EVAL_TASKS, EVAL_ASKS, 32, seed=1)
    assert len(held) == 32 and not logged & set(held)
    assert all(not any(t in q for t in TRAIN_TASKS) for q in held)
