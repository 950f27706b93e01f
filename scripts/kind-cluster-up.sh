#!/usr/bin/env bash
# Create the kind cluster the Kubernetes target runs against (deploy/kind/cluster.yaml: one control plane, two
# workers) and wait until every node and every system pod is Ready. Safe to run again: an existing cluster is
# reused and only waited for.
#
# The node image: kind's own (kindest/node, pinned by digest in cluster.yaml) when the engine has it or can pull
# it; otherwise everything is built here from source, with no registry (scripts/kind-build.sh,
# kind-base-image.sh, kind-node-image.sh; about 15 min the first time, seconds after), and that kind and kubectl
# are used. Both run the same Kubernetes version.
#
#   scripts/kind-cluster-up.sh        (or `make kind-cluster`; `make kind-up` runs it before deploying the stack)
#   KIND_CLUSTER_NAME=gameday         the cluster (kube context kind-<name>)
#   KIND_NODE_SOURCE=auto             auto | online (kind's image) | offline (built here)
#   KIND_HOST_PORTS=1                 0: leave out the host port mappings (a second cluster beside the first)
#   KIND_UP_TIMEOUT=600               seconds, per wait
#
# Starts dockerd when no Docker engine answers (kind-down.sh stops that one, and only that one).
# Exit codes: 0 ready; 2 bad setting; 3 a tool or the Docker engine is missing; 4 not ready in time; 5 a build
# step failed (the step and its log are named).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/kind-common.sh

case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "${0##*/}: no arguments, only the settings in --help (got '$1')" >&2; exit 2 ;;
esac
TIMEOUT="${KIND_UP_TIMEOUT:-600}"
SOURCE="${KIND_NODE_SOURCE:-auto}"
HOST_PORTS="${KIND_HOST_PORTS:-1}"
EXIT_USAGE=2 EXIT_NOT_READY=4
case "$SOURCE" in auto|online|offline) ;; *)
  echo "${0##*/}: KIND_NODE_SOURCE must be auto, online or offline, not '$SOURCE'" >&2; exit "$EXIT_USAGE" ;;
esac
case "$HOST_PORTS" in 0|1) ;; *)
  echo "${0##*/}: KIND_HOST_PORTS must be 0 or 1, not '$HOST_PORTS'" >&2; exit "$EXIT_USAGE" ;;
esac

require_tools docker
ensure_docker_engine
started=$SECONDS
PINNED=$(sed -n 's/^ *image: *//p' deploy/kind/cluster.yaml | head -1)

if [ "$SOURCE" = auto ]; then
  if image_at_hand "$PINNED"; then
    SOURCE=online
  else
    echo "== $PINNED cannot be pulled ($PULL_ERROR): building kind's pieces from source"
    SOURCE=offline
  fi
fi

CONFIG="$KIND_STATE/$CLUSTER.yaml"
mkdir -p "$KIND_STATE"
if [ "$SOURCE" = offline ]; then
  "$BASH" scripts/kind-build.sh
  "$BASH" scripts/kind-base-image.sh
  "$BASH" scripts/kind-node-image.sh
  NODE_IMAGE=$("$BASH" scripts/kind-node-image.sh --name)
  use_offline_tools
else
  require_tools kind kubectl
  NODE_IMAGE=$PINNED
fi
# The checked-in configuration, with this run's cluster name and node image (and without host ports if asked).
sed -e "s|^name: .*|name: $CLUSTER|" -e "s|^\( *image: *\).*|\1$NODE_IMAGE|" deploy/kind/cluster.yaml \
  | { if [ "$HOST_PORTS" = 0 ]; then sed -e '/extraPortMappings:/d' -e '/containerPort:/d'; else cat; fi; } > "$CONFIG"

if cluster_exists; then
  echo "== kind cluster '$CLUSTER' exists: reusing it"
else
  echo "== creating kind cluster '$CLUSTER' ($SOURCE node image $NODE_IMAGE)"
  kind create cluster --name "$CLUSTER" --config "$CONFIG" --wait "${TIMEOUT}s"
fi

k() { kubectl --context "$CONTEXT" "$@"; }
not_ready() {
  echo "${0##*/}: $1 not Ready within ${TIMEOUT} s; now:" >&2
  k get nodes -o wide >&2 || true
  k -n kube-system get pods -o wide >&2 || true
  k get events -A --sort-by=.lastTimestamp 2>/dev/null | tail -15 >&2 || true
  exit "$EXIT_NOT_READY"
}
echo "== waiting until every node and system pod is Ready (at most ${TIMEOUT} s each)"
k wait --for=condition=Ready nodes --all --timeout="${TIMEOUT}s" >/dev/null || not_ready "the nodes"
k -n kube-system wait --for=condition=Ready pods --all --timeout="${TIMEOUT}s" >/dev/null || not_ready "the system pods"
k get nodes
echo "== kind cluster '$CLUSTER' Ready in $((SECONDS - started)) s (kube context $CONTEXT, $SOURCE node image)"
