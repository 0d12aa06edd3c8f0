"""The data step installs a validated copy atomically, from a folder, a zip or a download."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import httpx
import pytest

from recsys_gql.errors import DataSourceError, DataValidationError
from training.fetch import DATASET, GROUPLENS_URL, fetch


def zip_folder(folder: Path, inner: str = DATASET) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"{inner}/{path.name}")
    return buffer.getvalue()


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def test_fetch_from_a_folder_with_the_dataset_inside(tiny_movielens: Path, tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source).mkdir()
    tiny_movielens.rename(source / DATASET)
    result = fetch(tmp_path / "raw", str(source))
    assert result.destination == tmp_path / "raw" / DATASET
    assert not result.skipped
    assert not result.official_release
    assert result.has_overviews
    names = sorted(p.name for p in result.destination.iterdir())
    assert names == ["links.csv", "movies.csv", "overviews.csv", "ratings.csv", "tags.csv"]
    assert leftovers(tmp_path / "raw") == []


def test_overviews_beside_the_dataset_are_copied(tiny_movielens: Path, tmp_path: Path) -> None:
    source = tmp_path / "shared"
    (source / f"{DATASET}-overviews").mkdir(parents=True)
    (tiny_movielens / "overviews.csv").rename(source / f"{DATASET}-overviews" / "overviews.csv")
    tiny_movielens.rename(source / DATASET)
    result = fetch(tmp_path / "raw", str(source))
    assert (result.destination / "overviews.csv").read_text().startswith("movieId,tmdbId,overview")


def test_fetch_from_a_zip_and_reuse(tiny_movielens: Path, tmp_path: Path) -> None:
    archive = tmp_path / "ml.zip"
    archive.write_bytes(zip_folder(tiny_movielens))
    first = fetch(tmp_path / "raw", str(archive))
    assert not first.skipped
    again = fetch(tmp_path / "raw", str(archive))
    assert again.skipped
    assert (again.destination / "ratings.csv").read_bytes() == (
        tiny_movielens / "ratings.csv"
    ).read_bytes()


def test_a_bad_source_leaves_the_old_copy_and_no_debris(
    tiny_movielens: Path, tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    fetch(raw, str(tiny_movielens))
    good = (raw / DATASET / "ratings.csv").read_bytes()
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("movies.csv", "ratings.csv"):
        (broken / name).write_bytes((tiny_movielens / name).read_bytes())
    with (broken / "ratings.csv").open("a") as handle:
        handle.write("1,2,7,1500000000\n")
    with pytest.raises(DataValidationError, match="rating 7 is not in"):
        fetch(raw, str(broken), force=True)
    assert (raw / DATASET / "ratings.csv").read_bytes() == good
    assert leftovers(raw) == []


def test_a_failed_first_fetch_leaves_nothing(tmp_path: Path) -> None:
    bad_zip = tmp_path / "bad.zip"
    bad_zip.write_bytes(b"not a zip at all")
    with pytest.raises(DataSourceError, match="not a valid zip"):
        fetch(tmp_path / "raw", str(bad_zip))
    assert list((tmp_path / "raw").iterdir()) == []
    with pytest.raises(DataSourceError, match="does not exist"):
        fetch(tmp_path / "raw", str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataSourceError, match="holds no MovieLens data"):
        fetch(tmp_path / "raw", str(empty))


def test_an_enricher_fills_in_missing_overviews(tiny_movielens: Path, tmp_path: Path) -> None:
    (tiny_movielens / "overviews.csv").unlink()
    calls: list[Path] = []

    def enrich(folder: Path) -> None:
        calls.append(folder)
        (folder / "overviews.csv").write_text("movieId,tmdbId,overview\n1,1000,A plot.\n")

    result = fetch(tmp_path / "raw", str(tiny_movielens), enrich=enrich)
    assert len(calls) == 1
    assert result.has_overviews


def mock_grouplens(payload: bytes, md5: str) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) == GROUPLENS_URL:
            return httpx.Response(200, content=payload)
        if str(request.url) == f"{GROUPLENS_URL}.md5":
            return httpx.Response(200, text=f"{md5}  ml-latest-small.zip\n")
        return httpx.Response(404)

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_a_download_with_a_wrong_md5_is_refused(tiny_movielens: Path, tmp_path: Path) -> None:
    payload = zip_folder(tiny_movielens)
    with pytest.raises(DataSourceError, match="does not match the published"):
        fetch(tmp_path / "raw", None, client=mock_grouplens(payload, "0" * 32))
    assert list((tmp_path / "raw").iterdir()) == []


def test_a_download_that_is_not_the_release_is_refused(
    tiny_movielens: Path, tmp_path: Path
) -> None:
    payload = zip_folder(tiny_movielens)
    md5 = hashlib.md5(payload, usedforsecurity=False).hexdigest()
    with pytest.raises(DataSourceError, match="differ from the 2018-09-26 release"):
        fetch(tmp_path / "raw", None, client=mock_grouplens(payload, md5))


def test_a_failed_download_says_what_to_do(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route to host", request=request)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    with pytest.raises(DataSourceError, match="pass the folder or zip with --source"):
        fetch(tmp_path / "raw", None, client=client)


def test_the_official_release_downloads_and_verifies(
    real_data_source: Path, tmp_path: Path
) -> None:
    payload = zip_folder(real_data_source / DATASET)
    md5 = hashlib.md5(payload, usedforsecurity=False).hexdigest()
    result = fetch(tmp_path / "raw", None, client=mock_grouplens(payload, md5))
    assert result.official_release
    assert result.source == GROUPLENS_URL
    assert not result.has_overviews  # the GroupLens zip carries no plots
