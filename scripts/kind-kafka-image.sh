#!/usr/bin/env bash
# Apache Kafka's image without a registry: the broker's jars from Maven Central (deps/kafka/pom.xml, fetched once
# by `make kafka-deps`) on a debootstrapped Debian (DEBIAN_SUITE of deploy/kind/versions.env) with Debian's Java 17
# runtime. It behaves as apache/kafka where deploy/k8s relies on it: /etc/kafka/docker/run turns the KAFKA_*
# variables into server.properties and formats the log directory for CLUSTER_ID once; /opt/kafka/bin/kafka-topics.sh
# (and kafka-storage.sh, kafka-consumer-groups.sh, kafka-metadata-quorum.sh) run the release's own tools; user 1000.
# The files it adds are in deploy/kind/images/kafka/. Beyond apache/kafka, it carries Prometheus' JMX exporter agent
# and the local stack's settings for it in /opt/jmx-exporter/, which deploy/k8s/kafka.yaml starts when present.
#
#   scripts/kind-kafka-image.sh           build it unless the engine has it
#   scripts/kind-kafka-image.sh --name    print the image name it builds, and exit
#
# Needs root (debootstrap), debootstrap, the jars, and a running Docker engine.
# Exit codes: 0 built or present; 3 a tool, the jars or the engine is missing; 5 the build failed (its log is named).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/kind-images-common.sh

JARS="${GAMEDAY_CACHE:-$HOME/.cache/chaos-dr-verify}/kafka-$KAFKA_VERSION"
FILES=deploy/kind/images/kafka
JMX_CONFIG=stack/chaos_dr_stack/local/kafka-jmx-exporter.yaml
LOG="$CACHE_ROOT/logs/kafka-image.log"
PACKAGES=openjdk-17-jre-headless,ca-certificates
if [ ! -f "$JARS/.complete" ]; then
  echo "$PROG: Kafka $KAFKA_VERSION's jars are not fetched yet ($JARS): run make kafka-deps first" >&2
  exit "$EXIT_MISSING"
fi
JMX_AGENT="$JARS/agents/jmx_prometheus_javaagent-$JMX_EXPORTER_VERSION.jar"
if [ ! -f "$JMX_AGENT" ]; then
  echo "$PROG: Prometheus' JMX exporter agent $JMX_EXPORTER_VERSION is not fetched yet ($JMX_AGENT): run make kafka-deps first" >&2
  exit "$EXIT_MISSING"
fi
IMAGE="gameday.local/kafka:$KAFKA_VERSION-$DEBIAN_SUITE-$({ cat "$JARS/.complete" "$FILES"/* "$JMX_CONFIG"; } | image_recipe)"
if [ "${1:-}" = "--name" ]; then echo "$IMAGE"; exit 0; fi

ROOTFS="$CACHE_ROOT/kafka-rootfs.partial"
debootstrap_image "Kafka image"
fail() { fail_step "$1" "$LOG" "$started"; }
(
  set -x
  mkdir -p "$ROOTFS"/opt/kafka/{bin,config,libs} "$ROOTFS"/etc/kafka/docker "$ROOTFS"/var/lib/kafka/data
  cp -r "$JARS/libs/." "$ROOTFS/opt/kafka/libs/"
  install -m 0755 "$FILES/run" "$ROOTFS/etc/kafka/docker/run"
  install -m 0755 "$FILES/kafka-tool" "$ROOTFS/opt/kafka/bin/kafka-tool"
  for tool in kafka-topics.sh kafka-storage.sh kafka-consumer-groups.sh kafka-metadata-quorum.sh; do
    ln -s kafka-tool "$ROOTFS/opt/kafka/bin/$tool"
  done
  install -m 0644 "$FILES"/*log4j2.properties "$ROOTFS/opt/kafka/config/"
  mkdir -p "$ROOTFS/opt/jmx-exporter"
  install -m 0644 "$JMX_AGENT" "$ROOTFS/opt/jmx-exporter/jmx_prometheus_javaagent.jar"
  install -m 0644 "$JMX_CONFIG" "$ROOTFS/opt/jmx-exporter/kafka.yaml"
  chroot "$ROOTFS" /bin/sh -euc '
    groupadd --gid 1000 appuser && useradd --uid 1000 --gid 1000 --no-create-home --home-dir /opt/kafka appuser
    chown -R 1000:1000 /opt/kafka/config /var/lib/kafka
    # (java itself cannot run here: without /proc in the chroot it finds no libjli.so beside it.)
    test -x "$(readlink -f /usr/bin/java)"
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/*.log'
) >>"$LOG" 2>&1 || fail "the Kafka files"
echo "== Kafka image: importing $IMAGE ($((SECONDS - started)) s)"
tar -C "$ROOTFS" --numeric-owner -c . \
  | docker import --change 'ENV PATH=/opt/kafka/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' --change 'USER appuser' --change 'WORKDIR /opt/kafka' \
      --change 'ENTRYPOINT ["/etc/kafka/docker/run"]' - "$IMAGE" >>"$LOG" 2>&1 || fail "docker import"
rm -rf "$ROOTFS"
echo "== Kafka image $IMAGE: built in $((SECONDS - started)) s, $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MiB", $1/1048576}')"
remove_superseded "$IMAGE"
