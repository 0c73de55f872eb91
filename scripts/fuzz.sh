#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan, and runs each for SECONDS
# (default 60): config_fuzz (config parser and validator), trace_fuzz (trace reader) and
# rewrite_fuzz (config edit -> write -> parse round trip).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Environment: BUILD_DIR (default build-fuzz), JOBS (parallel build jobs, default nproc).
# The corpus grows in BUILD_DIR/corpus/TARGET across runs (seeded from examples/, bench/configs/,
# tests/data/ and fuzz/seeds/); a crashing input is kept in BUILD_DIR/crashes/TARGET/ and the
# script exits 1. The last line per target gives its executions and seconds.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_PER_TARGET=${1:-60}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then TARGETS=(config_fuzz trace_fuzz rewrite_fuzz); fi
BUILD_DIR=${BUILD_DIR:-build-fuzz}

CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSLUICE_BUILD_FUZZ=ON -DSLUICE_SANITIZE=address,undefined -DSLUICE_BUILD_TESTS=OFF \
  -DSLUICE_BUILD_BENCH=OFF -DSLUICE_BUILD_EXAMPLES=OFF -DSLUICE_BUILD_CUDA_EXAMPLES=OFF >/dev/null
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target "${TARGETS[@]}"

# Seeds: every config we ship or test with, and small traces. rewrite_fuzz reads its edits from
# the input's last 16 bytes, so its seeds are configs with a few edit choices appended.
configs=(examples/*.json bench/configs/*/*.json fuzz/seeds/*.config.json)
if [ -d tests/data ]; then
  while IFS= read -r f; do configs+=("$f"); done < <(find tests/data -name '*.json' ! -name '*trace*')
fi
traces=(fuzz/seeds/*.trace.json)
if [ -d tests/data ]; then
  while IFS= read -r f; do traces+=("$f"); done < <(find tests/data -name '*trace*.json')
fi
seed() {  # seed TARGET FILE [SUFFIX-BYTES]
  local dir="$BUILD_DIR/corpus/$1" name
  name="seed_$(printf '%s%s' "$2" "${3:-}" | sha1sum | cut -c1-16)"
  mkdir -p "$dir"
  { cat "$2"; printf "%b" "${3:-}"; } >"$dir/$name"
}
for f in "${configs[@]}"; do
  seed config_fuzz "$f"
  # count, then (kind, selector lo/hi, knob, value) x 3: set a knob, insert a cache, remove.
  seed rewrite_fuzz "$f" '\x02\x00\x01\x00\x00\x04\x01\x02\x00\x00\x00\x02\x01\x00\x00\x00'
  seed rewrite_fuzz "$f" '\x00\x00\x03\x00\x01\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'
done
for f in "${traces[@]}"; do seed trace_fuzz "$f"; done

status=0
for t in "${TARGETS[@]}"; do
  crashes="$BUILD_DIR/crashes/$t"
  mkdir -p "$crashes"
  log="$BUILD_DIR/$t.log"
  max_len=16384
  if [ "$t" = trace_fuzz ]; then max_len=131072; fi
  echo "== $t for $SECONDS_PER_TARGET s"
  if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1 \
    "$BUILD_DIR/fuzz/$t" "$BUILD_DIR/corpus/$t" -dict=fuzz/json.dict -max_len=$max_len \
      -timeout=10 -rss_limit_mb=2048 -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 \
      -artifact_prefix="$crashes/" >"$log" 2>&1; then
    status=1
    echo "fuzz: $t FAILED; the input is in $crashes/, the log in $log" >&2
    grep -E "ERROR|SUMMARY|rewrite_fuzz:|deadly signal" "$log" | head -20 >&2 || true
  fi
  # A crashed run prints no "Done" line; its figures stay "?".
  runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1 || true)
  secs=$(grep -E '^Done [0-9]+ runs in' "$log" | awk '{print $5}' | tail -1 || true)
  corpus=$(find "$BUILD_DIR/corpus/$t" -type f | wc -l)
  echo "fuzz: $t: ${runs:-?} executions in ${secs:-$SECONDS_PER_TARGET} s, corpus $corpus inputs, crashes $(find "$crashes" -type f | wc -l)"
done
exit $status
