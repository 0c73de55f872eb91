// A replacement for sluice's monotonic clock (src/common/clock_override.h) that a test moves
// forward by hand, so that timing computed by library code is tested without sleeping.
#pragma once

#include <atomic>
#include <cstdint>

#include "src/common/clock_override.h"

namespace sluice::test_util {

// While it lives, sluice::MonotonicNanos() reads the system clock plus everything Advance() has
// added: time still passes (so the library's waits and deadlines behave), and a test adds the
// long gaps it would otherwise sleep for. One at a time per process.
class ScopedFakeClock {
 public:
  ScopedFakeClock() {
    Offset().store(0);
    previous_ = internal::SetMonotonicSourceForTesting(&Now);
  }
  ~ScopedFakeClock() { internal::SetMonotonicSourceForTesting(previous_); }
  ScopedFakeClock(const ScopedFakeClock&) = delete;
  ScopedFakeClock& operator=(const ScopedFakeClock&) = delete;

  // Moves the clock forward by `ns` nanoseconds, at once, for every thread.
  void Advance(int64_t ns) { Offset().fetch_add(ns); }

 private:
  static std::atomic<int64_t>& Offset() {
    static std::atomic<int64_t> offset{0};
    return offset;
  }
  static int64_t Now() { return internal::SystemMonotonicNanos() + Offset().load(); }

  internal::MonotonicSource previous_ = nullptr;
};

}  // namespace sluice::test_util
