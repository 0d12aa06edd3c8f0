"""The serving log configuration: JSON lines in production, text in development."""

from __future__ import annotations

import json
import logging
import logging.config

import pytest

from recsys_gql.logs import logging_config
from recsys_gql.middleware.request_id import RequestIdFilter
from recsys_gql.settings import Settings


def formatted(settings: Settings, record: logging.LogRecord) -> str:
    """``record`` as the configuration's default handler writes it (built from the dictionary
    as ``logging.config.dictConfig`` builds it, without configuring this process)."""
    config = logging_config(settings)
    assert config["handlers"]["default"]["filters"] == ["request_id"]
    assert config["loggers"]["recsys_gql"]["handlers"] == ["default"]
    builder = logging.config.DictConfigurator(config)
    formatter = builder.configure_formatter(dict(config["formatters"]["default"]))
    RequestIdFilter().filter(record)
    return str(formatter.format(record)) + "\n"


def access_record() -> logging.LogRecord:
    record = logging.getLogger("recsys_gql.access").makeRecord(
        "recsys_gql.access",
        logging.INFO,
        __file__,
        1,
        "%s %s %d",
        ("POST", "/graphql", 200),
        None,
        extra={"request_id": "req-9", "status": 200, "duration_ms": 3.25, "color_message": "x"},
    )
    return record


@pytest.mark.parametrize(
    "settings",
    [Settings(env="production"), Settings(log_format="json")],
    ids=["production", "asked for"],
)
def test_json_lines(settings: Settings) -> None:
    line = formatted(settings, access_record())
    assert line.endswith("\n")
    assert line.count("\n") == 1
    entry = json.loads(line)
    assert entry["message"] == "POST /graphql 200"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "recsys_gql.access"
    assert entry["request_id"] == "req-9"
    assert (entry["status"], entry["duration_ms"]) == (200, 3.25)
    assert entry["timestamp"].endswith("+00:00")
    assert "color_message" not in entry


def test_text_in_development() -> None:
    line = formatted(Settings(), access_record())
    assert "POST /graphql 200" in line
    assert not line.lstrip().startswith("{")
    line = formatted(Settings(env="production", log_format="text"), access_record())
    assert not line.lstrip().startswith("{")


def test_tracebacks_stay_on_one_json_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("recsys_gql.api").makeRecord(
            "recsys_gql.api",
            logging.ERROR,
            __file__,
            1,
            "unexpected",
            (),
            __import__("sys").exc_info(),
        )
    entry = json.loads(formatted(Settings(env="production"), record))
    assert "ValueError: boom" in entry["exc_info"]
    assert entry["request_id"] is None
