#!/usr/bin/env bash
# Makes sure nats-server is installed (Debian's package) so tests can start their own servers.
set -euo pipefail
if command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ]; then
  exit 0
fi
echo "ensure-nats: installing nats-server from Debian" >&2
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get -o Acquire::Retries=5 update -qq
$sudo apt-get -o Acquire::Retries=5 install -y -qq nats-server >/dev/null
