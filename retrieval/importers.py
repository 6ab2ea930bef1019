"""Catalog importers: generic CSV/JSONL, Shopify product exports, Online Retail transactions.

Every importer turns a file (plain or gzip) into :class:`~retrieval.catalog.ProductDoc`
objects and keeps going past bad rows: each one becomes a :class:`RowError` that names
the physical line where the record starts (1-based; a CSV header is line 1). Nothing
here touches a database; ``bot.store.upsert_products`` writes the result.

Formats (:data:`FORMATS`), detected from the first line by :func:`detect_format`:

- ``csv`` / ``jsonl``: one product per row or line. Columns (keys) named like the
  ProductDoc fields fill them; ``--map field=column`` renames; every other non-empty
  column goes into ``attributes``.
- ``shopify``: a Shopify product CSV export. The first row of a ``Handle`` carries the
  product (Title, Body (HTML), Vendor, Type, Tags, option names, Image Src); each
  variant row becomes one product, inheriting those fields. A variant with no
  ``Variant SKU`` gets ``<Handle>-<n>``. Image-only rows are skipped.
- ``online-retail``: the UCI Online Retail transactions; see :func:`read_online_retail`.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any, TypeVar

from retrieval.catalog import ProductDoc

FORMATS = ("csv", "jsonl", "shopify", "online-retail")
DOC_FIELDS = tuple(f.name for f in fields(ProductDoc))
DEFAULT_CATEGORY = "Uncategorised"
# Column sizes of the products table; longer values are reported, not truncated.
MAX_LENGTHS = {"sku": 64, "title": 300, "category": 100, "brand": 100, "image_url": 500}

SHOPIFY_REQUIRED = ("Handle", "Title", "Variant Price")
ONLINE_RETAIL_REQUIRED = ("InvoiceNo", "StockCode", "Description", "InvoiceDate", "UnitPrice")
ONLINE_RETAIL_CURRENCY = "GBP"
ONLINE_RETAIL_STOCK = 100
"""The data has sales, not inventory: every product gets this stock so it counts as available."""

# Regular stock numbers start with five digits (22423, 85123A, 15056BL). This leaves out
# postage (POST, DOT, C2), fees and adjustments (M, D, S, B, BANK CHARGES, AMAZONFEE, CRUK),
# gift vouchers (gift_0001_20) and a handful of DCGS* web-shop codes.
_PRODUCT_CODE = re.compile(r"\d{5}")


def is_product_code(stock_code: str) -> bool:
    """Whether an Online Retail StockCode names a product (postage, fees and manual lines do not)."""
    return bool(_PRODUCT_CODE.match(stock_code.strip()))

# First match wins; a description that matches none is "Home & Gifts".
ONLINE_RETAIL_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Seasonal & Party", ("CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "SNOWFLAKE", "BAUBLE",
                          "EASTER", "HALLOWEEN", "VALENTINE", "BIRTHDAY", "PARTY", "BUNTING")),
    ("Jewellery & Accessories", ("NECKLACE", "BRACELET", "EARRINGS", "RING", "CHARM", "BEAD", "BANGLE",
                                 "BROOCH", "HAIR", "PURSE", "UMBRELLA")),
    ("Candles & Lighting", ("CANDLE", "T-LIGHT", "TEALIGHT", "LANTERN", "LIGHT", "LAMP", "INCENSE",
                            "BURNER", "NIGHTLIGHT")),
    ("Kitchen & Dining", ("MUG", "CUP", "PLATE", "BOWL", "JAR", "TIN", "TEA", "TEAPOT", "COFFEE", "CAKE",
                          "CUTLERY", "LUNCH", "PANTRY", "KITCHEN", "APRON", "TRAY", "DISH", "JAM",
                          "NAPKIN", "PLACEMAT", "COASTER", "BAKING", "SPOON", "LADLE", "GLASS")),
    ("Toys & Games", ("TOY", "GAME", "JIGSAW", "PUZZLE", "DOLL", "DOMINOES", "CRAYONS", "SKIPPING",
                      "SPACEBOY", "KIT")),
    ("Stationery & Gift Wrap", ("CARD", "PAPER", "WRAP", "NOTEBOOK", "PEN", "PENCIL", "STICKER", "TAPE",
                                "TISSUES", "ENVELOPE", "CALENDAR", "BOOK", "JOURNAL", "RIBBON", "TAG")),
    ("Garden & Outdoor", ("GARDEN", "PARASOL", "PICNIC", "HAMMOCK", "WATERING", "BIRDHOUSE", "PLANTER")),
    ("Bags & Storage", ("BAG", "BASKET", "STORAGE", "BOX", "CASE", "HAMPER")),
    ("Home Decor", ("SIGN", "CUSHION", "MIRROR", "CLOCK", "FRAME", "DOORMAT", "HOOK", "DECORATION",
                    "ORNAMENT", "HANGER", "VASE", "TILE", "KNOB", "WREATH", "GARLAND", "HOLDER")),
)
ONLINE_RETAIL_DEFAULT_CATEGORY = "Home & Gifts"
_CATEGORY_PATTERNS = tuple(
    (name, re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")(?:S|ES)?\b"))
    for name, words in ONLINE_RETAIL_CATEGORIES
)


class CatalogFileError(ValueError):
    """The file as a whole cannot be imported (missing, unreadable, no usable header)."""


@dataclass(frozen=True, slots=True)
class RowError:
    """A record that was not imported: where it starts in the file, and why."""

    line: int
    reason: str


@dataclass(slots=True)
class ImportReport:
    """What an import read: the valid products, the rejected rows, and counts."""

    format: str
    products: list[ProductDoc] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows_read: int = 0
    skipped: int = 0  # rows left out on purpose (image-only rows, cancellations, postage...)


class _RowProblem(ValueError):
    """One row is invalid; the message is the reason shown to the user."""


Row = tuple[int, dict[str, str]]
_T = TypeVar("_T")


# ---------------------------------------------------------------------------- entry point


def import_catalog(path: Path, *, file_format: str | None = None, mapping: Mapping[str, str] | None = None,
                   currency: str = "USD", progress: bool = False) -> ImportReport:
    """Read a catalog file into products and row errors.

    Args:
        path: a CSV, JSONL, Shopify CSV or Online Retail CSV file, plain or gzip.
        file_format: one of :data:`FORMATS`; None detects it from the first line.
        mapping: ``{field: source column}`` renames for ``csv`` and ``jsonl``.
        currency: the currency of rows that name none (csv, jsonl, shopify).
        progress: show a tqdm bar over rows on stderr.

    Raises:
        CatalogFileError: the file is missing, not UTF-8 (or gzip) text, or lacks the
            columns its format needs.
        ValueError: ``currency`` is not a three-letter code.
    """
    if not path.is_file():
        raise CatalogFileError(f"{path}: no such file")
    fmt = file_format or detect_format(path)
    if fmt not in FORMATS:
        raise CatalogFileError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if mapping and fmt not in ("csv", "jsonl"):
        raise CatalogFileError(f"a column mapping applies to csv and jsonl files, not {fmt}")
    try:
        currency = _currency(currency)
    except _RowProblem as exc:
        raise ValueError(str(exc)) from None
    report = ImportReport(format=fmt)

    def bar(rows: Iterable[_T]) -> Iterator[_T]:
        from tqdm import tqdm

        for row in tqdm(rows, desc=f"[catalog] {path.name}", unit=" rows", unit_scale=True,
                        file=sys.stderr, disable=not progress, mininterval=0.5):
            report.rows_read += 1
            yield row

    with _readable(path), _open_text(path) as stream:
        if fmt == "jsonl":
            docs = read_generic(bar(_jsonl_rows(stream, report)), mapping or {}, currency, report)
        else:
            header, rows = _csv_rows(stream, report)
            if fmt == "csv":
                _check_generic_header(header, mapping or {})
                docs = read_generic(bar(rows), mapping or {}, currency, report)
            elif fmt == "shopify":
                _require(header, SHOPIFY_REQUIRED, fmt)
                docs = read_shopify(bar(rows), currency, report)
            else:
                _require(header, ONLINE_RETAIL_REQUIRED, fmt)
                docs = read_online_retail(bar(rows), report)
        _keep_unique(docs, report)
    report.errors.sort(key=lambda e: e.line)
    return report


def detect_format(path: Path) -> str:
    """Guess the format from the first non-blank line: JSON object, Shopify or Online Retail header, else csv.

    Raises:
        CatalogFileError: the file is empty.
    """
    with _readable(path), _open_text(path) as stream:
        first = next((line for line in stream if line.strip()), None)
    if first is None:
        raise CatalogFileError(f"{path}: the file is empty")
    if first.lstrip().startswith("{"):
        return "jsonl"
    header = {name.strip() for name in next(csv.reader([first]), [])}
    if {"Handle", "Variant Price"} <= header or {"Handle", "Variant SKU"} <= header:
        return "shopify"
    if {"InvoiceNo", "StockCode", "UnitPrice"} <= header:
        return "online-retail"
    return "csv"


def parse_mapping(specs: Iterable[str]) -> dict[str, str]:
    """Parse ``field=column`` pairs, comma-separated, e.g. ``"sku=Variant SKU,title=Name"``.

    Raises:
        ValueError: a pair has no ``=``, names an unknown field, or maps a field twice.
    """
    mapping: dict[str, str] = {}
    for spec in specs:
        for pair in filter(str.strip, spec.split(",")):
            name, sep, column = pair.partition("=")
            name, column = name.strip(), column.strip()
            if not sep or not name or not column:
                raise ValueError(f"mapping {pair.strip()!r} is not field=column")
            if name not in DOC_FIELDS:
                raise ValueError(f"mapping {pair.strip()!r}: unknown field {name!r}; fields are {', '.join(DOC_FIELDS)}")
            if name in mapping:
                raise ValueError(f"field {name!r} is mapped twice")
            mapping[name] = column
    return mapping


# ---------------------------------------------------------------------------- reading


@contextmanager
def _readable(path: Path) -> Iterator[None]:
    """Turn decoding and decompression failures into a CatalogFileError that names the file."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise CatalogFileError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except (gzip.BadGzipFile, EOFError) as exc:
        raise CatalogFileError(f"{path}: damaged gzip file ({exc})") from exc


