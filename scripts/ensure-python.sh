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
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -r "$requirements"
echo "$wanted" > "$stamp"
