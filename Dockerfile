# Flowmeter container image.
#
#   docker build -t flowmeter:0.1.0 .
#   docker run --rm --read-only -p 9464:9464 -e FLOWMETER_BROKERS=kafka:9092 flowmeter:0.1.0   # = flowmeter run
#   docker run --rm flowmeter:0.1.0 check                                                       # any subcommand
#
# Two stages: the Swift toolchain image builds a release binary with the Swift runtime and Foundation linked
# statically; the runtime stage is Debian bookworm-slim with only the C libraries the bridges load
# (librdkafka1, libpq5) and CA certificates (TLS to Kafka and PostgreSQL). Builder and runtime are both
# bookworm, so the librdkafka/libpq the binary was linked against are the ones it runs with (librdkafka 2.0.2).
#
# No HEALTHCHECK: Kubernetes probes GET /healthz and /readyz (deploy/k8s/base/deployment.yaml) and
# docker-compose.yml declares its own check. The process writes nothing to disk (logs go to standard error),
# so the container runs with a read-only root filesystem; mount a tmpfs at /tmp if a library ever needs one.

ARG SWIFT_IMAGE=swift:6.2-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------------------
FROM ${SWIFT_IMAGE} AS build

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        librdkafka-dev libpq-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Resolve dependencies in their own layer so that source edits do not refetch them. Package.resolved is not
# committed (see .gitignore); when it is present in the build context it pins the versions.
COPY Package.swift Package.resolved* ./
RUN swift package resolve

# SwiftPM checks that every target declared in Package.swift has its folder, test targets included, so the
# tests are copied too (they are not built).
COPY Sources ./Sources
COPY Tests ./Tests
COPY analyzers ./analyzers

RUN swift build -c release --static-swift-stdlib --product flowmeter \
    && install -D -m 0755 "$(swift build -c release --static-swift-stdlib --show-bin-path)/flowmeter" \
        /out/usr/local/bin/flowmeter

# ---------------------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}

# libstdc++6 and libgcc-s1, which the statically linked Swift runtime still needs, are part of bookworm-slim.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        librdkafka1 libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 flowmeter \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin flowmeter

COPY --from=build /out/ /

LABEL org.opencontainers.image.title="flowmeter" \
      org.opencontainers.image.description="Kafka event-stream analyzer for LearnFlow's Dapr pub/sub: latency, dead letters, consumer lag"

# The built-in LearnFlow analyzer set is compiled into the binary; mount a folder and set FLOWMETER_ANALYZERS
# to use others. The working directory has no ./analyzers folder, so the built-in set is the default.
WORKDIR /
ENV FLOWMETER_HTTP_ADDR=0.0.0.0:9464

# Numeric user and group, so that Kubernetes' runAsNonRoot can verify them without reading /etc/passwd.
USER 10001:10001

# /metrics, /healthz, /readyz
EXPOSE 9464

# SIGTERM starts the graceful drain (at most 25 s + 5 s cancellation): give the container at least 30 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["flowmeter"]
CMD ["run"]
