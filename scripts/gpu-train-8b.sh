#!/usr/bin/env bash
# For a lent GPU: `aml train` itself (not a benchmark loop) at Llama-3-8B's shape. It writes a
# random bf16 checkpoint of that shape as a Hugging Face folder with a tokenizer (about 16 GB),
# makes an offline dataset, and trains three short phases (one epoch each, seq 2048, packing
# on, judge off) twice: batch 4 in bf16, and batch 1 with --fp8_base and --recompute (the 24 GB
# configuration). Each run prints its tokens/s and MFU per phase (aml train's table) and the
# card's peak memory (nvidia-smi, sampled every 200 ms). Then a run is SIGKILLed after its
# first checkpoint and started again: it must resume and finish. Last, cascade attention
# against PyTorch's math attention in f32 at the 8B head shape behind a 30k-token prefix.
# Logs and JSON go to $OUT (default target/bench).
# Builds aml and attention-parity unless PREBUILT=1 (then target/release/aml and
# target/release/attention-parity must exist, built against the same torch version as the
# python below, whose libtorch is used).
# Usage: scripts/gpu-train-8b.sh [PER_TIER] (default 300 cases per tier)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-env.sh
[ "${PREBUILT:-0}" = 1 ] || cargo build --release -p aml --bin aml -p aml-bench --bin attention-parity
out=${OUT:-target/bench}
work=${WORK:-/tmp/aml-gpu-train-8b}
release="${CARGO_TARGET_DIR:-target}/release"
aml="$release/aml"
mkdir -p "$out" "$work"

[ -f "$work/base/config.json" ] ||
  "$aml" model init-tiny --shape llama3-8b --dtype bfloat16 --seed 1 --out "$work/base"
[ -f "$work/data/validation.jsonl" ] ||
  "$aml" generate --per-tier "${1:-300}" --seed 1 --out "$work/data" --validate

common=(train --model_id "$work/base" --data_dir "$work/data" --device cuda --dtype bf16
  --max_seq_len 2048 --packing true --epochs_easy 1 --epochs_medium 1 --epochs_hard 1
  --grad_accum 1 --run_judge false)

# run NAME FLAGS...: one training run with the card's memory sampled; the log is $out/train-NAME.log.
run() {
  local name=$1
  shift
  rm -rf "${work:?}/$name"
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$work/$name.memory" &
  local sampler=$!
  "$aml" "${common[@]}" --output_dir "$work/$name" "$@" 2>&1 | tee "$out/train-$name.log"
  kill "$sampler"
  echo "$name: peak GPU memory $(sort -n "$work/$name.memory" | tail -1) MiB (nvidia-smi)" |
    tee -a "$out/train-$name.log"
}

run bf16-batch4 --batch_size 4
run fp8-recompute-batch1 --batch_size 1 --fp8_base true --recompute true

# Kill and resume: SIGKILL once the first checkpoint is complete, then the same command again.
rm -rf "${work:?}/resume"
"$aml" "${common[@]}" --output_dir "$work/resume" --batch_size 4 >"$out/train-resume-killed.log" 2>&1 &
trainer=$!
until ls "$work"/resume/checkpoints/*/progress.json >/dev/null 2>&1; do
  kill -0 "$trainer" 2>/dev/null || { echo "the run ended before its first checkpoint" >&2; exit 1; }
  sleep 1
done
kill -9 "$trainer"
wait "$trainer" || true
"$aml" "${common[@]}" --output_dir "$work/resume" --batch_size 4 2>&1 | tee "$out/train-resume.log"
test -f "$work/resume/adapter/adapter_model.safetensors"
echo "kill and resume: the resumed run finished with its final adapter" | tee -a "$out/train-resume.log"

"$release"/attention-parity --device cuda --prefix 30000 --suffix 200 --batch 8 \
  --out "$out/attention-parity-gpu.json"
