// Test helper shared by the suites that check which files an operation leaves in a directory.
#pragma once

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace sluice::test_util {

// The names of the entries of `dir`, sorted.
inline std::vector<std::string> SortedEntries(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace sluice::test_util
