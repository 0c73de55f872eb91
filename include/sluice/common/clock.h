// Clocks: a cheap monotonic nanosecond clock for hot paths and the calling thread's CPU clock.
#pragma once

#include <cstdint>
#include <ctime>

namespace sluice {

// Monotonic wall time in nanoseconds (vDSO, no system call). Every duration and rate sluice
// measures comes from this clock; tests replace it (src/common/clock_override.h) to test timing
// logic without sleeping.
int64_t MonotonicNanos();

// CPU time consumed by the calling thread, in nanoseconds (a system call: keep off per-element
// paths).
inline int64_t ThreadCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// CPU time consumed by the whole process, in nanoseconds.
inline int64_t ProcessCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace sluice
