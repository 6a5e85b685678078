#!/usr/bin/env bash
# Starts the local control plane and moto in the background, installs the CRDs, and writes
# target/env/env.sh. With WATCH_PID set, both stop by themselves when that process exits.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/build-tools.sh"
"$ROOT/scripts/env-down.sh" --quiet
mkdir -p "$ENV_DIR"
watch=()
[ -n "${WATCH_PID:-}" ] && watch=(--watch-pid "$WATCH_PID")

info "starting the control plane (logs: $ENV_DIR/cluster.log)"
started=$(date +%s%N)
"$BIN_DIR/cluster" up --dir "$ENV_DIR/cluster" --crd-dir "$ROOT/crds" "${watch[@]}" \
  >"$ENV_DIR/cluster.out" 2>"$ENV_DIR/cluster.log" </dev/null &
echo $! >"$ENV_DIR/cluster.pid"

info "starting moto (logs: $ENV_DIR/moto.log)"
MOTO_RECORDER_FILEPATH="$ENV_DIR/moto_recording" "$VENV/bin/python" "$ROOT/tests/aws/moto_server.py" "${watch[@]}" \
  >"$ENV_DIR/moto.out" 2>"$ENV_DIR/moto.log" </dev/null &
echo $! >"$ENV_DIR/moto.pid"

kubeconfig=$(wait_ready "$ENV_DIR/cluster.out" "$(cat "$ENV_DIR/cluster.pid")" "the control plane" "$ENV_DIR/cluster.log")
aws_url=$(wait_ready "$ENV_DIR/moto.out" "$(cat "$ENV_DIR/moto.pid")" "moto" "$ENV_DIR/moto.log")
info "environment ready in $(( ($(date +%s%N) - started) / 1000000 )) ms"

cat >"$ENV_DIR/env.sh" <<ENV
# Written by \`make env-up\`: the local control plane and moto. Source it: . target/env/env.sh
export KUBECONFIG=$kubeconfig
export AWS_ENDPOINT_URL=$aws_url
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1  # boto3 (the demo) reads this one
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_EC2_METADATA_DISABLED=true
# For tests that mint restricted identities: \`cluster kubeconfig --dir \$LOCKSTEP_TEST_CLUSTER_DIR --user U\`.
export LOCKSTEP_TEST_CLUSTER_DIR=$ENV_DIR/cluster
export LOCKSTEP_TEST_CLUSTER_BIN=$BIN_DIR/cluster
export PATH=$BIN_DIR:\$PATH
ENV
info "wrote $ENV_DIR/env.sh; use it with: . $ENV_DIR/env.sh"
