#!/usr/bin/env bash
# The stack image's base without a registry: a debootstrapped Debian (DEBIAN_SUITE of deploy/kind/versions.env)
# with Debian's Python 3.11 in a virtual environment first on PATH (so `python` and `pip` mean what they mean in
# python:3.11-slim) and tini. The Dockerfile builds on it unchanged:
#
#   docker build --build-arg BASE_IMAGE="$(scripts/kind-python-base.sh --name)" -t gameday-stack:dev .
#
#   scripts/kind-python-base.sh           build it unless the engine has it
#   scripts/kind-python-base.sh --name    print the image name it builds, and exit
#
# Needs root (debootstrap), debootstrap, and a running Docker engine.
# Exit codes: 0 built or present; 3 a tool or the engine is missing; 5 the build failed (its log is named).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/kind-images-common.sh

LOG="$CACHE_ROOT/logs/python-base.log"
PACKAGES=python3,python3-venv,tini,ca-certificates
VENV=/opt/python
IMAGE="gameday.local/python:3.11-$DEBIAN_SUITE-$(image_recipe < /dev/null)"
if [ "${1:-}" = "--name" ]; then echo "$IMAGE"; exit 0; fi

ROOTFS="$CACHE_ROOT/python-rootfs.partial"
debootstrap_image "python base image"
fail() { fail_step "$1" "$LOG" "$started"; }
# The build machine's own certificate authorities too: pip, in the Dockerfile, reaches PyPI through whatever TLS
# inspection the machine's network does (ours does), as the machine's own pip does.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  install -m 0644 /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
fi
chroot "$ROOTFS" /bin/sh -euc "
  update-ca-certificates
  python3 -m venv $VENV
  $VENV/bin/python -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version'
  apt-get clean
  rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/*.log
" >>"$LOG" 2>&1 || fail "the virtual environment"
echo "== python base image: importing $IMAGE ($((SECONDS - started)) s)"
tar -C "$ROOTFS" --numeric-owner -c . \
  | docker import --change "ENV PATH=$VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$IMAGE" >>"$LOG" 2>&1 || fail "docker import"
rm -rf "$ROOTFS"
echo "== python base image $IMAGE: built in $((SECONDS - started)) s, $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MiB", $1/1048576}')"
remove_superseded "$IMAGE"
