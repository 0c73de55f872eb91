#!/usr/bin/env bash
# The tuner against a grid search: profile CONFIG once, tune it, and measure the tuned config
# against every combination of a bounded knob space (workers 1..MAX_WORKERS on each parallel
# stage, and the last stage's buffer in {1, 4}); then profile the tuned config again and report
# what the tuner would still change. Prints a Markdown summary.
#
#   bench/tuner_grid.sh CONFIG [SECONDS] [MAX_WORKERS]   (defaults 3 and 3; needs build/bin/sluice)
#   GRID_CSV=FILE keeps each config's measured and predicted rate; KEEP=DIR keeps the traces too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CONFIG=$1
SECONDS_PER_RUN=${2:-3}
MAX_WORKERS=${3:-3}
SLUICE=${SLUICE:-$(pwd)/build/bin/sluice}
WHATIF=${WHATIF:-$(dirname "$SLUICE")/whatif_bench}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Work on copies beside a link to the config's own directory's data, so relative paths resolve.
SRC_DIR=$(cd "$(dirname "$CONFIG")" && pwd)
for entry in "$SRC_DIR"/*; do ln -s "$entry" "$WORK/$(basename "$entry")" 2>/dev/null || true; done
BASE="$WORK/base.json"
rm -f "$BASE"; cp "$CONFIG" "$BASE"

rate() { "$SLUICE" run "$1" --seconds "$SECONDS_PER_RUN" --epochs -1 --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["outputs_per_s"])'; }

# 1. One profile of 10 s at most, which also writes the tuned config; apply it to a copy.
start=$(date +%s.%N)
"$SLUICE" profile "$BASE" --seconds "$SECONDS_PER_RUN" --out "$WORK/profile" >"$WORK/profile.log"
profile_s=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
cp "$BASE" "$WORK/tuned.json"
"$SLUICE" apply "$WORK/profile/tuned.json" --to "$WORK/tuned.json" >/dev/null
predicted=$("$SLUICE" tune "$WORK/profile/trace.json" --config "$BASE" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["predicted_outputs_per_s"])')
tuned=$(rate "$WORK/tuned.json")

# 2. The grid.
python3 - "$BASE" "$WORK" "$MAX_WORKERS" >/dev/null <<'PY'
import itertools, json, sys
base, work, max_workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
doc = json.load(open(base))
# Parallel ops (the runtime's own declaration; see docs/config.md).
parallel = {"read_file", "read_lines", "decode_jpeg", "resize", "random_resized_crop",
            "random_flip", "normalize", "tokenize", "pad", "filter", "burn", "sleep"}
idx = [i for i, s in enumerate(doc["stages"]) if s["op"] in parallel]
n = 0
for workers in itertools.product(range(1, max_workers + 1), repeat=len(idx)):
    for last_buffer in (1, 4):
        d = json.loads(json.dumps(doc))
        for i, w in zip(idx, workers):
            d["stages"][i]["parallelism"] = w
            d["stages"][i]["buffer_size"] = 4 if w > 1 else d["stages"][i].get("buffer_size", 0)
        d["stages"][-1]["buffer_size"] = last_buffer
        json.dump(d, open(f"{work}/grid_{n:04d}.json", "w"))
        n += 1
print(n)
PY
best=0; best_cfg=""; count=0
: >"$WORK/measured.txt"
for g in "$WORK"/grid_*.json; do
  r=$(rate "$g"); count=$((count + 1))
  echo "$g $r" >>"$WORK/measured.txt"
  if python3 -c "import sys; sys.exit(0 if $r > $best else 1)"; then best=$r; best_cfg=$g; fi
done
echo "$WORK/tuned.json $tuned" >>"$WORK/measured.txt"
# The analyzer's what-if from the one profile, for every config measured.
"$WHATIF" "$WORK/profile/trace.json" $(cut -d' ' -f1 "$WORK/measured.txt") >"$WORK/predicted.txt"

# 3. Profile the tuned config again: what would the tuner still change?
"$SLUICE" profile "$WORK/tuned.json" --seconds "$SECONDS_PER_RUN" --out "$WORK/again" >/dev/null
again=$("$SLUICE" tune "$WORK/again/trace.json" --config "$WORK/tuned.json" --json |
  python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.3f %d" % (j["speedup"], len(j["changes"])))')

python3 - <<PY
tuned, best, predicted = $tuned, $best, $predicted
speedup_again, changes_again = "$again".split()
print(f"| {'$CONFIG'} | {$count} configs x ${SECONDS_PER_RUN} s | {best:.1f} | {tuned:.1f} ({100*tuned/best:.0f}% of best) | {predicted:.1f} ({100*(predicted/tuned-1):+.1f}%) | {$profile_s} s | {changes_again} changes, predicted {float(speedup_again):.2f}x |")
PY
# How well the one profile predicts every config of the grid (GRID_CSV=FILE keeps the pairs).
python3 - "$WORK" "${GRID_CSV:-}" <<'PY'
import json, statistics, sys
work, csv = sys.argv[1], sys.argv[2]
measured = dict(l.split() for l in open(f"{work}/measured.txt"))
predicted = dict(l.split() for l in open(f"{work}/predicted.txt"))
rows = []
for path, m in measured.items():
    d = json.load(open(path))
    knobs = " ".join("%s=%s/%s" % (s["name"], s.get("parallelism", 1), s.get("buffer_size", 0))
                     for s in d["stages"])
    rows.append((float(m), float(predicted[path]), knobs))
errors = [p / m - 1 for m, p, _ in rows if m > 0]
print(f"what-if over {len(rows)} configs: median |error| {100*statistics.median(map(abs, errors)):.1f}%, "
      f"mean {100*statistics.mean(errors):+.1f}%, worst {100*max(errors, key=abs):+.1f}%")
if csv:
    with open(csv, "w") as f:
        f.write("measured,predicted,knobs\n")
        for m, p, k in rows:
            f.write(f"{m},{p},{k}\n")
PY
knobs() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(", ".join("%s=%s/%s" % (s["name"], s.get("parallelism", 1), s.get("buffer_size", 0)) for s in d["stages"]))' "$1"; }
echo "best grid config (workers/buffer): $(knobs "$best_cfg")"
echo "tuned config (workers/buffer):     $(knobs "$WORK/tuned.json")"
# KEEP=DIR keeps the traces, the configs and the measured and predicted rates for later study.
if [[ -n ${KEEP:-} ]]; then
  mkdir -p "$KEEP"
  cp -r "$WORK"/profile "$WORK"/again "$WORK"/grid_*.json "$WORK"/tuned.json "$WORK"/measured.txt \
    "$WORK"/predicted.txt "$KEEP"/
fi
