# Shared helpers for scripts/*: sourced, not run.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf '\033[33mwarning:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Runs a step and prints how long it took.
step() {
  local name="$1"; shift
  say "$name"
  local start=$SECONDS
  "$@"
  printf '    %s: %ss\n' "$name" "$((SECONDS - start))" >&2
  STEP_TIMES+=("$name $((SECONDS - start))s")
}
STEP_TIMES=()

# The wasm-bindgen version pinned in Cargo.lock (the CLI must match it exactly).
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

# Which toolchain builds wasm32: a rustup target when installed, else Debian's rustc-web with
# -Zbuild-std (see docs/toolchain.md). Sets WASM_CARGO, WASM_FLAGS, and exports the env it needs.
wasm_toolchain() {
  if command -v rustup >/dev/null 2>&1 &&
    rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    WASM_TOOLCHAIN=rustup
    WASM_CARGO=(cargo)
    WASM_FLAGS=()
    export CARGO_TARGET_DIR="$ROOT/target/wasm32-rustup"
  else
    WASM_TOOLCHAIN=debian
    [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust ] ||
      die "no wasm32 toolchain: run scripts/setup (needs rustup's wasm32 target or Debian rustc-web, cargo-web, rust-web-src, lld)"
    export RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
    export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/bin/wasm-ld
    WASM_CARGO=(/usr/bin/cargo)
    WASM_FLAGS=(-Zbuild-std=std,panic_abort)
    export CARGO_TARGET_DIR="$ROOT/target/wasm32-debian"
  fi
}

# Chromium for browser tests: Debian's, or CHROME/CHROMEDRIVER from the environment.
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
export YKEEP_CHROMIUM="${YKEEP_CHROMIUM:-/usr/bin/chromium}"
export YKEEP_BENCH_DATA="${YKEEP_BENCH_DATA:-$ROOT/../shared/bench-data}"

# Copies the party host's package files (party/dist/, built by scripts/build-party) into $1 (the
# npm package's subpath ykeep/party). Does nothing when party/dist/ has not been built.
party_package() {
  local dist="$ROOT/party/dist" to="$1"
  [ -f "$dist/index.js" ] || return 0
  rm -rf "$to"
  mkdir -p "$to"
  cp "$dist"/{index,log,wasm}.{js,d.ts} "$dist"/ykeep_party.{js,d.ts} \
    "$dist"/ykeep_party_bg.wasm "$dist"/ykeep_party_bg.wasm.d.ts "$to"/
  # As for the client (scripts/build-wasm): no `[Symbol.dispose]()` declarations, which a
  # consumer's tsc with lib es2022 refuses.
  sed -i '/\[Symbol\.dispose\]()/d' "$to/ykeep_party.d.ts"
}

# Builds the Convex library (js/convex/, scripts/build-convex.mjs) into $1 (the npm package's
# subpath ykeep/convex): ES modules and their declarations, in place of the copied sources.
convex_package() {
  local to="$1"
  rm -rf "$to"
  mkdir -p "$to"
  node "$ROOT/scripts/build-convex.mjs" "$to"
}
