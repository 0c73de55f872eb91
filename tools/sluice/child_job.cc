// Supervision of the job `sluice profile` traces: fork and exec with a progress pipe, the
// progress lines its tracer writes, and the stop (SIGTERM, then SIGKILL after 10 s).
#include "tools/sluice/child_job.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/tracer/progress.h"

namespace sluice::cli {
namespace {

// A job asked to stop gets this long to write its trace before SIGKILL.
constexpr int64_t kKillAfterNanos = 10'000'000'000;

// Forks and execs the job; returns its pid with the read end of the progress pipe in `progress`.
pid_t Start(const ChildJobOptions& options, int& progress) {
  int pipe_fds[2];
  int exec_error[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0 || ::pipe2(exec_error, O_CLOEXEC) != 0) {
    Fail("pipe: {}", std::strerror(errno));
  }
  const pid_t child = ::fork();
  if (child < 0) Fail("fork: {}", std::strerror(errno));
  if (child == 0) {
    // The progress pipe's write end must survive exec; everything else is close-on-exec.
    int fd = ::dup(pipe_fds[1]);
    for (const auto& [name, value] : options.env) ::setenv(name.c_str(), value.c_str(), 1);
    ::setenv("SLUICE_TRACE_PROGRESS_FD", fmt::format("{}", fd).c_str(), 1);
    std::vector<char*> argv;
    for (const std::string& a : options.args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    int err = errno;
    [[maybe_unused]] ssize_t n = ::write(exec_error[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  ::close(exec_error[1]);
  int err = 0;
  if (::read(exec_error[0], &err, sizeof err) == static_cast<ssize_t>(sizeof err)) {
    ::waitpid(child, nullptr, 0);
    Fail("cannot run '{}': {}", options.args[0], std::strerror(err));
  }
  ::close(exec_error[0]);
  progress = pipe_fds[0];
  return child;
}

// Reads what the progress pipe holds (closing it at its end) and handles each complete line.
void ReadProgress(int& progress, std::string& pending, const ChildJobOptions& options,
                  ChildJob& job) {
  pollfd pfd{progress, POLLIN, 0};
  if (::poll(&pfd, 1, 200) <= 0) return;
  char buf[4096];
  ssize_t n = ::read(progress, buf, sizeof buf);
  if (n > 0) pending.append(buf, static_cast<size_t>(n));
  size_t nl;
  while ((nl = pending.find('\n')) != std::string::npos) {
    const tracer::ProgressLine line = tracer::ParseProgressLine(pending.substr(0, nl));
    pending.erase(0, nl + 1);
    job.tracer_heard = true;
    if (line.kind == tracer::ProgressLine::Kind::kProgress && options.show_progress) {
      const std::string window =
          options.seconds > 0 ? fmt::format("/{:.0f}", options.seconds) : std::string();
      fmt::print(stderr, "\r  {:.1f}{} s  {} outputs  {:.1f} outputs/s   ", line.seconds, window,
                 line.outputs, line.outputs_per_s);
    } else if (line.kind == tracer::ProgressLine::Kind::kDone) {
      job.done_reason = line.reason;
    }
  }
  if (n == 0) ::close(std::exchange(progress, -1));
}

}  // namespace

ChildJob RunChildJob(const ChildJobOptions& options) {
  int progress = -1;
  const pid_t child = Start(options, progress);
  // Ctrl-C reaches the job too (same process group); sluice waits for it to write its trace.
  auto previous_int = std::signal(SIGINT, SIG_IGN);
  ChildJob job;
  std::string pending;
  bool kill_sent = false;
  int64_t stop_at = 0;
  job.start_ns = MonotonicNanos();
  // If the tracer never reports the end (it was never loaded), stop waiting after the window.
  // With seconds 0 the whole job is traced: it is never stopped.
  const int64_t give_up = options.seconds > 0
                              ? job.start_ns + static_cast<int64_t>((options.seconds + 30) * 1e9)
                              : INT64_MAX;
  while (!job.exited) {
    ReadProgress(progress, pending, options, job);
    if (::waitpid(child, &job.status, WNOHANG) == child) {
      job.exited = true;
      break;
    }
    const int64_t now = MonotonicNanos();
    if (!job.stop_sent && !options.keep_running &&
        (job.done_reason == "window elapsed" || now >= give_up)) {
      ::kill(child, SIGTERM);
      job.stop_sent = true;
      stop_at = now;
    }
    if (job.stop_sent && !kill_sent && now - stop_at > kKillAfterNanos) {
      ::kill(child, SIGKILL);
      kill_sent = true;
    }
    if (options.keep_running && !job.done_reason.empty()) break;
  }
  if (progress >= 0) ::close(progress);
  std::signal(SIGINT, previous_int);
  if (options.show_progress) fmt::print(stderr, "\r\033[K");
  return job;
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return fmt::format("was killed by SIG{} ({})", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
                       strsignal(sig));
  }
  return fmt::format("ended with status {}", status);
}

}  // namespace sluice::cli
