# Stand-in for redis:7.4-alpine (compose's rate-limit store), built here from Debian's Redis 7.0
# because the workplace that runs `make docker-check` has no image registry. Like the official
# image, it runs as the redis user without protected mode (the compose network is its only
# client), so `redis-server --save "" --appendonly no` from compose.yaml serves as there.
ARG DEBIAN_IMAGE=recsys-gql-check/debian:bookworm
FROM ${DEBIAN_IMAGE}
# The stand-in follows Debian bookworm's current packages, as the official image follows its
# release: pinning versions would break the build at the next security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/redis-entrypoint
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["redis-entrypoint"]
CMD ["redis-server"]
