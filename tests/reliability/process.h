// Test helper: runs a program in a child process with optional environment, resource limits and
// a kill timer, capturing its output, exit status and peak resident memory.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/common/files.h"

namespace sluice::testing {

struct ProcessResult {
  int status = 0;  // the wait status
  std::string out;
  std::string err;
  int64_t peak_rss_bytes = 0;  // getrusage's ru_maxrss of the child
  int max_threads = 0;         // most threads seen in /proc/PID/status while it ran

  bool exited_ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
  int signal() const { return WIFSIGNALED(status) ? WTERMSIG(status) : 0; }
};

struct ProcessOptions {
  std::vector<std::pair<std::string, std::string>> env;  // set in the child
  std::function<void()> in_child;  // runs in the child before exec (set limits, signals)
  double kill_after_seconds = -1;  // SIGKILL the child after this long (-1: never)
  bool sample_threads = false;     // poll /proc/PID/status for the thread count
};

inline int ThreadsOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return 0;
}

// Runs argv[0] (a path) with argv; stdout and stderr go through files in `scratch`.
inline ProcessResult RunProcess(const std::vector<std::string>& argv,
                                const std::filesystem::path& scratch,
                                const ProcessOptions& opt = {}) {
  static int serial = 0;
  const std::string tag = std::to_string(::getpid()) + "_" + std::to_string(serial++);
  const std::filesystem::path out_path = scratch / ("stdout_" + tag);
  const std::filesystem::path err_path = scratch / ("stderr_" + tag);
  const pid_t pid = ::fork();
  if (pid == 0) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0) ::_exit(126);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    for (const auto& [k, v] : opt.env) ::setenv(k.c_str(), v.c_str(), 1);
    if (opt.in_child) opt.in_child();
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ProcessResult r;
  const auto start = std::chrono::steady_clock::now();
  bool killed = false;
  for (;;) {
    rusage usage{};
    const pid_t done = ::wait4(pid, &r.status, WNOHANG, &usage);
    if (done == pid) {
      r.peak_rss_bytes = static_cast<int64_t>(usage.ru_maxrss) * 1024;
      break;
    }
    if (opt.sample_threads) r.max_threads = std::max(r.max_threads, ThreadsOf(pid));
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!killed && opt.kill_after_seconds >= 0 && elapsed >= opt.kill_after_seconds) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(opt.kill_after_seconds >= 0 ? 1 : 10));
  }
  r.out = test_util::ReadFile(out_path);
  r.err = test_util::ReadFile(err_path);
  std::filesystem::remove(out_path);
  std::filesystem::remove(err_path);
  return r;
}

}  // namespace sluice::testing
