#!/usr/bin/env bash
# For a lent GPU: scoring throughput with Llama-3-8B-shaped random bf16 weights and a 30k-token
# shared prefix; prints alert tokens/s, achieved TFLOP/s and MFU against the card's peak.
# Builds bench-scoring unless PREBUILT=1 (then target/release/bench-scoring must exist, linked
# against the same torch version as the python below, whose libtorch is used).
# Usage: scripts/gpu-bench-scoring.sh [PEAK_TFLOPS] (default 989: H100 SXM dense bf16)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-env.sh
[ "${PREBUILT:-0}" = 1 ] || cargo build --release -p aml-bench --bin bench-scoring
mkdir -p "${OUT:-target/bench}"
"${CARGO_TARGET_DIR:-target}"/release/bench-scoring --device cuda --dtype bf16 --shape llama3-8b \
  --prefix 30000 --alerts 512 --alert-len 200 --batch 64 --runs 3 --skip-reference \
  --peak-tflops "${1:-989}" --out "${OUT:-target/bench}/scoring-gpu.json"
