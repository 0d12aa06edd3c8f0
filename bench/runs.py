"""Second artifact runs made cheaply, for the reload benchmark and tests: a copy of a trained
run under a new run id (its files hard-linked, since a run's files are never written again,
and its manifest rewritten with the new id), and a damaged copy that verification refuses."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from recsys_gql.artifacts import MANIFEST_NAME, atomic_write_text


def clone_run(source: Path, root: Path, run_id: str) -> Path:
    """``root/run_id``: every file of the run at ``source`` (hard links where the filesystem
    allows, else copies) and its manifest naming ``run_id``."""
    source = source.resolve()
    target = root / run_id
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.name == MANIFEST_NAME or not path.is_file():
            continue
        try:
            os.link(path, target / path.name)
        except OSError:
            shutil.copy2(path, target / path.name)
    manifest = json.loads((source / MANIFEST_NAME).read_text(encoding="utf-8"))
    manifest["run_id"] = run_id
    atomic_write_text(target / MANIFEST_NAME, json.dumps(manifest, indent=2))
    return target


def damage_run(run_dir: Path) -> str:
    """Replace the run's largest listed file by a copy with one byte changed (the original,
    possibly a hard link shared with another run, is left intact); returns its name."""
    manifest = json.loads((run_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    name = max(manifest["files"], key=lambda file: manifest["files"][file]["bytes"])
    path = run_dir / name
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.unlink()
    path.write_bytes(bytes(data))
    return str(name)
