# Stand-in for node:22-bookworm-slim, built here because the workplace that runs
# `make docker-check` has no image registry. Debian bookworm's nodejs is 18, too old for the
# page's build (Vite needs Node 20.19+), so the Node.js the host already runs `make web` with
# (its `node` binary and npm) is copied in from the build context (docs/docker.md).
ARG DEBIAN_IMAGE=recsys-gql-check/debian:bookworm
FROM ${DEBIAN_IMAGE}
# The stand-in follows Debian bookworm's current packages, as the official image follows its
# release: pinning versions would break the build at the next security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY node /usr/local/bin/node
COPY npm/ /usr/local/lib/node_modules/npm/
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && node --version && npm --version
# Node keeps its own list of certificate authorities; add the system's (which include any
# authority this machine's network needs) as the official image would with the same setting.
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
