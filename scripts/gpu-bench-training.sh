#!/usr/bin/env bash
# For a lent GPU: LoRA training throughput with Llama-3-8B-shaped random bf16 weights at
# sequence length 2048, without and with activation recomputation; prints tokens/s, MFU and
# the card's peak memory (sampled with nvidia-smi while each run lasts).
# Builds bench-training unless PREBUILT=1 (see gpu-bench-scoring.sh).
# Usage: scripts/gpu-bench-training.sh [PEAK_TFLOPS] [BATCH] (defaults 989, 1)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-env.sh
[ "${PREBUILT:-0}" = 1 ] || cargo build --release -p aml-bench --bin bench-training
out=${OUT:-target/bench}
mkdir -p "$out"
for recompute in no yes; do
  flag=()
  [ "$recompute" = yes ] && flag=(--recompute)
  samples=$(mktemp)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$samples" &
  sampler=$!
  "${CARGO_TARGET_DIR:-target}"/release/bench-training --shape llama3-8b --device cuda --dtype bf16 --seq 2048 \
    --batch "${2:-1}" --steps 10 --warmup 2 --peak-tflops "${1:-989}" "${flag[@]}" \
    --out "$out/training-gpu-recompute-$recompute.json"
  kill "$sampler"
  echo "recompute $recompute: peak GPU memory $(sort -n "$samples" | tail -1) MiB (nvidia-smi)"
done
