"""One training example: the chat prompt the model saw, and the reply it should have written.

Examples are stored one JSON object per line (``train.jsonl``, ``eval.jsonl``) by
``aisle finetune export`` and read back by the LoRA trainer and the evaluation.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retrieval.catalog import ProductDoc

SCHEMA = 1
SOURCES = ("assistant", "draft", "catalog")


class ExampleFileError(ValueError):
    """An examples file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Example:
    """A chat prompt and its target reply.

    ``prefix`` is the reply's opening that the server writes itself (an order status,
    an offer of a human); the model continues it, so it is not trained on.
    """

    id: str
    source: str = field(metadata={"help": "assistant (a logged reply), draft (an agent's edit), catalog."})
    group: str = field(metadata={"help": "What the train/eval split is keyed on (conversation or product)."})
    messages: list[dict[str, str]]
    completion: str
    prefix: str = ""
    catalog: list[dict[str, Any]] = field(default_factory=list)
    facts: str | None = None
    route: str = "product"
    kind: str = field(default="", metadata={"help": "The bootstrap turn kind (find, compare, order, injection...)."})
    holdout: str = field(default="", metadata={
        "help": "Why the example is evaluation-only whatever its group's hash (a held-out phrasing or category)."})

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if not self.messages or self.messages[-1].get("role") != "user":
            raise ValueError(f"{self.id}: the prompt must end with the shopper's message")
        if not self.completion.strip():
            raise ValueError(f"{self.id}: empty completion")

    @property
    def question(self) -> str:
        return self.messages[-1]["content"]

    @property
    def offer(self) -> str:
        """The store offer the prompt carried (``<store_offer>``), or ''."""
        m = re.search(r"<store_offer>\n(.*?)\n</store_offer>", self.messages[0].get("content", ""), re.S)
        return m.group(1) if m else ""

    def products(self) -> list[ProductDoc]:
        return [ProductDoc(sku=p["sku"], title=p["title"], category=p.get("category", ""), price=float(p["price"]),
                           currency=p.get("currency", "USD"), stock=int(p.get("stock", 0))) for p in self.catalog]

    def to_json(self) -> str:
        return json.dumps({"schema": SCHEMA, **asdict(self)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Example:
        data = json.loads(line)
        if data.pop("schema", None) != SCHEMA:
            raise ValueError(f"not an aisle example of schema {SCHEMA}")
        return cls(**data)


def held_out(group: str, share: float, seed: int = 0) -> bool:
    """Whether a group falls in the evaluation split; stable across exports, so a conversation never
    moves from one split to the other as the logs grow."""
    bucket = int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return bucket < share


def write_examples(path: Path, examples: Iterable[Example]) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as out:
        for ex in examples:
            out.write(ex.to_json() + "\n")
            n += 1
    return n


def read_examples(path: Path) -> Iterator[Example]:
    """The examples in a JSONL file.

    Raises:
        ExampleFileError: for a missing file or a line that is not an example (with its number).
    """
    if not path.is_file():
        raise ExampleFileError(f"{path}: no such file (run `aisle finetune export` first)")
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield Example.from_json(line)
            except (ValueError, TypeError, KeyError) as exc:
                raise ExampleFileError(f"{path}, line {n}: {exc}") from exc


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
