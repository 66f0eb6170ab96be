#!/usr/bin/env bash
# Install what the browser, harness and Redis TLS/Sentinel tests need, from a clean clone:
#   - Debian's Chromium (/usr/bin/chromium), driven by Playwright for Python (the `dev` extra);
#     Playwright's own browser download does not work here, so it is never used;
#   - the Node harness (tests/harness/node_modules) from its committed lockfile with `npm ci`;
#   - Debian's redis-server when it is not on PATH (the TLS and Sentinel tests run their own).
# Idempotent and fast when all are already there; exits non-zero with the reason otherwise.
# `.ci/run` calls it before `make test`.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HARNESS="$ROOT/tests/harness"
CHROMIUM="${AUTH_TEST_CHROMIUM:-/usr/bin/chromium}"
NODE_MIN_MAJOR=20
NODE_MIN_MINOR=19 # oidc-provider 9 needs ^20.19
# Exits non-zero unless every direct dependency of the harness is in node_modules.
HAS_DEPS='for (const d of Object.keys(require("./package.json").dependencies))
  require("fs").statSync(`node_modules/${d}/package.json`)'

say() { echo "install-test-deps: $*"; }
die() {
    echo "install-test-deps: error: $*" >&2
    exit 1
}

# ---- Debian packages ---------------------------------------------------------------------------

# apt_install PACKAGE: as root (or passwordless sudo), refreshing empty package lists once.
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "$1 missing and apt-get is not available"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo="sudo -n"
        else
            die "$1 missing and not root (no passwordless sudo): run this script as root"
        fi
    fi
    say "installing Debian's $1 (apt-get)..."
    local log
    log="$(mktemp)"
    # Another apt run (a second worktree installing) holds the dpkg lock for a while: wait for it.
    local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq
        -o DPkg::Lock::Timeout=300 --no-install-recommends "$1")
    if ! $sudo "${install[@]}" >"$log" 2>&1; then
        # A clean image has empty package lists: refresh them once, then try again.
        say "install failed ($(tail -n 1 "$log")); running apt-get update and retrying"
        $sudo apt-get update -qq -o DPkg::Lock::Timeout=300 >"$log" 2>&1 || die "apt-get update failed: $(tail -n 3 "$log")"
        $sudo "${install[@]}" >"$log" 2>&1 || die "apt-get install $1 failed: $(tail -n 5 "$log")"
    fi
    rm -f "$log"
}

# ---- redis-server ------------------------------------------------------------------------------

# The TLS and Sentinel tests (tests/integration/tls) start their own redis-server processes:
# Debian's build has TLS (--tls-port) and is its own Sentinel (redis-server --sentinel).
install_redis_server() {
    if command -v redis-server >/dev/null 2>&1; then
        say "redis-server present: $(redis-server --version | cut -d' ' -f3)"
        return
    fi
    apt_install redis-server
    command -v redis-server >/dev/null 2>&1 || die "redis-server installed but not on PATH"
}

# ---- Chromium ----------------------------------------------------------------------------------

install_chromium() {
    if [ -x "$CHROMIUM" ]; then
        say "chromium present: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
        return
    fi
    if [ -n "${AUTH_TEST_CHROMIUM:-}" ]; then
        die "AUTH_TEST_CHROMIUM=$AUTH_TEST_CHROMIUM is not an executable"
    fi
    apt_install chromium
    [ -x "$CHROMIUM" ] || die "chromium installed but $CHROMIUM is missing"
    say "installed $("$CHROMIUM" --version 2>/dev/null)"
}

# ---- Node harness ------------------------------------------------------------------------------

install_harness() {
    command -v node >/dev/null 2>&1 || die "node is not on PATH (Node.js >= $NODE_MIN_MAJOR.$NODE_MIN_MINOR needed)"
    command -v npm >/dev/null 2>&1 || die "npm is not on PATH"
    local version major minor
    version="$(node --version)"
    IFS=. read -r major minor _ <<<"${version#v}"
    if [ "$major" -lt "$NODE_MIN_MAJOR" ] ||
        { [ "$major" -eq "$NODE_MIN_MAJOR" ] && [ "$minor" -lt "$NODE_MIN_MINOR" ]; }; then
        die "node $version is too old: the harness needs >= $NODE_MIN_MAJOR.$NODE_MIN_MINOR"
    fi
    [ -f "$HARNESS/package-lock.json" ] || die "$HARNESS/package-lock.json is missing"

    # npm ci always wipes node_modules; skip it when the installed tree came from this lockfile.
    local stamp="$HARNESS/node_modules/.installed-from-lock"
    local want
    want="$(sha256sum "$HARNESS/package-lock.json" | cut -d' ' -f1) node $version"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && (cd "$HARNESS" && node -e "$HAS_DEPS" 2>/dev/null); then
        say "node harness up to date ($HARNESS/node_modules)"
        return
    fi
    say "npm ci in tests/harness (node $version, npm $(npm --version))..."
    local log
    log="$(mktemp)"
    if ! (cd "$HARNESS" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
        die "npm ci failed in $HARNESS: $(tail -n 15 "$log")"
    fi
    rm -f "$log"
    echo "$want" >"$stamp"
    say "node harness installed"
}

start=$SECONDS
install_redis_server
install_chromium
install_harness
say "done in $((SECONDS - start))s"
