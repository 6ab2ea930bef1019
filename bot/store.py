"""The store's data in SQL: catalog rows <-> ProductDoc, catalog upserts, and loading the demo store."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from bot.models import Event, Order, Product, Review, User, utcnow
from retrieval.catalog import ProductDoc
from retrieval.demo_store import DemoStore
from retrieval.embed import Encoder
from retrieval.index import IndexLoadError, ProductIndex

Say = Callable[[str], None]


def to_doc(row: Product) -> ProductDoc:
    return ProductDoc(
        sku=row.sku, title=row.title, category=row.category, price=row.price,
        description=row.description, brand=row.brand, currency=row.currency, stock=row.stock,
        attributes=dict(row.attributes or {}), image_url=row.image_url,
    )


def load_products(session: Session) -> list[ProductDoc]:
    """Every product in the catalog, ordered by SKU."""
    return [to_doc(p) for p in session.scalars(select(Product).order_by(Product.sku))]


def count_products(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Product)) or 0)


def _chunks(rows: list[dict], size: int = 5000) -> Iterable[list[dict]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """How many products an upsert inserted, changed, and found already up to date."""

    inserted: int
    updated: int
    unchanged: int


def upsert_products(factory: sessionmaker[Session], *, docs: Iterable[ProductDoc],
                    chunk_size: int = 500) -> UpsertResult:
    """Insert new products and update existing ones in place, matched by SKU, in one transaction.

    Portable across SQLite and PostgreSQL: existing rows are loaded by SKU in chunks and
    compared field by field; only rows whose values differ are written, and only they get
    a new ``updated_at``. A SKU given twice keeps its last doc.
    """
    latest = {doc.sku: doc for doc in docs}
    skus = list(latest)
    inserted = updated = unchanged = 0
    with factory() as session, session.begin():
        for start in range(0, len(skus), chunk_size):
            chunk = skus[start : start + chunk_size]
            existing = {row.sku: row for row in session.scalars(select(Product).where(Product.sku.in_(chunk)))}
            now = utcnow()
            new_rows = []
            for sku in chunk:
                values = latest[sku].to_dict()
                row = existing.get(sku)
                if row is None:
                    new_rows.append({**values, "updated_at": now})
                    continue
                changed = {name: value for name, value in values.items() if getattr(row, name) != value}
                if not changed:
                    unchanged += 1
                    continue
                for name, value in changed.items():
                    setattr(row, name, value)
                row.updated_at = now
                updated += 1
            if new_rows:
                session.execute(insert(Product), new_rows)
                inserted += len(new_rows)
            session.flush()
    return UpsertResult(inserted=inserted, updated=updated, unchanged=unchanged)


def load_demo_store(factory: sessionmaker[Session], store: DemoStore, say: Say = print) -> dict[str, int]:
    """Insert a generated demo store into an empty database, in one transaction.

    Raises:
        RuntimeError: if the database already holds products.
    """
    with factory() as session, session.begin():
        if count_products(session):
            raise RuntimeError("the database already has products; demo data is only loaded into an empty store")
        session.execute(insert(Product), [p.to_dict() for p in store.products])
        session.execute(insert(User), [{"external_id": s.external_id, "locale": s.locale} for s in store.shoppers])
        product_id = dict(session.execute(select(Product.sku, Product.id)).tuples().all())
        user_id = dict(session.execute(select(User.external_id, User.id)).tuples().all())
        say(f"[demo] {len(store.products)} products, {len(store.shoppers)} shoppers")
        events = [
            {"user_id": user_id[e.shopper], "product_id": product_id.get(e.sku) if e.sku else None,
             "type": e.type, "value": e.value, "query": e.query, "session": e.session, "created_at": e.at}
            for e in store.events
        ]
        for chunk in _chunks(events):
            session.execute(insert(Event), chunk)
        say(f"[demo] {len(events)} behaviour events")
        session.execute(insert(Review), [
            {"user_id": user_id[r.shopper], "product_id": product_id[r.sku], "rating": r.rating,
             "text": r.text, "created_at": r.at} for r in store.reviews
        ])
        session.execute(insert(Order), [
            {"number": o.number, "user_id": user_id[o.shopper], "status": o.status, "items": o.items,
             "total": o.total, "created_at": o.at, "updated_at": o.at} for o in store.orders
        ])
        say(f"[demo] {len(store.reviews)} reviews, {len(store.orders)} orders")
    return {"products": len(store.products), "shoppers": len(store.shoppers), "events": len(events),
            "reviews": len(store.reviews), "orders": len(store.orders)}


def build_index(factory: sessionmaker[Session], encoder: Encoder, directory: Path | None = None,
                say: Say = print, progress: bool = True) -> ProductIndex:
    """Embed every catalog product and build (and optionally save) the FAISS index."""
    with factory() as session:
        products = load_products(session)
    say(f"[index] embedding {len(products)} products")
    vectors = encoder.encode_documents([p.embedding_text() for p in products], progress=progress)
    index = ProductIndex(encoder.dim)
    index.upsert(products, vectors)
    if directory is not None:
        index.save(directory)
        say(f"[index] saved {len(index)} products to {directory}")
    return index


def open_index(factory: sessionmaker[Session], encoder: Encoder, directory: Path,
               say: Say = print) -> ProductIndex:
    """Load the saved index, rebuilding it when missing or out of step with the catalog."""
    with factory() as session:
        n = count_products(session)
    try:
        index = ProductIndex.load(directory)
        if len(index) == n and index.dim == encoder.dim:
            return index
        say(f"[index] saved index has {len(index)} products, catalog has {n}: rebuilding")
    except IndexLoadError:
        say("[index] no saved index: building")
    return build_index(factory, encoder, directory, say=say, progress=False)


def refresh_index(directory: Path, docs: list[ProductDoc], encoder: Encoder) -> tuple[int, int]:
    """Apply changed products to the saved index without a rebuild, and save it.

    Only products whose text changed (or that are new) are embedded again; a price or
    stock change just updates the filter metadata. Returns (embedded, changed).
    """
    index = ProductIndex.load(directory)
    changed = [d for d in docs if index.get(d.sku) != d]
    fresh = [d for d in changed if (old := index.get(d.sku)) is None or old.embedding_text() != d.embedding_text()]
    meta_only = [d for d in changed if d not in fresh]
    if fresh:
        index.upsert(fresh, encoder.encode_documents([d.embedding_text() for d in fresh]))
    if meta_only:
        index.upsert(meta_only, None)
    if changed:
        index.save(directory)
    return len(fresh), len(changed)
