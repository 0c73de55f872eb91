#!/usr/bin/env bash
# The benchmark suite: naive, heuristic, hill-climbing, sluice-tuned and a grid-search oracle on
# five pipelines (bench/suite/*.json), a PyTorch DataLoader peer on the image pipeline, and
# examples/gpu_train before and after tuning where a GPU exists. Prints its cost estimate first,
# writes BUILD_DIR/bench/results.json and tables.md, and regenerates the suite's section of
# docs/benchmarks.md (between its marker comments). The driver is bench/lib/suite.py.
#
#   bench/run.sh [--quick] [--out DIR] [--only image,text] [--memory 512M] [--no-peer]
#                [--no-docs] [--estimate]
#   (needs BUILD_DIR/bin/sluice, BUILD_DIR defaulting to build, and the dataset in examples/data)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Debian's python, not the first python3 on PATH: the peer needs Debian's torch packages, and the
# driver needs only the standard library.
exec /usr/bin/python3 bench/lib/suite.py --command "bench/run.sh${*:+ $*}" "$@"
