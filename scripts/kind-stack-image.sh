#!/usr/bin/env bash
# Build the stack's image from the Dockerfile: on python:3.11-slim where the engine has it or can pull it,
# otherwise on the same Python from Debian, built here (scripts/kind-python-base.sh), passed as BASE_IMAGE.
#
#   scripts/kind-stack-image.sh [NAME]    NAME defaults to gameday-stack:dev (scripts/kind-up.sh builds that)
#
# Exit codes: 0 built; 3 a tool or the engine is missing; anything else is the failing build's own.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/kind-common.sh

IMAGE="${1:-gameday-stack:dev}"
require_tools docker
build_args=()
if ! image_at_hand python:3.11-slim; then
  echo "== python:3.11-slim cannot be pulled ($PULL_ERROR): the stack image builds on Debian's Python 3.11 instead"
  "$BASH" scripts/kind-python-base.sh
  build_args=(--build-arg "BASE_IMAGE=$("$BASH" scripts/kind-python-base.sh --name)")
fi
docker build "${build_args[@]}" -t "$IMAGE" .
