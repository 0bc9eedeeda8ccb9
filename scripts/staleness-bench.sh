#!/usr/bin/env bash
# Bounded staleness, measured across processes: PPO samples/s with max-policy-lag = 0 (strictly on-policy)
# and 1 (the next batch is generated while the learner trains), the learner (+reward) node pinned to core 0
# and one rollout node pinned to core 1. Prints one line per run: steps timed, seconds, samples/s.
#   bash scripts/staleness-bench.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-2}
dotnet build src/Host -v q -nologo > /dev/null
rlft=src/Host/bin/Debug/net10.0/linux-x64/rlft
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/job.conf" <<JOB
rlft.job {
  name = stale
  seed = 2
  device = cpu
  output-dir = "$work/runs"
  model { arch = gpt2, preset = tiny }
  eval-prompts = 8
  stages = [
    { kind = sft, data = "builtin:sft", steps = 60, batch-size = 16 }
    { kind = ppo, data = "builtin:prompts", steps = 40, batch-size = 16
      sampling { max-new-tokens = 24 }
      ppo { epochs = 2 }
      rewards { sources = [ { type = task } ] }
    }
  ]
}
JOB
for ((r = 0; r < runs; r++)); do
  for lag in 0 1; do
    port=$((4600 + lag)); log="$work/learner-$lag.log"
    rm -rf "$work/runs"
    taskset -c 0 "$rlft" node --config "$work/job.conf" --roles learner,reward --port $port --set max-policy-lag=$lag 2>&1 \
      | while IFS= read -r line; do echo "$(date +%s.%N) $line"; done > "$log" &
    sleep 3
    taskset -c 1 "$rlft" node --config "$work/job.conf" --roles rollout --port $((port + 100)) \
      --seed-nodes "akka.tcp://rlft@127.0.0.1:$port" > "$work/rollout.log" 2>&1 &
    rollout=$!
    until grep -q "finished\|FAILED" "$log"; do sleep 1; done
    kill $rollout; wait $rollout 2>/dev/null || true
    python3 - "$lag" "$log" <<'PY'
import re, sys
lag, log = sys.argv[1], sys.argv[2]
t = {}
for line in open(log):
    m = re.search(r"^(\S+) \[Ppo (\d+)/40\]", line)
    if m: t[int(m.group(2))] = float(m.group(1))
s, e = min(t), max(t)
print(f"max-policy-lag={lag}: PPO steps {s}->{e} in {t[e] - t[s]:.2f} s, {(e - s) * 16 / (t[e] - t[s]):.1f} samples/s")
PY
  done
done
