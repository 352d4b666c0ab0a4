#!/usr/bin/env bash
# Zero-downtime rollout of ONE dispatcher node with the omnirelay CLI (docs/guides/operations.md, "Zero-downtime
# rollout"). Steps:
#   1. drain every namespace of the node and save the pending items (the node stops granting and enqueueing);
#   2. wait until the node's active leases have finished (complete / fail / expire), polling `stats`;
#   3. drain again, to collect items that went back to the queue while we waited (failed or expired leases);
#   4. run --restart-cmd (stop, upgrade, start the node: your deployment's command);
#   5. wait for the node's /readyz to answer 200;
#   6. restore the saved items into the restarted node.
# The drained items stay in --out-dir: if a step fails, restore them by hand with the command the script prints.
# Requires: bash, node (for JSON), curl (for /readyz), and the omnirelay CLI.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: tools/rollout.sh --url URL --restart-cmd CMD [options] [-- extra omnirelay flags]

  --url URL                 the node's dispatcher URL (http(s)://host:port)           (env OMNIRELAY_URL)
  --restart-cmd CMD         shell command that stops, upgrades and starts the node
  --namespace NS            namespace to drain and restore; repeatable                (default resourcelease)
  --out-dir DIR             where the drained items are kept                          (default ./rollout-<time>)
  --ready-url URL           readiness probe of the restarted node                     (default URL/readyz)
  --active-timeout-ms MS    longest wait for active leases to finish                  (default 300000)
  --ready-timeout-ms MS     longest wait for the restarted node to be ready           (default 120000)
  --poll-ms MS              poll interval                                             (default 1000)
  --omnirelay CMD           the CLI to run                                            (default omnirelay; env OMNIRELAY_BIN)
  -- FLAGS...               passed to every omnirelay call (e.g. --ca ca.pem --token "$JWT")

Exit codes: 0 done; 2 usage; 3 a CLI step failed; 6 active leases did not finish in time; 7 restart command failed;
8 the node did not become ready in time. On 3/6/7/8 the items are in --out-dir (see the printed restore commands).
USAGE
}

url="${OMNIRELAY_URL:-}"
restart_cmd=""
namespaces=()
out_dir=""
ready_url=""
active_timeout_ms=300000
ready_timeout_ms=120000
poll_ms=1000
read -r -a omnirelay <<<"${OMNIRELAY_BIN:-omnirelay}"
extra=()

die_usage() { echo "rollout: $1" >&2; usage >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --url) url="${2:?}"; shift 2 ;;
    --restart-cmd) restart_cmd="${2:?}"; shift 2 ;;
    --namespace) namespaces+=("${2:?}"); shift 2 ;;
    --out-dir) out_dir="${2:?}"; shift 2 ;;
    --ready-url) ready_url="${2:?}"; shift 2 ;;
    --active-timeout-ms) active_timeout_ms="${2:?}"; shift 2 ;;
    --ready-timeout-ms) ready_timeout_ms="${2:?}"; shift 2 ;;
    --poll-ms) poll_ms="${2:?}"; shift 2 ;;
    --omnirelay) read -r -a omnirelay <<<"${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
done
[[ -n "$url" ]] || die_usage "--url is required"
[[ -n "$restart_cmd" ]] || die_usage "--restart-cmd is required"
for n in "$active_timeout_ms" "$ready_timeout_ms" "$poll_ms"; do
  [[ "$n" =~ ^[0-9]+$ ]] || die_usage "durations are whole milliseconds, got '$n'"
done
[[ ${#namespaces[@]} -gt 0 ]] || namespaces=(resourcelease)
[[ -n "$ready_url" ]] || ready_url="${url%/}/readyz"
[[ -n "$out_dir" ]] || out_dir="./rollout-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out_dir"
poll_s=$(awk "BEGIN { print $poll_ms / 1000 }")

log() { echo "rollout: $*" >&2; }
now_ms() { node -e 'console.log(Date.now())'; }
cli() { "${omnirelay[@]}" --url "$url" --json "${extra[@]}" "$@"; }
# Prints a field of the JSON document on stdin, e.g. `json_field stats.activeLeaseCount`.
json_field() {
  node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>{let v=JSON.parse(s);for(const k of process.argv[1].split("."))v=v?.[k];console.log(v??"")})' "$1"
}

saved=()
print_restore_hint() {
  [[ ${#saved[@]} -gt 0 ]] || return 0
  log "drained items are kept in $out_dir; to put them back run:"
  for f in "${saved[@]}"; do
    echo "  ${omnirelay[*]} --url $url ${extra[*]} resourcelease restore --file $f" >&2
  done
}
fail() { local code="$1"; shift; log "FAILED: $*"; print_restore_hint; exit "$code"; }

drain_all() { # $1 = round
  for ns in "${namespaces[@]}"; do
    local file="$out_dir/$ns.drain$1.json"
    local out
    out=$(cli --namespace "$ns" resourcelease drain --out "$file") || fail 3 "drain of $ns failed"
    saved+=("$file")
    log "drained $(json_field drainedCount <<<"$out") item(s) of $ns into $file"
  done
}

log "step 1/6: drain ${namespaces[*]} on $url"
drain_all 1

log "step 2/6: wait for active leases to finish (up to ${active_timeout_ms} ms)"
deadline=$(( $(now_ms) + active_timeout_ms ))
for ns in "${namespaces[@]}"; do
  while :; do
    stats=$(cli --namespace "$ns" resourcelease stats) || fail 3 "stats of $ns failed"
    active=$(json_field stats.activeLeaseCount <<<"$stats")
    [[ "$active" == "0" ]] && break
    (( $(now_ms) < deadline )) || fail 6 "$ns still has $active active lease(s)"
    log "$ns: $active active lease(s)"
    sleep "$poll_s"
  done
done

log "step 3/6: drain again (items requeued while waiting)"
drain_all 2

log "step 4/6: restart: $restart_cmd"
bash -c "$restart_cmd" || fail 7 "the restart command exited with $?"

log "step 5/6: wait for $ready_url (up to ${ready_timeout_ms} ms)"
deadline=$(( $(now_ms) + ready_timeout_ms ))
until curl -fsS -o /dev/null --max-time 5 "$ready_url" 2>/dev/null; do
  (( $(now_ms) < deadline )) || fail 8 "$ready_url is not ready"
  sleep "$poll_s"
done

log "step 6/6: restore"
total=0
for f in "${saved[@]}"; do
  out=$(cli resourcelease restore --file "$f") || fail 3 "restore of $f failed"
  count=$(json_field restoredCount <<<"$out")
  total=$(( total + count ))
  log "restored $count item(s) from $f into $(json_field namespace <<<"$out")"
done
log "done: $total item(s) moved through the restart of $url; files kept in $out_dir"
echo "{\"restoredCount\":$total,\"outDir\":\"$out_dir\"}"
