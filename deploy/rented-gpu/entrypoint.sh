#!/usr/bin/env bash
# Entrypoint of the GPU worker image (and the last step of on-start.sh): checks that the
# environment holds what a worker needs, naming what is missing and never printing a secret,
# checks the GPU, then execs inference-worker with any arguments given to this script.
#
# Stopping the instance at any time is safe: a shard the worker had not acked is redelivered
# to another worker after the consumer's ack wait, and its results object is overwritten.
#
# Read here (besides the AML_* configuration the worker reads itself):
#   AML_NATS_CREDS_B64       a NATS .creds file, base64; written to a 0600 file, passed as
#                            AML_NATS__CREDENTIALS_FILE and removed from the environment
#   AML_NATS_TLS_CA_B64      the CA certificate of the NATS server, base64 (PEM); passed as
#                            AML_NATS__TLS_CA_FILE
#   AML_WORKER_ID            this worker's name in reports (default: the host name)
#   AML_MODEL_CACHE          where models are downloaded (default: /var/lib/aml/model-cache)
#   AML_REQUEST_TIMEOUT_SECS timeout of the OpenAI-compatible backend's requests
#   WORKER_INSECURE_NATS=1   allow a NATS connection without credentials (local compose only)
#   WORKER_SKIP_GPU_CHECK=1  start without a visible GPU (testing the image on a CPU host)
# The AML_* names above are not configuration keys: they are turned into files or flags and
# removed from the environment before the worker starts (its configuration rejects AML_
# variables it does not know).
set -euo pipefail

log() { printf 'aml-worker: %s\n' "$*" >&2; }

missing=()
require() {
  if [ -z "${!1:-}" ]; then
    missing+=("$1")
  fi
}

here=$(dirname "$(readlink -f "$0")")
if [ -x "$here/inference-worker" ]; then
  worker="$here/inference-worker"
elif worker=$(command -v inference-worker); then
  :
else
  log "inference-worker not found beside $0 or on PATH"
  exit 127
fi

# Secrets handed over as base64 variables become 0600 files in a private folder.
decode_to_file() {
  local variable=$1 path=$2
  if ! printf '%s' "${!variable}" | base64 -d > "$path" 2> /dev/null; then
    log "$variable is not valid base64"
    exit 78
  fi
}
if [ -n "${AML_NATS_CREDS_B64:-}${AML_NATS_TLS_CA_B64:-}" ]; then
  secrets_dir=$(mktemp -d "${TMPDIR:-/tmp}/aml-worker.XXXXXX")
  umask 077
  if [ -n "${AML_NATS_CREDS_B64:-}" ]; then
    decode_to_file AML_NATS_CREDS_B64 "$secrets_dir/worker.creds"
    export AML_NATS__CREDENTIALS_FILE="$secrets_dir/worker.creds"
  fi
  if [ -n "${AML_NATS_TLS_CA_B64:-}" ]; then
    decode_to_file AML_NATS_TLS_CA_B64 "$secrets_dir/nats-ca.pem"
    export AML_NATS__TLS_CA_FILE="$secrets_dir/nats-ca.pem"
  fi
  umask 022
fi
unset AML_NATS_CREDS_B64 AML_NATS_TLS_CA_B64

# NATS: the URL, and one way to authenticate.
require AML_NATS__URL
if [ "${WORKER_INSECURE_NATS:-0}" != "1" ]; then
  if [ -n "${AML_NATS__CREDENTIALS_FILE:-}" ]; then
    if [ ! -r "$AML_NATS__CREDENTIALS_FILE" ]; then
      log "AML_NATS__CREDENTIALS_FILE names $AML_NATS__CREDENTIALS_FILE, which cannot be read"
      exit 78
    fi
  elif [ -n "${AML_NATS__USER:-}" ]; then
    require AML_NATS__PASSWORD
  elif [ -z "${AML_NATS__TOKEN:-}" ]; then
    missing+=("AML_NATS_CREDS_B64 or AML_NATS__CREDENTIALS_FILE or AML_NATS__USER+AML_NATS__PASSWORD or AML_NATS__TOKEN")
  fi
