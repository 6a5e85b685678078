# lockstep: the two commands are `make demo` and `make test`. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help build tools env-up env-down test demo crds lint ci bench chart

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

build: ## build lockstep (target/debug/lockstep)
	cargo build --workspace

tools: ## build the local control plane, kubectl and helm, install moto (all pinned)
	scripts/build-tools.sh

env-up: ## start the control plane and moto in the background; writes target/env/env.sh
	scripts/env-up.sh

env-down: ## stop what env-up started
	scripts/env-down.sh

test: ## run every test (unit and integration) against a private control plane and moto
	scripts/test.sh

demo: ## run lockstep against the local control plane with the seed guide's manifests
	scripts/demo.sh

crds: ## regenerate crds/ from the Rust types
	cargo run -q -- crds --out-dir crds

chart: ## lint the Helm chart and print what it renders with the default values
	scripts/build-tools.sh
	target/bin/helm lint --strict deploy/charts/lockstep
	target/bin/helm template lockstep deploy/charts/lockstep --namespace lockstep

bench: ## apply-to-Secret latency, AWS calls per refresh, and the scale runs at N=1,000 (results: BENCHMARKS.md)
	scripts/bench-sync.sh 100
	scripts/bench-scale.sh

lint: ## formatting and clippy, as CI checks them
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

ci: lint test ## what CI runs
