#!/usr/bin/env bash
# Builds the Debian package from a build directory with cpack and checks what it holds: the CLI,
# the shared libraries (SONAME links included), the public headers, the CMake package, the
# pkg-config file and, when it was built, the Python package; and its control fields.
#
#   deb_test.sh CPACK BUILD_DIR VERSION BINDIR LIBDIR INCLUDEDIR PYTHON_DIR
#     (the directories relative to the package's /usr; PYTHON_DIR empty: no Python package)
set -euo pipefail

cpack=$1 build=$2 version=$3 bindir=$4 libdir=$5 includedir=$6 python_dir=${7:-}

fail() {
  echo "deb_test: FAIL: $*" >&2
  exit 1
}

command -v dpkg-deb >/dev/null || fail "dpkg-deb not found"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-deb-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! "$cpack" --config "$build/CPackConfig.cmake" -G DEB -B "$tmp" >"$tmp/cpack.log" 2>&1; then
  cat "$tmp/cpack.log" >&2
  fail "cpack -G DEB failed"
fi
debs=("$tmp"/*.deb)
if [ ${#debs[@]} -ne 1 ] || [ ! -f "${debs[0]}" ]; then
  fail "expected one .deb in $tmp, found: ${debs[*]}"
fi
deb=${debs[0]}

dpkg-deb -c "$deb" >"$tmp/contents" || fail "dpkg-deb -c $deb failed"
# dpkg-deb -c lists "./usr/bin/sluice" or, for a symbolic link, "./usr/lib/x.so.0 -> x.so.0.1.0".
expect() {
  grep -q -E " \./usr/$1( -> .*)?\$" "$tmp/contents" ||
    fail "$(basename "$deb") lacks /usr/$1; it holds:
$(awk '{print $6, $7, $8}' "$tmp/contents")"
}
expect "$bindir/sluice"
for lib in pipeline tracer; do
  expect "$libdir/libsluice_$lib\\.so\\.$version"
  expect "$libdir/libsluice_$lib\\.so\\.${version%%.*}"
  expect "$libdir/libsluice_$lib\\.so"
done
expect "$libdir/libsluice_config\\.a"
expect "$libdir/libsluice_common\\.a"
expect "$includedir/sluice/pipeline/pipeline\\.h"
expect "$includedir/sluice/pipeline/export\\.h"
expect "$includedir/sluice/tracer/tracer\\.h"
expect "$libdir/cmake/sluice/sluiceConfig\\.cmake"
expect "$libdir/cmake/sluice/sluiceConfigVersion\\.cmake"
expect "$libdir/cmake/sluice/sluiceTargets\\.cmake"
expect "$libdir/pkgconfig/sluice\\.pc"
if [ -n "$python_dir" ]; then
  expect "$python_dir/sluice/__init__\\.py"
  expect "$python_dir/sluice/_sluice\\..*\\.so"
fi
# No test hook in a public header.
if grep -q -E "/usr/$includedir/sluice/.*testing" "$tmp/contents"; then
  fail "a test header is installed: $(grep testing "$tmp/contents")"
fi

for field in Package Version Maintainer Depends; do
  value=$(dpkg-deb -f "$deb" "$field") || fail "dpkg-deb -f $deb $field failed"
  [ -n "$value" ] || fail "the package has no $field field"
done
[ "$(dpkg-deb -f "$deb" Package)" = sluice ] || fail "Package is not sluice"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "Version is not $version"
echo "deb_test: $(basename "$deb"): $(wc -l <"$tmp/contents") entries; Depends: $(dpkg-deb -f "$deb" Depends)"
