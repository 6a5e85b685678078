#!/usr/bin/env bash
# Stops what env-up started.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
quiet=${1:-}
for name in cluster moto; do
  pidfile="$ENV_DIR/$name.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    [ "$quiet" = --quiet ] || info "stopped $name"
  fi
  rm -f "$pidfile"
done
rm -f "$ENV_DIR/env.sh"
