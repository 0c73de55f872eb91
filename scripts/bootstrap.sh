#!/usr/bin/env bash
# Installs the Debian packages sluice needs that are missing, then configures and builds it.
# Environment: BUILD_DIR (default build), BUILD_TYPE (default Release), CMAKE_ARGS (extra
# arguments for cmake, e.g. -DSLUICE_SANITIZE=thread), BUILD_TARGETS (build only these).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git clang-format
  nlohmann-json3-dev libeigen3-dev libfmt-dev libglpk-dev libclang-dev
  libturbojpeg0-dev libjpeg62-turbo-dev libstb-dev libopencv-imgproc-dev libcli11-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  libxml2-dev chromium
  pybind11-dev python3-dev libdlpack-dev python3-pytest python3-pil  # python/ package and its tests
  clang libclang-rt-14-dev  # libFuzzer for scripts/fuzz.sh
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Release}
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" ${CMAKE_ARGS:-} >/dev/null
# shellcheck disable=SC2086
cmake --build "$BUILD_DIR" -j "$(nproc)" ${BUILD_TARGETS:+--target $BUILD_TARGETS}
echo "bootstrap: built $BUILD_DIR ($BUILD_TYPE); the CLI is $BUILD_DIR/bin/sluice"
