#!/usr/bin/env bash
# The end-to-end lifecycle on embedded defaults, as separate processes around one NATS server
# (AML_NATS__URL, from scripts/with-nats.sh) and file storage under ./aml-data:
# tiny model -> generate -> validate -> 3-phase curriculum with the judge after each phase ->
# the cascade calibrated on the trained model (validation set + a bank's labelled alerts) ->
# scheduler (thresholds from that calibration) + inference worker started -> three banks push
# alerts -> a batch is requested -> the worker scores it -> batch report -> summary table.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --bins -q
bin="${CARGO_TARGET_DIR:-target}/debug"
root=aml-data/demo
rm -rf "$root" aml-data/banks aml-data/batches aml-data/scheduler
mkdir -p "$root"
export AML_STORAGE__URL="file://$PWD/aml-data" AML_TELEMETRY__LOG_LEVEL=warn
step() { printf '\n== %s ==\n' "$*"; }
started=$(date +%s)

step "1/7 tiny base model (random weights, tokenizer trained on the fly)"
$bin/aml model init-tiny --out "$root/base-model" --seed 1 --hidden 128 --layers 2

step "2/7 generate + validate synthetic cases (offline, seed 7)"
$bin/aml generate --per-tier 300 --seed 7 --out "$root/data" --validate

step "3/7 curriculum LoRA training easy -> medium -> hard of the fast scoring model (no CoT), under the workers' policy prompt, judge after each phase, then the cascade calibrated on the trained model"
$bin/aml batch policy >"$root/policy.txt"
$bin/aml alerts synth --banks past --count 900 --seed 11 --out "$root/past-dispositions"
$bin/aml train --model_id "$root/base-model" --data_dir "$root/data" --output_dir "$root/run" \
  --epochs_easy 3 --epochs_medium 2 --epochs_hard 2 --batch_size 8 --grad_accum 1 --lr 3e-3 \
  --max_seq_len 1536 --judge-items 30 --judge-max-new-tokens 8 --cot false \
  --system_prompt_file "$root/policy.txt" --calibration_file "$root/past-dispositions/gold.jsonl"

step "4/7 scheduler (thresholds from the run's calibration.json) and inference worker start"
export AML_SCORING__MODEL_URL="$PWD/$root/base-model" AML_SCORING__ADAPTER_URL="$PWD/$root/run/adapter"
export AML_SCORING__CALIBRATION_URL="$PWD/$root/run/calibration.json"
export AML_SCORING__SCHEDULE="" AML_SCORING__SHARD_SIZE=250
$bin/scheduler >"$root/scheduler.log" 2>&1 &
scheduler=$!
$bin/inference-worker --worker-id demo-worker --model-cache "$root/model-cache" >"$root/worker.log" 2>&1 &
worker=$!
trap 'kill $scheduler $worker 2>/dev/null || true' EXIT

step "5/7 three banks push their alerts"
$bin/aml alerts synth --banks alpha,bravo,charlie --count 1500 --seed 3 --out "$root/alerts"
for bank in alpha bravo charlie; do
  $bin/aml alerts push --bank "$bank" "$root/alerts/$bank.jsonl"
done

step "6/7 a batch is requested; the worker scores it"
batch="demo-$(date +%s)"
$bin/aml batch run --id "$batch" --timeout-secs 900 >"$root/report.json"
echo "report: $root/report.json"

step "7/7 summary"
$bin/aml summary --data "$root/data" --run "$root/run" --batch "$batch" --gold "$root/alerts/gold.jsonl"
echo
echo "lifecycle finished in $(( $(date +%s) - started )) s; everything is under ./aml-data"
