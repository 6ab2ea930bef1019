"""Sentiment data in the chat register: the rated tweets, generated shop chat and the hand-written test set."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from finetune.chat_sentiment import SHOP_TEST, read_labelled_tsv, shop_chat
from finetune.sentiment_data import sentiment_splits
from retrieval.datasets import rating_to_label, read_tweets
from tests.conftest import data


@pytest.mark.parametrize(("rating", "label"), [(-4.0, "negative"), (-0.5, "negative"), (-0.49, "neutral"),
                                               (0.0, "neutral"), (0.49, "neutral"), (0.5, "positive"),
                                               (4.0, "positive")])
def test_the_readme_mapping_of_mean_ratings(rating: float, label: str) -> None:
    assert rating_to_label(rating) == label


def test_a_rating_off_the_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="-4..\\+4"):
        rating_to_label(4.5)


def test_tweets_are_read_and_bad_rows_counted(tmp_path: Path) -> None:
    path = tmp_path / "tweets.tsv"
    path.write_text("id\tmean_rating\ttext\n1\t-1.2\tugh :(\n2\tabc\tno rating\n3\t2.0\t\n4\t0.7\t"
                    "\"quoted \"\"yay\"\"\"\n", encoding="utf-8")
    examples, skipped = read_tweets(path)
    assert [(e.text, e.label) for e in examples] == [("ugh :(", "negative"), ('quoted "yay"', "positive")]
    assert skipped == 2


def test_the_shared_tweets_all_read_with_the_readme_counts() -> None:
    examples, skipped = read_tweets(data("chat_sentiment") / "chat_sentiment" / "tweets.tsv")
    assert len(examples) == 3360 and skipped == 0
    assert Counter(e.label for e in examples) == {"positive": 1871, "negative": 879, "neutral": 610}


def test_a_malformed_labelled_line_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("# comment\nnegative\tthis is fine\nangry\twhat label is this\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.tsv:3"):
        read_labelled_tsv(path)


def test_the_shop_test_set_holds_sarcasm_and_questions_and_is_never_generated() -> None:
    test = read_labelled_tsv(SHOP_TEST)
    by_text = {e.text: e.label for e in test}
    assert by_text["great, another delay. just great."] == "negative"  # sarcasm
    assert by_text["why do I have to explain this for the fourth time?"] == "negative"  # a complaint as a question
    assert by_text["where is my order A10023?"] == "neutral"
    assert set(Counter(e.label for e in test)) == {"negative", "neutral", "positive"}
    generated = {e.text.lower() for e in shop_chat(n=5000, seed=0)}
    assert not generated & {e.text.lower() for e in test}


def test_shop_chat_is_deterministic_and_covers_every_label() -> None:
    a, b = shop_chat(n=300, seed=3), shop_chat(n=300, seed=3)
    assert a == b and len(a) == 300
    shares = Counter(e.label for e in a)
    assert shares["negative"] > shares["neutral"] > shares["positive"] > 0
    assert all("{" not in e.text for e in a)  # every slot filled


def test_the_splits_keep_each_register_and_never_train_on_test_messages() -> None:
    splits = sentiment_splits(data("clothing_reviews", "chat_sentiment"))
    counts = Counter(splits.test_source)
    assert counts["reviews"] == 3620 and counts["chat"] == 672 and counts["shop_chat"] == len(read_labelled_tsv(SHOP_TEST))
    assert len(splits.held_source) == len(splits.held) and set(splits.held_source) == {"reviews", "chat"}
    train_texts = {e.text for e in splits.train}
    chat_test = [splits.test[i].text for i in splits.source("chat") + splits.source("shop_chat")]
    assert not train_texts & set(chat_test)