def _open_text(path: Path) -> IO[str]:
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def _csv_rows(stream: IO[str], report: ImportReport) -> tuple[list[str], Iterator[Row]]:
    """The header and an iterator of (first line of the record, {column: value})."""
    reader = csv.reader(stream)
    end = 0

    def records() -> Iterator[tuple[int, list[str]]]:
        nonlocal end
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # the reader cannot resynchronise after this
                report.errors.append(RowError(end + 1, f"unreadable CSV, import stopped here: {exc}"))
                return
            start, end = end + 1, reader.line_num
            if any(cell.strip() for cell in row):
                yield start, row

    numbered = records()
    first = next(numbered, None)
    if first is None:
        raise CatalogFileError("the file has no header row")
    header = [name.strip() for name in first[1]]

    def rows() -> Iterator[Row]:
        for line, row in numbered:
            if len(row) > len(header):
                report.errors.append(RowError(line, f"{len(row)} fields but the header has {len(header)}"))
                report.rows_read += 1
                continue
            yield line, dict(zip(header, row + [""] * (len(header) - len(row)), strict=True))

    return header, rows()


def _jsonl_rows(stream: IO[str], report: ImportReport) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, text in enumerate(stream, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            report.errors.append(RowError(line, f"invalid JSON: {exc.msg} at column {exc.colno}"))
            report.rows_read += 1
            continue
        if not isinstance(obj, dict):
            report.errors.append(RowError(line, f"expected a JSON object, got {type(obj).__name__}"))
            report.rows_read += 1
            continue
        yield line, obj


def _require(header: list[str], columns: Iterable[str], fmt: str) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise CatalogFileError(f"{fmt} file without column(s) {', '.join(missing)}; header is {', '.join(header)}")


def _keep_unique(docs: Iterable[tuple[int, ProductDoc]], report: ImportReport) -> None:
    first_line: dict[str, int] = {}
    for line, doc in docs:
        if doc.sku in first_line:
            report.errors.append(RowError(line, f"duplicate sku {doc.sku!r} (first on line {first_line[doc.sku]})"))
            continue
        first_line[doc.sku] = line
        report.products.append(doc)


# ---------------------------------------------------------------------------- values


def _text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _RowProblem(f"{name} must be text, got {type(value).__name__}")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number(name: str, value: Any, kind: str) -> float:
    """A finite, non-negative number from a CSV cell or a JSON value."""
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError
        number = float(value)
        if not math.isfinite(number):
            raise ValueError
    except ValueError:
        raise _RowProblem(f"{name} {value!r} is not {kind}") from None
    if number < 0:
        raise _RowProblem(f"{name} {value!r} is negative")
    return number


def _price(value: Any, name: str = "price") -> float:
    if _blank(value):
        raise _RowProblem(f"{name} is missing")
    return _number(name, value, "a number")


def _stock(value: Any, name: str = "stock") -> int:
    if _blank(value):
        return 0
    number = _number(name, value, "a whole number")
    if not number.is_integer():
        raise _RowProblem(f"{name} {value!r} is not a whole number")
    return int(number)


def _currency(value: Any) -> str:
    code = _text("currency", value).upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise _RowProblem(f"currency {value!r} is not a three-letter code")
    return code


def _attributes(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _RowProblem("attributes is not valid JSON") from None
    if not isinstance(value, dict):
        raise _RowProblem("attributes must be a JSON object")
    return value


def _doc(**values: Any) -> ProductDoc:
    """A ProductDoc from cleaned values, with missing-field and length checks first."""
    for name in ("sku", "title"):
        if not values.get(name):
            raise _RowProblem(f"{name} is missing")
    for name, limit in MAX_LENGTHS.items():
        if len(values.get(name) or "") > limit:
            raise _RowProblem(f"{name} is longer than {limit} characters")
    try:
        return ProductDoc(**values)
    except (TypeError, ValueError) as exc:
        raise _RowProblem(str(exc)) from None


def _collect(rows: Iterable[tuple[int, Any]], make: Callable[[int, Any], ProductDoc | None],
             report: ImportReport) -> Iterator[tuple[int, ProductDoc]]:
    for line, row in rows:
        try:
            doc = make(line, row)
        except _RowProblem as exc:
            report.errors.append(RowError(line, str(exc)))
            continue
        if doc is not None:
            yield line, doc


# ---------------------------------------------------------------------------- generic csv / jsonl


def _check_generic_header(header: list[str], mapping: Mapping[str, str]) -> None:
    absent = [f"{column!r} (for {name})" for name, column in mapping.items() if column not in header]
    if absent:
        raise CatalogFileError(f"mapped column(s) {', '.join(absent)} not in the header: {', '.join(header)}")
    covered = {name for name in DOC_FIELDS if name in header} | set(mapping)
    missing = [name for name in ("sku", "title", "price") if name not in covered]
    if missing:
        raise CatalogFileError(
            f"no column for {', '.join(missing)}; name columns like the fields or map them, "
            f"e.g. --map {missing[0]}=COLUMN (header: {', '.join(header)})"
        )


def read_generic(rows: Iterable[tuple[int, Mapping[str, Any]]], mapping: Mapping[str, str], currency: str,
                 report: ImportReport) -> Iterator[tuple[int, ProductDoc]]:
    """Products from csv rows or JSON objects; unmapped, non-empty columns become attributes."""
    source = {name: mapping.get(name, name) for name in DOC_FIELDS}
    used = set(source.values())

    def make(_line: int, row: Mapping[str, Any]) -> ProductDoc:
        get = {name: row.get(column) for name, column in source.items()}
        attributes = {k: v for k, v in row.items() if k and k not in used and v not in (None, "")}
        attributes.update(_attributes(get["attributes"]))
        return _doc(
            sku=_text("sku", get["sku"]), title=_text("title", get["title"]),
            description=_text("description", get["description"]),
            category=_text("category", get["category"]) or DEFAULT_CATEGORY,
            brand=_text("brand", get["brand"]), price=_price(get["price"]),
            currency=_currency(get["currency"]) if get["currency"] not in (None, "") else currency,
            stock=_stock(get["stock"]), attributes=attributes,
            image_url=_text("image_url", get["image_url"]) or None,
        )

    return _collect(rows, make, report)


# ---------------------------------------------------------------------------- shopify


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset({"address", "article", "blockquote", "br", "dd", "div", "dl", "dt", "h1", "h2", "h3",
                        "h4", "h5", "h6", "hr", "li", "ol", "p", "section", "table", "td", "th", "tr", "ul"})
    _HIDDEN = frozenset({"script", "style", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self.hidden += 1
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def strip_html(text: str) -> str:
    """Plain text from an HTML fragment: tags dropped, entities unescaped, whitespace collapsed."""
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return " ".join("".join(parser.parts).split())


@dataclass(slots=True)
class _ShopifyProduct:
    line: int
    title: str
    description: str
    brand: str
    category: str
    tags: list[str]
    option_names: tuple[str, str, str]
    image_url: str
    variants: int = 0


def _shopify_product(line: int, row: Mapping[str, str]) -> _ShopifyProduct:
    tags = [t.strip() for t in row.get("Tags", "").split(",") if t.strip()]
    names = tuple(row.get(f"Option{i} Name", "").strip() for i in (1, 2, 3))
    return _ShopifyProduct(
        line=line, title=row.get("Title", "").strip(), description=strip_html(row.get("Body (HTML)", "")),
        brand=row.get("Vendor", "").strip(), category=row.get("Type", "").strip() or DEFAULT_CATEGORY,
        tags=tags, option_names=(names[0], names[1], names[2]), image_url=row.get("Image Src", "").strip(),
    )


def read_shopify(rows: Iterable[Row], currency: str, report: ImportReport) -> Iterator[tuple[int, ProductDoc]]:
    """One product per variant row; later rows of a Handle inherit the first row's product fields."""
    products: dict[str, _ShopifyProduct] = {}
    variant_fields = ("Variant SKU", "Variant Price", "Option1 Value", "Option2 Value", "Option3 Value")

    def make(line: int, row: Mapping[str, str]) -> ProductDoc | None:
        handle, sku = row.get("Handle", "").strip(), row.get("Variant SKU", "").strip()
        if not handle:
            raise _RowProblem("Handle and Variant SKU are both missing" if not sku else f"Handle is missing (Variant SKU {sku!r})")
        product = products.get(handle)
        if product is None or row.get("Title", "").strip():
            seen = product.variants if product else 0
            product = products[handle] = _shopify_product(line, row)
            product.variants = seen
        if not any(row.get(name, "").strip() for name in variant_fields):  # an extra image of the product
            product.image_url = product.image_url or row.get("Image Src", "").strip()
            report.skipped += 1
            return None
        product.variants += 1
        if not product.title:
            where = "this row" if product.line == line else f"line {product.line}"
            raise _RowProblem(f"title is missing: the first row of product {handle!r} ({where}) has no Title")
        values = [row.get(f"Option{i} Value", "").strip() for i in (1, 2, 3)]
        chosen = [v for v in values if v and v != "Default Title"]
        options = {(name or f"option{i}").lower(): value
                   for i, (name, value) in enumerate(zip(product.option_names, values, strict=True), start=1)
                   if value and value != "Default Title"}
        attributes: dict[str, Any] = dict(options)
        if product.tags:
            attributes["tags"] = list(product.tags)
        return _doc(
            sku=sku or f"{handle}-{product.variants}",
            title=" - ".join([product.title, " / ".join(chosen)]) if chosen else product.title,
            description=product.description, category=product.category, brand=product.brand,
            price=_price(row.get("Variant Price"), "Variant Price"),
            stock=_stock(row.get("Variant Inventory Qty"), "Variant Inventory Qty"),
            currency=currency, attributes=attributes,
            image_url=row.get("Variant Image", "").strip() or product.image_url or None,
        )

    return _collect(rows, make, report)


# ---------------------------------------------------------------------------- online retail


def online_retail_category(description: str) -> str:
    """A category from keywords in an Online Retail description (see ONLINE_RETAIL_CATEGORIES)."""
    text = description.upper()
    for name, pattern in _CATEGORY_PATTERNS:
        if pattern.search(text):
            return name
    return ONLINE_RETAIL_DEFAULT_CATEGORY


def _title_case(text: str) -> str:
    """'WHITE HANGING HEART T-LIGHT HOLDER' -> 'White Hanging Heart T-Light Holder' ("DOLLY'S" -> "Dolly's")."""
    return re.sub(r"[a-z]+(?:'[a-z]+)?", lambda m: m[0].capitalize(), " ".join(text.split()).lower())


def _invoice_date(value: str) -> datetime:
    text = value.strip()
    try:
        return datetime.fromisoformat(text)  # 2010-12-01 08:26:00
    except ValueError:
        pass
    try:
        return datetime.strptime(text, "%m/%d/%Y %H:%M")  # 12/1/2010 8:26, as in the original workbook
    except ValueError:
        raise _RowProblem(f"InvoiceDate {value!r} is not a date") from None


@dataclass(slots=True)
class _Latest:
    at: datetime
    line: int
    price: float
    title: str = ""
    title_at: datetime | None = None


def read_online_retail(rows: Iterable[Row], report: ImportReport) -> Iterator[tuple[int, ProductDoc]]:
    """One product per StockCode from sales lines, at its latest price.

    - Rows left out (counted in ``skipped``): cancellations (InvoiceNo starting with "C"),
      codes that do not start with five digits (postage, fees, vouchers), UnitPrice <= 0.
    - Rows reported as errors: unparseable UnitPrice or InvoiceDate.
    - StockCodes are upper-cased (85123a and 85123A are one product).
    - Price: that of the latest sale by InvoiceDate; ties go to the later line.
    - Title: the latest non-empty Description, title-cased; category from its keywords
      (:func:`online_retail_category`); currency GBP; stock :data:`ONLINE_RETAIL_STOCK`.
    """
    latest: dict[str, _Latest] = {}
    for line, row in rows:
        code = row["StockCode"].strip().upper()
        if row["InvoiceNo"].strip().upper().startswith("C") or not _PRODUCT_CODE.match(code):
            report.skipped += 1
            continue
        try:
            price = float(row["UnitPrice"])
        except ValueError:
            report.errors.append(RowError(line, f"UnitPrice {row['UnitPrice']!r} is not a number"))
            continue
        try:
            at = _invoice_date(row["InvoiceDate"])
        except _RowProblem as exc:
            report.errors.append(RowError(line, str(exc)))
            continue
        if not math.isfinite(price):
            report.errors.append(RowError(line, f"UnitPrice {row['UnitPrice']!r} is not a finite number"))
            continue
        if price <= 0:  # free samples, write-offs and adjustments are not sales
            report.skipped += 1
            continue
        best = latest.get(code)
        if best is None:
            best = latest[code] = _Latest(at=at, line=line, price=price)
        elif at >= best.at:
            best.at, best.line, best.price = at, line, price
        title = row["Description"].strip()
        if title and (best.title_at is None or at >= best.title_at):
            best.title, best.title_at = title, at

    def make(line: int, code: str) -> ProductDoc:
        best = latest[code]
        if not best.title:
            raise _RowProblem(f"StockCode {code} has no Description on any sale")
        return _doc(sku=code, title=_title_case(best.title), category=online_retail_category(best.title),
                    price=best.price, currency=ONLINE_RETAIL_CURRENCY, stock=ONLINE_RETAIL_STOCK)

    return _collect(sorted(((b.line, code) for code, b in latest.items()), key=lambda p: p[1]), make, report)
