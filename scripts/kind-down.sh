#!/usr/bin/env bash
# Delete the kind cluster that kind-up.sh made (and everything in it), then stop the dockerd kind-up.sh started,
# if it started one. Safe to run again: no cluster, no error.
#   scripts/kind-down.sh   (or `make kind-down`);  KIND_CLUSTER_NAME=gameday
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/kind-common.sh

use_offline_tools
require_tools docker kind
if ! docker info >/dev/null 2>&1; then
  echo "no Docker engine answers: no kind cluster to delete"
elif cluster_exists; then
  kind delete cluster --name "$CLUSTER"
else
  echo "no kind cluster named '$CLUSTER': nothing to delete"
fi
stop_docker_engine_if_ours
