# syntax=docker/dockerfile:1
#
# One image for the whole stack: broker, order-api, order-worker, inference-worker and migrate in
# /usr/local/bin; docker-compose.yml picks the binary per service with `command:`.
#
#   docker build -t seckill-mq .
#   docker run --rm seckill-mq broker --help
#
# Needs BuildKit (the default builder since Docker Engine 23, and always under `docker compose
# build`) for the cache mounts below.

############################################################################### builder
FROM rust:1-bookworm AS builder

# Native build requirements, all already in rust:1-bookworm (it is built on buildpack-deps:bookworm),
# so nothing is installed here:
#   - gcc, g++, make, libc6-dev, bash: rdkafka-sys (default features = only `libz`) builds librdkafka
#     from source with its mklove `./configure && make libs`; configure is a bash script and
#     insists on a C++ compiler (`mkl_require cxx`) even though the library is C. ring and libz-sys
#     compile their C with the same gcc.
#   - zlib1g-dev (+ pkg-config): optional; without them libz-sys builds its bundled zlib instead.
#   - libssl-dev + pkg-config: rdkafka's `ssl` feature links librdkafka to the system's OpenSSL
#     (TLS listeners and the SCRAM mechanisms). The broker's own TLS is rustls over aws-lc-rs,
#     whose C aws-lc-sys compiles with the same gcc (its cc builder; no cmake on x86_64/aarch64).
#   - NOT python3 (librdkafka only uses it for the shared library's linker script and disables
#     that when it is missing; we link the static library).
# On a slim base the list to install would be: gcc g++ make libc6-dev libssl-dev pkg-config
# (zlib1g-dev). This fails early, with the tool's name, if a future base image drops
# one of them.
RUN for tool in cc c++ make bash pkg-config; do command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }; done \
    && pkg-config --exists openssl || { echo "missing libssl-dev (pkg-config openssl)" >&2; exit 1; }

WORKDIR /src
# The whole workspace: every member's manifest must be there for cargo to load the workspace, and
# migrations/ is embedded into the services at compile time (sqlx::migrate!). .dockerignore keeps
# target/, .git and data out.
COPY . .

# Dependency caching: the cargo registry and target/ live in BuildKit cache mounts, so a rebuild
# after a source change recompiles only the workspace crates, not librdkafka and the ~300
# dependencies. (The usual "copy the manifests, build with stub sources" layer would need stubs
# for every bin, bench and test of four crates; the cache mounts do the same with less to keep in
# step.) target/ is a mount, so the binaries are copied out of it inside the same RUN.
# sharing=locked: compose may build this image for several services at once; the builds then
# take turns (the later ones find everything compiled) instead of compiling side by side.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p broker -p services --bins \
    && mkdir -p /out \
    && for bin in broker order-api order-worker inference-worker migrate; do \
         cp "target/release/$bin" /out/ || exit 1; \
       done

############################################################################### runtime
FROM debian:bookworm-slim

# The binaries link libc, libm, libgcc_s and (the rdkafka ones) libz.so.1 and OpenSSL's libssl3
# dynamically; bookworm-slim has all but libssl3. ca-certificates: the services trust the
# system's CAs for a Kafka cluster's TLS listener unless KAFKA_SSL_CA_LOCATION names a file.
# bash (for the compose healthchecks' /dev/tcp) is part of the base image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/*

# A non-root user; /data is where the broker keeps its log (a volume in docker-compose.yml). A
# named volume mounted there starts with this directory's owner, so the broker can write to it.
RUN groupadd --system --gid 10001 seckill \
    && useradd --system --uid 10001 --gid seckill --home-dir /app --shell /usr/sbin/nologin seckill \
    && mkdir -p /app /data \
    && chown seckill:seckill /app /data

COPY --from=builder /out/ /usr/local/bin/
# The external-model example for the inference worker's `command` adapter, for reference and for
# images derived from this one. It needs python3, which this image does not install: the compose
# inference worker runs the built-in demo model.
COPY examples/inference/ /app/examples/inference/

USER seckill
WORKDIR /app
# Kafka (internal and host-facing listeners), broker admin HTTP, order API, order-worker and
# inference-worker metrics.
EXPOSE 9092 9094 9644 8080 9101 9102
# No default service: compose names one per container. `docker run IMAGE` prints the broker's flags.
CMD ["broker", "--help"]
