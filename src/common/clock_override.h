// Test hook: replaces the clock behind sluice::MonotonicNanos, so that tests can drive timing
// logic (rates, waits, busy time) without sleeping, in the manner of tf.data's FakeClockEnv.
// Private to sluice and its tests; the public clock.h holds no hook.
#pragma once

#include <cstdint>

namespace sluice::internal {

// A replacement clock: monotonic nanoseconds, callable from any thread.
using MonotonicSource = int64_t (*)();

// Makes MonotonicNanos() return `source()` from now on (nullptr restores the system clock);
// returns the source it replaces. Thread-safe; the caller keeps the replacement monotonic.
MonotonicSource SetMonotonicSourceForTesting(MonotonicSource source);

// The system's monotonic clock, whatever source is set (for a replacement built on it).
int64_t SystemMonotonicNanos();

}  // namespace sluice::internal
