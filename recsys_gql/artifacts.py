"""Artifact directories: write them with a manifest, verify them, load them safely.

An artifact directory (``artifacts/<run-id>/``) holds everything the engine serves from. Its
``manifest.json`` records, for every file, the sha256, the size and (for arrays) the shape and
dtype. Loading verifies all of it before a single array is used, and arrays are read with
``allow_pickle=False``, so a truncated, swapped or tampered file is refused by name instead of
being served or executed. ``artifacts/current`` is a symlink flipped atomically once a run has
completed, so readers never see a half-written run.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recsys_gql.errors import ArtifactError
from recsys_gql.index_spec import IndexSpec

SCHEMA_VERSION = 2
"""2: arms and the ranking stage have their own manifest sections (1: a fixed two-arm blend)."""
MANIFEST_NAME = "manifest.json"
CURRENT_LINK = "current"

FileKind = Literal["npy", "npz", "json", "text", "binary"]


class FileEntry(BaseModel):
    """What the manifest knows about one file of the run."""

    model_config = ConfigDict(frozen=True)

    kind: FileKind
    sha256: str
    bytes: int
    shape: tuple[int, ...] | None = None
    dtype: str | None = None


class DataFingerprint(BaseModel):
    """Which input data a run was trained on: sha256 of each input file and a digest of all."""

    model_config = ConfigDict(frozen=True)

    sha256: str
    files: dict[str, str]


class ArmRecord(BaseModel):
    """One arm's section: whether it was fitted, with which settings, into which files."""

    model_config = ConfigDict(frozen=True)

    status: Literal["fitted", "skipped"]
    reason: str | None = None
    """Why a skipped arm was skipped (e.g. over its memory budget)."""
    config: dict[str, Any]
    """The arm's configuration as used (tuned values included), validated by the arm."""
    files: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
    """Facts the arm reports about itself (sizes, tuning trials, …)."""


class RankerRecord(BaseModel):
    """The ranking stage's section: its model file and features, or why there is none."""

    model_config = ConfigDict(frozen=True)

    status: Literal["trained", "skipped"]
    reason: str | None = None
    file: str | None = None
    features: list[str] = Field(default_factory=list)
    feature_arms: dict[str, str] = Field(default_factory=dict)
    """The arm each feature comes from (``context`` for user and movie features)."""
    details: dict[str, Any] = Field(default_factory=dict)


