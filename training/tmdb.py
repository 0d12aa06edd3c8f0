"""Optional TMDB enrichment of movie plot overviews.

Used by ``recsys-gql data fetch`` when MovieLens data is present but no overview file is, and
``TMDB_API_KEY`` is set. For every ``tmdbId`` in MovieLens' ``links.csv`` we ask TMDB's v3 API
for the movie's ``overview`` and write ``movieId,tmdbId,overview`` to a CSV.

The download is resumable: every answered id (HTTP 200 or 404) is appended to a JSONL cache and
flushed at once, so an interrupted run loses at most the request in flight and a rerun only asks
for what is still missing. Ids that keep failing (5xx, transport errors, 429 beyond the retry
budget) are *not* cached, so a rerun retries them.

Requests are throttled client-side with a moving-window limiter from :mod:`limits`, and the
server's ``429 Retry-After`` is honoured. The API key is sent as the ``api_key`` query parameter
(as TMDB's v3 API expects) but never appears in our messages, and it is redacted from
``httpx``'s own request log while :func:`enrich_overviews` runs.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pandas as pd
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from tqdm import tqdm

__all__ = ["TMDB_API_URL", "EnrichStats", "TmdbError", "enrich_overviews"]

logger = logging.getLogger(__name__)

TMDB_API_URL = "https://api.themoviedb.org/3"

#: HTTP statuses whose answer is final and therefore cached.
_CACHEABLE_STATUSES = frozenset({200, 404})
#: First exponential-backoff delay (seconds); doubles on every further attempt.
_BACKOFF_BASE_S = 1.0
#: Upper bound for one exponential-backoff delay (seconds).
_BACKOFF_MAX_S = 60.0
#: Upper bound for one server-requested ``Retry-After`` wait (seconds).
_RETRY_AFTER_MAX_S = 600.0
#: Added to the limiter's reset time: the moving window frees strictly *after* that instant.
_WINDOW_EPSILON_S = 0.001
_LIMITER_KEY = "tmdb"
_DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=10.0)
_OUTPUT_COLUMNS = ["movieId", "tmdbId", "overview"]
_WHITESPACE = re.compile(r"\s+")
_REDACTED = "***"


@dataclass(frozen=True)
class EnrichStats:
    """What one :func:`enrich_overviews` call did.

    Every distinct valid ``tmdbId`` ends up in exactly one of ``from_cache``, ``fetched`` and
    ``failed``; ``missing`` counts those of ``from_cache`` + ``fetched`` that have no overview.
    """

    requested: int
    """HTTP requests made in this call (including retries)."""
    from_cache: int
    """Ids answered from the on-disk cache without a request."""
    fetched: int
    """Ids newly fetched (HTTP 200 or 404) and cached in this call."""
    missing: int
    """Ids TMDB does not know (404) or whose overview is empty."""
    failed: int
    """Ids that still failed after retries (not cached, so a rerun retries them)."""


class TmdbError(RuntimeError):
    """A fatal TMDB problem (e.g. the API key is rejected): abort, do not retry."""


@dataclass(frozen=True)
class _Answer:
    """A final TMDB answer for one id, as stored in the cache."""

    status: int
    overview: str


def enrich_overviews(
    links: pd.DataFrame,
    out_csv: Path,
    cache_path: Path,
    api_key: str,
    *,
    client: httpx.Client | None = None,
    base_url: str = TMDB_API_URL,
    requests_per_second: float = 40.0,
    max_retries: int = 5,
    progress: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> EnrichStats:
    """Fetch TMDB overviews for ``links`` and write ``out_csv`` (``movieId,tmdbId,overview``).

    Args:
        links: MovieLens links with columns ``movieId`` (int) and ``tmdbId`` (float/int, may be
            NaN). Rows without a usable ``tmdbId`` get an empty overview and cause no request.
        out_csv: Output CSV, one row per ``links`` row in the same order; the overview is empty
            where TMDB has none, does not know the id, or the request failed. Written atomically
            (temp file in the same directory, then :func:`os.replace`), UTF-8, pandas quoting.
        cache_path: JSONL cache with one ``{"tmdbId": int, "overview": str, "status": int}`` per
            line. Ids found there (status 200 or 404) are never requested again; new answers are
            appended and flushed one by one. A truncated or garbled line is skipped.
        api_key: TMDB v3 API key. It is never included in messages or logs.
        client: HTTP client to use (tests pass one with an ``httpx.MockTransport``). By default a
            client with timeouts is created and closed again; a passed client is left open.
        base_url: TMDB API root.
        requests_per_second: Client-side throttle (TMDB allows roughly 50/s per IP). Rates that
            are not whole numbers are rounded down to ``n`` requests per ``m`` whole seconds.
        max_retries: Retries per id for HTTP 429, 5xx, invalid JSON and transport errors.
        progress: Show a tqdm progress bar over the ids that need fetching.
        sleep: Called for every wait (throttle, ``Retry-After``, backoff); injectable for tests.

    Returns:
        Counts of requests and outcomes, see :class:`EnrichStats`.

    Raises:
        TmdbError: TMDB rejected the API key (HTTP 401), or the key is empty.
        ValueError: ``links`` lacks a required column, or an argument is out of range.
    """
    missing_columns = {"movieId", "tmdbId"} - set(links.columns)
    if missing_columns:
        raise ValueError(f"links is missing column(s): {', '.join(sorted(missing_columns))}")
    if not (math.isfinite(requests_per_second) and requests_per_second > 0):
        raise ValueError(f"requests_per_second must be > 0, got {requests_per_second!r}")
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries!r}")
    api_key = api_key.strip()
    if not api_key:
        raise TmdbError("TMDB API key is empty; set TMDB_API_KEY")

    out_csv = Path(out_csv)
    cache_path = Path(cache_path)
    tmdb_ids = _tmdb_ids(links["tmdbId"])
    unique_ids = list(dict.fromkeys(i for i in tmdb_ids if i is not None))

    answers = _read_cache(cache_path)
    from_cache = sum(1 for i in unique_ids if i in answers)
    to_fetch = [i for i in unique_ids if i not in answers]

    fetched = failed = 0
    requested = 0
    if to_fetch:
        own_client = client is None
        http = client if client is not None else _default_client()
        fetcher = _Fetcher(
            http,
            base_url=base_url,
            api_key=api_key,
            throttle=_Throttle(requests_per_second, sleep),
            sleep=sleep,
            max_retries=max_retries,
        )
        try:
            with (
                _redact_logs(api_key),
                _CacheWriter(cache_path) as cache,
                tqdm(
                    total=len(to_fetch),
                    desc="TMDB overviews",
                    unit="movie",
                    disable=not progress,
                ) as bar,
            ):
                for tmdb_id in to_fetch:
                    answer = fetcher.fetch(tmdb_id)
                    if answer is None:
                        failed += 1
                    else:
                        cache.append(tmdb_id, answer)
                        answers[tmdb_id] = answer
                        fetched += 1
                    bar.update(1)
                    if failed:
                        bar.set_postfix(failed=failed, refresh=False)
        finally:
            requested = fetcher.requests
            if own_client:
                http.close()

    missing = sum(1 for i in unique_ids if i in answers and not answers[i].overview)
    overviews = [answers[i].overview if i is not None and i in answers else "" for i in tmdb_ids]
    frame = pd.DataFrame(
        {
            "movieId": links["movieId"].to_numpy(),
            "tmdbId": pd.array(tmdb_ids, dtype="Int64"),
            "overview": overviews,
        },
        columns=_OUTPUT_COLUMNS,
    )
    _write_csv_atomic(frame, out_csv)

    stats = EnrichStats(
        requested=requested,
        from_cache=from_cache,
        fetched=fetched,
        missing=missing,
        failed=failed,
    )
    logger.info(
        "TMDB overviews: %d ids (%d from cache, %d fetched, %d missing, %d failed), "
        "%d requests; wrote %s",
        len(unique_ids),
        stats.from_cache,
        stats.fetched,
        stats.missing,
        stats.failed,
        stats.requested,
        out_csv,
    )
    if failed:
        logger.warning(
            "%d TMDB id(s) still failed after %d retries; rerun to retry only those",
            failed,
            max_retries,
        )
    return stats


# --------------------------------------------------------------------------------------------
# Fetching


class _Throttle:
    """Client-side moving-window rate limit; blocks (via ``sleep``) until a slot is free."""

    def __init__(self, requests_per_second: float, sleep: Callable[[float], None]) -> None:
        self._item = _rate_limit_item(requests_per_second)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._sleep = sleep

    def acquire(self) -> None:
        """Take one slot in the window, sleeping until the window frees if it is full."""
        while not self._limiter.hit(self._item, _LIMITER_KEY):
            stats = self._limiter.get_window_stats(self._item, _LIMITER_KEY)
            self._sleep(max(stats.reset_time - time.time(), 0.0) + _WINDOW_EPSILON_S)


def _rate_limit_item(requests_per_second: float) -> RateLimitItem:
    """``n`` requests per ``m`` seconds with ``n / m <= requests_per_second``."""
    if requests_per_second >= 1:
        return RateLimitItemPerSecond(math.floor(requests_per_second), 1)
    return RateLimitItemPerSecond(1, math.ceil(1 / requests_per_second))


class _Fetcher:
    """Fetches one overview with throttling and retries; counts every HTTP request made."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        base_url: str,
        api_key: str,
        throttle: _Throttle,
        sleep: Callable[[float], None],
        max_retries: int,
    ) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._params = {"api_key": api_key, "language": "en-US"}
        self._secrets = _secret_forms(api_key)
        self._throttle = throttle
        self._sleep = sleep
        self._max_retries = max_retries
        self.requests = 0

    def fetch(self, tmdb_id: int) -> _Answer | None:
        """Return TMDB's final answer for ``tmdb_id``, or ``None`` if it failed for good.

        Raises:
            TmdbError: on HTTP 401 (never retried).
        """
        url = f"{self._base_url}/movie/{tmdb_id}"
        attempt = 0
        while True:
            self._throttle.acquire()
            self.requests += 1
            try:
                response = self._client.get(url, params=self._params)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                delay = _backoff(attempt)
            else:
                status = response.status_code
                if status == 401:
                    raise TmdbError(
                        "TMDB rejected the API key (HTTP 401); check TMDB_API_KEY"
                    ) from None
                if status == 404:
                    return _Answer(404, "")
                if status == 200:
                    try:
                        return _Answer(200, _parse_overview(response))
                    except ValueError as exc:
                        problem = f"invalid response body ({exc})"
                        delay = _backoff(attempt)
                elif status == 429:
                    problem = "HTTP 429 (rate limited)"
                    retry_after = _retry_after_seconds(response)
                    delay = retry_after if retry_after is not None else _backoff(attempt)
                elif status >= 500:
                    problem = f"HTTP {status}"
                    delay = _backoff(attempt)
                else:
                    logger.warning("TMDB id %d: unexpected HTTP %d; not retrying", tmdb_id, status)
                    return None
            if attempt >= self._max_retries:
                logger.warning(
                    "TMDB id %d failed after %d attempt(s): %s",
                    tmdb_id,
                    attempt + 1,
                    _redact(problem, self._secrets),
                )
                return None
            attempt += 1
            logger.debug(
                "TMDB id %d: %s; retry %d/%d in %.1fs",
                tmdb_id,
                _redact(problem, self._secrets),
                attempt,
                self._max_retries,
                delay,
            )
            self._sleep(delay)


