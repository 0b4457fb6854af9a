#!/usr/bin/env bash
# `make compose-test`: the platform in containers, as `docker compose up` runs it on one host.
# Builds the service image from the Dockerfile, starts NATS, an S3-compatible store, the six
# services and a CPU inference worker with compose, drives the lifecycle from the host with
# `aml` (tiny model -> generate -> 3-phase training -> judge -> two banks' alerts -> a batch),
# checks that the batch holds every alert once and that every service answers /healthz and
# /metrics, then tears everything down (volumes included).
#
# Where no image registry answers, the base images come from scripts/local-base-images.sh and
# deploy/local-images/compose.yaml replaces the images these machines cannot get; where the
# PyTorch index does not answer, the torch wheel comes from PyPI. Installs docker.io and
# docker-compose from Debian, and starts dockerd, when they are missing.
#
# Host ports (override when taken): NATS_HOST_PORT 14222, NATS_MONITOR_HOST_PORT 18222,
# MINIO_HOST_PORT 19000, MINIO_CONSOLE_HOST_PORT 19001. KEEP=1 leaves the containers running.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { printf '\n== %s ==\n' "$*"; }
fail() { echo "compose-test: $*" >&2; exit 1; }

step "docker engine"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v jq >/dev/null || missing+=(jq)
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd (log: /var/log/aml-dockerd.log)"
  (dockerd --storage-driver=overlay2 >/var/log/aml-dockerd.log 2>&1 &)
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || fail "dockerd did not start; see /var/log/aml-dockerd.log"
fi
# BuildKit builds the Dockerfile (cache mounts): through buildx where the CLI has it, else
# through a docker CLI older than 23 (Debian's), which drives BuildKit itself.
if docker buildx version >/dev/null 2>&1; then
  build=(docker buildx build --load)
else
  cli=
  for candidate in docker /usr/bin/docker; do
    version=$("$candidate" version -f '{{.Client.Version}}' 2>/dev/null || true)
    if [ -n "$version" ] && [ "${version%%.*}" -lt 23 ]; then cli=$candidate; break; fi
  done
  [ -n "$cli" ] || fail "no BuildKit: install docker-buildx, or Debian's docker.io for its docker CLI"
  build=(env DOCKER_BUILDKIT=1 "$cli" build)
fi
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
echo "build: ${build[*]}; compose: ${compose[*]} ($("${compose[@]}" version --short 2>/dev/null || echo '?'))"

step "base images"
build_args=()
files=(-f compose.yaml)
if timeout 30 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
  echo "an image registry answers: the Dockerfile's default base images"
else
  echo "no image registry answers: local base images from Debian's archive"
  scripts/local-base-images.sh
  build_args+=(--build-arg RUST_IMAGE=aml-local/rust:bookworm
    --build-arg RUNTIME_IMAGE=aml-local/debian:bookworm-slim)
  files+=(-f deploy/local-images/compose.yaml)
