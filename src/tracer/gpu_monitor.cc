// StartGpuMonitor, the factory over the GPU backends, and the monitor used when none records.
#include "sluice/tracer/gpu_monitor.h"

#include <memory>
#include <utility>

#include "tracer/gpu_backend.h"

namespace sluice::tracer {
namespace internal {
namespace {

// Records nothing and says why (benchmark's PerfCounters::Create returns such an empty, valid
// object when perf counters are unavailable).
class UnavailableGpuMonitor final : public GpuMonitor {
 public:
  explicit UnavailableGpuMonitor(trace::GpuTrace why) : why_(std::move(why)) {}
  void Flush() override {}
  double BusyFraction(int64_t, int64_t) override { return -1; }
  trace::GpuTrace Summary(double) override { return why_; }
  void Stop() override {}

 private:
  const trace::GpuTrace why_;  // status, reason, device name; figures all zero
};

}  // namespace

std::unique_ptr<GpuMonitor> MakeUnavailableGpuMonitor(trace::GpuTrace why) {
  return std::make_unique<UnavailableGpuMonitor>(std::move(why));
}

}  // namespace internal

// Backends are tried in order of preference, each from its own file (bloaty's TryOpenELFFile
// chain); CUPTI is the only one today. A backend that cannot record returns an unavailable
// monitor whose Summary says why, and that is what the caller gets.
std::unique_ptr<GpuMonitor> StartGpuMonitor() {
#ifdef SLUICE_HAVE_CUPTI
  return internal::StartCuptiGpuMonitor();
#else
  trace::GpuTrace why;
  why.status = "not_built";
  why.reason =
      "sluice was built without the CUPTI headers (no CUDA toolkit found at build time); "
      "rebuild with the CUDA toolkit installed (or CUDA_HOME pointing at it) to record GPU "
      "activity";
  return internal::MakeUnavailableGpuMonitor(std::move(why));
#endif
}

}  // namespace sluice::tracer
