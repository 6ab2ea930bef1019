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


def test_stored_reads_a_reply_record_and_nothing_else() -> None:
    meta = ReplyMeta(reply_to=3, model="aisle-base", backend="vllm", adapter=None, route="product",
                     retrieved_skus=["RUN-00012"], retrieval_scores=[0.71], reasons=["relevance"], filters="",
                     prompt={"store_name": "S", "catalog": [{"sku": "RUN-00012", "title": "Trail shoe",
                                                             "category": "running", "price": 89.5,
                                                             "currency": "USD", "stock": 4}]})
    reply = ReplyMeta.stored(meta.as_json())
    assert reply == meta
    record = reply.prompt_record()
    assert record is not None and [p.sku for p in record.products] == ["RUN-00012"] and record.products[0].stock == 4
    # a notice, an empty row, a row reserved before its record: no reply record, no exception
    assert ReplyMeta.stored(None) is None and ReplyMeta.stored({"agent": "Ana"}) is None
    meta.prompt = {"store_name": "S", "catalog": [{"sku": "RUN-00012"}]}  # a prompt record that is not one
    assert ReplyMeta.stored(meta.as_json()) is not None and ReplyMeta.stored(meta.as_json()).prompt_record() is None
