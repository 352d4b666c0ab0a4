#!/usr/bin/env bash
# Makes sure `promtool` (Prometheus' rule checker) is on PATH; the alert-rule tests call it.
#   bash scripts/ensure-promtool.sh
# Installs Debian's `prometheus` package (2.42, which brings promtool) only when promtool is missing. The package
# also ships a Prometheus server that Debian would start on port 9090: the install runs with services kept from
# starting, and a server that starts anyway is stopped and disabled. Nothing is left listening.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then exit 0; fi

if [ "$(id -u)" != 0 ]; then
  echo "ensure-promtool: promtool is missing; as root run: apt-get install -y --no-install-recommends prometheus" >&2
  exit 1
fi

# policy-rc.d exit 101 = "do not start services" for invoke-rc.d / deb-systemd-invoke during the install.
temporary_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  temporary_policy=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\nexit 101\n' >"$temporary_policy"
  chmod +x "$temporary_policy"
fi
cleanup() { if [ -n "$temporary_policy" ]; then rm -f "$temporary_policy"; fi; }
trap cleanup EXIT

started=$(date +%s)
running_before=" $(pgrep -x prometheus | tr '\n' ' ' || true) "
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1; then
  apt-get update >/dev/null
  apt-get install -y --no-install-recommends prometheus >/dev/null
fi

# Belt and braces: if the package's server started regardless, stop it and keep it from starting at boot.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now prometheus.service >/dev/null 2>&1 || true
elif command -v update-rc.d >/dev/null 2>&1; then
  update-rc.d prometheus disable >/dev/null 2>&1 || true
fi
for pid in $(pgrep -x prometheus || true); do
  case "$running_before" in *" $pid "*) continue ;; esac # not ours: it ran before the install
  echo "ensure-promtool: stopping the Prometheus server the package started (pid $pid)" >&2
  kill "$pid" || true
done

command -v promtool >/dev/null
echo "ensure-promtool: installed $(promtool --version 2>&1 | head -n 1) in $(($(date +%s) - started)) s" >&2
