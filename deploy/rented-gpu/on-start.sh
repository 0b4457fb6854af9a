#!/usr/bin/env bash
# On-start script for GPU marketplaces that boot their own PyTorch image instead of ours
# (vast.ai "on-start script", RunPod "docker command", ...). It fetches the worker bundle
# (inference-worker + entrypoint.sh, built by `docker build --target worker-bundle`), makes
# sure libtorch 2.11.0 with CUDA is at hand, and runs the entrypoint, restarting it after a
# crash. Nothing else is installed.
#
# Interruptible (spot) instances are fine: when one is reclaimed, the shards it had fetched
# but not acked are redelivered to the other workers after the consumer's ack wait.
#
# Read here:
#   WORKER_BUNDLE_URL     https URL of aml-worker.tar.gz: a presigned object-storage URL
#                         (`mc share download`, `aws s3 presign`) or a release asset; required
#   WORKER_BUNDLE_SHA256  its SHA-256 (aml-worker.tar.gz.sha256); checked when set
#   WORKER_HOME           where the bundle, the model cache and (if needed) torch go;
#                         default /workspace/aml-worker when /workspace exists, else /opt/aml-worker
#   TORCH_INDEX_URL       wheel index for torch==2.11.0 when the image has no such torch;
#                         default https://download.pytorch.org/whl/cu128
# and everything deploy/rented-gpu/entrypoint.sh reads (AML_NATS__URL, AML_NATS_CREDS_B64, ...).
set -euo pipefail

log() { printf 'aml-on-start: %s\n' "$*" >&2; }

torch_version=2.11.0
if [ -z "${WORKER_BUNDLE_URL:-}" ]; then
  log "missing configuration: WORKER_BUNDLE_URL (https URL of aml-worker.tar.gz)"
  exit 78
fi
if [ -d /workspace ]; then
  default_home=/workspace/aml-worker
else
  default_home=/opt/aml-worker
fi
home=${WORKER_HOME:-$default_home}
torch_index=${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cu128}
mkdir -p "$home"

fetch() {
  local url=$1 output=$2
  if command -v curl > /dev/null; then
    curl -fsSL --retry 5 --retry-delay 2 -o "$output" "$url"
  elif command -v wget > /dev/null; then
    wget -q --tries=5 -O "$output" "$url"
  else
    python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' "$url" "$output"
  fi
}

# The bundle. The URL may be presigned: it is never printed.
log "downloading the worker bundle"
fetch "$WORKER_BUNDLE_URL" "$home/aml-worker.tar.gz"
if [ -n "${WORKER_BUNDLE_SHA256:-}" ]; then
  expected=${WORKER_BUNDLE_SHA256%% *}
  actual=$(sha256sum "$home/aml-worker.tar.gz" | cut -d' ' -f1)
  if [ "$expected" != "$actual" ]; then
    log "aml-worker.tar.gz has SHA-256 $actual, expected $expected"
    exit 78
  fi
else
  log "warning: WORKER_BUNDLE_SHA256 not set; the bundle is not verified"
fi
rm -rf "$home/aml-worker"
tar -C "$home" -xzf "$home/aml-worker.tar.gz"
bundle="$home/aml-worker"
unset WORKER_BUNDLE_URL

# libtorch: the image's own torch when it is 2.11.0 with CUDA, else the wheel in $home/torch.
torch_lib_of() {
  "$1" - "$torch_version" 2> /dev/null <<'EOF'
import os, sys
import torch
lib = os.path.join(os.path.dirname(torch.__file__), "lib")
ok = (torch.__version__.split("+")[0] == sys.argv[1] and torch.version.cuda
      and os.path.exists(os.path.join(lib, "libtorch_cuda.so")))
print(lib if ok else "")
EOF
}
python=$(command -v python3 || command -v python || true)
torch_lib=""
if [ -n "$python" ]; then
  torch_lib=$(torch_lib_of "$python" || true)
fi
if [ -z "$torch_lib" ] && [ -d "$home/torch/torch/lib" ]; then
  torch_lib=$(PYTHONPATH="$home/torch" torch_lib_of "$python" || true)
fi
if [ -z "$torch_lib" ]; then
  if [ -z "$python" ]; then
    log "no python to install torch==$torch_version with; use the worker image instead"
    exit 78
  fi
  log "installing torch==$torch_version (CUDA) from $torch_index into $home/torch"
  "$python" -m pip install --quiet --no-cache-dir --target "$home/torch" \
    --index-url "$torch_index" "torch==$torch_version"
  torch_lib=$(PYTHONPATH="$home/torch" torch_lib_of "$python" || true)
  if [ -z "$torch_lib" ]; then
    log "torch==$torch_version with CUDA is not usable after installing it from $torch_index"
    exit 78
  fi
fi
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
log "libtorch from $torch_lib"

if ! "$bundle/inference-worker" --version > /dev/null; then
  log "inference-worker does not start on this image; libraries not found:"
  ldd "$bundle/inference-worker" | grep 'not found' >&2 || true
  exit 78
fi

export AML_MODEL_CACHE="${AML_MODEL_CACHE:-$home/model-cache}"

# Run the entrypoint; restart it after a crash (NATS or storage briefly unreachable), but not
# after a configuration error (78) or a missing GPU (69), which a restart would not mend.
child=0
stop() {
  if [ "$child" -ne 0 ]; then
    kill -TERM "$child" 2> /dev/null || true
    wait "$child" || true
  fi
  exit 0
}
trap stop TERM INT
delay=5
while true; do
  "$bundle/entrypoint.sh" "$@" &
  child=$!
  status=0
  wait "$child" || status=$?
  child=0
  case "$status" in
    0) log "worker exited"; exit 0 ;;
    69 | 78) log "worker cannot start (exit $status); not restarting"; exit "$status" ;;
  esac
  log "worker exited with $status; restarting in ${delay}s"
  sleep "$delay"
  delay=$(( delay < 60 ? delay * 2 : 60 ))
done
