#!/usr/bin/env bash
# Creates .venv with the pinned test-oracle packages (and libtorch through the torch wheel).
# Idempotent: does nothing when the installed set matches scripts/requirements-oracle.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=scripts/requirements-oracle.txt
stamp=.venv/.requirements.sha256
wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi
python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null; then
  echo "ensure-python: $python not found; installing python3 and venv from Debian" >&2
  apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
echo "ensure-python: installing $(grep -cv '^#' "$requirements") pinned packages into .venv (first run downloads torch)" >&2
# The torch wheel is over 500 MB: registry mirrors drop connections, so pip resumes a broken
# download many times and the whole install is retried (completed wheels stay in pip's cache).
pip_flags=(-q --retries 10 --timeout 60)
.venv/bin/pip install "${pip_flags[@]}" --upgrade pip >/dev/null
for attempt in 1 2 3 4 5; do
  if .venv/bin/pip install "${pip_flags[@]}" --resume-retries 50 -r "$requirements"; then
    break
  fi
  if [ "$attempt" = 5 ]; then
    echo "ensure-python: pip install failed 5 times; see the errors above" >&2
    exit 1
  fi
  echo "ensure-python: pip install failed (attempt $attempt of 5); retrying in $((attempt * 10)) s" >&2
  sleep $((attempt * 10))
done
echo "$wanted" > "$stamp"
