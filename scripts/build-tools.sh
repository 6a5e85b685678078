#!/usr/bin/env bash
# Builds what the tests need beside the Rust workspace, from pinned versions:
#   target/bin/cluster  the local control plane (tests/cluster, k8s.io/kubernetes v1.37.2)
#   target/bin/kubectl  kubectl of the same version (for the demo and for looking around)
#   target/bin/helm     helm from its Go module (tools/helm, helm.sh/helm/v4), for the chart tests
#   target/venv         the moto server (tests/aws/requirements.txt)
# Each is rebuilt only when its sources changed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mkdir -p "$BIN_DIR"

need go "build the local control plane (tests/cluster) from the Go module proxy"
need python3 "run the moto server (AWS for tests)"

stale() { # stale TARGET SOURCES...: true when TARGET is missing or older than any source
  local target=$1; shift
  [ -e "$target" ] || return 0
  [ -n "$(find "$@" -newer "$target" -print -quit)" ]
}

cluster_src=("$ROOT/tests/cluster/go.mod" "$ROOT/tests/cluster/go.sum" "$ROOT"/tests/cluster/*.go)
if stale "$BIN_DIR/cluster" "${cluster_src[@]}"; then
  info "building the local control plane (first build: several minutes)"
  (cd "$ROOT/tests/cluster" && go build -ldflags "-s -w" -o "$BIN_DIR/cluster" .)
fi
if stale "$BIN_DIR/kubectl" "$ROOT/tests/cluster/go.mod"; then
  info "building kubectl"
  (cd "$ROOT/tests/cluster" && go build -ldflags "-s -w" -o "$BIN_DIR/kubectl" k8s.io/kubernetes/cmd/kubectl)
fi
if stale "$BIN_DIR/helm" "$ROOT/tools/helm/go.mod" "$ROOT/tools/helm/go.sum"; then
  info "building helm (first build: about 4 minutes)"
  (cd "$ROOT/tools/helm" && go build -ldflags "-s -w" -o "$BIN_DIR/helm" helm.sh/helm/v4/cmd/helm)
fi
if stale "$VENV/.installed" "$ROOT/tests/aws/requirements.txt"; then
  info "installing the moto server into target/venv"
  python3 -m venv "$VENV" || die "python3 -m venv failed: install Debian's python3-venv package"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/tests/aws/requirements.txt"
  touch "$VENV/.installed"
fi
