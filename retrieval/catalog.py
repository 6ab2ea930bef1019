"""Product schema shared by importers, the index and the prompt."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ProductDoc:
    """One sellable product, keyed by SKU."""

    sku: str
    title: str
    category: str
    price: float
    description: str = ""
    brand: str = ""
    currency: str = "USD"
    stock: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    image_url: str | None = None

    def __post_init__(self) -> None:
        if not self.sku or not self.sku.strip():
            raise ValueError("sku must not be empty")
        if not self.title or not self.title.strip():
            raise ValueError(f"{self.sku}: title must not be empty")
        if not self.price >= 0:
            raise ValueError(f"{self.sku}: price must be a non-negative number, got {self.price!r}")
        if self.stock < 0:
            raise ValueError(f"{self.sku}: stock must not be negative, got {self.stock}")

    @property
    def in_stock(self) -> bool:
        return self.stock > 0

    def embedding_text(self) -> str:
        """The text the encoder sees for this product."""
        attrs = ", ".join(f"{k}: {v}" for k, v in sorted(self.attributes.items()))
        parts = [self.title, self.category, self.brand, self.description, attrs]
        return ". ".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
