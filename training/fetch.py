"""The data step: put MovieLens ml-latest-small into ``data/raw/ml-latest-small/``.

Sources, in order of preference:

* a local folder (holding ``ratings.csv`` … directly or in an ``ml-latest-small/`` sub-folder,
  optionally beside ``ml-latest-small-overviews/overviews.csv``) or a local zip;
* otherwise the official GroupLens zip, whose md5 (published beside it) and whose CSV contents
  (the sha256 of the 2018-09-26 release) are verified.

Everything is assembled and validated in a hidden staging folder next to the destination and
moved into place with one rename, so a failure leaves either the old folder or nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from tqdm import tqdm

from recsys_gql.artifacts import sha256_file
from recsys_gql.errors import DataSourceError
from recsys_gql.movielens import OPTIONAL_FILES, REQUIRED_FILES, load_movielens

DATASET = "ml-latest-small"
GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"
# sha256 of the CSVs of the ml-latest-small release generated 2018-09-26.
RELEASE_SHA256 = {
    "ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
    "movies.csv": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
    "links.csv": "97ad18e4e56a09363c65676b6cb3482ce3e2cea2372a24620c1599c843325f31",
    "tags.csv": "92a9f8bb7916dceef6151209845788c3643f794dfa79d1feaec7121b5960399d",
}
EXTRA_FILES = ("README.txt",)

Enricher = Callable[[Path], None]
"""Called with the staging folder when it has ``links.csv`` but no ``overviews.csv``."""


@dataclass(frozen=True)
class FetchResult:
    """What the data step did."""

    destination: Path
    source: str
    skipped: bool
    official_release: bool
    has_overviews: bool


def _find_dataset_folder(root: Path) -> Path:
    for candidate in (root, root / DATASET, *sorted(p for p in root.glob("*") if p.is_dir())):
        if all((candidate / f).is_file() for f in REQUIRED_FILES):
            return candidate
    raise DataSourceError(
        f"{root} holds no MovieLens data: expected {', '.join(REQUIRED_FILES)} in it "
        f"or in {root / DATASET}"
    )


def _find_overviews(root: Path, dataset: Path) -> Path | None:
    for candidate in (
        dataset / "overviews.csv",
        root / f"{DATASET}-overviews" / "overviews.csv",
        dataset.parent / f"{dataset.name}-overviews" / "overviews.csv",
    ):
        if candidate.is_file():
            return candidate
    return None


def _extract_zip(archive: Path, into: Path) -> Path:
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise DataSourceError(f"{archive}: member {bad} is corrupt")
            zf.extractall(into)  # zipfile strips absolute paths and '..' from member names
    except zipfile.BadZipFile as exc:
        raise DataSourceError(f"{archive} is not a valid zip file: {exc}") from exc
    return into


def download(url: str, target: Path, *, client: httpx.Client | None = None) -> None:
    """Download ``url`` to ``target`` with a progress bar and check the published md5."""
    owns = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(30.0), follow_redirects=True)
    try:
        md5 = hashlib.md5(usedforsecurity=False)
        with http.stream("GET", url) as response:
            if response.status_code != 200:
                raise DataSourceError(f"download of {url} failed: HTTP {response.status_code}")
            total = int(response.headers.get("content-length", 0)) or None
            with (
                target.open("wb") as out,
                tqdm(total=total, unit="B", unit_scale=True, desc=f"download {DATASET}") as bar,
            ):
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    md5.update(chunk)
                    bar.update(len(chunk))
        published = http.get(f"{url}.md5")
        if published.status_code == 200:
            expected = published.text.split()[0].strip().lower() if published.text else ""
            if expected != md5.hexdigest():
                raise DataSourceError(
                    f"{url}: md5 {md5.hexdigest()} does not match the published {expected!r}"
                )
    except httpx.HTTPError as exc:
        raise DataSourceError(
            f"download of {url} failed ({exc.__class__.__name__}: {exc}); download it by hand "
            "and pass the folder or zip with --source"
        ) from exc
    finally:
        if owns:
            http.close()


def _stage(source: str | None, staging: Path, client: httpx.Client | None) -> tuple[Path, str]:
    """Bring the raw source into ``staging`` and return the dataset folder inside it."""
    if source is None:
        archive = staging / f"{DATASET}.zip"
        download(GROUPLENS_URL, archive, client=client)
        folder = _find_dataset_folder(_extract_zip(archive, staging / "unzipped"))
        mismatched = [
            f for f, digest in RELEASE_SHA256.items() if sha256_file(folder / f) != digest
        ]
        if mismatched:
            raise DataSourceError(
                f"{GROUPLENS_URL}: {', '.join(mismatched)} differ from the 2018-09-26 release"
            )
        return folder, GROUPLENS_URL
    path = Path(source).expanduser()
    if not path.exists():
        raise DataSourceError(f"data source {path} does not exist")
    if path.is_file():
        return _find_dataset_folder(_extract_zip(path, staging / "unzipped")), str(path)
    return _find_dataset_folder(path), str(path)


def fetch(
    dest_root: Path,
    source: str | None = None,
    *,
    force: bool = False,
    client: httpx.Client | None = None,
    enrich: Enricher | None = None,
) -> FetchResult:
    """Fetch, validate and install ml-latest-small into ``dest_root/ml-latest-small``.

    An existing, valid destination is kept unless ``force`` is set, so the step is idempotent.
    """
    destination = dest_root / DATASET
    if destination.is_dir() and not force:
        load_movielens(destination)  # an existing copy must still be valid to be reused
        return FetchResult(
            destination=destination,
            source=str(destination),
            skipped=True,
            official_release=_is_release(destination),
            has_overviews=(destination / "overviews.csv").is_file(),
        )
    dest_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest_root, prefix=f".{DATASET}.staging."))
    try:
        folder, origin = _stage(source, staging, client)
        root = Path(source).expanduser() if source and Path(source).is_dir() else folder
        assembled = staging / DATASET
        assembled.mkdir()
        for name in (*REQUIRED_FILES, *OPTIONAL_FILES, *EXTRA_FILES):
            if (folder / name).is_file():
                shutil.copyfile(folder / name, assembled / name)
        overviews = _find_overviews(root, folder)
        if overviews is not None and not (assembled / "overviews.csv").is_file():
            shutil.copyfile(overviews, assembled / "overviews.csv")
        if (
            enrich is not None
            and not (assembled / "overviews.csv").is_file()
            and (assembled / "links.csv").is_file()
        ):
            enrich(assembled)
        load_movielens(assembled)
        _swap_in(assembled, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return FetchResult(
        destination=destination,
        source=origin,
        skipped=False,
        official_release=_is_release(destination),
        has_overviews=(destination / "overviews.csv").is_file(),
    )


def _swap_in(new: Path, destination: Path) -> None:
    old = destination.with_name(f".{destination.name}.old.{os.getpid()}")
    if destination.exists():
        os.replace(destination, old)
    os.replace(new, destination)
    shutil.rmtree(old, ignore_errors=True)


def _is_release(folder: Path) -> bool:
    return all(
        (folder / f).is_file() and sha256_file(folder / f) == digest
        for f, digest in RELEASE_SHA256.items()
    )
