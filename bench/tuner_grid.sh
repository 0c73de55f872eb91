#!/usr/bin/env bash
# The tuner against a grid search: profile CONFIG once, tune it, and measure the tuned config
# against every combination of a bounded knob space (workers 1..MAX_WORKERS on each parallel
# stage, and the last stage's buffer in {1, 4}); then profile the tuned config again and report
# what the tuner would still change. Prints a Markdown row: the best grid rate, the tuned rate,
# sluice's stated figure for the tuned config and the model's one-shot prediction (errors
# against the tuned rate), the profile's length, and what the second profile proposed and kept.
# The best grid config and the tuned one are measured again CONFIRM times (default 3),
# interleaved, and compared by their medians.
#
#   bench/tuner_grid.sh CONFIG [SECONDS] [MAX_WORKERS]   (defaults 3 and 3; needs build/bin/sluice)
#   TRIAL_SECONDS=2 sets the length of each of sluice profile's trials of tuned candidates.
#   GRID_CSV=FILE keeps each config's measured and predicted rate; KEEP=DIR keeps the traces too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CONFIG=$1
SECONDS_PER_RUN=${2:-3}
TRIAL_SECONDS=${TRIAL_SECONDS:-2}
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

# 1. One profile of 10 s at most: SECONDS at the config as given, then up to two trials of
# TRIAL_SECONDS of the tuned candidates (sluice profile keeps the fastest measured); apply the
# kept config to a copy and measure it in a separate run.
start=$(date +%s.%N)
"$SLUICE" profile "$BASE" --seconds "$SECONDS_PER_RUN" --trial-seconds "$TRIAL_SECONDS" \
  --out "$WORK/profile" >"$WORK/profile.log"
profile_s=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
cp "$BASE" "$WORK/tuned.json"
"$SLUICE" apply "$WORK/profile/tuned.json" --to "$WORK/tuned.json" >/dev/null
# sluice's expected rate for the kept config (measured in its trial), and the model's one-shot
# prediction for the first candidate from the first trace alone.
read -r predicted first_predicted kept_round < <(python3 - "$WORK/profile/trials.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
r = t["rounds"]
first = r[1]["predicted_outputs_per_s"] if len(r) > 1 else t["model_outputs_per_s"]
print(t["expected_outputs_per_s"], first, t["kept_round"])
PY
)
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

# The grid's best is the highest of many noisy runs: measure it and the tuned config again,
# interleaved, CONFIRM times each, and compare the medians.
CONFIRM=${CONFIRM:-3}
: >"$WORK/confirm.txt"
for _ in $(seq "$CONFIRM"); do
  echo "tuned $(rate "$WORK/tuned.json")" >>"$WORK/confirm.txt"
  echo "best $(rate "$best_cfg")" >>"$WORK/confirm.txt"
done
read -r tuned best < <(python3 - "$WORK/confirm.txt" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    runs.setdefault(k, []).append(float(v))
print(statistics.median(runs["tuned"]), statistics.median(runs["best"]))
PY
)

# 3. Profile the tuned config again: what does the model propose from its trace, and what does
# the profile keep after measuring it?
"$SLUICE" profile "$WORK/tuned.json" --seconds "$SECONDS_PER_RUN" --trial-seconds "$TRIAL_SECONDS" \
  --out "$WORK/again" >/dev/null
again=$(python3 - "$WORK/again/trials.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
r = t["rounds"]
gain = t["measured_outputs_per_s"] / r[0]["measured_outputs_per_s"]
print("%.3f %s %d %.3f" % (r[0]["proposed_speedup"], r[0]["proposes"].count("->"), t["kept_round"], gain))
PY
)

python3 - <<PY
tuned, best, predicted, first = $tuned, $best, $predicted, $first_predicted
proposed, changes, kept, gain = "$again".split()
kept_text = "kept the config" if kept == "0" else f"kept round {kept}, measured {float(gain):.2f}x"
print(f"| {'$CONFIG'} | {$count} configs x ${SECONDS_PER_RUN} s, then best and tuned x $CONFIRM | {best:.1f} | {tuned:.1f} ({100*tuned/best:.0f}% of best) | {predicted:.1f} ({100*(predicted/tuned-1):+.1f}%) | {first:.1f} ({100*(first/tuned-1):+.1f}%) | {$profile_s} s (kept round $kept_round) | {changes} changes proposed, {float(proposed):.2f}x predicted; {kept_text} |")
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
