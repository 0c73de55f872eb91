// The object the tests' shared precompiled header is built with (cmake/SluiceHelpers.cmake,
// _sluice_test_pch); the header itself is CMake's, from the list there.
namespace sluice::test_util {
int pch_anchor = 0;
}  // namespace sluice::test_util