def _default_client() -> httpx.Client:
    return httpx.Client(
        timeout=_DEFAULT_TIMEOUT,
        headers={"Accept": "application/json", "User-Agent": "recsys-gql"},
    )


def _parse_overview(response: httpx.Response) -> str:
    """The normalised ``overview`` of a 200 response; raises ValueError if the body is bad."""
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError("not JSON") from exc
    if not isinstance(payload, dict):
        raise ValueError("JSON body is not an object")
    overview = payload.get("overview")
    return _normalise(overview) if isinstance(overview, str) else ""


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (capped), or None if absent or not a number of seconds."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        seconds = float(raw.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), _RETRY_AFTER_MAX_S)


def _backoff(attempt: int) -> float:
    """Exponential backoff delay before retry ``attempt + 1``: 1, 2, 4, ... seconds (capped)."""
    return float(min(_BACKOFF_BASE_S * 2**attempt, _BACKOFF_MAX_S))


# --------------------------------------------------------------------------------------------
# Secrets


def _secret_forms(api_key: str) -> tuple[str, ...]:
    """The key as given and as it appears percent-encoded in a URL."""
    return tuple(dict.fromkeys((api_key, urllib.parse.quote(api_key, safe=""))))


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


class _RedactFilter(logging.Filter):
    """Removes the API key from records of a logger (httpx logs full request URLs)."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _redact(message, self._secrets)
        if redacted != message:
            record.msg = redacted
            record.args = ()
        return True


@contextmanager
def _redact_logs(api_key: str) -> Iterator[None]:
    """While active, redact ``api_key`` from the ``httpx`` logger's records."""
    httpx_logger = logging.getLogger("httpx")
    redactor = _RedactFilter(_secret_forms(api_key))
    httpx_logger.addFilter(redactor)
    try:
        yield
    finally:
        httpx_logger.removeFilter(redactor)


