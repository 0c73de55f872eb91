// The simulated training loop.
#include "tools/sluice/consume.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

#include <fmt/format.h>

#include "sluice/common/clock.h"

namespace sluice::cli {
namespace {
std::atomic<bool> g_interrupted{false};
}

ConsumeResult Consume(pipeline::Pipeline& pipe, double seconds, double consumer_ms, bool progress) {
  g_interrupted = false;
  auto previous = std::signal(SIGINT, [](int) { g_interrupted = true; });
  ConsumeResult r;
  const int64_t start = MonotonicNanos();
  const int64_t deadline = seconds > 0 ? start + static_cast<int64_t>(seconds * 1e9) : 0;
  const auto step = std::chrono::microseconds(static_cast<int64_t>(consumer_ms * 1000));
  int64_t next_progress = start + 1'000'000'000;
  pipeline::Element e;
  while (!g_interrupted) {
    if (deadline != 0 && MonotonicNanos() >= deadline) break;
    if (!pipe.Next(&e)) {
      r.ended = true;
      break;
    }
    ++r.outputs;
    if (step.count() > 0) std::this_thread::sleep_for(step);
    if (progress) {
      int64_t now = MonotonicNanos();
      if (now >= next_progress) {
        double secs = (now - start) * 1e-9;
        fmt::print(stderr, "\r  {:.0f} s  {} outputs  {:.1f} outputs/s   ", secs, r.outputs,
                   r.outputs / secs);
        next_progress = now + 1'000'000'000;
      }
    }
  }
  r.interrupted = g_interrupted;
  r.seconds = (MonotonicNanos() - start) * 1e-9;
  std::signal(SIGINT, previous);
  if (progress) fmt::print(stderr, "\r\033[K");
  return r;
}

}  // namespace sluice::cli
