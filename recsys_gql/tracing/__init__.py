"""Tracing with OpenTelemetry: off by default, on when an OTLP endpoint is configured.

Turned on by ``RECSYS_GQL_OTLP_ENDPOINT`` (an OTLP/HTTP base URL such as
``http://collector:4318``; spans go to ``<it>/v1/traces``) or by the standard
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT``; forced off by
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``. The other standard variables
apply as the OpenTelemetry SDK reads them (``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``/``_ARG``, ``OTEL_EXPORTER_OTLP_HEADERS``,
timeouts, …). Only OTLP over HTTP (protobuf) is shipped: a gRPC protocol is refused at start.

This module imports nothing of OpenTelemetry: when tracing is off the server never loads it,
adds no middleware and no schema extension. :mod:`.otel` does the work when it is on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from recsys_gql.settings import Settings

__all__ = ["TracingError", "traces_endpoint", "tracing_enabled"]

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


class TracingError(RuntimeError):
    """Tracing is asked for in a way this build cannot do (the message says how to fix it)."""


def tracing_enabled(settings: Settings, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether to trace (see the module docstring); raises :class:`TracingError` for an OTLP
    protocol other than HTTP/protobuf."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    if not (settings.otlp_endpoint or any(environ.get(name) for name in _ENDPOINTS)):
        return False
    for name in _PROTOCOLS:
        protocol = environ.get(name, "http/protobuf").strip().lower()
        if protocol != "http/protobuf":
            raise TracingError(
                f"{name}={protocol}: this build exports traces over OTLP/HTTP only; "
                "set it to http/protobuf (a collector's port 4318) or unset it"
            )
    return True


def traces_endpoint(settings: Settings) -> str | None:
    """The URL spans are posted to: ``RECSYS_GQL_OTLP_ENDPOINT`` + ``/v1/traces`` when set
    (``None``: the exporter reads the standard variables itself)."""
    if not settings.otlp_endpoint:
        return None
    return settings.otlp_endpoint.rstrip("/") + "/v1/traces"
