#!/usr/bin/env bash
# Installs a build to a temporary prefix and uses it from outside the tree, as a user would.
#
#   install_test.sh cpp_job BUILD_DIR SOURCE_DIR MAKE_DATASET CMAKE CXX LIBDIR
#     builds examples/cpp_job against the prefix with find_package(sluice), and main.cc again
#     with `pkg-config sluice`; runs both on a small JPEG dataset and checks their counts; runs
#     the job once more with SLUICE_TRACE set, so the installed runtime loads the installed tracer.
#   install_test.sh python BUILD_DIR SOURCE_DIR MAKE_DATASET CMAKE PYTHON PYTHON_DIR
#     imports the installed Python package with PYTHONPATH=PREFIX/PYTHON_DIR and takes one batch;
#     exits 77 (skipped) when PYTHON_DIR is empty: the Python package was not built.
set -euo pipefail

mode=$1 build=$2 source=$3 make_dataset=$4 cmake=$5

fail() {
  echo "install_test ($mode): FAIL: $*" >&2
  exit 1
}

# Runs a command quietly; on failure prints its output and fails with `what`.
run() {
  local what=$1
  shift
  if ! "$@" >"$tmp/last.log" 2>&1; then
    cat "$tmp/last.log" >&2
    fail "$what: $*"
  fi
}

if [ "$mode" = python ] && [ -z "${7:-}" ]; then
  echo "install_test: the Python package was not built (SLUICE_BUILD_PYTHON, pybind11): skipped"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

run "installing the build" "$cmake" --install "$build" --prefix "$prefix"

# 24 JPEGs of 48 to 96 pixels a side; 3 batches of 8 once cropped to one size.
run "writing the dataset" "$make_dataset" "$tmp/data" --images 24 --min-side 48 --max-side 96 \
  --lines 0
cat >"$tmp/pipeline.json" <<'EOF'
{
  "name": "install_test",
  "epochs": 1,
  "stages": [
    {"name": "files", "op": "list_files", "args": {"pattern": "data/images/*.jpg"}},
    {"name": "read", "op": "read_file"},
    {"name": "decode", "op": "decode_jpeg"},
    {"name": "crop", "op": "random_resized_crop", "args": {"size": 32, "seed": 1}},
    {"name": "batch", "op": "batch", "args": {"size": 8}}
  ]
}
EOF
want="install_test: 3 outputs from 24 source elements"

# Runs a built job on the config and checks what it prints.
check_job() {
  local job=$1 out
  out=$("$job" "$tmp/pipeline.json" 2>&1) || fail "$job exited with $?: $out"
  [ "$out" = "$want" ] || fail "$job printed '$out', expected '$want'"
}

if [ "$mode" = cpp_job ]; then
  cxx=$6 libdir=$7
  # The CMake package, found through CMAKE_PREFIX_PATH alone.
  run "configuring examples/cpp_job against $prefix" "$cmake" -S "$source/examples/cpp_job" \
    -B "$tmp/job" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_BUILD_TYPE=Release
  grep -q "sluice 0\.[0-9.]*: $prefix/" "$tmp/last.log" ||
    fail "find_package(sluice) did not find the installed package under $prefix: $(cat "$tmp/last.log")"
  run "building examples/cpp_job" "$cmake" --build "$tmp/job"
  ldd "$tmp/job/cpp_job" | grep -q "libsluice_pipeline.so.0 => $prefix/$libdir/" ||
    fail "cpp_job does not load libsluice_pipeline from $prefix/$libdir: $(ldd "$tmp/job/cpp_job")"
  check_job "$tmp/job/cpp_job"

  # The pkg-config file.
  export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
  flags=$(pkg-config --cflags --libs sluice) || fail "pkg-config --cflags --libs sluice failed"
  case " $flags " in
    *" -lsluice_pipeline "*) ;;
    *) fail "pkg-config --libs sluice lacks -lsluice_pipeline: $flags" ;;
  esac
  # shellcheck disable=SC2086  # the flags are words
  run "compiling cpp_job with pkg-config's flags" "$cxx" -std=c++20 \
    "$source/examples/cpp_job/main.cc" -o "$tmp/job_pc" $flags -Wl,-rpath,"$prefix/$libdir"
  check_job "$tmp/job_pc"

  # The installed runtime loads the installed tracer (by its SONAME, next to itself).
  SLUICE_TRACE=$tmp/trace.json SLUICE_CACHE_DIR=$tmp/cache "$tmp/job/cpp_job" \
    "$tmp/pipeline.json" >"$tmp/traced.log" 2>&1 || fail "traced cpp_job failed: $(cat "$tmp/traced.log")"
  if grep -q "tracer could not be loaded\|no sluice_tracer_autostart" "$tmp/traced.log"; then
    fail "the installed runtime did not load the installed tracer: $(cat "$tmp/traced.log")"
  fi
  grep -q '"sluice-trace/2"' "$tmp/trace.json" 2>/dev/null ||
    fail "SLUICE_TRACE set but no trace was written by the installed tracer: $(cat "$tmp/traced.log")"
  echo "install_test: cpp_job built with find_package and pkg-config against $prefix: $want; traced"
elif [ "$mode" = python ]; then
  python=$6 python_dir=$prefix/$7
  [ -f "$python_dir/sluice/__init__.py" ] || fail "no $python_dir/sluice/__init__.py after install"
  # Relative paths in the config resolve against its directory; the items are torch tensors
  # when torch imports, else sluice.Tensor: both have a shape.
  out=$(cd "$tmp" && PYTHONPATH=$python_dir PYTHONDONTWRITEBYTECODE=1 "$python" -c '
import sys
import sluice
assert sluice.__file__.startswith(sys.argv[1]), sluice.__file__
with sluice.Pipeline(sys.argv[2]) as p:
    images = next(iter(p))[0]
print(tuple(images.shape), "torch" if sluice.have_torch() else "sluice.Tensor")
' "$python_dir" "$tmp/pipeline.json" 2>&1) || fail "importing the installed package failed: $out"
  case "$out" in
    "(8, 32, 32, 3) "*) ;;
    *) fail "the first batch is not 8 images of 32x32x3: $out" ;;
  esac
  echo "install_test: $python imports sluice from $python_dir; first batch $out"
else
  fail "unknown mode '$mode'"
fi
