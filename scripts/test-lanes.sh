#!/usr/bin/env bash
# `pnpm run test:unit`: every package's `test`, in two lanes side by side, one package at a time in each.
#
# One package at a time left a core idle for much of the run: many suites spend their time waiting on child processes,
# timers and lease expiry (the demo's mesh, the failure drills, the packaging installs), and one after the other they
# took ~860 s of a 2-core machine's CI in a slow phase of the host. Lane B holds the suites that must not overlap each
# other: the demo and the failure drills both build network namespaces, and the drills run the demo's dist/, which
# the demo's own test rebuilds. Lane A is every other package, so a new package runs without being listed here.
# Both lanes run the tests of what `pnpm run build` made (`--only`: no build task), and a test that builds for itself
# goes through turbo, which leaves an up-to-date dist/ untouched for the other lane's readers.
# With arguments they go to both turbo runs (e.g. `--summarize`).
set -uo pipefail
cd "$(dirname "$0")/.."

lane_b=(
  @omnirelay/mesh-demo
  @omnirelay/drills
  @omnirelay/packaging
  @omnirelay/bench
  @omnirelay/migration-guides
  @omnirelay/replicator-object-storage
  @omnirelay/replicator-grpc
  @omnirelay/store-postgres
  @omnirelay/store-redis
)

filters_b=()
filters_a=()
for pkg in "${lane_b[@]}"; do
  filters_b+=("--filter=$pkg")
  filters_a+=("--filter=!$pkg")
done

turbo_test() {
  pnpm exec turbo run test --only --concurrency=1 --log-order=grouped --ui=stream "$@"
}

# lane NAME ARGS...: one lane's turbo run, then a line with its outcome and its time.
lane() {
  local name=$1 started status
  shift
  started=$(date +%s)
  turbo_test "$@"
  status=$?
  echo "test-lanes: lane $name $([ "$status" = 0 ] && echo passed || echo "FAILED ($status)") in $(($(date +%s) - started)) s"
  return "$status"
}

lane A "${filters_a[@]}" "$@" &
lane_a=$!
lane B "${filters_b[@]}" "$@" &
lane_b_pid=$!
status=0
wait "$lane_a" || status=1
wait "$lane_b_pid" || status=1
exit "$status"
