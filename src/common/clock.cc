// The monotonic clock behind sluice::MonotonicNanos, and its test hook (clock_override.h).
#include "sluice/common/clock.h"

#include <atomic>

#include "common/clock_override.h"

namespace sluice {
namespace {

// Null unless a test replaced the clock. One relaxed load per reading: the only cost the hook
// adds to the system clock's vDSO call.
std::atomic<internal::MonotonicSource> g_source{nullptr};

}  // namespace

int64_t internal::SystemMonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

internal::MonotonicSource internal::SetMonotonicSourceForTesting(MonotonicSource source) {
  return g_source.exchange(source);
}

int64_t MonotonicNanos() {
  const internal::MonotonicSource source = g_source.load(std::memory_order_relaxed);
  return source != nullptr ? source() : internal::SystemMonotonicNanos();
}

}  // namespace sluice
