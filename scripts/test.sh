#!/usr/bin/env bash
# `make test`: builds everything, starts a private environment that dies with this script,
# runs every test of the workspace (unit and integration), and stops the environment.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need cargo "build and test lockstep (install Rust with rustup)"
"$ROOT/scripts/build-tools.sh"

info "building the workspace and its tests"
(cd "$ROOT" && cargo test --workspace --all-targets --no-run)

WATCH_PID=$$ "$ROOT/scripts/env-up.sh"
trap '"$ROOT/scripts/env-down.sh"' EXIT
# shellcheck source=/dev/null
source "$ENV_DIR/env.sh"

info "running the tests"
cd "$ROOT"
cargo test --workspace --all-targets
cargo test --workspace --doc
