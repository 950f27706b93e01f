#!/usr/bin/env bash
# Build, from source and with no container registry, what a kind cluster needs on a machine that cannot pull:
# the kind CLI (with the patch that lets its nodes start without --privileged), the Kubernetes binaries, and the
# programs inside the node image and its system images (etcd, CoreDNS, pause, containerd, runc, crictl, the CNI
# plugins, the network policy controller, the storage provisioner); with --stack, the Go programs of the stack's
# monitoring instead (Prometheus, Alertmanager, kube-state-metrics). Versions: deploy/kind/versions.env.
#
#   scripts/kind-build.sh                 build what the cluster needs, where missing
#   scripts/kind-build.sh --stack         build the stack's Prometheus, Alertmanager and kube-state-metrics
#   scripts/kind-build.sh --list          what it builds, and whether each is cached
#   scripts/kind-build.sh --only NAME     one artifact (kind, kubernetes, etcd, coredns, pause, containerd, runc,
#                                         crictl, cni-plugins, kube-network-policies, local-path-provisioner,
#                                         prometheus, alertmanager, kube-state-metrics)
#
# Each artifact lands in ${GAMEDAY_CACHE:-$HOME/.cache/chaos-dr-verify}/kind/<name>-<version>/, stamped with its
# version and a checksum of how it is built: a second run is a no-op, a changed recipe builds again. Sources come
# from the Go module proxy (Go's module and build caches keep them); each step logs to <cache>/kind/logs/.
#
# Exit codes: 0 built or cached; 2 bad usage; 3 a tool is missing (go, gcc, patch, or libseccomp for runc);
# 5 a build step failed (the step and its log are named).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/kind-images-common.sh

LOGS="$CACHE_ROOT/logs"
PATCHES="$PWD/deploy/kind/patches"
EXIT_USAGE=2 EXIT_MISSING_TOOL=$EXIT_MISSING EXIT_BUILD_FAILED=$EXIT_FAILED
HEARTBEAT_SECONDS=30
# The machine's own Go: a toolchain line in a module's go.mod must not make the go command download another.
export GOTOOLCHAIN=local GOFLAGS="-mod=mod -trimpath"

ARTIFACTS=(kind kubernetes etcd coredns pause containerd runc crictl cni-plugins kube-network-policies
           local-path-provisioner)
STACK_ARTIFACTS=(prometheus alertmanager kube-state-metrics)

version_of() {
  case "$1" in
    kind) echo "$KIND_VERSION" ;;
    kubernetes) echo "$KUBERNETES_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    coredns) echo "$COREDNS_VERSION" ;;
    pause) echo "$KUBERNETES_VERSION" ;;  # pause.c as of this Kubernetes release
    containerd) echo "$CONTAINERD_VERSION" ;;
    runc) echo "$RUNC_VERSION" ;;
    crictl) echo "$CRICTL_VERSION" ;;
    cni-plugins) echo "$CNI_PLUGINS_VERSION" ;;
    kube-network-policies) echo "$KUBE_NETWORK_POLICIES_VERSION" ;;
    local-path-provisioner) echo "$LOCAL_PATH_PROVISIONER_VERSION" ;;
    prometheus) echo "$PROMETHEUS_VERSION" ;;
    alertmanager) echo "$ALERTMANAGER_VERSION" ;;
    kube-state-metrics) echo "$KUBE_STATE_METRICS_VERSION" ;;
    *) return 1 ;;
  esac
}

out_dir() { artifact "$1" "$(version_of "$1")"; }

# recipe_of NAME: the version, and a checksum of how it is built (the build function, and the artifact's patches
# in deploy/kind/patches/<name>-<version>-*.patch), so a changed recipe builds again while an unchanged one is a
# no-op.
recipe_of() {
  local fn="build_${1//-/_}"
  echo "$(version_of "$1") $({ declare -f "$fn" go_programs; cat "$PATCHES/$1-$(version_of "$1")"-*.patch 2>/dev/null; } | sha256sum | cut -c1-16)"
}

