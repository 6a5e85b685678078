#!/usr/bin/env bash
# `make demo`: the seed guide's SecretStore and ExternalSecret against the local control plane and
# moto, with lockstep running in the foreground. Ctrl-C stops lockstep and the environment.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need cargo "build lockstep (install Rust with rustup)"
cd "$ROOT"
info "building lockstep"
cargo build --quiet --bin lockstep

WATCH_PID=$$ scripts/env-up.sh
trap 'scripts/env-down.sh' EXIT
# shellcheck source=/dev/null
source "$ENV_DIR/env.sh"

info "creating the example secrets in AWS Secrets Manager (moto)"
"$VENV/bin/python" - <<'PY'
import boto3
sm = boto3.client("secretsmanager")
for name, value in [("prod/app/db-password", "correct-horse-battery-staple"), ("prod/app/api-key", "demo-api-key-1234")]:
    sm.create_secret(Name=name, SecretString=value)
    print(f"  created {name}")
PY

info "applying the seed guide's manifests (deploy/examples)"
kubectl apply -f deploy/examples/serviceaccount.yaml
kubectl apply -f deploy/examples/seed/secretstore.yaml -f deploy/examples/seed/externalsecret.yaml

cat <<MSG

Look around from another terminal:
  . $ENV_DIR/env.sh
  kubectl get secretstores,externalsecrets -n production
  kubectl get externalsecret app-secrets -n production -o yaml
  kubectl get secret app-secrets-k8s -n production -o jsonpath='{.data.database-password}' | base64 -d; echo
  kubectl get events -n production

Rotate the password in AWS, then ask for a refresh now instead of at the next hourly one:
  $VENV/bin/python -c 'import boto3; boto3.client("secretsmanager").put_secret_value(SecretId="prod/app/db-password", SecretString="rotated-password")'
  kubectl annotate externalsecret app-secrets -n production force-sync=\$(date +%s) --overwrite

Edit or delete the Secret by hand: lockstep puts it back at once.
  kubectl delete secret app-secrets-k8s -n production

Starting lockstep (Ctrl-C to stop it and the environment):
MSG
exec_lockstep() { RUST_LOG=${RUST_LOG:-info} target/debug/lockstep run; }
exec_lockstep
