# Stand-in for python:3.11-slim-bookworm, built here from Debian packages because the
# workplace that runs `make docker-check` has no image registry (docs/docker.md says what
# differs). Debian bookworm's Python is 3.11; the Dockerfile needs `python` with venv and pip.
ARG DEBIAN_IMAGE=recsys-gql-check/debian:bookworm
FROM ${DEBIAN_IMAGE}
# The stand-in follows Debian bookworm's current packages, as the official image follows its
# release: pinning versions would break the build at the next security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates python3 python3-venv python-is-python3 \
    && rm -rf /var/lib/apt/lists/*
ENV LANG=C.UTF-8
CMD ["python3"]
