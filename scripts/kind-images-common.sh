# Shared by kind-build.sh, kind-base-image.sh and kind-node-image.sh (sourced, not run): where the offline kind
# pieces are cached, and how an image script checks and keys the artifacts it is made from.
. deploy/kind/versions.env
# Kafka's version and its JMX exporter agent's are the ones `make kafka-deps` fetches (scripts/kafka-deps.sh reads
# the same pom).
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' deps/kafka/pom.xml)
JMX_EXPORTER_VERSION=$(sed -n 's:.*<jmx.exporter.version>\(.*\)</jmx.exporter.version>.*:\1:p' deps/kafka/pom.xml)
CACHE_ROOT="${GAMEDAY_CACHE:-$HOME/.cache/chaos-dr-verify}/kind"
EXIT_MISSING=3 EXIT_FAILED=5
PROG=$(basename "$0" .sh)

# artifact NAME VERSION: the directory scripts/kind-build.sh builds NAME into.
artifact() { echo "$CACHE_ROOT/$1-$2"; }

# require_artifacts DIR...: exit 3 naming every artifact scripts/kind-build.sh has not built yet.
require_artifacts() {
  local missing=() dir
  for dir in "$@"; do [ -f "$dir/.complete" ] || missing+=("$(basename "$dir")"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "$PROG: not built yet: ${missing[*]}; run scripts/kind-build.sh first" >&2
  exit "$EXIT_MISSING"
}

# image_recipe DIR... (lines of extra input on stdin): a key for an image, from everything that goes into it: the
# calling script, the pins, the extra input and the artifacts' stamps.
image_recipe() {
  local dir
  { cat "$0" deploy/kind/versions.env -
    for dir in "$@"; do head -1 "$dir/.complete"; done
  } | sha256sum | cut -c1-12
}

require_docker_engine() {
  docker info >/dev/null 2>&1 && return 0
  echo "$PROG: the Docker engine does not answer (docker info)" >&2
  exit "$EXIT_MISSING"
}

# fail_step WHAT LOG STARTED: say WHAT failed, after how long, with the end of LOG, and exit 5.
fail_step() {
  echo "$PROG: $1 failed after $((SECONDS - $3)) s; the end of its log, $2:" >&2
  tail -20 "$2" | sed 's/^/  | /' >&2
  exit "$EXIT_FAILED"
}

# remove_superseded IMAGE: the earlier builds of IMAGE's repository (other recipes) go, 1.5 GB each for the node
# image; one a container still uses (a cluster's node) stays, as docker refuses to remove it.
remove_superseded() {
  local old
  for old in $(docker images --format '{{.Repository}}:{{.Tag}}' "${1%:*}"); do
    [ "$old" = "$1" ] && continue
    docker rmi "$old" >/dev/null 2>&1 && echo "== removed the superseded $old"
  done
  return 0
}

# debootstrap_image WHAT: the start both Debian-based images share. Exit 3 without debootstrap, root or the engine;
# exit 0 when IMAGE is present already; otherwise a fresh Debian DEBIAN_SUITE with PACKAGES in ROOTFS (from
# DEBIAN_MIRROR), logged to LOG, and `started` set for the caller's timings.
debootstrap_image() {
  local tool mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
  for tool in debootstrap docker; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$PROG: missing: $tool (apt-get install $tool)" >&2; exit "$EXIT_MISSING"; }
  done
  [ "$(id -u)" = 0 ] || { echo "$PROG: debootstrap and chroot need root" >&2; exit "$EXIT_MISSING"; }
  require_docker_engine
  if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "== $1 $IMAGE: present"
    exit 0
  fi
  mkdir -p "$(dirname "$LOG")"
  started=$SECONDS
  : > "$LOG"
  rm -rf "$ROOTFS"
  echo "== $1: debootstrap $DEBIAN_SUITE from $mirror (log: $LOG)"
  debootstrap --variant=minbase --include="$PACKAGES" "$DEBIAN_SUITE" "$ROOTFS" "$mirror" >>"$LOG" 2>&1 \
    || fail_step "debootstrap" "$LOG" "$started"
}
