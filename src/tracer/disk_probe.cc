// Disk read bandwidth: a short sequential read of the pipeline's own files, remembered per device.
#include "tracer/disk_probe.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/common/files.h"

namespace sluice::tracer::internal {
namespace {

namespace fs = std::filesystem;
constexpr double kCacheValidSeconds = 7 * 24 * 3600.0;

bool HasGlob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

// "major:minor" and, from /proc/self/mountinfo, the mount's source ("/dev/vda1").
std::string DeviceName(dev_t dev) {
  std::string id = fmt::format("{}:{}", major(dev), minor(dev));
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string mount_id, parent, majmin;
    f >> mount_id >> parent >> majmin;
    if (majmin != id) continue;
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) break;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype, source;
    tail >> fstype >> source;
    return fmt::format("{} {} ({})", id, source, fstype);
  }
  return id;
}

double NowUnix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Reads files of `dir` (largest first) sequentially, uncached as far as the kernel allows.
trace::DiskBandwidth Probe(const fs::path& dir, int64_t max_bytes, double max_seconds) {
  trace::DiskBandwidth d;
  d.path = dir.string();
  std::vector<std::pair<uintmax_t, fs::path>> files;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file(ec)) files.emplace_back(it->file_size(ec), it->path());
    if (files.size() >= 4096) break;
  }
  std::sort(files.begin(), files.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<char> buf(1 << 20);
  int64_t bytes = 0;
  int opened = 0;
  const int64_t start = MonotonicNanos();
  const auto deadline = start + static_cast<int64_t>(max_seconds * 1e9);
  for (const auto& [size, path] : files) {
    if (bytes >= max_bytes || MonotonicNanos() >= deadline) break;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ++opened;
    // Drop the file's clean pages so the read below reaches the device.
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    ssize_t n;
    while ((n = ::read(fd, buf.data(), buf.size())) > 0) {
      bytes += n;
      if (bytes >= max_bytes) break;
    }
    ::close(fd);
  }
  d.probe_seconds = (MonotonicNanos() - start) * 1e-9;
  d.probe_bytes = bytes;
  d.read_mb_per_s = d.probe_seconds > 0 ? bytes / d.probe_seconds / 1e6 : 0;
  d.method = fmt::format(
      "sequential read of {} files, largest first, after "
      "posix_fadvise(POSIX_FADV_DONTNEED)",
      opened);
  return d;
}

}  // namespace

std::vector<fs::path> DataDirectories(const std::string& config_text, const fs::path& config_path) {
  std::vector<fs::path> dirs;
  nlohmann::json doc = nlohmann::json::parse(config_text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("stages") || !doc["stages"].is_array()) return dirs;
  fs::path base = config_path.parent_path();
  for (const auto& stage : doc["stages"]) {
    if (!stage.is_object() || stage.value("op", "") != "list_files") continue;
    if (!stage.contains("args") || !stage["args"].is_object()) continue;
    const auto& pattern = stage["args"].value("pattern", "");
    if (pattern.empty()) continue;
    fs::path p = fs::path(pattern).is_absolute() ? fs::path(pattern) : base / pattern;
    fs::path dir;
    for (const fs::path& part : p) {
      if (HasGlob(part.string())) break;
      dir /= part;
    }
    if (dir == p) dir = p.parent_path();  // a pattern without wildcards names one file
    if (dir.empty()) dir = ".";
    std::error_code ec;
    fs::path absolute = fs::absolute(dir, ec);
    if (!ec) dir = absolute.lexically_normal();
    if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) dirs.push_back(dir);
  }
  return dirs;
}

fs::path DefaultCacheDir() {
  if (const char* d = std::getenv("SLUICE_CACHE_DIR"); d != nullptr && *d) return d;
  if (const char* d = std::getenv("XDG_CACHE_HOME"); d != nullptr && *d)
    return fs::path(d) / "sluice";
  if (const char* h = std::getenv("HOME"); h != nullptr && *h)
    return fs::path(h) / ".cache" / "sluice";
  return fs::temp_directory_path() / "sluice-cache";
}

std::vector<trace::DiskBandwidth> MeasureDisks(const std::vector<fs::path>& dirs,
                                               const fs::path& cache_dir, int64_t max_bytes,
                                               double max_seconds) {
  const fs::path cache_file = cache_dir / "disks.json";
  nlohmann::json cache = nlohmann::json::object();
  {
    std::ifstream in(cache_file);
    if (in) {
      cache = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
      if (!cache.is_object()) cache = nlohmann::json::object();
    }
  }
  std::vector<trace::DiskBandwidth> out;
  std::map<dev_t, bool> seen;
  bool changed = false;
  for (const fs::path& dir : dirs) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || seen[st.st_dev]) continue;
    seen[st.st_dev] = true;
    const std::string key = fmt::format("{}:{}", major(st.st_dev), minor(st.st_dev));
    const auto& entry = cache.contains(key) ? cache[key] : nlohmann::json();
    if (entry.is_object() && entry.value("read_mb_per_s", 0.0) > 0 &&
        NowUnix() - entry.value("measured_unix", 0.0) < kCacheValidSeconds) {
      trace::DiskBandwidth d;
      d.device = entry.value("device", key);
      d.path = entry.value("path", "");
      d.read_mb_per_s = entry.value("read_mb_per_s", 0.0);
      d.probe_bytes = entry.value("probe_bytes", int64_t{0});
      d.probe_seconds = entry.value("probe_seconds", 0.0);
      d.method = entry.value("method", "");
      d.cached = true;
      out.push_back(d);
      continue;
    }
    trace::DiskBandwidth d = Probe(dir, max_bytes, max_seconds);
    d.device = DeviceName(st.st_dev);
    if (d.probe_bytes > 0) {
      cache[key] = {{"device", d.device},
                    {"path", d.path},
                    {"read_mb_per_s", d.read_mb_per_s},
                    {"probe_bytes", d.probe_bytes},
                    {"probe_seconds", d.probe_seconds},
                    {"method", d.method},
                    {"measured_unix", NowUnix()}};
      changed = true;
    }
    out.push_back(d);
  }
  if (changed) {
    // Best effort: an unwritable cache only means measuring again next time.
    std::error_code ec;
    fs::create_directories(cache_dir, ec);
    try {
      WriteFileAtomically(cache_file, cache.dump(2) + "\n", "the disk bandwidth cache");
    } catch (const Error&) {
      // measured again next time
    }
  }
  return out;
}

}  // namespace sluice::tracer::internal
