from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from retrieval.importers import (
    CatalogFileError,
    ImportReport,
    detect_format,
    import_catalog,
    online_retail_category,
    parse_mapping,
    strip_html,
)
from tests.conftest import DATA, data

ONLINE_RETAIL = DATA / "online_retail" / "transactions_until_2011-09-09.csv.gz"

SHOPIFY_HEADER = ["Handle", "Title", "Body (HTML)", "Vendor", "Type", "Tags", "Published", "Option1 Name",
                  "Option1 Value", "Option2 Name", "Option2 Value", "Variant SKU", "Variant Grams",
                  "Variant Inventory Qty", "Variant Price", "Variant Compare At Price", "Image Src",
                  "Image Position", "Variant Image", "Status"]


@dataclass
class ShopifyFile:
    """A generated Shopify export and what a correct importer must make of it."""

    path: Path
    rows: int = 0
    skipped: int = 0
    good: dict[str, dict[str, object]] = field(default_factory=dict)  # sku -> expected fields
    broken: dict[int, str] = field(default_factory=dict)  # line -> part of the reason


def write_shopify(path: Path, n_products: int = 40) -> ShopifyFile:
    """40 products with 1-5 variants (120 variant rows), 2 image rows, 6 broken rows (5%).

    Bodies are multi-line HTML, so records span several physical lines and line numbers
    must count them.
    """
    out = ShopifyFile(path)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(SHOPIFY_HEADER)

    def emit(row: dict[str, str], *, broken: str | None = None, expect: dict[str, object] | None = None,
             image_only: bool = False) -> None:
        line = text.getvalue().count("\n") + 1
        writer.writerow([row.get(name, "") for name in SHOPIFY_HEADER])
        out.rows += 1
        if broken is not None:
            out.broken[line] = broken
        elif image_only:
            out.skipped += 1
        elif expect is not None:
            out.good[str(expect["sku"])] = expect

    for p in range(n_products):
        handle = f"trail-shoe-{p}"
        title = f"Trail Shoe {p}"
        body = f"<p>Light &amp; fast &mdash; model&nbsp;{p}.</p>\n<ul>\n  <li>Grip: <b>excellent</b></li>\n</ul>"
        description = f"Light & fast \u2014 model {p}. Grip: excellent"
        vendor, kind = f"Stridelab{p % 3}", ("Running Shoes" if p % 4 else "")
        image = f"https://cdn.example.com/{handle}.jpg"
        sizes = [str(40 + v) for v in range(1 + p % 5)]
        single = len(sizes) == 1
        for v, size in enumerate(sizes, start=1):
            first = v == 1
            row = {"Handle": handle, "Variant SKU": f"TS{p:03d}-{size}", "Variant Price": f"{50 + p + v}.50",
                   "Variant Inventory Qty": str((p + v) % 7), "Variant Grams": "300",
                   "Option1 Value": "Default Title" if single else size}
            if first:
                row.update({"Title": title, "Body (HTML)": body, "Vendor": vendor, "Type": kind,
                            "Tags": "running, trail , waterproof", "Published": "TRUE",
                            "Option1 Name": "Title" if single else "Size", "Image Src": image,
                            "Image Position": "1", "Status": "active"})
            expect: dict[str, object] = {
                "sku": row["Variant SKU"], "title": title if single else f"{title} - {size}",
                "description": description, "brand": vendor, "category": kind or "Uncategorised",
                "price": 50 + p + v + 0.5, "stock": (p + v) % 7, "image_url": image,
                "attributes": ({} if single else {"size": size}) | {"tags": ["running", "trail", "waterproof"]},
            }
            if p == 3 and v == 2:  # a variant without a SKU gets <Handle>-<n>
                row["Variant SKU"] = ""
                expect["sku"] = f"{handle}-2"
            if p == 5 and first:  # a single-variant product whose (first) row has no Title
                emit(row | {"Title": ""}, broken="title is missing")
            elif p == 8 and v == 3:
                emit(row | {"Handle": "", "Variant SKU": ""}, broken="Handle and Variant SKU are both missing")
            elif p == 12 and v == 2:
                emit(row | {"Variant Price": "abc"}, broken="Variant Price 'abc' is not a number")
            elif p == 19 and first:
                emit(row | {"Variant Price": "-4.00"}, broken="Variant Price '-4.00' is negative")
            elif p == 24 and v == 4:
                emit(row | {"Variant Inventory Qty": "-2"}, broken="Variant Inventory Qty '-2' is negative")
            elif p == 33 and v == 2:  # the SKU of product 32's first variant again
                emit(row | {"Variant SKU": "TS032-40"}, broken="duplicate sku 'TS032-40'")
            else:
                emit(row, expect=expect)
            if p in (9, 28) and first:  # an extra product image: not a variant, not an error
                emit({"Handle": handle, "Image Src": f"{image}?2", "Image Position": "2"}, image_only=True)
    path.write_text(text.getvalue(), encoding="utf-8")
    return out


