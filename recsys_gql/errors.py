"""Domain errors shared by the engine, the artifact loader, the data step and the API.

Every error carries a stable machine-readable ``code`` so the API layer can turn it into a
GraphQL error or payload without parsing messages.
"""

from __future__ import annotations


class RecsysError(Exception):
    """Base class for every expected error raised by recsys-gql."""

    code = "RECSYS_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ArtifactError(RecsysError):
    """An artifact directory is missing, incomplete, tampered with or of another version."""

    code = "ARTIFACT_INVALID"

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class DataValidationError(RecsysError):
    """An input file is malformed: names the file, the line (1-based, header = 1) and problem."""

    code = "DATA_INVALID"

    def __init__(self, file: str, problem: str, *, line: int | None = None) -> None:
        where = f"{file}, line {line}" if line is not None else file
        super().__init__(f"{where}: {problem}")
        self.file = file
        self.line = line
        self.problem = problem


class DataSourceError(RecsysError):
    """A data source cannot be read: not found, wrong layout, or a checksum mismatch."""

    code = "DATA_SOURCE"


class ConfigError(RecsysError):
    """A training configuration file is unreadable or invalid."""

    code = "CONFIG_INVALID"


class InvalidArgument(RecsysError):
    """A GraphQL argument is out of range or malformed; ``field`` names it as the schema does.
    Raised by the API layer only: the engine raises :class:`InvalidParameter`."""

    code = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class InvalidParameter(RecsysError):
    """A value the engine cannot take; ``parameter`` names the engine's own parameter (``n``,
    ``alpha``, ``genres``, ``year_from``, ``year_to``, ``text``). The API layer says which of
    its arguments carried it."""

    code = "INVALID_ARGUMENT"

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.parameter = parameter
        self.problem = problem


class InvalidRating(RecsysError):
    """A rating value outside 0.5-5.0 in half steps; nothing was written."""

    code = "INVALID_RATING"

    def __init__(self, message: str, field: str = "rating") -> None:
        super().__init__(message)
        self.field = field


class NotAuthenticated(RecsysError):
    """A write without a valid bearer token."""

    code = "UNAUTHENTICATED"


class NotPermitted(RecsysError):
    """A write for a user other than the token's."""

    code = "FORBIDDEN"


class UnknownMovie(RecsysError):
    """A movie id that is not in the catalog."""

    code = "MOVIE_NOT_FOUND"

    def __init__(self, movie_id: int) -> None:
        super().__init__(f"movie {movie_id} does not exist")
        self.movie_id = movie_id


class DeadlineExceeded(RecsysError):
    """A request ran out of time before a piece of its work started (the request timeout)."""

    code = "TIMEOUT"

    def __init__(self) -> None:
        super().__init__("the request ran out of time; ask for less, or retry")
