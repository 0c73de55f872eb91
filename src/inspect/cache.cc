// The inspector's cache: JSON entries named by a hash of their key, stamped with the times of
// the files they were made from, written atomically.
#include "inspect/cache.h"

#include <dlfcn.h>

#include <fstream>
#include <functional>
#include <sstream>

#include <fmt/format.h>

#include "sluice/common/files.h"

namespace sluice::inspect::internal {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr int kVersion = 1;

// The file holding the inspector's code (its shared library, or the executable it is linked
// into): entries made by another build of it are stale, since the analysis may differ.
std::string AnalyzerBinary() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&MTime), &info) != 0 && info.dli_fname != nullptr) {
    std::error_code ec;
    const fs::path p = fs::canonical(info.dli_fname, ec);
    if (!ec) return p.string();
  }
  return fs::read_symlink("/proc/self/exe").string();
}

}  // namespace

int64_t MTime(const std::string& file) {
  std::error_code ec;
  const auto t = fs::last_write_time(file, ec);
  return ec ? kNoTime : static_cast<int64_t>(t.time_since_epoch().count());
}

fs::path Cache::PathOf(const std::string& key) const {
  return dir_ / fmt::format("{:016x}.json", std::hash<std::string>{}(key));
}

std::optional<Json> Cache::Read(const std::string& key) const {
  const fs::path path = PathOf(key);
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  try {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    Json j = Json::parse(text.str());
    if (j.at("version").get<int>() != kVersion || j.at("key").get<std::string>() != key) {
      return std::nullopt;
    }
    for (const auto& [file, time] : j.at("sources").items()) {
      if (MTime(file) != time.get<int64_t>()) return std::nullopt;
    }
    return j;
  } catch (const std::exception&) {
    return std::nullopt;  // torn or edited: parse again
  }
}

void Cache::Write(const std::string& key, Json entry, const std::set<std::string>& sources) const {
  entry["version"] = kVersion;
  entry["key"] = key;
  Json times = Json::object();
  for (const std::string& f : sources) times[f] = MTime(f);
  const std::string binary = AnalyzerBinary();
  times[binary] = MTime(binary);
  entry["sources"] = std::move(times);
  try {
    fs::create_directories(dir_);
    AtomicWriteOptions options;
    options.what = "the inspect cache";
    options.sync = false;  // a torn entry is detected and rebuilt
    WriteFileAtomically(PathOf(key), entry.dump(), options);
  } catch (const std::exception&) {
    // A read-only build directory: no cache, the next run parses again.
  }
}

}  // namespace sluice::inspect::internal
