#!/usr/bin/env bash
# The analyzer's accuracy on real runs: for each synthetic pipeline of known cost, profile it,
# analyze the trace, and run it again separately; prints a Markdown table of the named
# bottleneck and the predicted against the measured outputs/s.
#
#   bench/analyzer_accuracy.sh [SECONDS]     (default 5; needs build/bin/sluice)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_PER_RUN=${1:-5}
SLUICE=${SLUICE:-build/bin/sluice}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# config, consumer step in ms, the limit the pipeline was built to have
CASES=(
  "examples/synthetic_pipeline.json 0 stage:heavy"
  "bench/configs/analyzer/chain.json 0 stage:heavy"
  "bench/configs/analyzer/sleepy.json 0 stage:io"
  "bench/configs/analyzer/inline.json 0 stage:decode"
  "bench/configs/analyzer/cpu.json 0 stage:work"
  "bench/configs/analyzer/cpu3.json 0 cpu:"
  "bench/configs/analyzer/consumer.json 20 consumer:"
)

echo "| config | consumer ms | expected limit | named bottleneck | measured in profile | predicted | error | separate run | error vs run |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in "${CASES[@]}"; do
  read -r cfg cms expected <<<"$c"
  name=$(basename "$cfg" .json)
  "$SLUICE" profile "$cfg" --seconds "$SECONDS_PER_RUN" --consumer-ms "$cms" --out "$OUT/$name" >/dev/null
  "$SLUICE" analyze "$OUT/$name/trace.json" --json >"$OUT/$name/analysis.json"
  "$SLUICE" run "$cfg" --seconds "$SECONDS_PER_RUN" --consumer-ms "$cms" --json >"$OUT/$name/run.json"
  python3 - "$OUT/$name" "$cfg" "$cms" "$expected" <<'PY'
import json, sys
out, cfg, cms, expected = sys.argv[1:]
a = json.load(open(f"{out}/analysis.json"))
run = json.load(open(f"{out}/run.json"))["outputs_per_s"]
b = a["bottleneck"]
named = f"{b['kind']}:{b['stage'] or ''}"
ok = "yes" if named == expected else "NO"
m, p = a["measured_outputs_per_s"], a["predicted_outputs_per_s"]
print(f"| {cfg} | {cms} | {expected} | {named} ({ok}) | {m:.1f} | {p:.1f} | {100*(p/m-1):+.1f}% | {run:.1f} | {100*(p/run-1):+.1f}% |")
PY
done
echo
echo "$(nproc) cores, $(date -u +%Y-%m-%d), ${SECONDS_PER_RUN} s per profile and per run"
