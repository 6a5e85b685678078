# Shared by the scripts: paths, and a clear message when a tool is missing.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# LOCKSTEP_ENV_DIR lets several environments run side by side (one per engineer or CI job).
ENV_DIR="${LOCKSTEP_ENV_DIR:-$ROOT/target/env}"
BIN_DIR="$ROOT/target/bin"
VENV="$ROOT/target/venv"

die() { echo "error: $*" >&2; exit 1; }
info() { echo "==> $*" >&2; }

need() {
  local tool=$1 why=$2
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed; it is needed to $why."
}

# wait_ready FILE PID NAME: waits for a "ready ..." line in FILE while PID lives; prints the rest of it.
wait_ready() {
  local file=$1 pid=$2 name=$3 log=$4 i
  for i in $(seq 1 600); do
    if grep -q '^ready ' "$file" 2>/dev/null; then
      sed -n 's/^ready //p' "$file" | head -n1
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "error: $name exited during start-up; the last lines of $log:" >&2
      tail -n 20 "$log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "error: $name did not report ready within 120s; see $log" >&2
  return 1
}
