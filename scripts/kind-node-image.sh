#!/usr/bin/env bash
# Assemble kind's node image without a registry, the way kind's own `buildImage()` does: start the base image
# (scripts/kind-base-image.sh), copy kubeadm, kubelet and kubectl to /usr/bin, write /kind/version, import every
# image kubeadm needs into the node's containerd (built here from scripts/kind-build.sh's programs, under the names
# kubeadm and kind's containerd config ask for), put the pod network that stands in for kindnet (deploy/kind/podnet/)
# and the default storage (deploy/kind/storage/) where kind looks for them, and commit. The result is gameday.local/kind-node:<version>-<recipe>.
#
#   scripts/kind-node-image.sh           build it unless the engine has it
#   scripts/kind-node-image.sh --name    print the image name it builds, and exit
#
# Exit codes: 0 built or present; 3 an artifact, the base image or the engine is missing; 5 the build failed (its
# log is named).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/kind-images-common.sh

LOG="$CACHE_ROOT/logs/node-image.log"
K8S=$(artifact kubernetes "$KUBERNETES_VERSION")
ETCD=$(artifact etcd "$ETCD_VERSION")
COREDNS=$(artifact coredns "$COREDNS_VERSION")
PAUSE=$(artifact pause "$KUBERNETES_VERSION")
NETPOL=$(artifact kube-network-policies "$KUBE_NETWORK_POLICIES_VERSION")
PROVISIONER=$(artifact local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION")
# The pod network kind installs in kindnet's place (deploy/kind/podnet/) and the default storage
# (deploy/kind/storage/): their images live only inside the node. The storage helper is Debian's static busybox.
PODNET=deploy/kind/podnet
PODNET_IMAGE=gameday.local/kind-podnet:node-image
STORAGE=deploy/kind/storage
PROVISIONER_IMAGE=gameday.local/local-path-provisioner:node-image
HELPER_IMAGE=gameday.local/local-path-helper:node-image
BUSYBOX=/bin/busybox

require_artifacts "$K8S" "$ETCD" "$COREDNS" "$PAUSE" "$NETPOL" "$PROVISIONER"
[ -x "$BUSYBOX" ] || { echo "kind-node-image: missing: $BUSYBOX (apt-get install busybox-static)" >&2; exit "$EXIT_MISSING"; }
BASE=$(scripts/kind-base-image.sh --name) || exit "$EXIT_MISSING"
IMAGE="gameday.local/kind-node:$KUBERNETES_VERSION-$({ echo "$BASE"; cat "$PODNET"/* "$STORAGE"/*; sha256sum "$BUSYBOX"; } \
  | image_recipe "$K8S" "$ETCD" "$COREDNS" "$PAUSE" "$NETPOL" "$PROVISIONER")"
if [ "${1:-}" = "--name" ]; then echo "$IMAGE"; exit 0; fi

require_docker_engine
docker image inspect "$BASE" >/dev/null 2>&1 \
  || { echo "kind-node-image: the base image $BASE is not built: run scripts/kind-base-image.sh" >&2; exit "$EXIT_MISSING"; }
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "== node image $IMAGE: present"
  exit 0
fi

mkdir -p "$(dirname "$LOG")"
: > "$LOG"
WORK="$CACHE_ROOT/node-image.partial"
BUILDER="gameday-kind-node-build-$$"
started=$SECONDS
cleanup() { docker rm -f -v "$BUILDER" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
fail() { fail_step "$1" "$LOG" "$started"; }
rm -rf "$WORK" && mkdir -p "$WORK/images"

# static_image NAME TAG ENTRYPOINT BINARY...: an image of static programs on a minimal root (users, CA
# certificates, /tmp), saved as a docker archive for the node's containerd.
static_image() {
  local name="$1" tag="$2" entrypoint="$3"; shift 3
  local root="$WORK/root-${name//\//_}"
  mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/var/run"
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  echo 'hosts: files dns' > "$root/etc/nsswitch.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  install -m 0755 "$@" "$root/usr/local/bin/"
  tar -C "$root" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change "ENTRYPOINT $entrypoint" - "$name:$tag"
  docker save -o "$WORK/images/${name//\//_}.tar" "$name:$tag"
  docker rmi "$name:$tag" >/dev/null
}

echo "== node image: the system images (log: $LOG)"
(
  set -x
  for component in kube-apiserver kube-controller-manager kube-scheduler; do
    static_image "registry.k8s.io/$component" "$KUBERNETES_VERSION" "[\"/usr/local/bin/$component\"]" "$K8S/bin/$component"
  done
  static_image registry.k8s.io/etcd "$ETCD_IMAGE_TAG" '["/usr/local/bin/etcd"]' "$ETCD/bin/etcd"
  static_image registry.k8s.io/coredns/coredns "$COREDNS_VERSION" '["/usr/local/bin/coredns"]' "$COREDNS/bin/coredns"
  static_image registry.k8s.io/pause "$PAUSE_IMAGE_TAG" '["/usr/local/bin/pause"]' "$PAUSE/bin/pause"
  # kube-proxy programs iptables, nftables and conntrack: it runs on the base image's Debian, which has them.
  printf '%s\n' "FROM $BASE" "COPY kube-proxy /usr/local/bin/kube-proxy" 'ENTRYPOINT ["/usr/local/bin/kube-proxy"]' \
    > "$WORK/Dockerfile.kube-proxy"
  cp "$K8S/bin/kube-proxy" "$WORK/"
  DOCKER_BUILDKIT=0 docker build -q -f "$WORK/Dockerfile.kube-proxy" -t "registry.k8s.io/kube-proxy:$KUBERNETES_VERSION" "$WORK"
  docker save -o "$WORK/images/kube-proxy.tar" "registry.k8s.io/kube-proxy:$KUBERNETES_VERSION"
  docker rmi "registry.k8s.io/kube-proxy:$KUBERNETES_VERSION" >/dev/null
  # The pod network's loop needs bash, curl, jq, iproute2 and iptables: the base image's Debian again.
  printf '%s\n' "FROM $BASE" "COPY podnet.sh /usr/local/bin/podnet" \
    "COPY kube-network-policies /usr/local/bin/kube-network-policies" > "$WORK/Dockerfile.podnet"
  install -m 0755 "$PODNET/podnet.sh" "$NETPOL/bin/kube-network-policies" "$WORK/"
  DOCKER_BUILDKIT=0 docker build -q -f "$WORK/Dockerfile.podnet" -t "$PODNET_IMAGE" "$WORK"
  docker save -o "$WORK/images/podnet.tar" "$PODNET_IMAGE"
  docker rmi "$PODNET_IMAGE" >/dev/null
  static_image "${PROVISIONER_IMAGE%:*}" "${PROVISIONER_IMAGE##*:}" '["/usr/local/bin/local-path-provisioner"]' \
    "$PROVISIONER/bin/local-path-provisioner"
  # The helper runs the provisioner's setup and teardown scripts (sh, mkdir, rm) on the node's disk.
  mkdir -p "$WORK/root-helper/bin" "$WORK/root-helper/tmp"
  cp "$BUSYBOX" "$WORK/root-helper/bin/busybox"
  for applet in sh mkdir rm ls chmod; do ln -s busybox "$WORK/root-helper/bin/$applet"; done
  tar -C "$WORK/root-helper" --numeric-owner -c . | docker import --change 'ENV PATH=/bin' - "$HELPER_IMAGE"
  docker save -o "$WORK/images/local-path-helper.tar" "$HELPER_IMAGE"
  docker rmi "$HELPER_IMAGE" >/dev/null
) >>"$LOG" 2>&1 || fail "building the system images"

echo "== node image: Kubernetes and the images into the base ($((SECONDS - started)) s)"
(
  set -x
  docker run -d --entrypoint=sleep --name "$BUILDER" --security-opt seccomp=unconfined "$BASE" infinity
  for binary in kubeadm kubelet kubectl; do
    docker cp "$K8S/bin/$binary" "$BUILDER:/usr/bin/$binary"
    docker exec "$BUILDER" chown root:root "/usr/bin/$binary"
    docker exec "$BUILDER" chmod 0755 "/usr/bin/$binary"
  done
  docker exec "$BUILDER" sh -c "mkdir -p /kind/manifests && echo $KUBERNETES_VERSION > /kind/version"
  docker cp "$PODNET/default-cni.yaml" "$BUILDER:/kind/manifests/default-cni.yaml"
  docker cp "$STORAGE/default-storage.yaml" "$BUILDER:/kind/manifests/default-storage.yaml"
  docker exec "$BUILDER" bash -c 'nohup containerd > /dev/null 2>&1 &'
  for _ in $(seq 1 30); do docker exec "$BUILDER" ctr info >/dev/null 2>&1 && break; sleep 1; done
  for archive in "$WORK"/images/*.tar; do
    docker exec -i "$BUILDER" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
      --all-platforms --no-unpack --digests - < "$archive"
  done
  docker exec "$BUILDER" ctr --namespace=k8s.io images list -q
  docker exec "$BUILDER" pkill containerd
  docker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' "$BUILDER" "$IMAGE"
) >>"$LOG" 2>&1 || fail "assembling the node image"

echo "== node image $IMAGE: built in $((SECONDS - started)) s, $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MiB", $1/1048576}')"
remove_superseded "$IMAGE"
