"""The reply's typed record round-trips through the JSON it is stored as."""

from __future__ import annotations

import pytest

from bot.turn_events import ReplyMeta


def test_reply_meta_round_trips_and_leaves_out_what_did_not_happen() -> None:
    meta = ReplyMeta(reply_to=3, model="aisle-base", backend="vllm", adapter="grounding-1", route="product",
                     retrieved_skus=["RUN-00012"], retrieval_scores=[0.71], reasons=["relevance"],
                     filters="price at most 100", prompt={"store_name": "S", "catalog": []})
    stored = meta.as_json()
    assert "error" not in stored and "partial" not in stored and stored["status"] == "streaming"
    assert ReplyMeta.from_json({**stored, "a_later_key": 1}) == meta
    meta.status, meta.error, meta.partial_text = "fallback", "vLLM down", "Sure"
    assert ReplyMeta.from_json(meta.as_json()).error == "vLLM down"
    with pytest.raises(TypeError):
        ReplyMeta.from_json({"status": "completed"})
