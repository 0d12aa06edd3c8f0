"""How ``recsys-gql serve`` logs: uvicorn's logging configuration plus the app's loggers, with
JSON lines in production and uvicorn's text in development (``RECSYS_GQL_LOG_FORMAT`` picks
either), and every record carrying the id of the request it was made for.

In JSON each record is one line with ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``,
``message``, ``request_id`` and the record's own fields (the access log's ``status``,
``duration_ms``, …); a traceback is in ``exc_info``. python-json-logger formats them.
"""

from __future__ import annotations

import copy
from typing import Any

from recsys_gql.settings import Settings

__all__ = ["logging_config"]

_JSON = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "fmt": "%(levelname)s %(name)s %(message)s",
    "rename_fields": {"levelname": "level", "name": "logger"},
    "timestamp": True,
}
_FIELDS_NOT_LOGGED = ("color_message",)
"""uvicorn's coloured copy of some messages: noise in a JSON line."""


def _json_formatter() -> dict[str, Any]:
    from pythonjsonlogger.core import RESERVED_ATTRS

    return {**_JSON, "reserved_attrs": [*RESERVED_ATTRS, *_FIELDS_NOT_LOGGED]}


def logging_config(settings: Settings) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` dictionary uvicorn applies in every worker."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {
        "request_id": {"()": "recsys_gql.middleware.request_id.RequestIdFilter"},
    }
    for handler in config["handlers"].values():
        handler["filters"] = ["request_id"]
    if settings.log_format == "json" or (settings.log_format is None and settings.is_production):
        config["formatters"] = {"default": _json_formatter(), "access": _json_formatter()}
    # The app's loggers (start-up, errors, the access log) through the same handler;
    # otherwise only their warnings would reach the console.
    config["loggers"]["recsys_gql"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
