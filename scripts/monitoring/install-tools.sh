#!/usr/bin/env bash
# Install the real Prometheus tooling the monitoring tests and `make monitoring-check` run:
# promtool + prometheus (Debian package `prometheus`) and amtool (`prometheus-alertmanager`).
# Idempotent and fast when the tools are already on PATH; never starts a daemon.
set -euo pipefail

missing=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-tools: ${missing[*]} missing and apt-get is not available;" \
         "install promtool/prometheus/amtool by hand" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "install-tools: ${missing[*]} missing and not root (no passwordless sudo)" >&2
        exit 1
    fi
fi

# Keep package maintainer scripts from starting the daemons (no-op without systemd/init).
policy_rc=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy_rc" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy_rc" >/dev/null
    $SUDO chmod 755 "$policy_rc"
    created_policy=1
fi
cleanup() {
    if [ "$created_policy" -eq 1 ]; then
        $SUDO rm -f "$policy_rc"
    fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
# Refresh the index only when the candidate is unknown (a clean image has empty lists).
if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
    $SUDO apt-get update -qq
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

command -v promtool >/dev/null && command -v prometheus >/dev/null && command -v amtool >/dev/null
echo "install-tools: installed ${missing[*]}"