@pytest.fixture
def shopify(tmp_path: Path) -> ShopifyFile:
    return write_shopify(tmp_path / "products_export.csv")


def test_shopify_export_imports_good_variants_and_reports_broken_rows_by_line(shopify: ShopifyFile) -> None:
    assert shopify.rows - shopify.skipped == 120 and len(shopify.broken) == 6
    assert detect_format(shopify.path) == "shopify"

    report = import_catalog(shopify.path)

    assert report.format == "shopify"
    assert report.rows_read == shopify.rows
    assert report.skipped == shopify.skipped
    assert [e.line for e in report.errors] == sorted(shopify.broken)
    for error in report.errors:
        assert shopify.broken[error.line] in error.reason, (error, shopify.broken[error.line])
    got = {p.sku: p for p in report.products}
    assert set(got) == set(shopify.good)
    for sku, expected in shopify.good.items():
        doc = got[sku]
        assert {name: getattr(doc, name) for name in expected} == expected
        assert doc.currency == "USD"


def test_shopify_variants_inherit_the_product_and_html_is_plain_text(shopify: ShopifyFile) -> None:
    got = {p.sku: p for p in import_catalog(shopify.path).products}
    first, later = got["TS004-40"], got["TS004-44"]  # rows 1 and 5 of product 4
    assert later.title == "Trail Shoe 4 - 44"
    assert (later.description, later.brand, later.category, later.image_url) == (
        first.description, first.brand, first.category, first.image_url)
    assert later.description == "Light & fast \u2014 model 4. Grip: excellent"
    assert "<" not in later.description and "&amp;" not in later.description
    assert got["trail-shoe-3-2"].title == "Trail Shoe 3 - 41"
    assert got["TS000-40"].title == "Trail Shoe 0" and got["TS000-40"].category == "Uncategorised"


def test_shopify_product_without_title_fails_every_variant_with_a_pointer(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        "Handle,Title,Vendor,Option1 Name,Option1 Value,Variant SKU,Variant Price\n"
        "mug,,Acme,Size,S,MUG-S,5\n"
        "mug,,,,M,MUG-M,6\n"
        "cup,Cup,Acme,Size,S,CUP-S,4\n",
        encoding="utf-8",
    )
    report = import_catalog(path)
    assert [(e.line, "title is missing" in e.reason) for e in report.errors] == [(2, True), (3, True)]
    assert "(line 2)" in report.errors[1].reason
    assert [p.sku for p in report.products] == ["CUP-S"]


def test_strip_html_drops_tags_scripts_and_entities() -> None:
    html = "<div><h2>Size&nbsp;guide</h2><p>Fits&#160;true<br/>to size &lt;3</p><script>var x = '<p>';</script>\n\n</div>"
    assert strip_html(html) == "Size guide Fits true to size <3"
    assert strip_html("plain   text\n") == "plain text"


def _gzip(path: Path, text: str) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        f.write(text)
    return path


def test_generic_csv_with_mapping_and_gzip(tmp_path: Path) -> None:
    path = _gzip(tmp_path / "feed.csv.gz",
                 "Variant SKU,Name,Price,category,stock,colour,currency\n"
                 "A-1,Red Kettle,19.99,Kitchen,4,red,\n"
                 'A-2,"Blue\nKettle",abc,Kitchen,1,blue,EUR\n'
                 "A-3,,5,Kitchen,1,,\n"
                 "A-4,Green Kettle,21,,2.5,green,\n"
                 "A-5,Black Kettle,25,,,black,eur\n")
    assert detect_format(path) == "csv"
    report = import_catalog(path, mapping=parse_mapping(["sku=Variant SKU,title=Name", "price=Price"]))
    assert report.rows_read == 5
    assert [(e.line, e.reason) for e in report.errors] == [
        (3, "price 'abc' is not a number"),
        (5, "title is missing"),
        (6, "stock '2.5' is not a whole number"),
    ]
    a1, a5 = report.products
    assert (a1.sku, a1.title, a1.price, a1.stock, a1.currency, a1.category) == ("A-1", "Red Kettle", 19.99, 4, "USD", "Kitchen")
    assert a1.attributes == {"colour": "red"}
    assert (a5.category, a5.stock, a5.currency) == ("Uncategorised", 0, "EUR")


