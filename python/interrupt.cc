#include "interrupt.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <mutex>
#include <thread>

namespace sluice::python {
namespace {

pthread_t g_main_thread;
bool g_main_known = false;

// The watcher: the signal handler writes a byte to the pipe; the thread reading it stops the
// pipeline being waited on. g_mu orders Stop() against the watch ending.
int g_pipe[2] = {-1, -1};
std::mutex g_mu;
pipeline::Pipeline* g_target = nullptr;  // guarded by g_mu
struct sigaction g_python_handler {};    // set while a watch is active

void WatcherLoop() {
  char byte;
  for (;;) {
    const ssize_t n = ::read(g_pipe[0], &byte, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    std::lock_guard lock(g_mu);
    if (g_target != nullptr) g_target->Stop();
  }
}

bool StartWatcher() {
  static const bool started = [] {
    if (::pipe2(g_pipe, O_CLOEXEC) != 0) return false;
    ::fcntl(g_pipe[1], F_SETFL, O_NONBLOCK);  // a full pipe never blocks the handler
    std::thread(WatcherLoop).detach();
    return true;
  }();
  return started;
}

// Async-signal-safe: a write, then Python's own handler.
void OnSigint(int sig, siginfo_t* info, void* context) {
  const int saved = errno;
  const char byte = 1;
  [[maybe_unused]] ssize_t n = ::write(g_pipe[1], &byte, 1);
  if ((g_python_handler.sa_flags & SA_SIGINFO) != 0) {
    g_python_handler.sa_sigaction(sig, info, context);
  } else {
    g_python_handler.sa_handler(sig);
  }
  errno = saved;
}

}  // namespace

void SigintWatch::SetMainThread() {
  g_main_thread = ::pthread_self();
  g_main_known = true;
}

SigintWatch::SigintWatch(pipeline::Pipeline* pipeline) {
  if (!g_main_known || !::pthread_equal(::pthread_self(), g_main_thread)) return;
  struct sigaction current {};
  if (::sigaction(SIGINT, nullptr, &current) != 0) return;
  // Default or ignored: nothing of Python's to run in front of.
  const bool has_handler = (current.sa_flags & SA_SIGINFO) != 0 ||
                           (current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN);
  if (!has_handler || !StartWatcher()) return;
  {
    std::lock_guard lock(g_mu);
    g_target = pipeline;
  }
  g_python_handler = current;
  struct sigaction ours {};
  ours.sa_sigaction = OnSigint;
  ours.sa_flags = SA_SIGINFO | (current.sa_flags & SA_ONSTACK);
  ours.sa_mask = current.sa_mask;
  active_ = ::sigaction(SIGINT, &ours, nullptr) == 0;
  if (!active_) {
    std::lock_guard lock(g_mu);
    g_target = nullptr;
  }
}

SigintWatch::~SigintWatch() {
  if (!active_) return;
  ::sigaction(SIGINT, &g_python_handler, nullptr);
  std::lock_guard lock(g_mu);  // waits for a Stop() in progress
  g_target = nullptr;
}

}  // namespace sluice::python