# --------------------------------------------------------------------------------------------
# Input, cache and output


def _tmdb_ids(column: pd.Series) -> list[int | None]:
    """Usable TMDB ids per row (positive integers), ``None`` where there is none."""
    numeric = pd.to_numeric(column, errors="coerce")
    ids: list[int | None] = []
    unusable = 0
    for value in numeric.tolist():
        if value is None or pd.isna(value):
            ids.append(None)
            continue
        number = float(value)
        if number.is_integer() and number > 0:
            ids.append(int(number))
        else:
            ids.append(None)
            unusable += 1
    if unusable:
        logger.warning("ignoring %d links row(s) with an unusable tmdbId", unusable)
    return ids


def _normalise(text: str) -> str:
    """Collapse every run of whitespace (including newlines) to one space and strip."""
    return _WHITESPACE.sub(" ", text).strip()


def _read_cache(path: Path) -> dict[int, _Answer]:
    """Load the JSONL cache, skipping truncated or malformed lines (the last one wins)."""
    answers: dict[int, _Answer] = {}
    if not path.exists():
        return answers
    skipped = 0
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                skipped += 1
                continue
            if not isinstance(record, dict):
                skipped += 1
                continue
            tmdb_id = record.get("tmdbId")
            status = record.get("status")
            overview = record.get("overview", "")
            if (
                not isinstance(tmdb_id, int)
                or isinstance(tmdb_id, bool)
                or status not in _CACHEABLE_STATUSES
                or not isinstance(overview, str)
            ):
                skipped += 1
                continue
            answers[tmdb_id] = _Answer(int(status), _normalise(overview))
    if skipped:
        logger.warning("skipped %d unreadable line(s) in TMDB cache %s", skipped, path)
    return answers


class _CacheWriter:
    """Appends answers to the JSONL cache, flushing after each one."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fh: IO[str] | None = None

    def __enter__(self) -> _CacheWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def append(self, tmdb_id: int, answer: _Answer) -> None:
        """Write one record and flush it to the OS."""
        if self._fh is None:
            self._fh = self._open()
        record = {"tmdbId": tmdb_id, "overview": answer.overview, "status": answer.status}
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()

    def _open(self) -> IO[str]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # A crash mid-write can leave a last line without its newline; start on a fresh line so
        # our first record is not glued to it (the reader skips the partial line).
        needs_newline = False
        if self._path.exists() and self._path.stat().st_size > 0:
            with self._path.open("rb") as raw:
                raw.seek(-1, os.SEEK_END)
                needs_newline = raw.read(1) != b"\n"
        fh = self._path.open("a", encoding="utf-8", newline="\n")
        if needs_newline:
            fh.write("\n")
        return fh


def _write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as UTF-8 CSV to a temp file beside ``path``, then rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
