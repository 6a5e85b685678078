#!/usr/bin/env bash
# The scale benchmark of issue 7 (examples/scale.rs) on a private environment.
# Usage: scripts/bench-scale.sh "N M PROVIDER [REFRESH_SECONDS]" ...   one run per argument;
# default: "1000 1000 aws 90" "1000 100 aws 90" "1000 1000 fake 90" (the refresh interval must be
# longer than the cold start, or the first wave begins before it ends).
# lockstep is the release build (LOCKSTEP_BIN to override); LOCKSTEP_ARGS adds flags to it
# (default: --client-qps=500 --client-burst=500, so that the API server, not lockstep's own
# client-side limit, is what the cold start is compared with).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export LOCKSTEP_ENV_DIR="$ROOT/target/env-bench"
ENV_DIR=$LOCKSTEP_ENV_DIR
cd "$ROOT"
# The release build (RSS and CPU as deployed), unless LOCKSTEP_BIN names another binary.
if [ -z "${LOCKSTEP_BIN:-}" ]; then
  cargo build --quiet --release --bin lockstep
  export LOCKSTEP_BIN=$ROOT/target/release/lockstep
fi
cargo build --quiet --example scale
export LOCKSTEP_ARGS=${LOCKSTEP_ARGS:---client-qps=500 --client-burst=500}
export BENCH_DIR=$ENV_DIR
WATCH_PID=$$ scripts/env-up.sh
trap 'scripts/env-down.sh' EXIT
# shellcheck source=/dev/null
source "$ENV_DIR/env.sh"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(date -u +%Y-%m-%dT%H:%MZ); commit $(git rev-parse --short HEAD)"
[ $# -gt 0 ] || set -- "1000 1000 aws 90" "1000 100 aws 90" "1000 1000 fake 90"
for run in "$@"; do
  # shellcheck disable=SC2086
  target/debug/examples/scale $run
done
