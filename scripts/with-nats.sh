#!/usr/bin/env bash
# Runs a command with a reachable NATS JetStream server: the one at $AML_NATS__URL (default
# nats://127.0.0.1:4222) when it answers, else a child `nats-server -js` on a free local port
# with a temporary store, stopped when the command ends. The command sees AML_NATS__URL.
set -euo pipefail
url=${AML_NATS__URL:-nats://127.0.0.1:4222}
hostport=${url#nats://}
host=${hostport%:*}
port=${hostport##*:}
if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
  export AML_NATS__URL=$url
  exec "$@"
fi
PATH=$PATH:/usr/sbin
store=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats-server -js -a 127.0.0.1 -p "$port" -sd "$store" >"$store/nats.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$store"' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
echo "with-nats: started nats-server -js on 127.0.0.1:$port (store $store)" >&2
export AML_NATS__URL=nats://127.0.0.1:$port
"$@"
