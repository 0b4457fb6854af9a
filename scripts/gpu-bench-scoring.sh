#!/usr/bin/env bash
# For a lent GPU: scoring throughput with Llama-3-8B-shaped random bf16 weights and a 30k-token
# shared prefix; prints alert tokens/s, achieved TFLOP/s and MFU against the card's peak.
# Expects the repository built there with the torch wheel (libtorch_cuda) on LD_LIBRARY_PATH.
# Usage: scripts/gpu-bench-scoring.sh [PEAK_TFLOPS] (default 989: H100 SXM dense bf16)
set -euo pipefail
cd "$(dirname "$0")/.."
peak=${1:-989}
python=${ORACLE_PYTHON:-python3}
torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LIBTORCH_USE_PYTORCH=1 LD_LIBRARY_PATH="$torch_lib:${LD_LIBRARY_PATH:-}"
export PATH="$(dirname "$python"):$PATH"
cargo build --release -p aml-bench --bin bench-scoring
mkdir -p "${OUT:-target/bench}"
./target/release/bench-scoring --device cuda --dtype bf16 --shape llama3-8b \
  --prefix 30000 --alerts 512 --alert-len 200 --batch 64 --runs 3 --skip-reference \
  --peak-tflops "$peak" --out "${OUT:-target/bench}/scoring-gpu.json"