fi
if ! curl -sf --max-time 15 -o /dev/null https://download.pytorch.org/whl/cpu/torch/; then
  echo "the PyTorch index does not answer: the torch wheel from PyPI"
  build_args+=(--build-arg TORCH_INDEX_URL=https://pypi.org/simple)
fi

step "the service image (every service and aml, CPU libtorch)"
export IMAGE_TAG=compose-test
build_started=$(date +%s)
"${build[@]}" "${build_args[@]}" --target service -t "aml-service:$IMAGE_TAG" .
build_secs=$(( $(date +%s) - build_started ))
image_mb=$(( $(docker image inspect -f '{{.Size}}' "aml-service:$IMAGE_TAG") / 1000000 ))
echo "aml-service:$IMAGE_TAG: $image_mb MB, built in $build_secs s"
docker run --rm "aml-service:$IMAGE_TAG" aml --version

step "aml on the host"
cargo build -q -p aml --bin aml
aml="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/debug/aml"

step "compose up"
export COMPOSE_PROJECT_NAME=aml-compose-test
export NATS_HOST_PORT=${NATS_HOST_PORT:-14222} NATS_MONITOR_HOST_PORT=${NATS_MONITOR_HOST_PORT:-18222}
export MINIO_HOST_PORT=${MINIO_HOST_PORT:-19000} MINIO_CONSOLE_HOST_PORT=${MINIO_CONSOLE_HOST_PORT:-19001}
export SCORING_MODEL_URL=s3://aml/models/base SCORING_ADAPTER_URL=s3://aml/models/ct/adapter
services=(generator validator trainer judge scheduler inference-worker)
work=$(mktemp -d)
finish() {
  status=$?
  if [ "$status" != 0 ]; then
    "${compose[@]}" "${files[@]}" logs --no-color --tail 40 >&2 || true
  fi
  if [ "${KEEP:-0}" != 1 ]; then
    "${compose[@]}" "${files[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap finish EXIT
up_started=$(date +%s)
"${compose[@]}" "${files[@]}" up -d --no-build "${services[@]}"
for service in "${services[@]}"; do
  for _ in $(seq 120); do
    id=$("${compose[@]}" "${files[@]}" ps -q "$service")
    health=$(docker inspect -f '{{.State.Health.Status}}' "$id" 2>/dev/null || true)
    [ "$health" = healthy ] && break
    sleep 1
  done
  [ "$health" = healthy ] || fail "$service is not healthy after 120 s (status: ${health:-none})"
done
echo "six services healthy in $(( $(date +%s) - up_started )) s"

step "the lifecycle, driven from the host"
export AML_NATS__URL="nats://127.0.0.1:$NATS_HOST_PORT" AML_STORAGE__URL=s3://aml \
  AML_STORAGE__S3__ENDPOINT="http://127.0.0.1:$MINIO_HOST_PORT" AML_STORAGE__S3__REGION=us-east-1 \
  AML_STORAGE__S3__ACCESS_KEY_ID="${MINIO_ROOT_USER:-aml}" \
  AML_STORAGE__S3__SECRET_ACCESS_KEY="${MINIO_ROOT_PASSWORD:-aml-secret-change-me}" \
  AML_STORAGE__S3__ALLOW_HTTP=true AML_TELEMETRY__LOG_LEVEL=warn
lifecycle_started=$(date +%s)
"$aml" model init-tiny --out "$work/base-model" --seed 2
"$aml" model push "$work/base-model" s3://aml/models/base

ready=$("$aml" request generate --run ct --per-tier 120 --seed 5 --timeout-secs 300)
dataset_url=$(jq -rs '.[0].dataset_url' <<<"$ready")
[ "$(jq -s '.[0].validation_count' <<<"$ready")" = 100 ] || fail "unexpected dataset: $ready"
echo "dataset: $dataset_url"

config='{"lora_r": 4, "lr": 2e-3, "batch_size": 8, "grad_accum": 1, "epochs": [1, 1, 1],
  "max_seq_len": 512, "judge_items": 12, "judge_max_new_tokens": 8, "distill_max_new_tokens": 16}'
phases=$("$aml" request train --run ct --base-model s3://aml/models/base --dataset "$dataset_url" \
  --output s3://aml/models/ct --config-json "$config" --timeout-secs 600)
[ "$(jq -s 'length' <<<"$phases")" = 6 ] || fail "expected the teacher's and the scorer's 3 phases: $phases"
[ "$(jq -s 'all(.gate_passed)' <<<"$phases")" = true ] || fail "a phase failed its gate: $phases"
echo "trained: $(jq -rs 'map((if .stage == "" then "scorer" else .stage end) + "/" + .phase) | join(" ")' <<<"$phases")"

report=$("$aml" request judge --id ct-hard --gold "$dataset_url/validation.jsonl" \
  --predictions s3://aml/models/ct/hard/predictions.jsonl --timeout-secs 300)
[ "$(jq -s '.[0].n' <<<"$report")" = 12 ] || fail "unexpected judge report: $report"
echo "judged: $(jq -cs '.[0] | {n, accuracy, recall_match, rubric_mean}' <<<"$report")"

"$aml" alerts synth --banks alpha,bravo --count 300 --seed 4 --out "$work/alerts" >/dev/null
for bank in alpha bravo; do
  "$aml" alerts push --bank "$bank" "$work/alerts/$bank.jsonl"
done
batch=$("$aml" batch run --id "ct-$(date +%s)" --timeout-secs 600)
[ "$(jq -s '.[0].alerts_in' <<<"$batch")" = 300 ] || fail "the batch does not hold the 300 alerts once: $batch"
[ "$(jq -s '.[0].completion_rate' <<<"$batch")" = 1 ] || fail "the batch is incomplete: $batch"
[ "$(jq -s '.[0].rejected + .[0].duplicates_dropped' <<<"$batch")" = 0 ] || fail "alerts were rejected or dropped: $batch"
echo "batch: $(jq -cs '.[0] | {alerts_in, scored, completion_rate}' <<<"$batch")"
lifecycle_secs=$(( $(date +%s) - lifecycle_started ))

step "/healthz and /metrics of every service"
for service in "${services[@]}"; do
  health=$("${compose[@]}" "${files[@]}" exec -T "$service" curl -fs http://localhost:9464/healthz)
  [ "$health" = ok ] || fail "$service /healthz: $health"
  metrics=$("${compose[@]}" "${files[@]}" exec -T "$service" curl -fs http://localhost:9464/metrics)
  acked=$(sed -n "s/^aml_bus_acked_total{consumer=\"$service\"} //p" <<<"$metrics")
  [ -n "$acked" ] && [ "${acked%.*}" -ge 1 ] || fail "$service acknowledged no message:\n$metrics"
  echo "$service: healthy, $acked messages acknowledged"
done

printf '\ncompose-test passed in %s s: image %s MB built in %s s, lifecycle %s s\n' \
  "$(( $(date +%s) - started ))" "$image_mb" "$build_secs" "$lifecycle_secs"
