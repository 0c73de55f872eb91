// Readers of /proc files and host facts.
#include "tracer/proc_stats.h"

#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

namespace sluice::tracer::internal {
namespace {

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The value after "key:" on its line of a "key: value" file, or -1.
int64_t FieldOf(const std::string& text, std::string_view key) {
  size_t at = 0;
  while ((at = text.find(key, at)) != std::string::npos) {
    if ((at == 0 || text[at - 1] == '\n') && text.compare(at + key.size(), 1, ":") == 0) {
      return std::strtoll(text.c_str() + at + key.size() + 1, nullptr, 10);
    }
    at += key.size();
  }
  return -1;
}

}  // namespace

std::optional<HostCpuTicks> ReadHostCpuTicks() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  uint64_t v[10] = {};
  if (!(in >> cpu) || cpu != "cpu") return std::nullopt;
  for (uint64_t& x : v) in >> x;
  // user nice system idle iowait irq softirq steal guest guest_nice; guests are inside user.
  HostCpuTicks t;
  uint64_t idle = v[3] + v[4];
  t.total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
  t.busy = t.total - idle;
  return t;
}

int64_t ReadRssBytes() {
  std::ifstream in("/proc/self/statm");
  int64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return -1;
  return resident * sysconf(_SC_PAGESIZE);
}

int64_t ReadStorageBytesRead() { return FieldOf(ReadSmallFile("/proc/self/io"), "read_bytes"); }

std::optional<ThreadCounters> ReadThreadCounters(int tid) {
  std::string status = ReadSmallFile(fmt::format("/proc/self/task/{}/status", tid));
  if (status.empty()) return std::nullopt;
  ThreadCounters c;
  c.voluntary_switches = FieldOf(status, "voluntary_ctxt_switches");
  c.involuntary_switches = FieldOf(status, "nonvoluntary_ctxt_switches");
  std::string stat = ReadSmallFile(fmt::format("/proc/self/task/{}/stat", tid));
  // Fields after the command name, which is in parentheses and may hold spaces: state is field
  // 3, minflt 10 and majflt 12 (proc(5)).
  size_t close = stat.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(stat.substr(close + 2));
    std::string f[10];
    for (std::string& x : f) rest >> x;
    c.minor_faults = std::strtoll(f[7].c_str(), nullptr, 10);
    c.major_faults = std::strtoll(f[9].c_str(), nullptr, 10);
  }
  return c;
}

trace::HostInfo ReadHostInfo() {
  trace::HostInfo h;
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) == 0) h.hostname = name;
  utsname u{};
  if (uname(&u) == 0) h.os = fmt::format("{} {}", u.sysname, u.release);
  std::string os_release = ReadSmallFile("/etc/os-release");
  if (size_t at = os_release.find("PRETTY_NAME=\""); at != std::string::npos) {
    size_t end = os_release.find('"', at + 13);
    h.os += fmt::format(" ({})", os_release.substr(at + 13, end - at - 13));
  }
  std::string cpuinfo = ReadSmallFile("/proc/cpuinfo");
  if (size_t at = cpuinfo.find("model name"); at != std::string::npos) {
    size_t colon = cpuinfo.find(':', at);
    size_t end = cpuinfo.find('\n', at);
    if (colon != std::string::npos && colon < end)
      h.cpu_model = cpuinfo.substr(colon + 2, end - colon - 2);
  }
  cpu_set_t set;
  h.cores = sched_getaffinity(0, sizeof set, &set) == 0
                ? CPU_COUNT(&set)
                : static_cast<int>(std::thread::hardware_concurrency());
  h.memory_bytes = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  return h;
}

std::vector<std::string> ReadCommandLine() {
  std::string raw = ReadSmallFile("/proc/self/cmdline");
  std::vector<std::string> args;
  size_t start = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\0') {
      args.push_back(raw.substr(start, i - start));
      start = i + 1;
    }
  }
  return args;
}

}  // namespace sluice::tracer::internal
