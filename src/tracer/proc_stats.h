// Readers of /proc and the host's facts, for the tracer's samples.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "sluice/trace/trace.h"

namespace sluice::tracer::internal {

// Cumulative CPU ticks of the whole host from /proc/stat's "cpu" line.
struct HostCpuTicks {
  uint64_t busy = 0;
  uint64_t total = 0;
};
std::optional<HostCpuTicks> ReadHostCpuTicks();

// Resident set size of this process in bytes (/proc/self/statm), or -1.
int64_t ReadRssBytes();
// Bytes this process caused to be fetched from storage (/proc/self/io read_bytes), or -1 when
// the kernel does not offer it.
int64_t ReadStorageBytesRead();

// A thread's software counters (/proc/self/task/TID/{status,stat}); nullopt once it is gone.
struct ThreadCounters {
  int64_t voluntary_switches = 0;
  int64_t involuntary_switches = 0;
  int64_t minor_faults = 0;
  int64_t major_faults = 0;
};
std::optional<ThreadCounters> ReadThreadCounters(int tid);

// The machine: hostname, OS, CPU model, usable cores, memory.
trace::HostInfo ReadHostInfo();

// This process's command line (/proc/self/cmdline).
std::vector<std::string> ReadCommandLine();

}  // namespace sluice::tracer::internal