class Manifest(BaseModel):
    """The versioned description of one artifact directory."""

    model_config = ConfigDict(frozen=True)

    schema_version: int
    run_id: str
    created_at: datetime
    libraries: dict[str, str]
    config: dict[str, Any]
    data: DataFingerprint
    counts: dict[str, int]
    models: dict[str, str]
    stages: dict[str, float] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    content_index: IndexSpec
    """The content index's kind and parameters."""
    arms: dict[str, ArmRecord]
    ranker: RankerRecord
    files: dict[str, FileEntry]


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a part.

    The file gets the usual ``0644 & ~umask`` mode (``mkstemp`` alone would leave it 0600, and
    a server running as another user could not read the manifest)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o644 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ArtifactWriter:
    """Collects the files of a run into ``directory`` and records them for the manifest."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._entries: dict[str, FileEntry] = {}

    def save_array(self, name: str, array: npt.NDArray[Any]) -> None:
        """Save a numeric (non-object) array as ``name`` (``.npy``)."""
        if array.dtype.hasobject:
            raise ValueError(f"{name}: object arrays cannot be stored without pickle")
        path = self.directory / name
        with path.open("wb") as handle:
            np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
        self._record(name, "npy", tuple(int(d) for d in array.shape), str(array.dtype))

    def save_sparse(self, name: str, matrix: sp.csr_matrix | sp.csr_array) -> None:
        """Save a CSR matrix as ``name`` (``.npz``, no pickle inside)."""
        sp.save_npz(self.directory / name, sp.csr_matrix(matrix), compressed=False)
        self._record(name, "npz", tuple(int(d) for d in matrix.shape), str(matrix.dtype))

    def save_json(self, name: str, obj: Any) -> None:
        """Save a JSON document as ``name``."""
        (self.directory / name).write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
        self._record(name, "json", None, None)

    def save_text(self, name: str, text: str) -> None:
        """Save a UTF-8 text file as ``name`` (e.g. a LightGBM model)."""
        (self.directory / name).write_text(text, encoding="utf-8")
        self._record(name, "text", None, None)

    def add_file(self, name: str, shape: tuple[int, ...] | None = None) -> None:
        """Record a file already written into the directory by another writer (e.g. FAISS)."""
        self._record(name, "binary", shape, None)

    def _record(
        self, name: str, kind: FileKind, shape: tuple[int, ...] | None, dtype: str | None
    ) -> None:
        path = self.directory / name
        self._entries[name] = FileEntry(
            kind=kind, sha256=sha256_file(path), bytes=path.stat().st_size, shape=shape, dtype=dtype
        )

    def finalize(self, **fields: Any) -> Manifest:
        """Write ``manifest.json`` from ``fields`` plus the recorded files and return it."""
        manifest = Manifest(
            schema_version=SCHEMA_VERSION,
            created_at=datetime.now(UTC),
            files=dict(self._entries),
            **fields,
        )
        atomic_write_text(self.directory / MANIFEST_NAME, manifest.model_dump_json(indent=2))
        return manifest


def read_manifest(directory: Path) -> Manifest:
    """Parse ``manifest.json`` of ``directory``; refuse a missing, invalid or foreign version."""
    path = directory / MANIFEST_NAME
    if not directory.is_dir():
        raise ArtifactError(f"artifact directory {directory} does not exist", path=str(directory))
    if not path.is_file():
        raise ArtifactError(f"{path} is missing: the run did not complete", path=str(path))
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}", path=str(path)) from exc
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if version != SCHEMA_VERSION:
        raise ArtifactError(
            f"{path} has schema version {version!r}, this server reads version "
            f"{SCHEMA_VERSION}: retrain with `recsys-gql train`",
            path=str(path),
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise ArtifactError(f"{path} is invalid: {exc}", path=str(path)) from exc


def _npy_header(path: Path) -> tuple[tuple[int, ...], str]:
    with path.open("rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    return tuple(int(d) for d in shape), str(dtype)


def verify_file(directory: Path, name: str, entry: FileEntry) -> None:
    """Check one file against its manifest entry: presence, size, sha256, shape and dtype."""
    path = directory / name
    if not path.is_file():
        raise ArtifactError(f"{path} is missing", path=str(path))
    size = path.stat().st_size
    if size != entry.bytes:
        raise ArtifactError(
            f"{path} is {size} bytes, the manifest says {entry.bytes} (truncated or replaced)",
            path=str(path),
        )
    if sha256_file(path) != entry.sha256:
        raise ArtifactError(f"{path} does not match its sha256 in the manifest", path=str(path))
    if entry.kind == "npy":
        try:
            shape, dtype = _npy_header(path)
        except ValueError as exc:
            raise ArtifactError(f"{path} is not a valid .npy file: {exc}", path=str(path)) from exc
        if shape != entry.shape or dtype != entry.dtype:
            raise ArtifactError(
                f"{path} holds {dtype}{list(shape)}, the manifest says "
                f"{entry.dtype}{list(entry.shape or ())}",
                path=str(path),
            )


SectionCheck = Callable[[Manifest, Path], None]
"""A check of the manifest's sections against what reads them (the engine's arm registry:
:func:`recsys_gql.recsys.runs.check_sections`), given the manifest and its path."""


def verify(directory: Path, check_sections: SectionCheck | None = None) -> Manifest:
    """Verify a whole artifact directory and return its manifest: the manifest's schema,
    ``check_sections`` when given, then every file's size, hash and array header. The engine
    verifies through :func:`recsys_gql.recsys.runs.verify_run`, which adds its arm checks."""
    manifest = read_manifest(directory)
    if check_sections is not None:
        check_sections(manifest, directory / MANIFEST_NAME)
    for name, entry in manifest.files.items():
        verify_file(directory, name, entry)
    return manifest


class ArtifactDir:
    """A verified artifact directory from which arrays are loaded without pickle."""

    def __init__(self, directory: Path, manifest: Manifest) -> None:
        self.directory = directory
        self.manifest = manifest

    @classmethod
    def open(cls, directory: Path, check_sections: SectionCheck | None = None) -> ArtifactDir:
        """Resolve ``directory`` (following ``current``), verify it (see :func:`verify`) and
        return it."""
        resolved = directory.resolve()
        return cls(resolved, verify(resolved, check_sections))

    def _entry(self, name: str) -> FileEntry:
        try:
            return self.manifest.files[name]
        except KeyError:
            raise ArtifactError(
                f"{self.directory / MANIFEST_NAME} lists no file {name!r}: the run is incomplete "
                "or from another version",
                path=str(self.directory / name),
            ) from None

    def path(self, name: str) -> Path:
        """The path of a file the manifest lists."""
        self._entry(name)
        return self.directory / name

    def array(self, name: str) -> npt.NDArray[Any]:
        """Load a ``.npy`` array (no pickle)."""
        entry = self._entry(name)
        array: npt.NDArray[Any] = np.load(self.directory / name, allow_pickle=False)
        if tuple(array.shape) != entry.shape:
            raise ArtifactError(f"{self.directory / name} changed after verification")
        return array

    def sparse(self, name: str) -> sp.csr_matrix:
        """Load a CSR matrix saved by :meth:`ArtifactWriter.save_sparse`."""
        self._entry(name)
        return sp.csr_matrix(sp.load_npz(self.directory / name))

    def json(self, name: str) -> Any:
        """Load a JSON file."""
        self._entry(name)
        return json.loads((self.directory / name).read_text(encoding="utf-8"))

    def text(self, name: str) -> str:
        """Load a text file."""
        self._entry(name)
        return (self.directory / name).read_text(encoding="utf-8")


def publish(run_dir: Path, root: Path) -> Path:
    """Point ``root/current`` at ``run_dir`` atomically (a relative symlink swapped in place)."""
    link = root / CURRENT_LINK
    tmp = root / f".{CURRENT_LINK}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(run_dir, root))
    os.replace(tmp, link)
    return link
