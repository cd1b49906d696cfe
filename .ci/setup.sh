# Installs what building, running and testing Pitwall needs, idempotently; sourced by .ci/demo and
# .ci/test. Each step checks first and does nothing when its tool is already there.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Timed steps: `step NAME` ends the step before it (printing how long it took) and starts NAME;
# at exit the last step's time and the whole run's are printed, also when a step fails.
step_name="" step_start=$SECONDS
step_end() {
  [ -n "$step_name" ] && printf '\033[1m<== %s: %ds\033[0m\n' "$step_name" $((SECONDS - step_start)) >&2
  step_name=""
}
step() {
  step_end
  step_name=$*
  step_start=$SECONDS
  say "$*"
}
on_exit=()
at_exit() { on_exit+=("$1"); }
run_exit() {
  local code=$?
  step_end
  for cmd in "${on_exit[@]}"; do eval "$cmd"; done
  printf '\033[1m<== %s: %ds in all (exit %d)\033[0m\n' "$(basename "$0")" "$SECONDS" "$code" >&2
}
trap run_exit EXIT

# Reuse a build cache outside the clone (same machine, other clones) when there is one; a fresh
# machine simply starts it cold.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pitwall/target}
mkdir -p "$CARGO_TARGET_DIR"
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

apt_missing=()
have_pg_server() { compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || command -v postgres >/dev/null; }
have_pg_server || apt_missing+=(postgresql postgresql-contrib)
command -v redis-server >/dev/null || apt_missing+=(redis-server)
command -v chromium >/dev/null || apt_missing+=(chromium)
command -v npm >/dev/null || apt_missing+=(nodejs npm)
command -v cc >/dev/null || apt_missing+=(build-essential)
command -v pkill >/dev/null || apt_missing+=(procps)
if ((${#apt_missing[@]})); then
  step "Installing system packages: ${apt_missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  step "Adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(cargo leptos --version 2>/dev/null)" != "cargo-leptos 0.3.10" ]; then
  step "Installing cargo-leptos 0.3.10 (about 11 minutes on 2 cores, once)"
  cargo install cargo-leptos --version 0.3.10 --locked
fi

bindgen=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $bindgen" ]; then
  step "Installing wasm-bindgen-cli $bindgen (matches Cargo.lock)"
  cargo install wasm-bindgen-cli --version "$bindgen" --force
fi

# npm packages: wasm-opt (binaryen) at the root, Playwright in end2end/. Reinstalled only when
# a lock file changed since the last install.
npm_install() {
  local dir=$1 what=$2 stamp="$1/node_modules/.pitwall-lock"
  if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
    step "Installing npm packages: $what"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
  fi
}
npm_install "$ROOT" "build tools"
npm_install "$ROOT/end2end" "Playwright"

# ECharts goes into the site with the other public files (never committed).
mkdir -p "$ROOT/public/vendor"
cmp -s "$ROOT/node_modules/echarts/dist/echarts.min.js" "$ROOT/public/vendor/echarts.min.js" ||
  cp "$ROOT/node_modules/echarts/dist/echarts.min.js" "$ROOT/public/vendor/echarts.min.js"

export CHROMIUM_PATH=${CHROMIUM_PATH:-$(command -v chromium)}
step_end
