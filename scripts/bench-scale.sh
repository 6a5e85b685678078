#!/usr/bin/env bash
# The scale benchmark of issue 7 (examples/scale.rs) on a private environment, after the cost of
# each kind of API request (examples/api_cost.rs), then the medians of repeated runs.
# Usage: scripts/bench-scale.sh "N M PROVIDER [REFRESH_SECONDS]" ...   one run per argument;
# repeat an argument for a median. Default: three runs each of "1000 1000 aws 60",
# "1000 100 aws 180" and "1000 1000 fake 60" (about 40 minutes). The refresh interval must be
# longer than twice the cold start, or the first wave begins before the cold start ends; and
# longer than a refresh wave takes, or the waves overlap.
# lockstep is the release build (LOCKSTEP_BIN to override); LOCKSTEP_ARGS adds flags to it
# (default: --client-qps=0, no client-side rate limit, as the limit's client has none, so that
# the API server is what the cold start is compared with).
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
cargo build --quiet --example scale --example api_cost
export LOCKSTEP_ARGS=${LOCKSTEP_ARGS:---client-qps=0}
export BENCH_DIR=$ENV_DIR
WATCH_PID=$$ scripts/env-up.sh
trap 'scripts/env-down.sh' EXIT
# shellcheck source=/dev/null
source "$ENV_DIR/env.sh"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(date -u +%Y-%m-%dT%H:%MZ); commit $(git rev-parse --short HEAD)"
target/debug/examples/api_cost 1000
[ $# -gt 0 ] || set -- "1000 1000 aws 60" "1000 100 aws 180" "1000 1000 fake 60" \
  "1000 1000 aws 60" "1000 100 aws 180" "1000 1000 fake 60" \
  "1000 1000 aws 60" "1000 100 aws 180" "1000 1000 fake 60"
results=$(mktemp)
for run in "$@"; do
  # shellcheck disable=SC2086
  target/debug/examples/scale $run | tee -a "$results"
done
python3 - "$results" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT "):
        r = json.loads(line[7:])
        runs.setdefault((r["n"], r["m"], r["provider"]), []).append(r)
fields = ["cold_ratio", "control_plane_cpu_ratio", "rss_mib", "first_wave_calls", "steady_calls",
          "minimum_calls", "steady_cpu_s", "newcomer_p50_ms", "newcomer_p99_ms"]
print("## medians")
print("| N | M | provider | runs | " + " | ".join(fields) + " |")
print("|" + " --- |" * (len(fields) + 4))
for (n, m, provider), rs in runs.items():
    cells = [f"{statistics.median(r[f] for r in rs):.2f}" for f in fields]
    print(f"| {n} | {m} | {provider} | {len(rs)} | " + " | ".join(cells) + " |")
PY
rm -f "$results"
