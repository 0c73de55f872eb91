// The shared harness of the C++ tests: a fresh temporary directory per test (TempDir and the
// TempDirTest fixture) and one child-process runner (StartProcess, RunProcess, RunShell) that
// captures a child's output, exit status and peak resident memory.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "tests/common/files.h"

namespace sluice::test_util {

// A fresh, empty directory under the system's temporary directory, named
// `<prefix>_<pid>_<serial>` so that parallel test processes and repeated tests never share one;
// removed with everything in it when destroyed.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "sluice_test") {
    static std::atomic<int> serial{0};
    path_ = std::filesystem::temp_directory_path() /
            (std::string(prefix) + "_" + std::to_string(::getpid()) + "_" +
             std::to_string(serial.fetch_add(1)));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;  // a test may have made part of it unremovable; never throw here
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::filesystem::path& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Fixture: a fresh TempDir per test, as `dir_`, named after the test suite. A fixture that
// derives from it and overrides SetUp calls TempDirTest::SetUp() first.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string prefix = "sluice_" + std::string(info != nullptr ? info->test_suite_name() : "");
    std::replace(prefix.begin(), prefix.end(), '/', '_');  // parameterized suites
    temp_.emplace(prefix);
    dir_ = temp_->path();
  }
  void TearDown() override { temp_.reset(); }

  // The names of the entries of the test's directory, sorted.
  std::vector<std::string> DirEntries() const { return SortedEntries(dir_); }

  std::filesystem::path dir_;

 private:
  std::optional<TempDir> temp_;
};

// --- child processes -------------------------------------------------------------------------

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

// A running child started by StartProcess. Wait() reaps it (once); a child never waited for is
// killed and reaped when this object goes, so that a failed assertion leaves no process behind.
class ChildProcess {
 public:
  ChildProcess(pid_t pid, std::filesystem::path out_path, std::filesystem::path err_path,
               ProcessOptions options)
      : pid_(pid),
        out_path_(std::move(out_path)),
        err_path_(std::move(err_path)),
        options_(std::move(options)) {}
  ChildProcess(ChildProcess&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)),
        out_path_(std::move(other.out_path_)),
        err_path_(std::move(other.err_path_)),
        options_(std::move(other.options_)) {}
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ChildProcess& operator=(ChildProcess&&) = delete;
  ~ChildProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
  }

  pid_t pid() const { return pid_; }

  // Sends `signal` to the child.
  void Kill(int signal) const {
    if (pid_ > 0) ::kill(pid_, signal);
  }

  // Waits for the child to end (killing it after options.kill_after_seconds, when set); returns
  // its status, output and peak memory.
  ProcessResult Wait() {
    ProcessResult r;
    if (pid_ <= 0) return r;
    const auto start = std::chrono::steady_clock::now();
    bool killed = false;
    for (;;) {
      rusage usage{};
      const pid_t done = ::wait4(pid_, &r.status, WNOHANG, &usage);
      if (done == pid_ || done < 0) {
        r.peak_rss_bytes = static_cast<int64_t>(usage.ru_maxrss) * 1024;
        break;
      }
      if (options_.sample_threads) r.max_threads = std::max(r.max_threads, ThreadsOf(pid_));
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!killed && options_.kill_after_seconds >= 0 && elapsed >= options_.kill_after_seconds) {
        ::kill(pid_, SIGKILL);
        killed = true;
      }
      std::this_thread::sleep_for(
          std::chrono::milliseconds(options_.kill_after_seconds >= 0 ? 1 : 10));
    }
    pid_ = -1;
    r.out = ReadFile(out_path_);
    r.err = ReadFile(err_path_);
    std::filesystem::remove(out_path_);
    std::filesystem::remove(err_path_);
    return r;
  }

 private:
  pid_t pid_;
  std::filesystem::path out_path_;
  std::filesystem::path err_path_;
  ProcessOptions options_;
};

// Starts argv[0] (a path) with argv; its stdout and stderr go to files in `scratch`.
inline ChildProcess StartProcess(const std::vector<std::string>& argv,
                                 const std::filesystem::path& scratch,
                                 const ProcessOptions& opt = {}) {
  static std::atomic<int> serial{0};
  const std::string tag = std::to_string(::getpid()) + "_" + std::to_string(serial.fetch_add(1));
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
  return ChildProcess(pid, out_path, err_path, opt);
}

// Runs argv[0] (a path) with argv to its end; stdout and stderr go through files in `scratch`.
inline ProcessResult RunProcess(const std::vector<std::string>& argv,
                                const std::filesystem::path& scratch,
                                const ProcessOptions& opt = {}) {
  return StartProcess(argv, scratch, opt).Wait();
}

// Runs `command` with /bin/sh -c (for pipelines, quoting and redirections written as a shell
// line), capturing what it does not redirect itself.
inline ProcessResult RunShell(const std::string& command, const std::filesystem::path& scratch,
                              const ProcessOptions& opt = {}) {
  return RunProcess({"/bin/sh", "-c", command}, scratch, opt);
}

}  // namespace sluice::test_util