is_cached() { [ -f "$(out_dir "$1")/.complete" ] && [ "$(head -1 "$(out_dir "$1")/.complete")" = "$(recipe_of "$1")" ]; }

require_tools() {
  local missing=() tool
  for tool in "$@"; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "kind-build: missing: ${missing[*]} (Go from https://go.dev/dl, gcc and patch from Debian: apt-get install gcc patch)" >&2
  exit "$EXIT_MISSING_TOOL"
}

# go_programs MODULE@VERSION OUT PACKAGE...: build PACKAGEs of a published module through a throwaway main
# module, so the module's own replace directives (which `go install` refuses) play no part. TAGS, LDFLAGS and
# CGO_ENABLED come from the environment.
go_programs() {
  local module_at="$1" out="$2"; shift 2
  local work="$out.work"
  rm -rf "$work" && mkdir -p "$work" "$out/bin"
  (cd "$work" && go mod init gameday.build/wrapper >/dev/null 2>&1 && go get "$module_at")
  (cd "$work" && CGO_ENABLED="${CGO_ENABLED:-0}" go build -tags "${TAGS:-}" -ldflags "${LDFLAGS:-}" -o "$out/bin/" "$@")
  rm -rf "$work"
}

build_kind() {
  local out="$1" src="$1.src"
  rm -rf "$src" && mkdir -p "$out/bin"
  go mod download sigs.k8s.io/kind@"$KIND_VERSION"
  cp -r "$(go env GOMODCACHE)/sigs.k8s.io/kind@$KIND_VERSION" "$src" && chmod -R u+w "$src"
  patch -d "$src" -p1 < "$PATCHES/kind-$KIND_VERSION-unprivileged.patch"
  (cd "$src" && CGO_ENABLED=0 go build -o "$out/bin/kind" .)
  # The patched base-image files (the node's entrypoint) go into the offline node image.
  mkdir -p "$out/base-files" && cp -r "$src/images/base/files/." "$out/base-files/"
  rm -rf "$src"
}

# Kubernetes replaces its staging modules with local paths, so its commands build only through a main module
# that replaces each k8s.io/<staging> with the version published for this release (v0.Y.Z for vX.Y.Z).
build_kubernetes() {
  local out="$1" work="$1.work" minor staging
  minor="v0.${KUBERNETES_VERSION#v1.}"
  rm -rf "$work" && mkdir -p "$work" "$out/bin"
  go mod download k8s.io/kubernetes@"$KUBERNETES_VERSION"
  staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' \
    "$(go env GOMODCACHE)/k8s.io/kubernetes@$KUBERNETES_VERSION/go.mod")
  [ -n "$staging" ] || { echo "no staging replaces found in k8s.io/kubernetes@$KUBERNETES_VERSION/go.mod"; return 1; }
  {
    echo "module gameday.build/kubernetes"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    for m in $staging; do echo "replace $m => $m $minor"; done
  } > "$work/go.mod"
  local date version_pkg ldflags="" pkg
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for version_pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $version_pkg.gitVersion=$KUBERNETES_VERSION -X $version_pkg.gitMajor=1"
    ldflags+=" -X $version_pkg.gitMinor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)"
    ldflags+=" -X $version_pkg.gitCommit=0000000000000000000000000000000000000000 -X $version_pkg.gitTreeState=clean"
    ldflags+=" -X $version_pkg.buildDate=$date"
  done
  local packages=()
  for pkg in kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    packages+=("k8s.io/kubernetes/cmd/$pkg")
  done
  (cd "$work" && CGO_ENABLED=0 go build -tags selinux,notest -ldflags "-s -w $ldflags" -o "$out/bin/" "${packages[@]}")
  rm -rf "$work"
}

build_etcd() {
  LDFLAGS="-s -w" go_programs go.etcd.io/etcd/server/v3@"$ETCD_VERSION" "$1" go.etcd.io/etcd/server/v3
  # Go names a /vN module's program after the element before the suffix.
  mv "$1/bin/server" "$1/bin/etcd"
}

