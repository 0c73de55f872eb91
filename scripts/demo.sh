#!/usr/bin/env bash
# Set-up, then the main job on the bundled example: make the example dataset and run the
# (deliberately misconfigured) image pipeline, then the same pipeline with two workers per stage.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/bootstrap.sh
BUILD_DIR=${BUILD_DIR:-build}
"$BUILD_DIR/bin/make_dataset" examples/data
echo
echo "== examples/image_pipeline.json as shipped (every parallelism 1, no prefetch)"
"$BUILD_DIR/bin/sluice" run examples/image_pipeline.json
echo
echo "== the same pipeline with two workers per parallel stage and a prefetch buffer"
"$BUILD_DIR/bin/sluice" run examples/image_pipeline_2workers.json
echo
echo "== sluice profile of the image pipeline as shipped (3 s): the trace for the analyzer"
"$BUILD_DIR/bin/sluice" profile examples/image_pipeline.json --seconds 3 --out "$BUILD_DIR/demo-profile"
echo
echo "== sluice analyze: is the job input-bound, and what limits it?"
"$BUILD_DIR/bin/sluice" analyze "$BUILD_DIR/demo-profile/trace.json"
