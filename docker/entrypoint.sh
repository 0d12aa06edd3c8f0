#!/bin/sh
# Entrypoint of the recsys-gql image (docker/Dockerfile).
#
#   serve [ARGS...]  (the image's default command) checks every artifact file against its
#                    manifest with `recsys-gql artifacts verify`, refuses to start when that
#                    fails, then replaces itself with `recsys-gql serve` on $RECSYS_GQL_HOST
#                    (0.0.0.0 in the image), $RECSYS_GQL_PORT and $RECSYS_GQL_WORKERS workers;
#   anything else    is run as given, e.g. the compose train service's
#                    `sh -c "recsys-gql data fetch && recsys-gql train --if-stale && ..."`.
#
# Exit codes of its own: 64 for a malformed setting, 78 when there are no usable artifacts.
set -eu

if [ "$#" -gt 0 ] && [ "$1" != "serve" ]; then
    exec "$@"
fi
if [ "$#" -gt 0 ]; then
    shift
fi

host="${RECSYS_GQL_HOST:-0.0.0.0}"
port="${RECSYS_GQL_PORT:-8000}"
workers="${RECSYS_GQL_WORKERS:-1}"
for setting in "RECSYS_GQL_PORT=$port" "RECSYS_GQL_WORKERS=$workers"; do
    value="${setting#*=}"
    case "$value" in
        "" | *[!0-9]* | 0*)
            echo "docker-entrypoint: ${setting%%=*} must be a positive whole number, not '$value'" >&2
            exit 64
            ;;
    esac
done

current="${RECSYS_GQL_ARTIFACTS_DIR:-artifacts}/current"
if ! recsys-gql artifacts verify; then
    echo "docker-entrypoint: refusing to start: no verified artifacts at $current." >&2
    echo "docker-entrypoint: train into that volume first (docker compose run --rm train)" \
        "or mount a trained artifacts folder at ${RECSYS_GQL_ARTIFACTS_DIR:-artifacts}." >&2
    exit 78
fi

exec recsys-gql serve --host "$host" --port "$port" --workers "$workers" "$@"
