#!/usr/bin/env bash
# The images deploy/k8s pulls from registries, built here instead, under the names the offline overlay
# (deploy/kind/offline) gives them: the registry's name replaced, the tag kept.
#
#   gameday.local/kafka:4.1.0                 Apache Kafka's jars on Debian's Java 17 (scripts/kind-kafka-image.sh)
#   gameday.local/prometheus:v3.5.0           Prometheus from Go source, its web UI left out (kind-build.sh --stack)
#   gameday.local/alertmanager:v0.28.1        Alertmanager from Go source
#   gameday.local/kube-state-metrics:v2.16.0  kube-state-metrics from Go source
#
# Each has what the released image's manifest relies on: the same entrypoint and default command, user nobody
# (65534) for the three Go programs, and nothing else (static programs, no shell). MongoDB has no image here: the
# overlay runs SecantusDB from the stack's image in its place.
#
#   scripts/kind-offline-images.sh           build those missing or out of date (a rebuild only when how it is
#                                            made changed: the programs, the jars, these scripts, the pins)
#   scripts/kind-offline-images.sh --names   print the four names, and exit
#
# Exit codes: 0 built or present; 3 a tool, an artifact or the engine is missing; 5 a build failed (named).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/kind-images-common.sh

NAMES=("gameday.local/kafka:$KAFKA_VERSION" "gameday.local/prometheus:$PROMETHEUS_VERSION"
       "gameday.local/alertmanager:$ALERTMANAGER_VERSION" "gameday.local/kube-state-metrics:$KUBE_STATE_METRICS_VERSION")
case "${1:-}" in
  --names) printf '%s\n' "${NAMES[@]}"; exit 0 ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "$PROG: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac
require_docker_engine

# alias_image KEYED STABLE: STABLE names what KEYED (the name with its recipe) holds, as the overlay asks for it.
alias_image() {
  remove_superseded "$1"
  docker tag "$1" "$2"
  echo "== $2 now names $1"
}

"$BASH" scripts/kind-kafka-image.sh
alias_image "$("$BASH" scripts/kind-kafka-image.sh --name)" "${NAMES[0]}"

"$BASH" scripts/kind-build.sh --stack

# static_image STABLE ARTIFACT_DIR WORKDIR ENTRYPOINT_JSON CMD_JSON BINDIR PROGRAM...: PROGRAMs of ARTIFACT_DIR/bin
# in BINDIR (/bin, or / for kube-state-metrics, where its image has it), a passwd naming nobody, /tmp, and WORKDIR
# owned by nobody.
static_image() {
  local stable="$1" dir="$2" workdir="$3" entrypoint="$4" cmd="$5" bindir="$6"; shift 6
  require_artifacts "$dir"
  local keyed="$stable-$(echo "$stable $workdir $entrypoint $cmd $bindir $*" | image_recipe "$dir")"
  if docker image inspect "$keyed" >/dev/null 2>&1; then
    echo "== $stable: present"
  else
    local root started=$SECONDS program
    root=$(mktemp -d)
    mkdir -p "$root$bindir" "$root/etc" "$root/tmp" "$root$workdir"
    for program in "$@"; do install -m 0755 "$dir/bin/$program" "$root$bindir/$program"; done
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/home:/sbin/nologin\n' > "$root/etc/passwd"
    printf 'root:x:0:\nnobody:x:65534:\n' > "$root/etc/group"
    chmod 1777 "$root/tmp"
    chown 65534:65534 "$root$workdir"
    tar -C "$root" --numeric-owner -c . \
      | docker import --change 'USER 65534' --change "WORKDIR $workdir" \
          --change "ENTRYPOINT $entrypoint" --change "CMD $cmd" - "$keyed" >/dev/null
    rm -rf "$root"
    echo "== $stable: built $keyed in $((SECONDS - started)) s"
  fi
  alias_image "$keyed" "$stable"
}

static_image "${NAMES[1]}" "$(artifact prometheus "$PROMETHEUS_VERSION")" /prometheus \
  '["/bin/prometheus"]' '["--config.file=/etc/prometheus/prometheus.yml","--storage.tsdb.path=/prometheus"]' \
  /bin prometheus promtool
static_image "${NAMES[2]}" "$(artifact alertmanager "$ALERTMANAGER_VERSION")" /alertmanager \
  '["/bin/alertmanager"]' '["--config.file=/etc/alertmanager/alertmanager.yml","--storage.path=/alertmanager"]' \
  /bin alertmanager amtool
static_image "${NAMES[3]}" "$(artifact kube-state-metrics "$KUBE_STATE_METRICS_VERSION")" / \
  '["/kube-state-metrics","--port=8080","--telemetry-port=8081"]' '[]' / kube-state-metrics
