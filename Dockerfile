# One image for the three Oxbow operators: /usr/local/bin/cluster-operator, topic-operator and
# user-operator. The cluster operator starts the other two from this same image.
#   docker build -t ghcr.io/oxbow-rs/oxbow:0.1.0 .
FROM rust:1.95-bookworm AS build
# librdkafka is built from source by rdkafka-sys (cmake) and links OpenSSL.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake libssl-dev pkg-config libcurl4-openssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p cluster-operator -p topic-operator -p user-operator \
 && install -m 0755 target/release/cluster-operator target/release/topic-operator \
      target/release/user-operator /usr/local/bin/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g libcurl4 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/cluster-operator /usr/local/bin/topic-operator /usr/local/bin/user-operator /usr/local/bin/
# A numeric non-root user, so that Pod Security "restricted" (runAsNonRoot) can verify it.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/cluster-operator"]
