#!/usr/bin/env bash
# Delete the kind cluster that kind-up.sh made (and everything in it). Safe to run again: no cluster, no error.
#   scripts/kind-down.sh   (or `make kind-down`);  KIND_CLUSTER_NAME=gameday
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/kind-common.sh

require_tools docker kind
require_docker_engine
if cluster_exists; then
  kind delete cluster --name "$CLUSTER"
else
  echo "no kind cluster named '$CLUSTER': nothing to delete"
fi
