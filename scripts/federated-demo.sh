#!/usr/bin/env bash
# Federated SFT then federated DPO on this machine (hocon/federated.conf): writes 4 non-IID shards of the built-in
# task, starts the server (the job's learner) and 4 client processes, each on its own shard, and waits for the job.
# The run lands in runs/federated/ (metrics.jsonl: one line per round; summary.json: held-out before/after).
#   bash scripts/federated-demo.sh [--set KEY=VALUE ...]     (passed to every node, e.g. --set seed=3)
# CONFIG=path/to.conf picks another job file; RLFT=path/to/rlft skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${CONFIG:-hocon/federated.conf}
if [[ -z "${RLFT:-}" ]]; then
  dotnet build src/Host -m:1 -v q -nologo > /dev/null
  RLFT=src/Host/bin/Debug/net10.0/linux-x64/rlft
fi
port=${PORT:-4053}
seed="akka.tcp://rlft@127.0.0.1:$port"
logs=runs/federated-logs
mkdir -p "$logs"
"$RLFT" federated-shards --out runs/federated-data --clients 4 --seed 1
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT INT TERM
"$RLFT" node --config "$config" --roles learner --port "$port" "$@" > "$logs/server.log" 2>&1 &
server=$!
sleep 2
for i in 0 1 2 3; do
  "$RLFT" node --config "$config" --roles client --data "runs/federated-data/client-$i" --port $((port + 10 + i)) --seed-nodes "$seed" "$@" \
    > "$logs/client-$i.log" 2>&1 &
done
echo "rlft: server (pid $server) and 4 clients started; logs in $logs/"
status=0
wait "$server" || status=$?
tail -n 30 "$logs/server.log"
exit $status
