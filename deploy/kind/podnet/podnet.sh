#!/bin/bash
# The offline node image's pod network (kind's kindnetd cannot be built here: the module proxy does not serve it).
# One loop per node, as kindnetd's own: it writes this node's CNI configuration (ptp veths, host-local addresses
# from the node's podCIDR) once the controller-manager has assigned one, keeps a route to every other node's
# podCIDR through that node's InternalIP (the nodes share one Docker network), and masquerades pods' traffic that
# leaves the pod network. Network policies are the second container's job (kube-network-policies).
#
# Environment (set by the DaemonSet): NODE_NAME, POD_SUBNET, and CONTROL_PLANE_ENDPOINT (host:port, added by
# kind) or the in-cluster KUBERNETES_SERVICE_HOST/PORT. PODNET_SYNC_SECONDS (default 10).
set -uo pipefail

SA=/var/run/secrets/kubernetes.io/serviceaccount
API="https://${CONTROL_PLANE_ENDPOINT:-${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}}"
CNI_CONF=/etc/cni/net.d/10-gameday-podnet.conflist
MASQ_CHAIN=GAMEDAY-PODNET-MASQ
SYNC_SECONDS="${PODNET_SYNC_SECONDS:-10}"

log() { echo "$(date -u +%FT%TZ) podnet: $*"; }

# The API server's view of the nodes, one "name podCIDR InternalIP" line each.
list_nodes() {
  curl -fsS --max-time 10 --cacert "$SA/ca.crt" -H "Authorization: Bearer $(cat "$SA/token")" "$API/api/v1/nodes" \
    | jq -r '.items[] | [.metadata.name, (.spec.podCIDR // "-"),
        ([.status.addresses[]? | select(.type == "InternalIP") | .address][0] // "-")] | @tsv'
}

# Written only when it changes, and atomically: the kubelet reads the directory at any time.
write_cni_conf() {
  local subnet="$1" mtu wanted
  mtu=$(cat /sys/class/net/eth0/mtu 2>/dev/null || echo 1500)
  wanted=$(jq -n --arg subnet "$subnet" --argjson mtu "$mtu" '{
    cniVersion: "1.0.0", name: "gameday-podnet",
    plugins: [
      {type: "ptp", ipMasq: false, mtu: $mtu,
       ipam: {type: "host-local", dataDir: "/run/cni-ipam-state",
              routes: [{dst: "0.0.0.0/0"}], ranges: [[{subnet: $subnet}]]}},
      {type: "portmap", capabilities: {portMappings: true}}
    ]}')
  [ "$(cat "$CNI_CONF" 2>/dev/null)" = "$wanted" ] && return 0
  printf '%s\n' "$wanted" > "$CNI_CONF.tmp" && mv "$CNI_CONF.tmp" "$CNI_CONF"
  log "wrote $CNI_CONF for $subnet (mtu $mtu)"
}

# Pods keep their own addresses inside the pod network (network policies match on them); anything leaving it
# goes out as the node.
ensure_masquerade() {
  iptables -w -t nat -N "$MASQ_CHAIN" 2>/dev/null && log "created the $MASQ_CHAIN chain"
  iptables -w -t nat -C POSTROUTING -j "$MASQ_CHAIN" 2>/dev/null || iptables -w -t nat -A POSTROUTING -j "$MASQ_CHAIN"
  iptables -w -t nat -C "$MASQ_CHAIN" -d "$POD_SUBNET" -j RETURN 2>/dev/null \
    || iptables -w -t nat -A "$MASQ_CHAIN" -d "$POD_SUBNET" -j RETURN
  iptables -w -t nat -C "$MASQ_CHAIN" -s "$POD_SUBNET" -j MASQUERADE 2>/dev/null \
    || iptables -w -t nat -A "$MASQ_CHAIN" -s "$POD_SUBNET" -j MASQUERADE
}

sync_once() {
  local nodes name cidr address
  nodes=$(list_nodes) || { log "cannot list the nodes at $API (retrying in ${SYNC_SECONDS} s)"; return 1; }
  while IFS=$'\t' read -r name cidr address; do
    [ "$cidr" = "-" ] && continue
    if [ "$name" = "$NODE_NAME" ]; then
      write_cni_conf "$cidr"
    elif [ "$address" != "-" ] && [[ "$(ip -4 route show exact "$cidr")" != *"via $address "* ]]; then
      ip route replace "$cidr" via "$address" && log "route $cidr via $address ($name)"
    fi
  done <<< "$nodes"
  ensure_masquerade
}

: "${NODE_NAME:?the DaemonSet sets NODE_NAME}" "${POD_SUBNET:?the DaemonSet sets POD_SUBNET}"
log "node $NODE_NAME, pod network $POD_SUBNET, API $API, every ${SYNC_SECONDS} s"
trap 'log "stopping"; exit 0' TERM INT
while true; do
  sync_once
  sleep "$SYNC_SECONDS" & wait $!
done
