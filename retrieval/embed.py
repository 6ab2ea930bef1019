"""Sentence-transformers encoder for queries and product documents."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' load reports and its own progress bars off while loading a model we know the shape of
    (the MiniLM encoder without its pooler, a GGUF to convert, an adapter to merge): installing and serving
    print one line per step, and a user reads "pooler.dense.bias | UNEXPECTED" as an error. Errors still show."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


class Encoder:
    """Wraps a SentenceTransformer; every vector is L2-normalised float32.

    Args:
        model_dir: a local sentence-transformers directory (no hub access).
        device: torch device, "cpu" by default.
    """

    def __init__(self, model_dir: Path | str, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        with quiet_transformers():
            self.model = SentenceTransformer(str(model_dir), device=device, local_files_only=True)
        self.dim = int(self.model.get_embedding_dimension() or 0)

    def _encode(self, texts: Sequence[str], batch_size: int, progress: bool) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_query(self, text: str | Sequence[str]) -> np.ndarray:
        """Encode one query (returns shape (dim,)) or a batch (shape (n, dim))."""
        if isinstance(text, str):
            return self._encode([text], 1, False)[0]
        return self._encode(text, 32, False)

    def encode_queries(self, texts: list[str]) -> list[np.ndarray]:
        """One vector per query text (the shape a micro-batcher expects)."""
        return list(self._encode(texts, 64, False))

    def encode_documents(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Encode product texts in batches, optionally with a progress bar."""
        return self._encode(texts, 64, progress)


def encode_cached(encoder: Encoder, texts: Sequence[str], cache_dir: Path, progress: bool = False) -> np.ndarray:
    """Encode documents once; later calls with the same texts read the vectors from disk."""
    import hashlib

    digest = hashlib.sha256("\x1f".join(texts).encode()).hexdigest()[:20]
    path = cache_dir / f"vectors-{len(texts)}-{digest}.npy"
    if path.is_file():
        return np.load(path)
    vectors = encoder.encode_documents(texts, progress=progress)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors
