#!/usr/bin/env bash
# mesh-chaos.sh — run one of the seed's failure drills against a running mesh, watch the metrics the seed names,
# roll the fault back and say whether the mesh converged. Prints one JSON line per step; the last one is
# {"event":"passed",…} (exit 0) or {"event":"failed",…} (exit 1). Usage errors exit 2. See docs/reliability.md.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: tools/mesh-chaos.sh --kill peer [--peer ID] [--diag-url URL] [--rpc-url URL] [--timeout S] [--no-restart]
       tools/mesh-chaos.sh --partition worker|grpc [--peer ID] [--diag-url URL] [--rpc-url URL] [--for S] [--timeout S]
       tools/mesh-chaos.sh --partition grpc|hub|worker|nats --netns NS --dev DEV [--for S]
                           [--metrics-url URL] [--metrics-netns NS] [--metric NAME] [--sla N] [--timeout S]

  --kill peer          SIGKILL the worker process of peer ID (default mesh-worker-a: `npm run demo`'s HTTP worker)
                       without draining; watch /omnirelay/control/lease-health on --diag-url (default
                       http://127.0.0.1:5158) until the peer is unhealthy and its leases went to the others
                       (activeAssignments and pendingReassignments back to 0); then roll back: start the worker again
                       with its own command line and environment (it stops with the mesh that started it) and wait
                       until it is healthy. --no-restart leaves it dead. --rpc-url: only the worker whose command
                       line has this dispatcher URL (when several meshes run on one host).
  --partition worker|grpc (without --netns): cut the link of a worker that runs in a network namespace of its own
                       (`npm run demo -- --netns` starts its workers that way): the worker of --peer (default
                       mesh-worker-a for worker, mesh-worker-b — the demo's gRPC worker — for grpc) is found by its
                       command line, its namespace with `ip netns identify`, and its one link is brought down for
                       --for seconds. Watched on --diag-url's lease-health: the peer turns unhealthy and its leases
                       expire and go to the others; after the heal (also on any exit) it turns healthy again.
  --partition NAME     cut a link of a mesh laid out in network namespaces (the drills build one; NAME says which:
                       grpc/hub = a dispatcher and the replication hub, worker = a dispatcher and a worker, nats =
                       a JetStream shard owner and NATS): bring
                       veth DEV in namespace NS down for --for seconds (default 10), sampling gauge --metric (default
                       omnirelay_resourcelease_replication_lag) from --metrics-url (fetched inside --metrics-netns
                       when given); then bring it up (also on any exit) and wait until the gauge is <= --sla
                       (default 0).
  --timeout S          how long each wait may take (default 30)
  -h, --help           this text

Prints one JSON line per step on stdout. A partition's `partitioned` line holds `at` (just before the link is brought
down) and `downAt` (once it is down): a packet sent between the two may still have crossed.

Needs curl and jq; --partition needs root and iproute2 (ip netns, ip link).
EOF
}

die_usage() {
  echo "error: $1" >&2
  usage >&2
  exit 2
}

KILL="" PARTITION="" PEER="mesh-worker-a" PEER_SET=0 DIAG_URL="http://127.0.0.1:5158" RPC_URL="" TIMEOUT=30 RESTART=1
NETNS="" DEV="" FOR=10 METRICS_URL="" METRICS_NETNS="" METRIC="omnirelay_resourcelease_replication_lag" SLA=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --kill) KILL="${2:-}"; shift 2 || die_usage "--kill needs a target" ;;
    --partition) PARTITION="${2:-}"; shift 2 || die_usage "--partition needs a link name" ;;
    --peer) PEER="${2:-}" PEER_SET=1; shift 2 || die_usage "--peer needs an id" ;;
    --diag-url) DIAG_URL="${2:-}"; shift 2 || die_usage "--diag-url needs a URL" ;;
    --rpc-url) RPC_URL="${2:-}"; shift 2 || die_usage "--rpc-url needs a URL" ;;
    --timeout) TIMEOUT="${2:-}"; shift 2 || die_usage "--timeout needs seconds" ;;
    --no-restart) RESTART=0; shift ;;
    --netns) NETNS="${2:-}"; shift 2 || die_usage "--netns needs a namespace" ;;
    --dev) DEV="${2:-}"; shift 2 || die_usage "--dev needs a device" ;;
    --for) FOR="${2:-}"; shift 2 || die_usage "--for needs seconds" ;;
    --metrics-url) METRICS_URL="${2:-}"; shift 2 || die_usage "--metrics-url needs a URL" ;;
    --metrics-netns) METRICS_NETNS="${2:-}"; shift 2 || die_usage "--metrics-netns needs a namespace" ;;
    --metric) METRIC="${2:-}"; shift 2 || die_usage "--metric needs a name" ;;
    --sla) SLA="${2:-}"; shift 2 || die_usage "--sla needs a number" ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
