#!/usr/bin/env bash
# Build kind's base image without a registry: a debootstrapped Debian (DEBIAN_SUITE of deploy/kind/versions.env)
# with the packages kind's images/base/Dockerfile installs, kind's base files (patched, from scripts/kind-build.sh),
# and the runtime scripts/kind-build.sh compiled (containerd, runc, crictl, the CNI plugins). The result is
# imported into the local Docker engine as gameday.local/kind-base:<recipe>; nothing is pulled.
#
#   scripts/kind-base-image.sh           build it unless the engine has it
#   scripts/kind-base-image.sh --name    print the image name it builds, and exit
#
# Needs root (debootstrap and chroot), debootstrap, and a running Docker engine.
# Exit codes: 0 built or present; 3 a tool, an artifact of scripts/kind-build.sh or the engine is missing;
# 5 the build failed (its log is named).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/kind-images-common.sh

LOG="$CACHE_ROOT/logs/base-image.log"
# kind's list (images/base/Dockerfile), less nothing: the node behaves as kind's own.
PACKAGES=systemd,systemd-sysv,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,fuse-overlayfs,nfs-common,open-iscsi,e2fsprogs,bash,ca-certificates,curl,jq,procps

KIND_DIR=$(artifact kind "$KIND_VERSION")
CONTAINERD_DIR=$(artifact containerd "$CONTAINERD_VERSION")
RUNC_DIR=$(artifact runc "$RUNC_VERSION")
CRICTL_DIR=$(artifact crictl "$CRICTL_VERSION")
CNI_DIR=$(artifact cni-plugins "$CNI_PLUGINS_VERSION")
ARTIFACTS=("$KIND_DIR" "$CONTAINERD_DIR" "$RUNC_DIR" "$CRICTL_DIR" "$CNI_DIR")

require_artifacts "${ARTIFACTS[@]}"
IMAGE="gameday.local/kind-base:$(image_recipe "${ARTIFACTS[@]}" < /dev/null)"
if [ "${1:-}" = "--name" ]; then echo "$IMAGE"; exit 0; fi

ROOTFS="$CACHE_ROOT/base-rootfs.partial"
debootstrap_image "base image"
fail() { fail_step "$1" "$LOG" "$started"; }

echo "== base image: kind's files, the runtime, and the services ($((SECONDS - started)) s)"
(
  set -x
  files="$KIND_DIR/base-files"
  install -m 0755 "$files"/usr/local/bin/* "$ROOTFS/usr/local/bin/"
  mkdir -p "$ROOTFS/kind/bin" "$ROOTFS/LICENSES" "$ROOTFS/etc/containerd" "$ROOTFS/etc/default" \
    "$ROOTFS/etc/sysctl.d" "$ROOTFS/etc/systemd/system/kubelet.service.d" "$ROOTFS/opt/cni/bin" \
    "$ROOTFS/usr/local/sbin" "$ROOTFS/etc/kubernetes/manifests"
  install -m 0644 "$files"/kind/README.txt "$ROOTFS/kind/"
  install -m 0755 "$files"/kind/bin/* "$ROOTFS/kind/bin/"
  install -m 0644 "$files"/LICENSES/* "$ROOTFS/LICENSES/"
  install -m 0644 "$files"/etc/crictl.yaml "$ROOTFS/etc/"
  install -m 0644 "$files"/etc/containerd/* "$ROOTFS/etc/containerd/"
  install -m 0644 "$files"/etc/default/* "$ROOTFS/etc/default/"
  install -m 0644 "$files"/etc/sysctl.d/* "$ROOTFS/etc/sysctl.d/"
  install -m 0644 "$files"/etc/systemd/system/*.service "$files"/etc/systemd/system/*.slice "$ROOTFS/etc/systemd/system/"
  install -m 0644 "$files"/etc/systemd/system/kubelet.service.d/* "$ROOTFS/etc/systemd/system/kubelet.service.d/"
  install -m 0755 "$CONTAINERD_DIR"/bin/* "$CRICTL_DIR/bin/crictl" "$ROOTFS/usr/local/bin/"
  install -m 0755 "$RUNC_DIR/bin/runc" "$ROOTFS/usr/local/sbin/runc"
  install -m 0755 "$CNI_DIR"/bin/* "$ROOTFS/opt/cni/bin/"
  # As kind's Dockerfile: the OCI spec containerd starts pods from, with kind's product-files hook and no rlimits.
  "$CONTAINERD_DIR/bin/ctr" oci spec \
    | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
    | jq 'del(.process.rlimits)' > "$ROOTFS/etc/containerd/cri-base.json"
  chroot "$ROOTFS" /bin/sh -euc '
    find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete
    rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
      /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
      /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
    echo "ReadKMsg=no" >> /etc/systemd/journald.conf
    ln -sf /usr/lib/systemd/systemd /sbin/init
    systemctl enable kubelet.service containerd.service undo-mount-hacks.service
    systemctl mask systemd-binfmt.service
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/*.log
  '
) >>"$LOG" 2>&1 || fail "installing kind's files and the runtime"

echo "== base image: importing $IMAGE ($((SECONDS - started)) s)"
tar -C "$ROOTFS" --numeric-owner -c . | docker import - "$IMAGE.rootfs" >>"$LOG" 2>&1 || fail "docker import"
rm -rf "$ROOTFS"
# `docker import --change` takes no STOPSIGNAL, and systemd stops on SIGRTMIN+3 only: one build step adds the
# image's settings (the classic builder, which uses the local image and pulls nothing).
printf '%s\n' "FROM $IMAGE.rootfs" 'ENV container=docker' 'STOPSIGNAL SIGRTMIN+3' \
  'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
  | DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" - >>"$LOG" 2>&1 || fail "docker build of the image settings"
docker rmi "$IMAGE.rootfs" >>"$LOG" 2>&1 || true
echo "== base image $IMAGE: built in $((SECONDS - started)) s, $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MiB", $1/1048576}')"
remove_superseded "$IMAGE"
