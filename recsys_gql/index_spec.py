"""What the artifact manifest records about the content index: its kind and parameters.

It lives apart from the engine's index code (:mod:`recsys_gql.recsys.ann`, which builds and
loads indexes of these kinds) so that the manifest can describe an index without importing
the engine, which itself reads the manifest.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

IndexKind = Literal["flat", "hnsw", "ivf"]

FAISS_TYPES: dict[IndexKind, str] = {
    "flat": "IndexFlatIP",
    "hnsw": "IndexHNSWFlat",
    "ivf": "IndexIVFFlat",
}
"""The FAISS class name of each kind, to check that an index file is what the manifest says."""


class IndexSpec(BaseModel):
    """One concrete index: its kind and the parameters that shape its build and its queries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: IndexKind = "flat"
    hnsw_m: int = Field(32, ge=4, le=128, description="links per node")
    hnsw_ef_construction: int = Field(40, ge=8, le=4096, description="beam width of the build")
    hnsw_ef_search: int = Field(128, ge=8, le=4096, description="beam width of a query")
    ivf_nlist: int = Field(1024, ge=1, description="k-means cells (capped by catalog size)")
    ivf_nprobe: int = Field(32, ge=1, description="cells scanned per query")
    reason: str = ""

    @property
    def faiss_type(self) -> str:
        """The FAISS class name an index of this kind has."""
        return FAISS_TYPES[self.kind]


__all__ = ["FAISS_TYPES", "IndexKind", "IndexSpec"]
