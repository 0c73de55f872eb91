#!/usr/bin/env bash
# Set-up, then the main job on the bundled example: make the dataset, profile the deliberately
# misconfigured image pipeline, analyze it, tune it, apply the tuned settings to a copy of the
# config, and run both to compare throughput; then the same with the fused decode-and-crop op the
# plan advises.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The demo needs neither the tests nor the benchmarks (nor their packages: no browser, no gtest).
BOOTSTRAP_FOR=${BOOTSTRAP_FOR:-demo} \
  CMAKE_ARGS="-DSLUICE_BUILD_TESTS=OFF -DSLUICE_BUILD_BENCH=OFF ${CMAKE_ARGS:-}" scripts/bootstrap.sh
BUILD_DIR=${BUILD_DIR:-build}
SLUICE="$BUILD_DIR/bin/sluice"
DEMO="$BUILD_DIR/demo"
SECONDS_PER_RUN=${DEMO_SECONDS:-5}

"$BUILD_DIR/bin/make_dataset" examples/data
rm -rf "$DEMO"
mkdir -p "$DEMO"
# A copy of the example config, beside a link to the data so its relative pattern resolves.
cp examples/image_pipeline.json "$DEMO/image_pipeline.json"
ln -s "$(pwd)/examples/data" "$DEMO/data"
CONFIG="$DEMO/image_pipeline.json"

rate() {  # outputs/s of a run of the config
  "$SLUICE" run "$1" --seconds "$SECONDS_PER_RUN" --epochs -1 --json |
    sed -n 's/^ *"outputs_per_s": \([0-9.e+-]*\),*$/\1/p' | awk '{ printf "%.1f", $1 }'
}

echo
echo "== 1. the image pipeline as shipped (every parallelism 1, no prefetch)"
BEFORE=$(rate "$CONFIG")
echo "   ${BEFORE} batches/s"

echo
echo "== 2. sluice profile: trace it for ${SECONDS_PER_RUN} s, then try the tuned candidates (writes trace.json, trials.json, tuned.json and report.html)"
"$SLUICE" profile "$CONFIG" --seconds "$SECONDS_PER_RUN" --out "$DEMO/profile"

echo
echo "== 3. sluice analyze: is it input-bound, and what limits it?"
"$SLUICE" analyze "$DEMO/profile/trace.json"

echo
echo "== 4. sluice apply: write the tuned settings into the copy of the config"
"$SLUICE" apply "$DEMO/profile/tuned.json" --to "$CONFIG"

echo
echo "== 5. the tuned pipeline"
AFTER=$(rate "$CONFIG")
echo "   ${AFTER} batches/s"
echo
echo "== 6. the plan's advice: decode only each crop window (decode_random_resized_crop)"
"$SLUICE" tune "$DEMO/profile/trace.json" | grep "advice" || echo "   (no advice)"
cp examples/image_pipeline_fused.json "$DEMO/image_pipeline_fused.json"
FUSED_CONFIG="$DEMO/image_pipeline_fused.json"
"$SLUICE" profile "$FUSED_CONFIG" --seconds "$SECONDS_PER_RUN" --out "$DEMO/profile-fused" >/dev/null
"$SLUICE" apply "$DEMO/profile-fused/tuned.json" --to "$FUSED_CONFIG" >/dev/null
FUSED=$(rate "$FUSED_CONFIG")
echo "   the fused pipeline, profiled and tuned the same way: ${FUSED} batches/s"

echo
echo "before: ${BEFORE} batches/s   after: ${AFTER} batches/s   ($(awk -v a="$AFTER" -v b="$BEFORE" 'BEGIN { printf "%.2fx", a / b }'))   fused op, tuned: ${FUSED} batches/s ($(awk -v a="$FUSED" -v b="$BEFORE" 'BEGIN { printf "%.2fx", a / b }'))"
echo "trace: $DEMO/profile/trace.json   tuned config: $CONFIG (original: examples/image_pipeline.json)"
echo "report: $DEMO/profile/report.html (open it in a browser)"
