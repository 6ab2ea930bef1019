"""The dataset readers: one parser per file format, used by churn training and recommendation evaluation alike."""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

from retrieval.datasets import read_bitext, read_online_retail_lines

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def _retail(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "retail.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(HEADER + "".join(line + "\n" for line in lines))
    return path


def test_online_retail_lines_keep_identified_customers_and_count_unparsable_lines(tmp_path: Path) -> None:
    path = _retail(tmp_path, [
        "536365,85123A,WHITE HANGING HEART ,6,2010-12-01 08:26:00,2.55,17850,United Kingdom",
        "C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,14527,United Kingdom",
        "536366,22633,HAND WARMER,6,2010-12-01 08:28:00,1.85,,United Kingdom",  # no customer: left out, not counted
        "536367,22634,HAND WARMER,six,2010-12-01 08:28:00,1.85,13047,United Kingdom",  # bad quantity: counted
        "536368,22635,HAND WARMER,2,yesterday,1.85,13047,United Kingdom",  # bad date: counted
    ])
    lines, skipped = read_online_retail_lines(path)
    assert skipped == 2
    assert [(x.customer, x.stock_code, x.kind) for x in lines] == [("17850", "85123A", "purchase"), ("14527", "D", "return")]
    assert lines[0].description == "WHITE HANGING HEART"
    assert lines[0].at == datetime(2010, 12, 1, 8, 26) and lines[0].quantity == 6 and lines[0].unit_price == 2.55


def test_churn_histories_and_evaluation_events_come_from_the_same_lines(tmp_path: Path) -> None:
    from finetune.churn import online_retail_histories
    from retrieval.evaluate import online_retail_dataset

    path = _retail(tmp_path, [
        "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850,United Kingdom",
        "536366,22633,HAND WARMER,3,2010-12-02 08:28:00,1.85,17850,United Kingdom",
        "C536367,22633,HAND WARMER,-1,2010-12-03 08:28:00,1.85,17850,United Kingdom",
        "536368,POST,POSTAGE,1,2010-12-03 09:00:00,18.0,17850,United Kingdom",
    ])
    histories, skipped = online_retail_histories(path)
    assert skipped == 0
    assert [(e.kind, e.title, round(e.value, 2)) for e in histories["17850"]] == [
        ("purchase", "White Hanging Heart", 15.3), ("purchase", "Hand Warmer", 5.55), ("return", "Hand Warmer", 1.85),
        ("purchase", "Postage", 18.0)]
    events = online_retail_dataset(path).events
    # postage is not a product: recommendation evaluation leaves it out, churn counts its spend
    assert [(e.sku, e.type) for e in events] == [("85123A", "purchase"), ("22633", "purchase"), ("22633", "return")]


def test_bitext_rows_missing_a_field_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "intents.csv"
    path.write_text("utterance,intent\n where is my order ,track_order\n,track_order\nhello,\n", encoding="utf-8")
    assert [(e.text, e.label) for e in read_bitext(path)] == [("where is my order", "track_order")]
