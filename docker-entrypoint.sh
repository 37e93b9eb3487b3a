#!/bin/sh
# A lone number asks for that many tokens, as the original image did:
#   docker run --env-file .env IMAGE 20
# Anything else is passed to etl-host unchanged.
set -e
case "$1" in
  ''|*[!0-9]*) exec etl-host "$@" ;;
  *) [ "$#" -eq 1 ] || exec etl-host "$@"
     exec etl-host run pipelines/tokens.json --set "source.config.size=$1" ;;
esac
