"""Verifying and opening a training run as the engine reads it: the artifact directory's
file checks (:mod:`recsys_gql.artifacts`) plus the checks only the arm registry can make.

The manifest format knows nothing of arms; the registry knows which arms must have a section
and what configuration each accepts. Joining the two here keeps the import arrow one way:
the engine imports the artifact format, never the reverse.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from recsys_gql.artifacts import ArtifactDir, Manifest, verify
from recsys_gql.errors import ArtifactError
from recsys_gql.recsys.arms import ARMS, REQUIRED, arm_type


def check_sections(manifest: Manifest, path: Path) -> None:
    """Every arm section names a registered arm, holds a configuration that arm accepts and
    lists files the manifest has; the ranker's file is listed too."""
    missing = sorted({arm.name for arm in ARMS} - set(manifest.arms))
    if missing:
        raise ArtifactError(
            f"{path} has no section for arm(s) {', '.join(missing)}: retrain with "
            "`recsys-gql train`",
            path=str(path),
        )
    for name, record in manifest.arms.items():
        try:
            arm_type(name).config_type().model_validate(record.config)
        except KeyError as exc:
            raise ArtifactError(f"{path}: {exc.args[0]}", path=str(path)) from None
        except ValidationError as exc:
            raise ArtifactError(f"{path}: arm {name!r} config is invalid: {exc}") from exc
        if record.status == "skipped" and name in REQUIRED:
            raise ArtifactError(f"{path}: the {name} arm is required but was skipped")
        for file in record.files:
            if file not in manifest.files:
                raise ArtifactError(f"{path}: arm {name!r} owns {file!r}, which is not listed")
    ranker = manifest.ranker
    if ranker.status == "trained" and (ranker.file is None or ranker.file not in manifest.files):
        raise ArtifactError(f"{path}: the ranker's model file {ranker.file!r} is not listed")


def verify_run(directory: Path) -> Manifest:
    """Verify a run directory completely (files and arm sections) and return its manifest."""
    return verify(directory, check_sections)


def open_run(directory: Path) -> ArtifactDir:
    """Open a run directory (following ``current``) after verifying it completely."""
    return ArtifactDir.open(directory, check_sections)
