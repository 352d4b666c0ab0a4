#!/usr/bin/env bash
# One entry point for a fresh machine that has only Node and npm.
#   bash scripts/omni.sh demo   install, build, start the local mesh (Ctrl-C stops it)
#   bash scripts/omni.sh test   install, lint, check the changesets, build, type-check and run every test
#   bash scripts/omni.sh bench  install, build, run the benchmark (arguments go to tools/bench, e.g. --quick)
#   bash scripts/omni.sh soak   install, build, soak the demo's dispatcher for ten minutes (arguments go to the soak)
# It brings the pinned pnpm itself (corepack cannot verify signatures on this registry).
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=12.4.2
# node-gyp (better-sqlite3) must build against the local headers: there is no download of Node headers here.
if [ -d /usr/include/node ]; then export npm_config_nodedir=/usr; fi
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1 AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true

ensure_pnpm() {
  if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version 2>/dev/null)" = "$PNPM_VERSION" ]; then return; fi
  echo "omni: installing pnpm@$PNPM_VERSION" >&2
  npm install -g --allow-scripts=pnpm "pnpm@$PNPM_VERSION" >&2
}

# Debian tools the tests call (the docs' shell sessions pipe through jq; the JetStream drills run nats-server).
ensure_debian_tools() {
  local missing=()
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  # the JetStream drills start a private three-server cluster from the nats-server binary
  { [ -x /usr/sbin/nats-server ] || command -v nats-server >/dev/null 2>&1; } || missing+=(nats-server)
  # the partition drills (apps/drills) cut veth links between network namespaces; tools/mesh-chaos.sh polls with curl
  { [ -x /usr/sbin/ip ] || command -v ip >/dev/null 2>&1; } || missing+=(iproute2)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  if [ "${#missing[@]}" -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "omni: installing ${missing[*]}" >&2
    apt_install "${missing[@]}" >&2
  fi
}

# apt-get install, refreshing the package lists first only when the install fails without them.
apt_install() (
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "$@" || { apt-get update && apt-get install -y --no-install-recommends "$@"; }
)

# The mesh demo's page test drives Debian's Chromium (apps/mesh-demo's test setup installs it too when run alone).
ensure_chromium() {
  if [ -x /usr/bin/chromium ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then return 0; fi
  local started
  started=$(date +%s)
  apt_install chromium >/dev/null 2>&1
  echo "omni: installed chromium in $(($(date +%s) - started)) s" >&2
}

install_deps() {
  ensure_pnpm
  pnpm install --frozen-lockfile
}

# The addon better-sqlite3 compiles on a machine that cannot download its prebuilt binary (this one: no GitHub).
sqlite_addon_built() {
  compgen -G "node_modules/.pnpm/better-sqlite3@*/node_modules/better-sqlite3/build/Release/better_sqlite3.node" >/dev/null
}

# `test`'s install. On a fresh machine better-sqlite3's addon compiles for ~80 s on one core (SQLite is one C file) while
# the other core idles, and nothing before the tests loads it: so install without build scripts, build the two small
# ones (esbuild, buf: the build uses them), and compile the addon in the background beside the lint, the build and the
# type check; the tests wait for it (wait_for_sqlite_addon). Where the addon is already built, a plain install.
install_deps_for_test() {
  if sqlite_addon_built; then
    install_deps
    return
  fi
  ensure_pnpm
  pnpm install --frozen-lockfile --ignore-scripts
  pnpm rebuild esbuild @bufbuild/buf
  sqlite_addon_log=$(mktemp)
  echo "omni: compiling better-sqlite3's addon in the background (log: $sqlite_addon_log)" >&2
  # At nice -10 (as root; otherwise nice warns and keeps the current priority): the compile is the longest single job of
  # this phase, and at equal priority the build's many processes starved it (it ended 64 s after them).
  nice -n -10 pnpm rebuild better-sqlite3 >"$sqlite_addon_log" 2>&1 &
  sqlite_addon_build=$!
}

wait_for_sqlite_addon() {
  if [ -z "${sqlite_addon_build:-}" ]; then return; fi
  if ! wait "$sqlite_addon_build"; then
    cat "$sqlite_addon_log" >&2
    echo "omni: better-sqlite3's addon did not build" >&2
    return 1
  fi
  rm -f "$sqlite_addon_log"
}

# Every changeset must parse (the whole folder is read only when no --since is given, or since a commit older than all of
# them), and a published package changed since main needs a changeset. A fresh clone of main has its main branch (HEAD is
# main: nothing changed). Without a local main (a clone of another branch), compare with the first commit instead.
changeset_status() {
  if git rev-parse --verify --quiet refs/heads/main >/dev/null; then
    pnpm exec changeset status
  else
    pnpm exec changeset status --since="$(git rev-list --max-parents=0 HEAD | tail -n 1)"
  fi
}

cmd="${1:-}"
shift || true
case "$cmd" in
  demo)
    install_deps
    pnpm exec turbo run build --output-logs=errors-only
    pnpm --filter @omnirelay/mesh-demo mesh -- "$@"
    ;;
  test)
    install_deps_for_test
    ensure_debian_tools
    # The alert-rule tests run promtool (Debian's prometheus package) and the demo's page test drives Chromium: their
    # installs (~11 s and ~18 s of apt on a fresh machine) run beside the lint and the build, one after the other (one
    # apt at a time, after ensure_debian_tools), and the tests wait for them.
    { bash scripts/ensure-promtool.sh && ensure_chromium; } &
    test_packages_install=$!
    pnpm run lint
    changeset_status
    # The build, then one type check of every package's files in one TypeScript program (scripts/typecheck.mjs).
    pnpm exec turbo run build
    pnpm run typecheck
    wait "$test_packages_install"
    wait_for_sqlite_addon
    pnpm run test:unit
    ;;
  bench)
    install_deps
    pnpm exec turbo run build --filter=@omnirelay/bench... --output-logs=errors-only
    pnpm --filter @omnirelay/bench bench -- "$@"
    ;;
  soak)
    install_deps
    pnpm exec turbo run build --filter=@omnirelay/mesh-demo... --output-logs=errors-only
    pnpm --filter @omnirelay/mesh-demo soak -- "$@"
    ;;
  *)
    echo "usage: bash scripts/omni.sh demo|test|bench|soak" >&2
    exit 2
    ;;
esac
