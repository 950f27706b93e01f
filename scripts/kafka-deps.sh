#!/usr/bin/env bash
# Fetch the Apache Kafka broker's jars from Maven Central once, into a cache outside the checkout:
#   ${GAMEDAY_CACHE:-$HOME/.cache/chaos-dr-verify}/kafka-<version>/libs
# and Prometheus' JMX exporter agent beside them:
#   ${GAMEDAY_CACHE:-$HOME/.cache/chaos-dr-verify}/kafka-<version>/agents/jmx_prometheus_javaagent-<version>.jar
# The stack only reads that directory; nothing downloads at run time. Java 17 and Maven come from Debian
# (openjdk-17-jre-headless, maven) when `java` or `mvn` is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

POM=deps/kafka/pom.xml
VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")
JMX_EXPORTER=$(sed -n 's:.*<jmx.exporter.version>\(.*\)</jmx.exporter.version>.*:\1:p' "$POM")
CACHE="${GAMEDAY_CACHE:-$HOME/.cache/chaos-dr-verify}/kafka-$VERSION"
STAMP="$CACHE/.complete"
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

# The stamp names the pom it was built from: a changed pom (a new version, another logging jar) fetches again.
POM_SUM=$(sha256sum "$POM" | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$POM_SUM" ]; then
  exit 0
fi

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if [ ${#missing[@]} -gt 0 ]; then
  echo "kafka-deps: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null \
    || { echo "kafka-deps: could not install ${missing[*]}: install Java 17 and Maven, then run make deps again" >&2; exit 1; }
fi

echo "kafka-deps: fetching Apache Kafka $VERSION and its runtime dependencies from Maven Central into $CACHE"
rm -rf "$CACHE/libs.partial" "$CACHE/agents.partial"
mkdir -p "$CACHE"
if ! mvn -q -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$CACHE/libs.partial" >"$CACHE/mvn.log" 2>&1; then
  tail -20 "$CACHE/mvn.log" >&2
  echo "kafka-deps: Maven could not fetch the Kafka jars (full log: $CACHE/mvn.log)" >&2
  exit 1
fi
if ! mvn -q -B -f "$POM" dependency:copy \
    -Dartifact="io.prometheus.jmx:jmx_prometheus_javaagent:$JMX_EXPORTER" \
    -DoutputDirectory="$CACHE/agents.partial" >>"$CACHE/mvn.log" 2>&1; then
  tail -20 "$CACHE/mvn.log" >&2
  echo "kafka-deps: Maven could not fetch the JMX exporter agent $JMX_EXPORTER (full log: $CACHE/mvn.log)" >&2
  exit 1
fi
rm -rf "$CACHE/libs" "$CACHE/agents"
mv "$CACHE/libs.partial" "$CACHE/libs"
mv "$CACHE/agents.partial" "$CACHE/agents"
echo "$POM_SUM" >"$STAMP"
echo "kafka-deps: $(ls "$CACHE/libs" | wc -l) jars, $(du -sh "$CACHE/libs" | cut -f1) in $CACHE/libs"