def test_generic_csv_without_a_sku_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_text("Name,price\nKettle,3\n", encoding="utf-8")
    with pytest.raises(CatalogFileError, match="no column for sku, title"):
        import_catalog(path)
    with pytest.raises(CatalogFileError, match="'Nom' \\(for title\\) not in the header"):
        import_catalog(path, mapping={"title": "Nom", "sku": "Name"})


def test_jsonl_reports_malformed_lines_and_keeps_the_rest(tmp_path: Path) -> None:
    lines = [
        json.dumps({"sku": "J-1", "name": "Tea Pot", "price": 12, "category": "Tea", "attributes": {"volume": "1l"},
                    "origin": "JP"}),
        json.dumps({"sku": "J-2", "name": "Tea Cup", "price": "3.5", "stock": 7}),
        '{"sku": "J-3", "name": "Broken", "price": ',
        "",
        '["not", "an", "object"]',
        json.dumps({"sku": "J-4", "name": "Tea Tin", "price": -1}),
        json.dumps({"sku": "J-5", "name": "Tea Tray", "price": True}),
        json.dumps({"sku": "J-6", "name": "Tea Set", "price": 40, "stock": 2.0, "currency": "gbp"}),
    ]
    path = _gzip(tmp_path / "feed.jsonl.gz", "\n".join(lines) + "\n")
    assert detect_format(path) == "jsonl"
    report = import_catalog(path, mapping={"title": "name"})
    assert report.rows_read == 7
    assert [e.line for e in report.errors] == [3, 5, 6, 7]
    assert report.errors[0].reason.startswith("invalid JSON")
    assert "expected a JSON object" in report.errors[1].reason
    assert "is negative" in report.errors[2].reason
    assert "price True is not a number" in report.errors[3].reason
    j1, j2, j6 = report.products
    assert (j1.title, j1.price, j1.attributes) == ("Tea Pot", 12.0, {"volume": "1l", "origin": "JP"})
    assert (j2.price, j2.stock, j2.category) == (3.5, 7, "Uncategorised")
    assert (j6.stock, j6.currency) == (2, "GBP")


@pytest.mark.parametrize(
    ("spec", "message"),
    [("sku", "not field=column"), ("colour=Color", "unknown field 'colour'"), ("sku=A,sku=B", "mapped twice")],
)
def test_bad_mappings_are_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_mapping([spec])