build_coredns() { LDFLAGS="-s -w" go_programs github.com/coredns/coredns@"$COREDNS_VERSION" "$1" github.com/coredns/coredns; }

build_pause() {
  mkdir -p "$1/bin"
  go mod download k8s.io/kubernetes@"$KUBERNETES_VERSION"
  gcc -Os -Wall -Werror -static -DVERSION="$PAUSE_IMAGE_TAG-$KUBERNETES_VERSION" -o "$1/bin/pause" \
    "$(go env GOMODCACHE)/k8s.io/kubernetes@$KUBERNETES_VERSION/build/pause/linux/pause.c"
  strip "$1/bin/pause"
}

build_containerd() {
  local pkg=github.com/containerd/containerd/v2
  CGO_ENABLED=1 TAGS="no_aufs no_zfs no_btrfs no_devmapper" \
    LDFLAGS="-s -w -X $pkg/version.Version=$CONTAINERD_VERSION -X $pkg/version.Package=$pkg" \
    go_programs "$pkg@$CONTAINERD_VERSION" "$1" "$pkg/cmd/containerd" "$pkg/cmd/ctr" "$pkg/cmd/containerd-shim-runc-v2"
}

build_runc() {
  if ! pkg-config --exists libseccomp 2>/dev/null; then
    echo "runc needs libseccomp's headers: apt-get install libseccomp-dev pkg-config"
    return "$EXIT_MISSING_TOOL"
  fi
  CGO_ENABLED=1 TAGS="seccomp urfave_cli_no_docs" LDFLAGS="-s -w -X main.version=${RUNC_VERSION#v}" \
    go_programs github.com/opencontainers/runc@"$RUNC_VERSION" "$1" github.com/opencontainers/runc
}

build_crictl() {
  LDFLAGS="-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
    go_programs sigs.k8s.io/cri-tools@"$CRICTL_VERSION" "$1" sigs.k8s.io/cri-tools/cmd/crictl
}

build_cni_plugins() {
  local m=github.com/containernetworking/plugins
  LDFLAGS="-s -w" go_programs "$m@$CNI_PLUGINS_VERSION" "$1" \
    "$m/plugins/ipam/host-local" "$m/plugins/main/loopback" "$m/plugins/main/ptp" "$m/plugins/meta/portmap"
}

