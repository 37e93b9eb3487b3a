#!/usr/bin/env bash
# Installs the build into a fresh prefix and checks that the installed etl-host finds its
# bundled plugins with no flag, and that the SDK's headers and CMake package are there.
set -euo pipefail
build_dir=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
# --strip: the plugins must still be recognised (their ABI marker is a section, not a symbol).
cmake --install "$build_dir" --prefix "$prefix" --strip >/dev/null

fail() { echo "install test: $*" >&2; exit 1; }
[[ -x "$prefix/bin/etl-host" ]] || fail "no bin/etl-host"
for plugin in etl-source-http-newline etl-sink-postgres-row-by-row etl-reporter-stdout etl-reporter-csv etl-reporter-json; do
  [[ -f "$prefix/lib/etl-host/plugins/$plugin.so" ]] || fail "no $plugin.so"
done
[[ -f "$prefix/include/etl/sdk.hpp" ]] || fail "no SDK headers"
ls "$prefix"/lib*/cmake/etl-sdk/etl-sdk-config.cmake >/dev/null || fail "no CMake package"
[[ -f "$prefix/share/etl-host/pipelines/tokens.json" ]] || fail "no pipelines"

# Run from elsewhere, with no plugin path of any kind.
listing=$(cd / && env -u ETL_PLUGIN_PATH "$prefix/bin/etl-host" plugins --json)
count=$(grep -c "\"file\": \"$prefix/lib/etl-host/plugins/" <<<"$listing" || true)
[[ "$count" -eq 17 ]] || fail "expected 17 plugins from $prefix/lib/etl-host/plugins, got $count: $listing"
(cd / && env -u ETL_PLUGIN_PATH TOKEN_HOST=http://127.0.0.1:1/x DB_HOST=h DB_USER=u DB_NAME=d \
   "$prefix/bin/etl-host" validate "$prefix/share/etl-host/pipelines/tokens.json" >/dev/null) || fail "validate failed"
(cd / && env -u ETL_PLUGIN_PATH DB_HOST=h DB_USER=u DB_NAME=d \
   "$prefix/bin/etl-host" validate "$prefix/share/etl-host/pipelines/names.json" >/dev/null) || fail "validate names.json failed"
(cd / && env -u ETL_PLUGIN_PATH DB_HOST=h DB_USER=u DB_NAME=d \
   "$prefix/bin/etl-host" validate "$prefix/share/etl-host/pipelines/birthday-api.json" >/dev/null) || fail "validate birthday-api.json failed"
[[ -f "$prefix/share/etl-host/pipelines/sql/birthday.sql" ]] || fail "pipelines/sql/birthday.sql is not installed"
echo "install: 3 passed, 0 failed"
