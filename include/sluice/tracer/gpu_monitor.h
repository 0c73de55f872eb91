// GPU activity for the tracer: kernel and memcpy records through CUPTI, loaded at run time so
// one binary runs with or without a GPU.
#pragma once

#include <cstdint>
#include <memory>

#include "sluice/trace/trace.h"
#include "sluice/tracer/export.h"

namespace sluice::tracer {

class SLUICE_TRACER_EXPORT GpuMonitor {
 public:
  virtual ~GpuMonitor() = default;
  // Delivers buffered activity records so the figures below include everything so far.
  virtual void Flush() = 0;
  // Fraction of [begin_ns, end_ns) (sluice::MonotonicNanos() clock) during which at least one
  // kernel ran, or -1 when no GPU activity is being recorded.
  virtual double BusyFraction(int64_t begin_ns, int64_t end_ns) = 0;
  // Totals since Start, with the status and, when not "ok", the reason. `traced_seconds`
  // scales busy_fraction.
  virtual trace::GpuTrace Summary(double traced_seconds) = 0;
  // Stops recording (idempotent); called before the process exits.
  virtual void Stop() = 0;
};

// Starts GPU activity recording. Never fails: without a driver, device, libcupti or
// permission, the monitor records nothing and its Summary says which and why.
SLUICE_TRACER_EXPORT std::unique_ptr<GpuMonitor> StartGpuMonitor();

}  // namespace sluice::tracer
