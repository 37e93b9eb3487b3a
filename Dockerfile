# etl-host container image.
#   docker build -t etl-host .
#   docker run --env-file .env etl-host          # the tokens job, 5 tokens
#   docker run --env-file .env etl-host 20       # 20 tokens
#   docker run --env-file .env etl-host validate pipelines/tokens.json
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build libpoco-dev libboost-dev nlohmann-json3-dev libvalijson-dev libpq-dev prometheus-cpp-dev \
      libcsv-dev libhttp-parser-dev libssl-dev ccache \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY sdk sdk
COPY host host
COPY plugins plugins
COPY tools tools
COPY pipelines pipelines
# Installed for plugin authors: share/etl-host/plugin-template, share/doc/etl-host/plugin-guide.md.
COPY examples/plugin-template examples/plugin-template
COPY docs/plugin-guide.md docs/plugin-guide.md
# Built as scripts/test builds (RelWithDebInfo with line tables, stripped on install; the build
# directory inside the source tree), so that a compiler cache mounted at /ccache is reused across
# checkouts: scripts/check-container mounts the host's (podman build -v), and the objects
# scripts/test compiled are not compiled again. Without a mount, no cache is used.
RUN if [ -d /ccache ]; then \
      export CCACHE_DIR=/ccache CCACHE_BASEDIR=/src CCACHE_NOHASHDIR=true; \
      launcher=-DCMAKE_CXX_COMPILER_LAUNCHER=ccache; \
    fi \
 && cmake -S . -B /src/build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DETL_DEBUG_INFO=lines \
      -DETL_BUILD_TESTS=OFF ${launcher:-} \
 && cmake --build /src/build -j "$(nproc)" \
 && cmake --install /src/build --prefix /opt/etl-host --strip

FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libpq5 libpocofoundation80 libpoconet80 libpoconetssl80 libpococrypto80 \
      libpocoutil80 libpocodata80 libpocodatapostgresql80 libprometheus-cpp-push1.0 libprometheus-cpp-core1.0 libcsv3 \
      libhttp-parser2.9 libssl3 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --system --uid 10001 --home-dir /work --create-home etl
COPY --from=build /opt/etl-host /opt/etl-host
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/opt/etl-host/bin:$PATH
WORKDIR /work
RUN cp -r /opt/etl-host/share/etl-host/pipelines /work/pipelines && chown -R etl /work
USER etl
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["run", "pipelines/tokens.json"]