fi
if [ -n "${AML_NATS__TLS_CA_FILE:-}" ] && [ ! -r "$AML_NATS__TLS_CA_FILE" ]; then
  log "AML_NATS__TLS_CA_FILE names $AML_NATS__TLS_CA_FILE, which cannot be read"
  exit 78
fi

# Object storage: the URL and, for s3://, credentials (ours, the AWS_* ones or a web identity).
require AML_STORAGE__URL
case "${AML_STORAGE__URL:-}" in
  s3://*)
    if [ -n "${AML_STORAGE__S3__ACCESS_KEY_ID:-}" ]; then
      require AML_STORAGE__S3__SECRET_ACCESS_KEY
    elif [ -n "${AWS_ACCESS_KEY_ID:-}" ]; then
      require AWS_SECRET_ACCESS_KEY
    elif [ -z "${AWS_WEB_IDENTITY_TOKEN_FILE:-}" ]; then
      missing+=("AML_STORAGE__S3__ACCESS_KEY_ID+AML_STORAGE__S3__SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID+AWS_SECRET_ACCESS_KEY)")
    fi
    ;;
  "") ;;
  *) log "warning: AML_STORAGE__URL is not s3://; a worker on another host must share the scheduler's storage" ;;
esac

if [ "${#missing[@]}" -gt 0 ]; then
  log "missing configuration:"
  for name in "${missing[@]}"; do
    log "  $name"
  done
  exit 78
fi

# A URL may carry user:password@; print it without.
nats_url_shown=$(printf '%s' "$AML_NATS__URL" | sed -E 's#://[^@/]*@#://<redacted>@#g')
case "$AML_NATS__URL" in
  tls://*) ;;
  *)
    if [ "${AML_NATS__TLS_REQUIRED:-false}" != "true" ] && [ "${WORKER_INSECURE_NATS:-0}" != "1" ]; then
      log "warning: TLS is not required for $nats_url_shown; set AML_NATS__TLS_REQUIRED=true for a worker outside the cluster"
    fi
    ;;
esac

# The GPU (not needed when an OpenAI-compatible server runs the forward passes).
if [ "${AML_SCORING__BACKEND:-local}" = "openai" ]; then
  log "backend openai: forward passes run at ${AML_SCORING__OPENAI_URL:-<unset>}; no local GPU needed"
elif [ "${WORKER_SKIP_GPU_CHECK:-0}" = "1" ]; then
  log "warning: GPU check skipped (WORKER_SKIP_GPU_CHECK=1)"
else
  if ! command -v nvidia-smi > /dev/null; then
    log "nvidia-smi not found: no NVIDIA driver in this container (run it with --gpus all / the NVIDIA runtime)"
    exit 69
  fi
  if ! gpus=$(nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader); then
    log "nvidia-smi failed: the GPU is not usable"
    exit 69
  fi
  while IFS= read -r gpu; do
    log "gpu $gpu"
  done <<< "$gpus"
fi

worker_id=${AML_WORKER_ID:-${HOSTNAME:-$(cat /proc/sys/kernel/hostname)}}
model_cache=${AML_MODEL_CACHE:-/var/lib/aml/model-cache}
mkdir -p "$model_cache"
flags=(--worker-id "$worker_id" --model-cache "$model_cache")
if [ -n "${AML_REQUEST_TIMEOUT_SECS:-}" ]; then
  flags+=(--request-timeout-secs "$AML_REQUEST_TIMEOUT_SECS")
fi
unset AML_WORKER_ID AML_MODEL_CACHE AML_REQUEST_TIMEOUT_SECS

log "worker $worker_id: nats $nats_url_shown, storage $AML_STORAGE__URL, model cache $model_cache"
exec "$worker" "${flags[@]}" "$@"
