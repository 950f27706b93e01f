#!/usr/bin/env bash
# Bring the stack up on kind: create the cluster unless it exists (scripts/kind-cluster-up.sh), build the stack
# image, load it into the nodes, apply deploy/k8s, wait until every workload is ready, print the endpoints. Safe
# to run again: it reuses the cluster, restarts the stack's pods only if an image changed, and re-applies the
# same manifests.
#
# Where no registry answers (deploy/k8s's apache/kafka image cannot be pulled), every other image deploy/k8s
# runs is built here too (scripts/kind-offline-images.sh) and the offline overlay deploy/kind/offline is applied
# instead: the same manifests with those images' names, and SecantusDB standing in for MongoDB (it says so when it
# applies it).
#
#   scripts/kind-up.sh            (or `make kind-up`)
#   KIND_CLUSTER_NAME=gameday  GAMEDAY_IMAGE=gameday-stack:dev  KIND_UP_TIMEOUT=600  (seconds, per wait)
#   KIND_STACK_IMAGES=auto        auto | online (pulled by the nodes) | offline (built here, the overlay)
#
# When no Docker engine answers it starts dockerd (and kind-down.sh stops that one, and only that one).
# Exit codes: 0 ready; 2 a bad setting; 3 docker, kind or kubectl missing (or the Docker engine down); 4 not ready
# in time; 5 a build step of the offline cluster or images failed; anything else is the failing command's own.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/kind-common.sh

IMAGE="${GAMEDAY_IMAGE:-gameday-stack:dev}"
TIMEOUT="${KIND_UP_TIMEOUT:-600}"
STACK_IMAGES="${KIND_STACK_IMAGES:-auto}"
NAMESPACE=app
EXIT_NOT_READY=4 EXIT_USAGE=2
case "$STACK_IMAGES" in
  auto|online|offline) ;;
  *) echo "${0##*/}: KIND_STACK_IMAGES must be auto, online or offline, not '$STACK_IMAGES'" >&2; exit "$EXIT_USAGE" ;;
esac

# The cluster first (built from source when no registry answers), every node and system pod Ready.
"$BASH" scripts/kind-cluster-up.sh
use_offline_tools
require_tools docker kind kubectl
k() { kubectl --context "$CONTEXT" "$@"; }

image_ids() { docker image inspect -f '{{.Id}}' "$@" 2>/dev/null || true; }
images=("$IMAGE")
MANIFESTS=deploy/k8s
if [ "$STACK_IMAGES" = auto ]; then
  # The registry image the manifests run: where it can be had, so can the others.
  kafka_image=$(sed -n 's/^ *image: *\(apache\/kafka:[^ ]*\) *$/\1/p' deploy/k8s/kafka.yaml | head -1)
  if image_at_hand "$kafka_image"; then STACK_IMAGES=online; else
    echo "== $kafka_image cannot be pulled ($PULL_ERROR): building every image of the stack here"
    STACK_IMAGES=offline
  fi
fi
if [ "$STACK_IMAGES" = offline ]; then
  MANIFESTS=deploy/kind/offline
  mapfile -t -O 1 images < <("$BASH" scripts/kind-offline-images.sh --names)
fi
before="$(image_ids "${images[@]}")"
echo "== building $IMAGE"
"$BASH" scripts/kind-stack-image.sh "$IMAGE"
[ "$STACK_IMAGES" = online ] || "$BASH" scripts/kind-offline-images.sh
after="$(image_ids "${images[@]}")"
echo "== loading ${images[*]} into the nodes"
kind load docker-image "${images[@]}" --name "$CLUSTER"

echo "== applying $MANIFESTS"
[ "$MANIFESTS" = deploy/k8s ] || echo "   MongoDB: SecantusDB stands in for it (no mongo image can be had here; $MANIFESTS/kustomization.yaml)"
k apply -f deploy/k8s/namespace.yaml
# The drills' fault-hook token: made once per cluster, never printed, never in git.
if ! k -n "$NAMESPACE" get secret gameday-fault-token >/dev/null 2>&1; then
  k -n "$NAMESPACE" create secret generic gameday-fault-token \
    --from-literal=token="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" >/dev/null
  echo "secret/gameday-fault-token created"
fi
deployed_before="$(k -n "$NAMESPACE" get deployments -o name 2>/dev/null || true)"
k kustomize --load-restrictor LoadRestrictionsNone "$MANIFESTS" | k apply -f -
# A pod keeps the image it started with, though the nodes now hold a newer one under the same name; pods the apply
# just created start with the new one anyway.
if [ -n "$deployed_before" ] && [ "$before" != "$after" ]; then
  echo "== an image changed: restarting the stack's pods"
  k -n "$NAMESPACE" rollout restart deployment
  k -n "$NAMESPACE" rollout restart statefulset
fi

echo "== waiting for readiness (at most ${TIMEOUT} s per step)"
not_ready() {
  echo "${0##*/}: $1 not ready within ${TIMEOUT} s; pods now:" >&2
  k -n "$NAMESPACE" get pods -o wide >&2 || true
  k -n "$NAMESPACE" get events --sort-by=.lastTimestamp 2>/dev/null | tail -20 >&2 || true
  exit "$EXIT_NOT_READY"
}
for sts in kafka mongo backup; do
  k -n "$NAMESPACE" rollout status "statefulset/$sts" --timeout="${TIMEOUT}s" || not_ready "statefulset/$sts"
done
for job in kafka-topics mongo-init; do
  k -n "$NAMESPACE" wait --for=condition=complete "job/$job" --timeout="${TIMEOUT}s" || not_ready "job/$job"
done
for deploy in $(k -n "$NAMESPACE" get deployments -o name); do
  k -n "$NAMESPACE" rollout status "$deploy" --timeout="${TIMEOUT}s" || not_ready "$deploy"
done

cat <<EOT

The stack is ready on kind cluster '$CLUSTER' (kube context $CONTEXT, namespace $NAMESPACE):
  processor API   http://127.0.0.1:30080
  prometheus      http://127.0.0.1:30090
  alertmanager    http://127.0.0.1:30093
  producers       http://127.0.0.1:30070
  loadgen         http://127.0.0.1:30020
  providers       http://127.0.0.1:30021  (provider simulator)
  ai decision     http://127.0.0.1:30022
  market data     http://127.0.0.1:30023
  backup agent    http://127.0.0.1:30024
  alert webhook   http://127.0.0.1:30000/alerts
  mongo           mongodb://127.0.0.1:30017/?directConnection=true

Run the experiments against it:
  gameday run experiments/processor-pod-kill.yaml --target kubernetes
  gameday gate --target kubernetes
Remove it:  make kind-down
EOT
