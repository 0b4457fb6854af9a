# The two commands of the README: `make demo` (the main job) and `make test` (the whole suite).
# Both install what they need: nats-server (Debian) and a .venv with the pinned torch wheel
# (libtorch for tch) and the Python test oracles.

SHELL := /bin/bash
VENV := $(CURDIR)/.venv
# Evaluated when a recipe runs, after `deps` has created .venv.
TORCH_LIB = $(shell ls -d $(VENV)/lib/python3*/site-packages/torch/lib 2>/dev/null | head -1)
INHERITED_LD_LIBRARY_PATH := $(LD_LIBRARY_PATH)

export PATH := $(VENV)/bin:$(PATH):/usr/sbin
export LIBTORCH_USE_PYTORCH := 1
export LD_LIBRARY_PATH = $(TORCH_LIB):$(INHERITED_LD_LIBRARY_PATH)
export ORACLE_PYTHON := $(VENV)/bin/python

.PHONY: deps test lint k8s-validate compose-test demo bench-bus bench-scoring bench-training bench-prescreen bench-pipeline bench-cut

deps:
	@scripts/ensure-nats.sh
	@scripts/ensure-python.sh

lint: deps
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

test: lint k8s-validate
	cargo build --workspace --bins
	scripts/with-nats.sh cargo test --workspace

# The Kubernetes manifests against the API schemas, offline (part of `make test`).
k8s-validate: deps
	scripts/validate-k8s.sh

# The images built and the lifecycle run in containers with compose (not in `make test`:
# it builds the workspace in release mode inside Docker; see docs/operations.md).
compose-test: deps
	scripts/compose-test.sh

demo: deps
	scripts/with-nats.sh scripts/demo.sh

bench-bus: deps
	cargo run --release -p aml-integration-tests --bin bench-bus

bench-scoring: deps
	cargo run --release -p aml-bench --bin bench-scoring

bench-training: deps
	cargo run --release -p aml-bench --bin bench-training

bench-prescreen: deps
	cargo run --release -p aml-bench --bin bench-prescreen

bench-pipeline: deps
	cargo run --release -p aml-bench --bin bench-pipeline

bench-cut: deps
	cargo build --release -p aml-scheduler --bin scheduler
	cargo run --release -p aml-integration-tests --bin bench-cut
