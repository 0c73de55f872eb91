#!/usr/bin/env bash
# Installs the Debian packages the command at hand needs that are missing, then configures and
# builds sluice. One line per step; apt's output goes to BUILD_DIR/bootstrap-apt.log.
# Environment:
#   BOOTSTRAP_FOR  what the packages are for: "demo" (build and run the example: no test tools,
#                  no browser), "test" (default: every test, the report's browser test, fuzzing,
#                  the Python package's tests and the torch example), "torch" (demo + torch)
#   BUILD_DIR (default build), BUILD_TYPE (default Release), CMAKE_ARGS (extra arguments for
#   cmake, e.g. -DSLUICE_SANITIZE=thread), BUILD_TARGETS (build only these).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BOOTSTRAP_FOR=${BOOTSTRAP_FOR:-test}
BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Release}

BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  nlohmann-json3-dev libeigen3-dev libfmt-dev libglpk-dev libclang-dev libxml2-dev
  libturbojpeg0-dev libjpeg62-turbo-dev libstb-dev libopencv-imgproc-dev libcli11-dev
  pybind11-dev python3-dev libdlpack-dev  # the Python package
)
TORCH_PACKAGES=(python3-torch python3-torchvision)
TEST_PACKAGES=(
  clang-format googletest libgtest-dev libgmock-dev libbenchmark-dev
  chromium                             # the report's browser test
  python3-pytest python3-pil           # the Python package's tests
  clang libclang-rt-14-dev             # libFuzzer for scripts/fuzz.sh
  clang-14                             # .ci/run's thread-safety build (clang is clang-14 here)
  dpkg-dev                             # dpkg-shlibdeps for the .deb
)
case "$BOOTSTRAP_FOR" in
  demo) PACKAGES=("${BUILD_PACKAGES[@]}") ;;
  torch) PACKAGES=("${BUILD_PACKAGES[@]}" "${TORCH_PACKAGES[@]}") ;;
  test) PACKAGES=("${BUILD_PACKAGES[@]}" "${TORCH_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
  *) echo "bootstrap: BOOTSTRAP_FOR must be demo, torch or test, got '$BOOTSTRAP_FOR'" >&2; exit 2 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
mkdir -p "$BUILD_DIR"
LOG="$BUILD_DIR/bootstrap-apt.log"
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${#missing[@]} Debian packages for '$BOOTSTRAP_FOR' (apt's output: $LOG)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  if ! { $SUDO apt-get update -q &&
         DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
           "${missing[@]}"; } >"$LOG" 2>&1; then
    echo "bootstrap: apt-get failed; the last lines of $LOG:" >&2
    tail -n 20 "$LOG" >&2
    exit 1
  fi
fi

echo "bootstrap: configuring $BUILD_DIR ($BUILD_TYPE)"
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" ${CMAKE_ARGS:-} >/dev/null
echo "bootstrap: building $BUILD_DIR"
# shellcheck disable=SC2086
cmake --build "$BUILD_DIR" -j "$(nproc)" ${BUILD_TARGETS:+--target $BUILD_TARGETS}
echo "bootstrap: built $BUILD_DIR ($BUILD_TYPE); the CLI is $BUILD_DIR/bin/sluice"
