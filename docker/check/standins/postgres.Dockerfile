# Stand-in for postgres:17-bookworm (compose's database), built here from Debian's
# PostgreSQL 15 because the workplace that runs `make docker-check` has no image registry.
# postgres-entrypoint.sh keeps the official image's contract that compose.yaml relies on:
# POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, data in /var/lib/postgresql/data,
# password authentication over the network, and pg_isready on PATH for the health check.
ARG DEBIAN_IMAGE=recsys-gql-check/debian:bookworm
FROM ${DEBIAN_IMAGE}
# The stand-in follows Debian bookworm's current packages, as the official image follows its
# release: pinning versions would break the build at the next security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
VOLUME ["/var/lib/postgresql/data"]
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["postgres-entrypoint"]
CMD ["postgres"]
