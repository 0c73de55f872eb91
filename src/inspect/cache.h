// The inspector's cache under BUILD_DIR/.sluice-inspect-cache/ (where the precompiled system
// headers are kept too, prelude.h): one JSON entry per key, valid
// while every file it was made from, and the inspector's own binary, keep their modification
// times. A missing, torn, foreign or
// stale entry reads as absent, so the caller parses again and rewrites it.
#pragma once

#include <climits>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

namespace sluice::inspect::internal {

// A file's modification time in the file clock's ticks, or kNoTime when it cannot be read.
inline constexpr int64_t kNoTime = INT64_MIN;
int64_t MTime(const std::string& file);

class Cache {
 public:
  explicit Cache(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // The entry stored under `key`, when it is readable, of this version, and every file it was
  // made from still has the time recorded; nullopt otherwise.
  std::optional<nlohmann::json> Read(const std::string& key) const;
  // Stores `entry` under `key`, made from `sources` (their times are recorded now). Does nothing
  // when the directory cannot be written: the next run parses again.
  void Write(const std::string& key, nlohmann::json entry,
             const std::set<std::string>& sources) const;

  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path PathOf(const std::string& key) const;
  std::filesystem::path dir_;
};

}  // namespace sluice::inspect::internal
