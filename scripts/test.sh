#!/usr/bin/env bash
# Set-up (scripts/bootstrap.sh), then every test through ctest.
# Environment as for bootstrap.sh; CTEST_ARGS adds ctest arguments (e.g. -L pipeline).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Tests and benchmarks on even where the build dir was configured by the demo (CMAKE_ARGS may
# still turn the benchmarks off).
BOOTSTRAP_FOR=${BOOTSTRAP_FOR:-test} \
  CMAKE_ARGS="-DSLUICE_BUILD_TESTS=ON -DSLUICE_BUILD_BENCH=ON ${CMAKE_ARGS:-}" scripts/bootstrap.sh
BUILD_DIR=${BUILD_DIR:-build}
# shellcheck disable=SC2086
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" ${CTEST_ARGS:-}
