"""Sentence-transformers encoder for queries and product documents."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


class Encoder:
    """Wraps a SentenceTransformer; every vector is L2-normalised float32.

    Args:
        model_dir: a local sentence-transformers directory (no hub access).
        device: torch device, "cpu" by default.
    """

    def __init__(self, model_dir: Path | str, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

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

    def encode_documents(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Encode product texts in batches, optionally with a progress bar."""
        return self._encode(texts, 64, progress)
