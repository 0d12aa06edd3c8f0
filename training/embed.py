"""Embedding with an on-disk cache keyed by model and text hash.

A retrain whose movie texts did not change encodes nothing: every vector comes from the cache.
The cache is two ``.npy`` arrays per model key (sha256 digests and vectors), loaded without
pickle and rewritten atomically.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from recsys_gql.recsys.content import FloatMatrix, TextEncoder


@dataclass(frozen=True)
class EmbedStats:
    """How many texts came from the cache and how many were encoded."""

    cached: int
    encoded: int


def text_digests(texts: Sequence[str]) -> npt.NDArray[np.bytes_]:
    """sha256 of each text, as 32-byte strings."""
    return np.array([hashlib.sha256(t.encode("utf-8")).digest() for t in texts], dtype="S32")


class EmbeddingCache:
    """Vectors of texts already encoded by one model, stored under ``root/<model_key>/``."""

    def __init__(self, root: Path, model_key: str) -> None:
        self.folder = root / "embeddings" / model_key
        self._keys_path = self.folder / "keys.npy"
        self._vectors_path = self.folder / "vectors.npy"

    def load(self) -> tuple[npt.NDArray[np.bytes_], FloatMatrix | None]:
        """Cached digests and vectors; empty when there is no (readable) cache."""
        try:
            keys = np.load(self._keys_path, allow_pickle=False)
            vectors = np.load(self._vectors_path, allow_pickle=False)
        except (OSError, ValueError):
            return np.zeros(0, dtype="S32"), None
        if keys.shape[0] != vectors.shape[0]:
            return np.zeros(0, dtype="S32"), None  # a torn write: start over
        return keys, vectors

    def store(self, keys: npt.NDArray[np.bytes_], vectors: FloatMatrix) -> None:
        """Replace the cache contents atomically (vectors first, keys last)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for path, array in ((self._vectors_path, vectors), (self._keys_path, keys)):
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".npy.tmp")
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
            os.replace(tmp, path)


def embed_texts(
    texts: Sequence[str],
    encoder: TextEncoder,
    cache_root: Path | None,
    *,
    show_progress: bool = True,
) -> tuple[FloatMatrix, EmbedStats]:
    """Vectors for ``texts`` in order, encoding only those not in the cache."""
    digests = text_digests(texts)
    if cache_root is None:
        return encoder.encode(texts, show_progress=show_progress), EmbedStats(0, len(texts))
    cache = EmbeddingCache(cache_root, encoder.model_key)
    keys, vectors = cache.load()
    known = {key: row for row, key in enumerate(keys.tolist())}
    missing = sorted({d for d in digests.tolist() if d not in known})
    if missing:
        by_digest = {d: t for d, t in zip(digests.tolist(), texts, strict=True)}
        fresh = encoder.encode([by_digest[d] for d in missing], show_progress=show_progress)
        new_keys = np.array(missing, dtype="S32")
        keys = new_keys if vectors is None else np.concatenate([keys, new_keys])
        vectors = fresh if vectors is None else np.concatenate([vectors, fresh])
        cache.store(keys, vectors)
        known = {key: row for row, key in enumerate(keys.tolist())}
    assert vectors is not None or not texts
    if not texts:
        return np.zeros((0, encoder.dim), dtype=np.float32), EmbedStats(0, 0)
    rows = np.fromiter((known[d] for d in digests.tolist()), dtype=np.int64, count=len(texts))
    assert vectors is not None
    result = np.ascontiguousarray(vectors[rows], dtype=np.float32)
    return result, EmbedStats(cached=len(texts) - len(missing), encoded=len(missing))
