#!/usr/bin/env bash
# Apply-to-Secret latency and AWS calls per refresh (examples/sync_latency.rs) on a private
# environment with one lockstep. Usage: scripts/bench-sync.sh [N]   (default 100)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export LOCKSTEP_ENV_DIR="$ROOT/target/env-bench"
ENV_DIR=$LOCKSTEP_ENV_DIR
cd "$ROOT"
cargo build --quiet --bin lockstep --example sync_latency
WATCH_PID=$$ scripts/env-up.sh
trap 'kill $lockstep_pid 2>/dev/null; scripts/env-down.sh' EXIT
# shellcheck source=/dev/null
source "$ENV_DIR/env.sh"
target/debug/lockstep run --metrics-addr=127.0.0.1:0 --health-addr=127.0.0.1:0 2>"$ENV_DIR/lockstep.log" &
lockstep_pid=$!
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(date -u +%Y-%m-%dT%H:%MZ); commit $(git rev-parse --short HEAD)"
target/debug/examples/sync_latency "${1:-100}"