# Patched to queue packets through the xtables NFQUEUE target (our machines' kernel lacks nftables' own queue
# expression), then to apply a policy to connections already open, which a partition must cut
# (deploy/kind/patches/, docs/kind-offline.md).
build_kube_network_policies() {
  local out="$1" src="$1.src" fix
  rm -rf "$src" && mkdir -p "$out/bin"
  go mod download sigs.k8s.io/kube-network-policies@"$KUBE_NETWORK_POLICIES_VERSION"
  cp -r "$(go env GOMODCACHE)/sigs.k8s.io/kube-network-policies@$KUBE_NETWORK_POLICIES_VERSION" "$src"
  chmod -R u+w "$src"
  for fix in xt-nfqueue reevaluate-established; do
    patch -d "$src" -p1 < "$PATCHES/kube-network-policies-$KUBE_NETWORK_POLICIES_VERSION-$fix.patch"
  done
  (cd "$src" && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$out/bin/kube-network-policies" ./cmd)
  rm -rf "$src"
}

build_local_path_provisioner() {
  LDFLAGS="-s -w" go_programs github.com/rancher/local-path-provisioner@"$LOCAL_PATH_PROVISIONER_VERSION" "$1" \
    github.com/rancher/local-path-provisioner
}

# The stack's monitoring, stamped with its release version as the projects' own builds are (prometheus --version).
# Prometheus is built without its web UI's assets (the builtinassets tag): the UI's pages answer that they were
# left out, while the API, rules, alerting and /-/ready work as in the released image.
prometheus_common_ldflags() {
  local v=github.com/prometheus/common/version
  echo "-s -w -X $v.Version=${1#v} -X $v.Revision=$2 -X $v.Branch=HEAD -X $v.BuildUser=gameday -X $v.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"
}

build_prometheus() {
  LDFLAGS="$(prometheus_common_ldflags "$PROMETHEUS_VERSION" "module-$PROMETHEUS_MODULE_VERSION")" \
    go_programs github.com/prometheus/prometheus@"$PROMETHEUS_MODULE_VERSION" "$1" \
    github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool
}

build_alertmanager() {
  LDFLAGS="$(prometheus_common_ldflags "$ALERTMANAGER_VERSION" "module-$ALERTMANAGER_VERSION")" \
    go_programs github.com/prometheus/alertmanager@"$ALERTMANAGER_VERSION" "$1" \
    github.com/prometheus/alertmanager/cmd/alertmanager github.com/prometheus/alertmanager/cmd/amtool
}

build_kube_state_metrics() {
  LDFLAGS="$(prometheus_common_ldflags "$KUBE_STATE_METRICS_VERSION" "module-$KUBE_STATE_METRICS_VERSION")" \
    go_programs k8s.io/kube-state-metrics/v2@"$KUBE_STATE_METRICS_VERSION" "$1" k8s.io/kube-state-metrics/v2
}

# run_step NAME: build one artifact unless its stamp is there; a heartbeat line every HEARTBEAT_SECONDS meanwhile.
run_step() {
  local name="$1" version out log started pid rc
  version=$(version_of "$name")
  out=$(out_dir "$name")
  log="$LOGS/$name-$version.log"
  if is_cached "$name"; then
    echo "== $name $version: cached in $out"
    return 0
  fi
  mkdir -p "$LOGS"
  rm -rf "$out"
  echo "== $name $version: building (log: $log)"
  started=$SECONDS
  "build_${name//-/_}" "$out" >"$log" 2>&1 &
  pid=$!
  local next_beat=$((started + HEARTBEAT_SECONDS))
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( SECONDS >= next_beat )) && kill -0 "$pid" 2>/dev/null; then
      echo "   $name: still building, $((SECONDS - started)) s"
      next_beat=$((next_beat + HEARTBEAT_SECONDS))
    fi
  done
  rc=0; wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "kind-build: step '$name' ($version) failed after $((SECONDS - started)) s; the end of its log, $log:" >&2
    tail -20 "$log" | sed 's/^/  | /' >&2
    rm -rf "$out"
    [ "$rc" -eq "$EXIT_MISSING_TOOL" ] && exit "$EXIT_MISSING_TOOL"
    exit "$EXIT_BUILD_FAILED"
  fi
  printf '%s\nbuilt %s in %s s\n' "$(recipe_of "$name")" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$((SECONDS - started))" \
    > "$out/.complete"
  echo "== $name $version: built in $((SECONDS - started)) s: $(ls "$out/bin" | tr '\n' ' ')"
}

case "${1:-}" in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  --list)
    for name in "${ARTIFACTS[@]}" "${STACK_ARTIFACTS[@]}"; do
      out=$(out_dir "$name")
      printf '%-22s %-9s %s\n' "$name" "$(version_of "$name")" \
        "$(is_cached "$name" && echo "cached: $out" || echo missing)"
    done
    exit 0 ;;
  --only)
    [ -n "${2:-}" ] && version_of "$2" >/dev/null \
      || { echo "kind-build: --only needs one of: ${ARTIFACTS[*]} ${STACK_ARTIFACTS[*]}" >&2; exit "$EXIT_USAGE"; }
    selected=("$2") ;;
  --stack) selected=("${STACK_ARTIFACTS[@]}") ;;
  "") selected=("${ARTIFACTS[@]}") ;;
  *) echo "kind-build: unknown argument '$1' (see --help)" >&2; exit "$EXIT_USAGE" ;;
esac

require_tools go gcc patch strip
started_all=$SECONDS
for name in "${selected[@]}"; do run_step "$name"; done
echo "== done in $((SECONDS - started_all)) s; artifacts under $CACHE_ROOT"
