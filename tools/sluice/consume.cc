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

ConsumeResult Consume(pipeline::Pipeline& pipe, double seconds, double consumer_ms, bool progress,
                      double warmup_seconds) {
  g_interrupted = false;
  auto previous = std::signal(SIGINT, [](int) { g_interrupted = true; });
  ConsumeResult r;
  const int64_t start = MonotonicNanos();
  const int64_t deadline = seconds > 0 ? start + static_cast<int64_t>(seconds * 1e9) : 0;
  const auto step = std::chrono::microseconds(static_cast<int64_t>(consumer_ms * 1000));
  int64_t next_progress = start + 1'000'000'000;
  const int64_t warm_until =
      warmup_seconds > 0 ? start + static_cast<int64_t>(warmup_seconds * 1e9) : 0;
  int64_t steady_start = 0, steady_from = 0;
  pipeline::Element e;
  while (!g_interrupted) {
    if (deadline != 0 && MonotonicNanos() >= deadline) break;
    if (!pipe.Next(&e)) {
      r.ended = true;
      break;
    }
    ++r.outputs;
    if (warm_until != 0 && steady_start == 0 && MonotonicNanos() >= warm_until) {
      steady_start = MonotonicNanos();
      steady_from = r.outputs;
    }
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
  const int64_t end = MonotonicNanos();
  r.seconds = (end - start) * 1e-9;
  if (steady_start != 0) {
    r.steady_outputs = r.outputs - steady_from;
    r.steady_seconds = (end - steady_start) * 1e-9;
  }
  std::signal(SIGINT, previous);
  if (progress) fmt::print(stderr, "\r\033[K");
  return r;
}

}  // namespace sluice::cli
