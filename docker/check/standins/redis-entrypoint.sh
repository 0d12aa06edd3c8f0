#!/bin/sh
# Entrypoint of the Redis stand-in (redis.Dockerfile): `redis-server ARGS` runs as the redis
# user with protected mode off, as in the official image; any other command runs as given.
set -eu

if [ "${1:-}" = redis-server ]; then
    shift
    exec setpriv --reuid=redis --regid=redis --init-groups \
        redis-server --protected-mode no "$@"
fi
exec "$@"
