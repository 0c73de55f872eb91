#!/usr/bin/env bash
# Soak: random pipeline configs (ops, knobs, sizes) through run -> profile -> tune -> apply ->
# run again, for MINUTES (default 10), with the build in BUILD_DIR (default build-rel-asan).
# Every run goes through soak_check, which fails when an element is dropped or duplicated, or
# arrives out of order where the config keeps order. Any crash, sanitizer report or check
# failure fails the soak; the config is kept in BUILD_DIR/soak/failed-N.json.
#
#   scripts/soak.sh [MINUTES] [BUILD_DIR]
#
# A BUILD_DIR that does not exist yet is configured: a name containing "asan" builds with
# ASan+UBSan, "tsan" with TSan. SEED (default: the time) makes the configs reproducible.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MINUTES=${1:-10}
BUILD_DIR=${2:-build-rel-asan}
SEED=${SEED:-$(date +%s)}
RANDOM=$SEED

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  sanitize=""
  case "$BUILD_DIR" in
    *asan*) sanitize="-DSLUICE_SANITIZE=address,undefined" ;;
    *tsan*) sanitize="-DSLUICE_SANITIZE=thread" ;;
  esac
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $sanitize \
    -DSLUICE_BUILD_BENCH=OFF -DSLUICE_BUILD_EXAMPLES=OFF -DSLUICE_BUILD_CUDA_EXAMPLES=OFF >/dev/null
fi
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target sluice soak_check
SLUICE="$BUILD_DIR/bin/sluice"
CHECK="$BUILD_DIR/tests/soak_check"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
WORK="$BUILD_DIR/soak"
rm -rf "$WORK"
mkdir -p "$WORK"

pick() { echo $((RANDOM % ($2 - $1 + 1) + $1)); }

# Writes a random config to $1.
random_config() {
  local count bytes epochs n stages="" i op name par buf det cache_at
  count=$(pick 1 3000)
  bytes=$(pick 1 4096)
  epochs=$(pick 1 3)
  n=$(pick 1 4)
  cache_at=$(( $(pick 0 2) == 0 ? $(pick 1 n) : 0 ))  # a cache after map stage k, a third of the time
  stages="{\"name\": \"src\", \"op\": \"generate\", \"args\": {\"count\": $count, \"bytes\": $bytes}}"
  for ((i = 1; i <= n; i++)); do
    name="m$i"
    if [ $((RANDOM % 2)) -eq 0 ]; then
      op="\"op\": \"burn\", \"args\": {\"cpu_us\": $(pick 0 300)}"
    else
      op="\"op\": \"sleep\", \"args\": {\"us\": $(pick 0 200)}"
    fi
    par=$(pick 1 4)
    buf=$(pick 0 8)
    det=""
    if [ "$par" -gt 1 ] && [ $((RANDOM % 3)) -eq 0 ]; then
      det=", \"deterministic\": false, \"allow_reorder\": true"
    fi
    stages+=", {\"name\": \"$name\", $op, \"parallelism\": $par, \"buffer_size\": $buf$det}"
    if [ "$i" -eq "$cache_at" ]; then stages+=", {\"name\": \"cache\", \"op\": \"cache\"}"; fi
  done
  if [ $((RANDOM % 2)) -eq 0 ]; then
    stages+=", {\"name\": \"batch\", \"op\": \"batch\", \"args\": {\"size\": $(pick 1 64)}}"
  fi
  if [ $((RANDOM % 2)) -eq 0 ]; then
    stages+=", {\"name\": \"prefetch\", \"op\": \"prefetch\", \"buffer_size\": $(pick 1 4)}"
  fi
  printf '{"name": "soak", "epochs": %d, "stages": [%s]}\n' "$epochs" "$stages" >"$1"
}

fail() {  # fail CONFIG STEP LOG
  failures=$((failures + 1))
  cp "$1" "$WORK/failed-$failures.json"
  echo "soak: FAILED at $2 for $WORK/failed-$failures.json:" >&2
  tail -20 "$3" >&2
}

start=$(date +%s)
deadline=$((start + MINUTES * 60))
configs=0 failures=0 tuned=0 declined=0 checked_order=0
while [ "$(date +%s)" -lt "$deadline" ]; do
  configs=$((configs + 1))
  dir="$WORK/c$configs"
  mkdir -p "$dir"
  cfg="$dir/pipeline.json"
  random_config "$cfg"
  log="$dir/log"
  if ! "$CHECK" "$cfg" >"$log" 2>&1; then fail "$cfg" "soak_check" "$log"; continue; fi
  grep -q "order checked" "$log" && checked_order=$((checked_order + 1))
  if ! "$SLUICE" run "$cfg" --json >>"$log" 2>&1; then fail "$cfg" "run" "$log"; continue; fi
  if ! "$SLUICE" profile "$cfg" --seconds 1 --interval-ms 50 --out "$dir/prof" >>"$log" 2>&1; then
    fail "$cfg" "profile" "$log"
    continue
  fi
  set +e
  "$SLUICE" tune "$dir/prof/trace.json" -o "$dir/tuned.json" >>"$log" 2>&1
  rc=$?
  set -e
  if [ $rc -eq 1 ] && grep -q "^sluice: " "$log" && ! grep -q "internal error" "$log"; then
    declined=$((declined + 1))  # a clear refusal (e.g. too little data) is an answer
  elif [ $rc -ne 0 ]; then
    fail "$cfg" "tune" "$log"
    continue
  else
    if ! "$SLUICE" apply "$dir/tuned.json" --to "$cfg" >>"$log" 2>&1; then
      fail "$cfg" "apply" "$log"
      continue
    fi
    if ! "$CHECK" "$cfg" >>"$log" 2>&1; then fail "$cfg" "soak_check after apply" "$log"; continue; fi
    tuned=$((tuned + 1))
  fi
  rm -rf "$dir"
done
elapsed=$(($(date +%s) - start))
echo "soak: $BUILD_DIR seed $SEED: $configs configs in $elapsed s ($tuned tuned and re-checked," \
  "$declined declined by tune, $checked_order with order checked), $failures failures"
[ "$failures" -eq 0 ]