done
[[ -n "$KILL" || -n "$PARTITION" ]] || die_usage "give --kill peer or --partition NAME"
[[ -z "$KILL" || -z "$PARTITION" ]] || die_usage "one drill at a time: --kill or --partition"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die_usage "--timeout must be whole seconds"
[[ "$FOR" =~ ^[0-9]+([.][0-9]+)?$ ]] || die_usage "--for must be seconds"
[[ "$SLA" =~ ^[0-9]+$ ]] || die_usage "--sla must be a whole number"
for tool in curl jq; do command -v "$tool" >/dev/null || die_usage "$tool is not installed"; done

now_ms() { date +%s%3N; }
say() { printf '%s\n' "$1"; }
fail() {
  say "$(jq -cn --arg drill "$1" --arg why "$2" '{event:"failed",drill:$drill,reason:$why}')"
  exit 1
}

# ---- --kill peer --------------------------------------------------------------------------------------------------

# "isHealthy activeAssignments pendingReassignments" of $PEER, or "absent".
peer_state() {
  curl -fsS --max-time 2 "$DIAG_URL/omnirelay/control/lease-health" |
    jq -r --arg p "$PEER" '[.peers[] | select(.peerId == $p)] | if length == 0 then "absent"
      else .[0] | "\(.isHealthy) \(.activeAssignments) \(.pendingReassignments)" end'
}

# The pids of the processes whose command line has `--roles worker` and `--worker-peer-id $PEER` (and $RPC_URL).
find_workers() {
  local dir args
  for dir in /proc/[0-9]*; do
    args=$(tr '\0' '\n' <"$dir/cmdline" 2>/dev/null) || continue
    grep -qxF -- "--worker-peer-id" <<<"$args" || continue
    grep -A1 -xF -- "--worker-peer-id" <<<"$args" | tail -n1 | grep -qxF -- "$PEER" || continue
    grep -A1 -xF -- "--roles" <<<"$args" | tail -n1 | grep -qxF worker || continue
    [[ -z "$RPC_URL" ]] || grep -qxF -- "$RPC_URL" <<<"$args" || continue
    echo "${dir#/proc/}"
  done
}

# Waits (polling every 100 ms) until `peer_state` matches the regex $1; prints the ms since $2.
wait_state() {
  local deadline=$(($(now_ms) + TIMEOUT * 1000)) state
  while :; do
    state=$(peer_state || echo "unreachable")
    if [[ "$state" =~ $1 ]]; then
      echo $(($(now_ms) - $2))
      return 0
    fi
    [[ $(now_ms) -lt $deadline ]] || return 1
    sleep 0.1
  done
}

kill_peer() {
  [[ "$KILL" == "peer" ]] || die_usage "--kill takes 'peer'"
  local pid cwd parent state killed detected requeued recovered="null" restarted="null" ns
  local -a argv envv pids inns=()
  mapfile -t pids < <(find_workers)
  [[ ${#pids[@]} -eq 1 ]] || fail kill-peer "expected one worker process for peer $PEER, found ${#pids[@]}"
  pid=${pids[0]}
  mapfile -d '' -t argv <"/proc/$pid/cmdline"
  mapfile -d '' -t envv <"/proc/$pid/environ"
  cwd=$(readlink "/proc/$pid/cwd")
  parent=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status")
  # A worker in a network namespace of its own (`npm run demo -- --netns`) is restarted in the same one.
  ns=$(ip netns identify "$pid" 2>/dev/null || true)
  [[ -z "$ns" ]] || inns=(ip netns exec "$ns")
  state=$(peer_state) || fail kill-peer "cannot read $DIAG_URL/omnirelay/control/lease-health"
  [[ "$state" == true* ]] || fail kill-peer "peer $PEER is not healthy before the drill ($state)"
  say "$(jq -cn --arg peer "$PEER" --argjson pid "$pid" '{event:"killing",peer:$peer,pid:$pid}')"
  killed=$(now_ms)
  kill -KILL "$pid"
  say "$(jq -cn --argjson at "$killed" '{event:"killed",at:$at}')"
  detected=$(wait_state '^false ' "$killed") || fail kill-peer "peer $PEER still healthy after ${TIMEOUT}s"
  say "$(jq -cn --argjson ms "$detected" '{event:"unhealthy",ms:$ms}')"
  requeued=$(wait_state '^false 0 0$' "$killed") || fail kill-peer "the leases of $PEER were not taken over"
  say "$(jq -cn --argjson ms "$requeued" '{event:"requeued",ms:$ms}')"
  if [[ $RESTART -eq 1 ]]; then
    # Rollback: the same program, arguments and environment. Its stdin ends when the process that started it exits,
    # so a worker restarted under `npm run demo` (MESH_DEMO_SUPERVISED=1) stops with the demo.
    (cd "$cwd" && exec setsid "${inns[@]}" env -i "${envv[@]}" "${argv[@]}" < <(exec tail -f --pid="$parent" /dev/null) \
      >/dev/null 2>&1) &
    restarted=$!
    recovered=$(wait_state '^true ' "$killed") || fail kill-peer "the restarted $PEER did not turn healthy"
    say "$(jq -cn --argjson ms "$recovered" --argjson pid "$restarted" '{event:"restarted",ms:$ms,pid:$pid}')"
  fi
  say "$(jq -cn --arg peer "$PEER" --argjson d "$detected" --argjson q "$requeued" --argjson r "$recovered" \
    --argjson pid "$restarted" \
    '{event:"passed",drill:"kill-peer",peer:$peer,detectedMs:$d,requeuedMs:$q,recoveredMs:$r,restartedPid:$pid}')"
}

# ---- --partition NAME ---------------------------------------------------------------------------------------------

metric_value() {
  local body
  if [[ -n "$METRICS_NETNS" ]]; then
    body=$(ip netns exec "$METRICS_NETNS" curl -fsS --max-time 1 "$METRICS_URL") || return 1
  else
    body=$(curl -fsS --max-time 1 "$METRICS_URL") || return 1
  fi
  awk -v m="$METRIC" '$1 == m || index($1, m "{") == 1 { print $NF; exit }' <<<"$body"
}

# A worker of the demo (or any mesh) whose process runs in a network namespace of its own: cut its one link, watch its
# peer in lease-health, heal, watch it come back.
partition_peer() {
  local drill="partition-$PARTITION" pid ns dev state cut detected requeued healed recovered
  local -a pids
  [[ "$PEER_SET" -eq 1 || "$PARTITION" != "grpc" ]] || PEER="mesh-worker-b"
  mapfile -t pids < <(find_workers)
  [[ ${#pids[@]} -eq 1 ]] || fail "$drill" "expected one worker process for peer $PEER, found ${#pids[@]}"
  pid=${pids[0]}
  ns=$(ip netns identify "$pid" 2>/dev/null || true)
  [[ -n "$ns" ]] || fail "$drill" "peer $PEER's worker (pid $pid) runs in the host's network namespace: start the demo with --netns (npm run demo -- --netns), or give --netns and --dev"
  dev=$(ip -n "$ns" -o link show | awk -F': ' '$2 != "lo" { sub(/@.*/, "", $2); print $2; exit }')
  [[ -n "$dev" ]] || fail "$drill" "no link besides lo in namespace $ns"
  state=$(peer_state) || fail "$drill" "cannot read $DIAG_URL/omnirelay/control/lease-health"
  [[ "$state" == true* ]] || fail "$drill" "peer $PEER is not healthy before the drill ($state)"
  CUT_NS=$ns CUT_DEV=$dev
  trap 'ip -n "$CUT_NS" link set "$CUT_DEV" up 2>/dev/null || true' EXIT INT TERM
  cut=$(now_ms)
  ip -n "$ns" link set "$dev" down
  say "$(jq -cn --arg peer "$PEER" --argjson pid "$pid" --arg ns "$ns" --arg dev "$dev" --argjson at "$cut" \
    --argjson down "$(now_ms)" '{event:"partitioned",peer:$peer,pid:$pid,netns:$ns,dev:$dev,at:$at,downAt:$down}')"
  detected=$(wait_state '^false ' "$cut") || fail "$drill" "peer $PEER still healthy ${TIMEOUT}s into the partition"
  say "$(jq -cn --argjson ms "$detected" '{event:"unhealthy",ms:$ms}')"
  requeued=$(wait_state '^false 0 0$' "$cut") || fail "$drill" "the leases of $PEER did not expire and move"
  say "$(jq -cn --argjson ms "$requeued" '{event:"requeued",ms:$ms}')"
  sleep "$(awk -v c="$cut" -v f="$FOR" -v n="$(now_ms)" 'BEGIN { r = (c + f * 1000 - n) / 1000; print (r > 0 ? r : 0) }')"
  ip -n "$ns" link set "$dev" up
  healed=$(now_ms)
  say "$(jq -cn --argjson ms $((healed - cut)) --argjson at "$healed" '{event:"healed",partitionMs:$ms,at:$at}')"
  recovered=$(wait_state '^true ' "$healed") || fail "$drill" "peer $PEER did not turn healthy ${TIMEOUT}s after the heal"
  kill -0 "$pid" 2>/dev/null || fail "$drill" "peer $PEER's worker (pid $pid) died during the partition"
  say "$(jq -cn --arg d "$drill" --arg peer "$PEER" --argjson pid "$pid" --argjson p $((healed - cut)) \
    --argjson d1 "$detected" --argjson q "$requeued" --argjson r "$recovered" \
    '{event:"passed",drill:$d,peer:$peer,pid:$pid,partitionMs:$p,detectedMs:$d1,requeuedMs:$q,recoveredMs:$r}')"
}

partition() {
  case "$PARTITION" in grpc | hub | worker | nats) ;; *) die_usage "--partition takes grpc, hub, worker or nats" ;; esac
  if [[ -z "$NETNS" && -z "$DEV" && ( "$PARTITION" == worker || "$PARTITION" == grpc ) ]]; then
    partition_peer
    return
  fi
  [[ -n "$NETNS" && -n "$DEV" ]] || die_usage "--partition $PARTITION needs --netns and --dev (the veth to cut)"
  ip -n "$NETNS" link show "$DEV" >/dev/null 2>&1 || fail "partition-$PARTITION" "no device $DEV in namespace $NETNS"
  local peak=0 value cut healed deadline recovered
  trap 'ip -n "$NETNS" link set "$DEV" up 2>/dev/null || true' EXIT INT TERM
  cut=$(now_ms)
  ip -n "$NETNS" link set "$DEV" down
  say "$(jq -cn --arg ns "$NETNS" --arg dev "$DEV" --argjson at "$cut" --argjson down "$(now_ms)" \
    '{event:"partitioned",netns:$ns,dev:$dev,at:$at,downAt:$down}')"
  deadline=$(awk -v c="$cut" -v f="$FOR" 'BEGIN { printf "%d", c + f * 1000 }')
  while [[ $(now_ms) -lt $deadline ]]; do
    if [[ -n "$METRICS_URL" ]] && value=$(metric_value) && [[ -n "$value" ]]; then
      peak=$(awk -v a="$peak" -v b="$value" 'BEGIN { print (b > a ? b : a) }')
    fi
    sleep 0.2
  done
  ip -n "$NETNS" link set "$DEV" up
  healed=$(now_ms)
  say "$(jq -cn --argjson ms $((healed - cut)) --argjson peak "$peak" --argjson at "$healed" \
    '{event:"healed",partitionMs:$ms,peak:$peak,at:$at}')"
  recovered=null
  if [[ -n "$METRICS_URL" ]]; then
    deadline=$((healed + TIMEOUT * 1000))
    while :; do
      if value=$(metric_value) && [[ -n "$value" ]] && awk -v v="$value" -v s="$SLA" 'BEGIN { exit !(v <= s) }'; then
        recovered=$(($(now_ms) - healed))
        break
      fi
      [[ $(now_ms) -lt $deadline ]] || fail "partition-$PARTITION" "$METRIC still above $SLA ${TIMEOUT}s after the heal"
      sleep 0.1
    done
  fi
  say "$(jq -cn --arg d "partition-$PARTITION" --arg m "$METRIC" --argjson peak "$peak" --argjson r "$recovered" \
    --argjson sla "$SLA" '{event:"passed",drill:$d,metric:$m,peak:$peak,sla:$sla,recoveryMs:$r}')"
}

if [[ -n "$KILL" ]]; then kill_peer; else partition; fi
