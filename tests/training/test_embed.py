"""The embedding cache: a second run with the same texts encodes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recsys_gql.recsys.content import FloatMatrix, SentenceEncoder
from training.embed import embed_texts


class CountingEncoder:
    """Wraps the real encoder and records every text it is asked to encode."""

    def __init__(self, inner: SentenceEncoder) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []

    @property
    def model_key(self) -> str:
        return self.inner.model_key

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> FloatMatrix:
        self.calls.append(list(texts))
        return self.inner.encode(texts)


TEXTS = [
    "Toy Story (1995). Genres: Animation, Children.",
    "Alien (1979). Genres: Horror, Sci-Fi.",
    "Heat (1995). Genres: Action, Crime.",
]


def test_the_second_run_is_served_from_the_cache(
    sentence_encoder: SentenceEncoder, tmp_path: Path
) -> None:
    encoder = CountingEncoder(sentence_encoder)
    first, stats1 = embed_texts(TEXTS, encoder, tmp_path, show_progress=False)
    assert (stats1.encoded, stats1.cached) == (3, 0)
    second, stats2 = embed_texts(TEXTS, encoder, tmp_path, show_progress=False)
    assert (stats2.encoded, stats2.cached) == (0, 3)
    assert len(encoder.calls) == 1
    np.testing.assert_array_equal(first, second)
    assert first.shape == (3, 384)
    assert first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-5)


def test_only_changed_texts_are_encoded(sentence_encoder: SentenceEncoder, tmp_path: Path) -> None:
    encoder = CountingEncoder(sentence_encoder)
    embed_texts(TEXTS, encoder, tmp_path, show_progress=False)
    changed = [*TEXTS[:2], "Heat (1995). Genres: Action, Crime, Drama."]
    vectors, stats = embed_texts(list(reversed(changed)), encoder, tmp_path, show_progress=False)
    assert encoder.calls[-1] == ["Heat (1995). Genres: Action, Crime, Drama."]
    assert (stats.encoded, stats.cached) == (1, 2)
    # rows come back in the order asked for, whatever the cache order
    np.testing.assert_allclose(vectors[2], sentence_encoder.encode([TEXTS[0]])[0], atol=1e-5)


def test_a_different_model_key_does_not_share_vectors(
    sentence_encoder: SentenceEncoder, tmp_path: Path
) -> None:
    embed_texts(TEXTS, sentence_encoder, tmp_path, show_progress=False)
    shorter = SentenceEncoder(max_seq_length=32)
    assert shorter.model_key != sentence_encoder.model_key
    _, stats = embed_texts(TEXTS, shorter, tmp_path, show_progress=False)
    assert stats.encoded == 3


def test_a_torn_cache_is_rebuilt(sentence_encoder: SentenceEncoder, tmp_path: Path) -> None:
    encoder = CountingEncoder(sentence_encoder)
    embed_texts(TEXTS, encoder, tmp_path, show_progress=False)
    keys = next(tmp_path.rglob("keys.npy"))
    keys.write_bytes(b"garbage")
    _, stats = embed_texts(TEXTS, encoder, tmp_path, show_progress=False)
    assert stats.encoded == 3
