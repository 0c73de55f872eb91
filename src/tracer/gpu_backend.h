// The GPU monitor backends StartGpuMonitor chooses from, one file each (gpu_cupti.cc), and the
// monitor that stands in when none can record.
#pragma once

#include <memory>

#include "sluice/trace/trace.h"
#include "sluice/tracer/export.h"
#include "sluice/tracer/gpu_monitor.h"

// MakeUnavailableGpuMonitor is exported from the shared library, though no public header declares
// it, for gpu_monitor_test.
namespace sluice::tracer::internal {

// A monitor that records nothing: BusyFraction is -1 and Summary returns `why` (its status,
// reason and, when known, device name). Flush and Stop do nothing.
SLUICE_TRACER_EXPORT std::unique_ptr<GpuMonitor> MakeUnavailableGpuMonitor(trace::GpuTrace why);

#ifdef SLUICE_HAVE_CUPTI
// The CUPTI backend (gpu_cupti.cc): a recording monitor when the driver, a device, libcupti
// and the permissions are all there, otherwise an unavailable monitor saying which is missing.
std::unique_ptr<GpuMonitor> StartCuptiGpuMonitor();
#endif

}  // namespace sluice::tracer::internal