def test_missing_and_empty_files_and_format_overrides(tmp_path: Path) -> None:
    with pytest.raises(CatalogFileError, match="no such file"):
        import_catalog(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(CatalogFileError, match="empty"):
        import_catalog(empty)
    feed = tmp_path / "feed.csv"
    feed.write_text("sku,title,price,category\nX,Thing,1,Misc\n", encoding="utf-8")
    with pytest.raises(CatalogFileError, match="without column"):
        import_catalog(feed, file_format="shopify")
    with pytest.raises(CatalogFileError, match="mapping applies to csv and jsonl"):
        import_catalog(feed, file_format="online-retail", mapping={"sku": "Code"})
    assert [p.sku for p in import_catalog(feed, file_format="csv").products] == ["X"]


def test_online_retail_rows_are_aggregated_and_bad_ones_reported(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n"
        "536366,85123a,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-03 08:26:00,2.95,17850,United Kingdom\n"
        "C536367,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-1,2010-12-05 08:26:00,9.99,17850,United Kingdom\n"
        "536368,85123A,?,-3,2010-12-06 08:26:00,0,,United Kingdom\n"
        "536369,POST,POSTAGE,1,2010-12-06 08:26:00,18,,France\n"
        "536370,22423,REGENCY CAKESTAND 3 TIER,1,2010-12-07 08:26:00,abc,,United Kingdom\n"
        "536371,22423,REGENCY CAKESTAND 3 TIER,1,yesterday,12.75,,United Kingdom\n"
        "536372,22423,REGENCY CAKESTAND 3 TIER,1,12/9/2010 9:30,12.75,,United Kingdom\n"
        "536373,gift_0001_20,Dotcomgiftshop Gift Voucher,1,2010-12-09 10:00:00,16.67,,United Kingdom\n"
        "536374,21777,,1,2010-12-09 10:00:00,4.25,,United Kingdom\n",
        encoding="utf-8",
    )
    report = import_catalog(path)
    assert report.format == "online-retail" and report.rows_read == 10
    assert report.skipped == 4  # the cancellation, the zero price, postage and the voucher
    assert [(e.line, e.reason) for e in report.errors] == [
        (7, "UnitPrice 'abc' is not a number"),
        (8, "InvoiceDate 'yesterday' is not a date"),
        (11, "StockCode 21777 has no Description on any sale"),
    ]
    by_sku = {p.sku: p for p in report.products}
    assert set(by_sku) == {"85123A", "22423"}
    heart = by_sku["85123A"]
    assert (heart.title, heart.price, heart.currency, heart.stock) == ("White Hanging Heart T-Light Holder", 2.95, "GBP", 100)
    assert heart.category == "Candles & Lighting"
    assert by_sku["22423"].title == "Regency Cakestand 3 Tier" and by_sku["22423"].price == 12.75


@pytest.mark.parametrize(
    ("description", "category"),
    [("PAPER CHAIN KIT 50'S CHRISTMAS", "Seasonal & Party"), ("SET 3 RETROSPOT TEA/COFFEE/SUGAR", "Kitchen & Dining"),
     ("JUMBO BAG RED RETROSPOT", "Bags & Storage"), ("ASSORTED COLOUR BIRD ORNAMENT", "Home Decor"),
     ("INFLATABLE POLITICAL GLOBE", "Home & Gifts")],
)
def test_online_retail_categories_come_from_keywords(description: str, category: str) -> None:
    assert online_retail_category(description) == category


@pytest.fixture(scope="module")
def online_retail() -> ImportReport:
    data("online_retail")
    return import_catalog(ONLINE_RETAIL)


def _latest_prices(path: Path) -> dict[str, float]:
    """An independent pass: latest positive, non-cancelled price per upper-cased StockCode."""
    latest: dict[str, tuple[str, float]] = {}
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            code, price = row["StockCode"].upper(), float(row["UnitPrice"])
            if row["InvoiceNo"].startswith("C") or price <= 0 or not code[:5].isdigit():
                continue
            if code not in latest or row["InvoiceDate"] >= latest[code][0]:  # ISO dates sort as text
                latest[code] = (row["InvoiceDate"], price)
    return {code: price for code, (_, price) in latest.items()}


def test_online_retail_file_gives_one_product_per_stock_code_at_its_latest_price(online_retail: ImportReport) -> None:
    expected = _latest_prices(ONLINE_RETAIL)
    got = {p.sku: p for p in online_retail.products}
    assert online_retail.format == "online-retail"
    assert 3000 <= len(got) <= 4500
    assert online_retail.rows_read == 334054 and online_retail.errors == []
    assert got["85123A"].price == expected["85123A"]
    assert got["85123A"].title == "White Hanging Heart T-Light Holder"
    assert {sku: p.price for sku, p in got.items()} == {sku: expected[sku] for sku in got}
    assert set(expected) - set(got) == set()
    assert all(p.currency == "GBP" and p.stock == 100 and p.title for p in got.values())
    assert len({p.category for p in got.values()}) >= 8


def test_online_retail_leaves_out_cancellations_and_non_product_codes(online_retail: ImportReport) -> None:
    only_cancelled: set[str] = set()
    sold: set[str] = set()
    with gzip.open(ONLINE_RETAIL, "rt", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            (only_cancelled if row["InvoiceNo"].startswith("C") else sold).add(row["StockCode"].upper())
    only_cancelled -= sold
    skus = {p.sku for p in online_retail.products}
    assert only_cancelled and not only_cancelled & skus
    assert not {"POST", "DOT", "M", "D", "S", "C2", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS"} & skus
    assert not [s for s in skus if s.startswith(("GIFT", "DCGS"))]
    assert online_retail.skipped > 6000  # at least the cancellations
