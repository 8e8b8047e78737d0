# syntax=docker/dockerfile:1
# reflow container image: `docker build -t reflow .` (BuildKit). See docs/deploy.md.
#
# Stage 1 builds the release binary with the toolchain Cargo.toml asks for (rust-version) and
# the versions pinned in Cargo.lock (--locked). Stage 2 is Debian slim with ca-certificates
# (HTTPS upstreams, OIDC JWKS, Postgres TLS), the binary and nothing else, run as a numeric
# non-root user so Kubernetes' runAsNonRoot can verify it. Builder and runtime are the same
# Debian release, so the binary's glibc matches. Debian slim rather than distroless so that
# an init container can copy /usr/local/bin/reflow out of this image (`reflow bridge` in
# MCP pods) and a derived image can add node or python for stdio MCP servers.
ARG RUST_IMAGE=rust:1.95-trixie
ARG RUNTIME_IMAGE=debian:trixie-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The caches keep the registry and target/ between builds; the binary is copied out of the
# cache mount because the mount is not part of the stage's filesystem.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin reflow \
    && install -D -m 0755 target/release/reflow /out/reflow

FROM ${RUNTIME_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -m 0700 -o 65532 -g 65532 /var/lib/reflow
COPY --from=build /out/reflow /usr/local/bin/reflow
# Listen on every interface of the container (the default, 127.0.0.1, is unreachable from
# outside it) and keep state in the volume. Environment variables win over a config file
# (defaults < file < REFLOW_* < flags): change these two with -e, not in the file.
ENV REFLOW_SERVER_HOST=0.0.0.0 \
    REFLOW_DATA_DIR=/var/lib/reflow
VOLUME ["/var/lib/reflow"]
USER 65532:65532
WORKDIR /var/lib/reflow
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/reflow"]
CMD ["serve"]
