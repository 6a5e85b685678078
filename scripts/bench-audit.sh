#!/usr/bin/env bash
# Sync throughput with auditing off, with a file sink and with an HTTP sink, as ratios measured in
# one run (examples/audit_throughput.rs) on a private environment. Each configuration runs its own
# `lockstep run --namespace`. Usage: scripts/bench-audit.sh [N] [ROUNDS]   (default 200 3)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export LOCKSTEP_ENV_DIR="$ROOT/target/env-bench-audit"
ENV_DIR=$LOCKSTEP_ENV_DIR
cd "$ROOT"
cargo build --quiet --bin lockstep --example audit_throughput
WATCH_PID=$$ scripts/env-up.sh
trap 'scripts/env-down.sh' EXIT
# shellcheck source=/dev/null
source "$ENV_DIR/env.sh"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(date -u +%Y-%m-%dT%H:%MZ); commit $(git rev-parse --short HEAD)"
target/debug/examples/audit_throughput target/debug/lockstep "${1:-200}" "${2:-3}"
