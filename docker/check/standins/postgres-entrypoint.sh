#!/bin/sh
# Entrypoint of the PostgreSQL stand-in (postgres.Dockerfile): on an empty data directory it
# creates the cluster with POSTGRES_USER as superuser (password POSTGRES_PASSWORD, required)
# and the database POSTGRES_DB, as the official image does; then it runs the server as the
# postgres user, listening on every address with password (scram-sha-256) authentication.
set -eu

if [ "$(id -u)" = 0 ]; then
    chown -R postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

user="${POSTGRES_USER:-postgres}"
database="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "postgres-entrypoint: POSTGRES_PASSWORD is required for a new cluster" >&2
        exit 1
    fi
    password_file="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$password_file"
    initdb --username="$user" --pwfile="$password_file" --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$password_file"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl --silent --wait --options="-c listen_addresses=''" start
    if [ "$database" != postgres ]; then
        createdb --username="$user" "$database"
    fi
    pg_ctl --silent --wait --mode=fast stop
    echo "postgres-entrypoint: created the cluster, user $user and database $database"
fi

if [ "$1" = postgres ]; then
    shift
    exec postgres -c listen_addresses='*' "$@"
fi
exec "$@"
