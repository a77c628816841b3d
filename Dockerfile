# syntax=docker/dockerfile:1
# The image deploy/kubernetes/job.yaml runs. From the repository root:
#
#   docker build -t ferry:latest .
#
# Two stages: cargo builds ferry on the Rust image; the image that runs holds Debian's slim base,
# the CA certificates (TLS to managed YugabyteDB / Cassandra) and the one binary, run by an
# unprivileged user. Base images are pinned to exact versions (crates/cli/tests/dockerfile.rs
# checks this and the rest of the file's contract with the Job).

FROM rust:1.95.0-slim-trixie AS build
# make and a C compiler for the bundled librdkafka and ring; zlib for librdkafka's compression.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ferry-cli \
 && cp target/release/ferry /ferry

FROM debian:13.2-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ferry \
 && useradd --system --uid 10001 --gid ferry --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin ferry \
 && mkdir /runs && chown 10001:10001 /runs
COPY --from=build /ferry /usr/local/bin/ferry
USER 10001:10001
# Run records and reject files land under the working directory (ferry.runsDir is relative to
# it) — /runs, writable by the user; the Job mounts a volume there.
WORKDIR /runs
ENTRYPOINT ["/usr/local/bin/ferry"]
CMD ["--help"]
