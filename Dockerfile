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
      libcsv-dev libhttp-parser-dev libssl-dev \
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
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DETL_BUILD_TESTS=OFF \
 && cmake --build /build -j "$(nproc)" \
 && cmake --install /build --prefix /opt/etl-host --strip

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
