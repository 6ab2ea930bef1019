from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.cli import main
from bot.db import make_engine, migrate, session_factory, table_names
from bot.models import Product
from bot.store import count_products, load_products, upsert_products
from retrieval.catalog import ProductDoc
from retrieval.importers import import_catalog
from retrieval.index import ProductIndex

FEED_HEADER = "sku,title,price,category,brand,stock,colour\n"
FEED_ROWS = [
    "K-1,Red Kettle,19.99,Kitchen,Brevant,4,red\n",
    "K-2,Blue Kettle,21.50,Kitchen,Brevant,0,blue\n",
    "K-3,Steel Kettle,abc,Kitchen,Chefwise,3,steel\n",
    "K-4,Green Kettle,24.00,Kitchen,Chefwise,2,green\n",
]


def write_feed(path: Path, rows: list[str]) -> Path:
    path.write_text(FEED_HEADER + "".join(rows), encoding="utf-8")
    return path


@pytest.fixture
def products_db(db_url: str) -> Iterator[sessionmaker[Session]]:
    """A migrated, empty database."""
    engine = make_engine(db_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


def _stamps(factory: sessionmaker[Session]) -> dict[str, datetime]:
    with factory() as s:
        return dict(s.execute(select(Product.sku, Product.updated_at)).tuples().all())


def test_reimport_updates_products_in_place(products_db: sessionmaker[Session], tmp_path: Path) -> None:
    feed = write_feed(tmp_path / "feed.csv", FEED_ROWS)
    first = import_catalog(feed)
    assert [e.line for e in first.errors] == [4]
    counts = upsert_products(products_db, docs=first.products, chunk_size=2)
    assert (counts.inserted, counts.updated, counts.unchanged) == (3, 0, 0)
    before = _stamps(products_db)

    changed = [*FEED_ROWS[:3], FEED_ROWS[3].replace("24.00", "22.00"), "K-5,Black Kettle,30,Kitchen,,1,black\n"]
    again = import_catalog(write_feed(feed, changed))
    counts = upsert_products(products_db, docs=again.products, chunk_size=2)

    assert (counts.inserted, counts.updated, counts.unchanged) == (1, 1, 2)
    with products_db() as s:
        assert count_products(s) == 4
        docs = {d.sku: d for d in load_products(s)}
    assert docs["K-4"].price == 22.0
    assert docs["K-1"] == first.products[0] and docs["K-1"].attributes == {"colour": "red"}
    after = _stamps(products_db)
    assert after["K-1"] == before["K-1"] and after["K-2"] == before["K-2"]
    assert after["K-4"] > before["K-4"]


def test_upsert_keeps_the_last_doc_of_a_repeated_sku(products_db: sessionmaker[Session]) -> None:
    docs = [ProductDoc(sku="Z", title="Old", category="C", price=1.0),
            ProductDoc(sku="Z", title="New", category="C", price=2.0, attributes={"tags": ["a", "b"]})]
    counts = upsert_products(products_db, docs=docs)
    assert (counts.inserted, counts.updated) == (1, 0)
    counts = upsert_products(products_db, docs=[ProductDoc(sku="Z", title="New", category="C", price=2.0)])
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 1, 0)
    with products_db() as s:
        assert load_products(s) == [ProductDoc(sku="Z", title="New", category="C", price=2.0)]


def _db_products(db_url: str) -> dict[str, ProductDoc]:
    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as s:
            return {d.sku: d for d in load_products(s)}
    finally:
        engine.dispose()


def test_cli_imports_reports_errors_and_reimports(aisle_env: Path, db_url: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    feed = write_feed(tmp_path / "feed.csv", FEED_ROWS)
    errors_csv = tmp_path / "out" / "errors.csv"

    assert main(["catalog", "import", str(feed), "--errors-csv", str(errors_csv)]) == 0

    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert (summary["rows_read"], summary["imported"], summary["inserted"], summary["errors"]) == (4, 3, 3, 1)
    assert "line 4: price 'abc' is not a number" in err
    assert "3 inserted, 0 updated" in err and "aisle index build" not in err
    with errors_csv.open(newline="", encoding="utf-8") as f:
        assert list(csv.reader(f)) == [["line", "reason"], ["4", "price 'abc' is not a number"]]
    assert set(_db_products(db_url)) == {"K-1", "K-2", "K-4"}

    assert main(["index", "build"]) == 0
    capsys.readouterr()
    write_feed(feed, [FEED_ROWS[0].replace("19.99", "17.99"), *FEED_ROWS[1:]])
    assert main(["catalog", "import", str(feed)]) == 0

    out, err = capsys.readouterr()
    assert (json.loads(out)["inserted"], json.loads(out)["updated"]) == (0, 1)
    assert "search index updated in place: 1 products changed, 0 embedded" in err
    assert ProductIndex.load(aisle_env / "index").get("K-1").price == 17.99  # type: ignore[union-attr]
    products = _db_products(db_url)
    assert len(products) == 3 and products["K-1"].price == 17.99


def test_cli_maps_columns_of_a_gzip_jsonl_file(aisle_env: Path, db_url: str, tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "feed.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"code": "J-1", "name": "Tea Pot", "price": 12, "category": "Tea"}) + "\n")
    assert main(["catalog", "import", str(path), "--map", "sku=code,title=name", "--currency", "eur"]) == 0
    assert _db_products(db_url)["J-1"] == ProductDoc(sku="J-1", title="Tea Pot", category="Tea", price=12.0,
                                                     currency="EUR")


def test_cli_refuses_missing_files_bad_maps_and_files_without_products(
        aisle_env: Path, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "import", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv: no such file" in capsys.readouterr().err

    feed = write_feed(tmp_path / "bad.csv", [FEED_ROWS[2]])
    assert main(["catalog", "import", str(feed), "--map", "colour=Color"]) == 2
    assert "unknown field 'colour'" in capsys.readouterr().err

    assert main(["catalog", "import", str(feed)]) == 2
    err = capsys.readouterr().err
    assert "line 2: price 'abc' is not a number" in err and "no valid products" in err
    engine = make_engine(db_url)
    assert "products" not in table_names(engine)  # refused before touching the database
    engine.dispose()
