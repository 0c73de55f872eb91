// The CUPTI backend of GpuMonitor: libcuda and libcupti are dlopen'ed at run time, so one binary
// runs with or without a GPU (XLA's cupti_stub.cc), and kernel and memcpy activity records are
// merged into busy intervals on the tracer's clock (sluice::MonotonicNanos).
//
// Compiled to nothing without the CUPTI headers (SLUICE_HAVE_CUPTI, from cmake/SluiceCuda.cmake),
// so the build lists it unconditionally.
#ifdef SLUICE_HAVE_CUPTI

#include <cuda.h>
#include <cupti.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common/thread_annotations.h"
#include "sluice/common/clock.h"
#include "sluice/trace/trace.h"
#include "sluice/tracer/gpu_monitor.h"
#include "tracer/busy_intervals.h"
#include "tracer/cuda_libs.h"
#include "tracer/gpu_backend.h"

// The records read below are the CUDA 13 layouts (cmake/SluiceCuda.cmake only defines
// SLUICE_HAVE_CUPTI for these headers).
static_assert(CUPTI_API_VERSION >= 130000, "the CUPTI backend needs the CUDA 13 CUPTI headers");

namespace sluice::tracer::internal {
namespace {

constexpr size_t kBufferBytes = size_t{8} << 20;  // one CUPTI activity buffer
constexpr size_t kBufferAlign = 8;                // CUPTI's records need 8-byte alignment
// Busy intervals are kept this long so the sampler can read windows some time after CUPTI
// delivers them (a default flush returns only buffers whose records have all completed, so
// delivery lags while the GPU is kept busy), and the size cap bounds memory whatever the
// kernel rate: 2M intervals of 16 bytes. TotalBusy keeps counting what is forgotten.
constexpr int64_t kHorizonNs = int64_t{600} * 1'000'000'000;
constexpr size_t kMaxIntervals = size_t{1} << 21;
// CUPTI stamps records with CLOCK_REALTIME on Linux unless given a clock; a measured offset
// this close to zero means the monotonic clock registered below is in use.
constexpr int64_t kSameClockNs = 1'000'000;
// A converted kernel interval further than this outside the recording is not believed: it
// would mean the clocks were matched wrongly, which the summary then says.
constexpr int64_t kPlausibleNs = int64_t{60} * 1'000'000'000;

// Fields read from the records sit at the same offsets in every layout these headers define
// for kernel and memcpy records, so a libcupti from another CUDA version, which fills records
// in its own latest layout, is read correctly as long as it keeps them there.
#define SLUICE_SAME_OFFSET(type, old_type, field) \
  static_assert(offsetof(type, field) == offsetof(old_type, field))
SLUICE_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel4, start);
SLUICE_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel4, end);
SLUICE_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel5, start);
SLUICE_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel5, end);
SLUICE_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel6, start);
SLUICE_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel6, end);
SLUICE_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel7, start);
SLUICE_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel7, end);
SLUICE_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel8, start);
SLUICE_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel8, end);
SLUICE_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel9, start);
SLUICE_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel9, end);
SLUICE_SAME_OFFSET(CUpti_ActivityMemcpy6, CUpti_ActivityMemcpy, copyKind);
SLUICE_SAME_OFFSET(CUpti_ActivityMemcpy6, CUpti_ActivityMemcpy, bytes);
SLUICE_SAME_OFFSET(CUpti_ActivityMemcpy6, CUpti_ActivityMemcpy, start);
SLUICE_SAME_OFFSET(CUpti_ActivityMemcpy6, CUpti_ActivityMemcpy, end);
SLUICE_SAME_OFFSET(CUpti_ActivityMemcpy6, CUpti_ActivityMemcpy5, copyKind);
SLUICE_SAME_OFFSET(CUpti_ActivityMemcpy6, CUpti_ActivityMemcpy5, bytes);
SLUICE_SAME_OFFSET(CUpti_ActivityMemcpy6, CUpti_ActivityMemcpy5, start);
SLUICE_SAME_OFFSET(CUpti_ActivityMemcpy6, CUpti_ActivityMemcpy5, end);
#undef SLUICE_SAME_OFFSET

// The records of one completed buffer, timestamps still on CUPTI's clock.
struct RecordBatch {
  std::vector<BusyIntervals::Interval> kernels;
  int64_t kernel_records = 0;
  int64_t untimed_records = 0;  // kernels and copies CUPTI could not time
  int64_t h2d_bytes = 0;
  int64_t h2d_ns = 0;
  int64_t d2h_bytes = 0;
  int64_t d2h_ns = 0;
  size_t dropped_records = 0;  // records CUPTI dropped for lack of buffer space
  std::string failure;         // a CUPTI call that failed while reading the buffer
};

void ReadRecords(const CuptiApi& api, uint8_t* buffer, size_t valid_bytes, RecordBatch* batch) {
  CUpti_Activity* record = nullptr;
  for (;;) {
    std::string failure;
    const CUptiResult result =
        SLUICE_CUPTI_CALL(api, &failure, cuptiActivityGetNextRecord, buffer, valid_bytes, &record);
    if (result == CUPTI_ERROR_MAX_LIMIT_REACHED) return;  // the end of the buffer
    if (result == CUPTI_ERROR_INVALID_KIND) {
      // An incomplete record (a forced flush returns those); the rest cannot be walked.
      ++batch->untimed_records;
      return;
    }
    if (result != CUPTI_SUCCESS) {
      batch->failure = failure;
      return;
    }
    switch (record->kind) {
      case CUPTI_ACTIVITY_KIND_KERNEL:
      case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
        const auto* kernel = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
        ++batch->kernel_records;
        // Both timestamps are 0 when CUPTI could not time the kernel (no device memory left
        // for its timestamps, or a forced flush before it ended).
        if (kernel->start == 0 || kernel->end < kernel->start) {
          ++batch->untimed_records;
        } else {
          batch->kernels.push_back(
              {static_cast<int64_t>(kernel->start), static_cast<int64_t>(kernel->end)});
        }
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMCPY: {
        const auto* copy = reinterpret_cast<const CUpti_ActivityMemcpy6*>(record);
        const bool timed = copy->start != 0 && copy->end >= copy->start;
        if (!timed) ++batch->untimed_records;
        const int64_t ns = timed ? static_cast<int64_t>(copy->end - copy->start) : 0;
        // Copies to and from CUDA arrays cross the same bus as those to and from device memory.
        switch (copy->copyKind) {
          case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD:
          case CUPTI_ACTIVITY_MEMCPY_KIND_HTOA:
            batch->h2d_bytes += static_cast<int64_t>(copy->bytes);
            batch->h2d_ns += ns;
            break;
          case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH:
          case CUPTI_ACTIVITY_MEMCPY_KIND_ATOH:
            batch->d2h_bytes += static_cast<int64_t>(copy->bytes);
            batch->d2h_ns += ns;
            break;
          default:
            break;
        }
        break;
      }
      default:
        break;
    }
  }
}

class CuptiGpuMonitor;

// Locks, always taken in this order:
//   g_control_mu      serializes sluice's control calls into CUPTI (register, enable, flush,
//                     disable), which act on process-wide CUPTI state; guards
//                     g_callbacks_registered and each monitor's running_ and clock state.
//   g_active_mu       guards g_active, the monitor CUPTI's completed buffers go to. The
//                     completion callback holds it while delivering, so once Stop has cleared
//                     g_active no callback touches the monitor.
//   CuptiGpuMonitor::mu_  the monitor's figures.
// No CUPTI function is called with g_active_mu or a monitor's mu_ held: CUPTI runs the
// completion callback in its own threads or in the thread that flushes, and it takes both.
Mutex g_control_mu;
bool g_callbacks_registered SLUICE_GUARDED_BY(g_control_mu) = false;
// CUPTI took MonotonicTimestamp.
bool g_monotonic_registered SLUICE_GUARDED_BY(g_control_mu) = false;
Mutex g_active_mu;
// Changed under g_control_mu too.
CuptiGpuMonitor* g_active SLUICE_GUARDED_BY(g_active_mu) = nullptr;

// CUPTI's clock for activity records: the tracer's, so no offset can drift (CUPTI's default on
// Linux is CLOCK_REALTIME, which NTP steps and slews).
uint64_t CUPTIAPI MonotonicTimestamp() { return static_cast<uint64_t>(MonotonicNanos()); }

// CUPTI asks for an empty buffer (in its threads or the caller's).
void CUPTIAPI BufferRequested(uint8_t** buffer, size_t* size, size_t* max_records) noexcept {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(kBufferAlign, kBufferBytes));
  *size = *buffer != nullptr ? kBufferBytes : 0;  // no buffer: CUPTI drops records and says so
  *max_records = 0;                               // as many as fit
}

void CUPTIAPI BufferCompleted(CUcontext context, uint32_t stream_id, uint8_t* buffer,
                              size_t /*size*/, size_t valid_bytes) noexcept;

class CuptiGpuMonitor final : public GpuMonitor {
 public:
  explicit CuptiGpuMonitor(const Libraries& libs) : libs_(libs) {}
  ~CuptiGpuMonitor() override { Stop(); }

  // Registers the callbacks and enables kernel and memcpy records. On failure, leaves CUPTI
  // with nothing enabled and describes why in *why.
  bool Start(trace::GpuTrace* why) {
    MutexLock control(g_control_mu);
    const CuptiApi& api = libs_.cupti;
    {
      MutexLock active(g_active_mu);
      if (g_active != nullptr) {
        *why = Unavailable(CUPTI_SUCCESS,
                           "another GPU monitor is already recording in this "
                           "process; stop it before starting one");
        return false;
      }
    }
    std::string failure;
    CUptiResult result = CUPTI_SUCCESS;
    if (!g_callbacks_registered) {
      // Before any activity kind is enabled, as CUPTI requires. Optional: without it the
      // offset measured below converts CUPTI's clock.
      if (api.cuptiActivityRegisterTimestampCallback != nullptr) {
        g_monotonic_registered =
            SLUICE_CUPTI_CALL(api, nullptr, cuptiActivityRegisterTimestampCallback,
                              MonotonicTimestamp) == CUPTI_SUCCESS;
      }
      result = SLUICE_CUPTI_CALL(api, &failure, cuptiActivityRegisterCallbacks, BufferRequested,
                                 BufferCompleted);
      if (result != CUPTI_SUCCESS) {
        *why = Unavailable(result, failure);
        return false;
      }
      g_callbacks_registered = true;
    }
    int64_t offset = 0;
    result = MeasureOffset(&offset, &failure);
    if (result != CUPTI_SUCCESS) {
      *why = Unavailable(result, failure);
      return false;
    }
    same_clock_ = offset > -kSameClockNs && offset < kSameClockNs;
    {
      MutexLock lock(mu_);
      offset_ns_ = same_clock_ ? 0 : offset;
      start_ns_ = MonotonicNanos();
      monotonic_registered_ = g_monotonic_registered;
      clock_ = same_clock_ ? "CUPTI stamps with the tracer's clock"
                           : "converted from CUPTI's clock by a measured offset";
    }
    {
      MutexLock active(g_active_mu);
      g_active = this;
    }
    for (CUpti_ActivityKind kind :
         {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY}) {
      result = SLUICE_CUPTI_CALL(api, &failure, cuptiActivityEnable, kind);
      if (result != CUPTI_SUCCESS) {
        for (CUpti_ActivityKind enabled : enabled_) {
          SLUICE_CUPTI_CALL(api, nullptr, cuptiActivityDisable, enabled);
        }
        enabled_.clear();
        MutexLock active(g_active_mu);
        g_active = nullptr;
        *why = Unavailable(result, failure);
        return false;
      }
      enabled_.push_back(kind);
    }
    running_ = true;
    return true;
  }

  void Flush() override {
    MutexLock control(g_control_mu);
    if (!running_) return;
    std::string failure;
    if (!same_clock_) {
      // Re-measured at each flush so that a slewing CLOCK_REALTIME cannot drift far.
      int64_t offset = 0;
      if (MeasureOffset(&offset, &failure) != CUPTI_SUCCESS) return RecordFailure(failure);
      MutexLock lock(mu_);
      offset_ns_ = offset;
    }
    // A default flush: buffers whose records have all completed (no device synchronization).
    if (SLUICE_CUPTI_CALL(libs_.cupti, &failure, cuptiActivityFlushAll, 0) != CUPTI_SUCCESS) {
      return RecordFailure(failure);
    }
    MutexLock lock(mu_);
    busy_.Prune(MonotonicNanos() - kHorizonNs);
  }

  double BusyFraction(int64_t begin_ns, int64_t end_ns) override {
    MutexLock lock(mu_);
    if (!failure_.empty() || begin_ns < busy_.horizon()) return -1;  // unreliable or forgotten
    if (end_ns <= begin_ns) return 0;
    return static_cast<double>(busy_.Busy(begin_ns, end_ns)) /
           static_cast<double>(end_ns - begin_ns);
  }

  trace::GpuTrace Summary(double traced_seconds) override {
    MutexLock lock(mu_);
    trace::GpuTrace summary;
    summary.device_name = libs_.device_name;
    summary.kernels = kernels_;
    summary.kernel_busy_seconds = static_cast<double>(busy_.TotalBusy()) * 1e-9;
    summary.busy_fraction = traced_seconds > 0 ? summary.kernel_busy_seconds / traced_seconds : 0;
    summary.h2d_bytes = h2d_bytes_;
    summary.h2d_seconds = static_cast<double>(h2d_ns_) * 1e-9;
    summary.d2h_bytes = d2h_bytes_;
    summary.d2h_seconds = static_cast<double>(d2h_ns_) * 1e-9;
    if (!failure_.empty()) {
      summary.status = "error";
      summary.reason = fmt::format("{} ({}); GPU figures are incomplete", failure_, libs_.versions);
      return summary;
    }
    summary.status = "ok";
    std::vector<std::string> notes;
    if (dropped_records_ > 0) {
      notes.push_back(fmt::format(
          "CUPTI dropped {} activity records for lack of buffer space: the figures are lower "
          "bounds",
          dropped_records_));
    }
    if (untimed_records_ > 0) {
      notes.push_back(fmt::format(
          "{} kernel or copy records had no timestamps (unfinished when recording stopped, or "
          "no device memory for them) and add no time",
          untimed_records_));
    }
    if (misplaced_records_ > 0) {
      notes.push_back(fmt::format(
          "{} kernel records had timestamps outside the recording and were left out (CUPTI's "
          "clock could not be matched to the tracer's: {})",
          misplaced_records_, clock_));
    }
    if (libs_.device_count > 1) {
      notes.push_back(
          fmt::format("busy time is the union over all {} devices; the name is device 0's",
                      libs_.device_count));
    }
    summary.reason = fmt::format("{}", fmt::join(notes, "; "));
    return summary;
  }

  // Stops recording: delivers what completed, disables the activity kinds, then forces out the
  // rest. cuptiFinalize is not called: CUPTI documents it as safe only from a CUDA API exit
  // callback or after the application has synchronized, neither of which the tracer knows.
  void Stop() override {
    MutexLock control(g_control_mu);
    if (!running_) return;
    running_ = false;
    const CuptiApi& api = libs_.cupti;
    std::string failure;
    if (SLUICE_CUPTI_CALL(api, &failure, cuptiActivityFlushAll, 0) != CUPTI_SUCCESS) {
      RecordFailure(failure);
    }
    for (CUpti_ActivityKind kind : enabled_) {
      if (SLUICE_CUPTI_CALL(api, &failure, cuptiActivityDisable, kind) != CUPTI_SUCCESS) {
        RecordFailure(failure);
      }
    }
    enabled_.clear();
    if (SLUICE_CUPTI_CALL(api, &failure, cuptiActivityFlushAll, CUPTI_ACTIVITY_FLAG_FLUSH_FORCED) !=
        CUPTI_SUCCESS) {
      RecordFailure(failure);
    }
    MutexLock active(g_active_mu);
    if (g_active == this) g_active = nullptr;
  }

  // Takes one completed buffer's records; called by BufferCompleted.
  void Deliver(const RecordBatch& batch) SLUICE_REQUIRES(g_active_mu) {
    const int64_t now = MonotonicNanos();
    MutexLock lock(mu_);
    const int64_t start_ns = start_ns_;  // for the lambda, which the analysis sees apart
    for (const BusyIntervals::Interval& kernel : batch.kernels) {
      auto plausible = [&](int64_t shift) {
        return kernel.begin + shift >= start_ns - kPlausibleNs &&
               kernel.end + shift <= now + kPlausibleNs;
      };
      // With the monotonic clock registered, records are on the tracer's clock even if
      // cuptiGetTimestamp (hence the offset) is not; the two clocks are decades apart, so
      // at most one reading is plausible.
      int64_t shift = offset_ns_;
      if (!plausible(shift) && monotonic_registered_ && plausible(0)) shift = 0;
      if (!plausible(shift)) {
        ++misplaced_records_;
        continue;
      }
      busy_.Add(kernel.begin + shift, kernel.end + shift);
    }
    busy_.PruneToSize(kMaxIntervals);
    kernels_ += batch.kernel_records;
    untimed_records_ += batch.untimed_records;
    dropped_records_ += static_cast<int64_t>(batch.dropped_records);
    h2d_bytes_ += batch.h2d_bytes;
    h2d_ns_ += batch.h2d_ns;
    d2h_bytes_ += batch.d2h_bytes;
    d2h_ns_ += batch.d2h_ns;
    if (!batch.failure.empty() && failure_.empty()) {
      failure_ = "reading activity records: " + batch.failure;
    }
  }

 private:
  // MonotonicNanos() minus CUPTI's clock, read halfway between two readings of ours.
  CUptiResult MeasureOffset(int64_t* offset, std::string* failure) {
    uint64_t cupti_now = 0;
    const int64_t before = MonotonicNanos();
    const CUptiResult result =
        SLUICE_CUPTI_CALL(libs_.cupti, failure, cuptiGetTimestamp, &cupti_now);
    const int64_t after = MonotonicNanos();
    *offset = before + (after - before) / 2 - static_cast<int64_t>(cupti_now);
    return result;
  }

  // The figures stop being reported once a call fails mid-way; the first failure is kept.
  void RecordFailure(const std::string& failure) {
    MutexLock lock(mu_);
    if (failure_.empty()) failure_ = failure;
  }

  // Why CUPTI could not start, as a user can act on it.
  trace::GpuTrace Unavailable(CUptiResult result, const std::string& failure) const {
    trace::GpuTrace why;
    why.device_name = libs_.device_name;
    if (result == CUPTI_ERROR_INSUFFICIENT_PRIVILEGES ||
        result == CUPTI_ERROR_VIRTUALIZED_DEVICE_INSUFFICIENT_PRIVILEGES) {
      why.status = "insufficient_privileges";
      why.reason = failure +
                   ": this user may not trace the GPU; run as root, or load the nvidia kernel "
                   "module with NVreg_RestrictProfilingToAdminUsers=0 "
                   "(https://developer.nvidia.com/ERR_NVGPUCTRPERM)";
    } else if (result == CUPTI_ERROR_VIRTUALIZED_DEVICE_NOT_SUPPORTED) {
      why.status = "insufficient_privileges";
      why.reason = failure +
                   ": this virtual GPU does not allow tracing; enable profiling for the VM on "
                   "its host, or on a passed-through GPU set "
                   "NVreg_RestrictProfilingToAdminUsers=0";
    } else {
      why.status = "error";
      why.reason =
          libs_.versions.empty() ? failure : fmt::format("{} ({})", failure, libs_.versions);
    }
    return why;
  }

  const Libraries& libs_;
  bool running_ SLUICE_GUARDED_BY(g_control_mu) = false;
  bool same_clock_ SLUICE_GUARDED_BY(g_control_mu) = false;  // CUPTI stamps MonotonicNanos
  std::vector<CUpti_ActivityKind> enabled_ SLUICE_GUARDED_BY(g_control_mu);

  Mutex mu_;
  int64_t offset_ns_ SLUICE_GUARDED_BY(mu_) = 0;  // MonotonicNanos() minus CUPTI's clock
  int64_t start_ns_ SLUICE_GUARDED_BY(mu_) = 0;   // when recording began (MonotonicNanos)
  // How CUPTI's timestamps reach the tracer's clock.
  const char* clock_ SLUICE_GUARDED_BY(mu_) = "";
  bool monotonic_registered_ SLUICE_GUARDED_BY(mu_) = false;  // copy of g_monotonic_registered
  BusyIntervals busy_ SLUICE_GUARDED_BY(mu_);  // kernel intervals on the MonotonicNanos clock
  int64_t kernels_ SLUICE_GUARDED_BY(mu_) = 0;
  int64_t untimed_records_ SLUICE_GUARDED_BY(mu_) = 0;
  int64_t dropped_records_ SLUICE_GUARDED_BY(mu_) = 0;
  // Kernels whose converted time fell outside the recording.
  int64_t misplaced_records_ SLUICE_GUARDED_BY(mu_) = 0;
  int64_t h2d_bytes_ SLUICE_GUARDED_BY(mu_) = 0;
  int64_t h2d_ns_ SLUICE_GUARDED_BY(mu_) = 0;
  int64_t d2h_bytes_ SLUICE_GUARDED_BY(mu_) = 0;
  int64_t d2h_ns_ SLUICE_GUARDED_BY(mu_) = 0;
  std::string failure_ SLUICE_GUARDED_BY(mu_);  // the first call that failed mid-way
};

// CUPTI hands back a buffer it has filled (in its threads or the flushing thread). Records are
// read without a lock, then delivered under g_active_mu; the buffer is freed either way.
void CUPTIAPI BufferCompleted(CUcontext context, uint32_t stream_id, uint8_t* buffer,
                              size_t /*size*/, size_t valid_bytes) noexcept {
  try {
    const Libraries& libs = Libs();
    RecordBatch batch;
    if (buffer != nullptr && valid_bytes > 0) {
      ReadRecords(libs.cupti, buffer, valid_bytes, &batch);
    }
    if (libs.cupti.cuptiActivityGetNumDroppedRecords != nullptr) {
      SLUICE_CUPTI_CALL(libs.cupti, nullptr, cuptiActivityGetNumDroppedRecords, context, stream_id,
                        &batch.dropped_records);
    }
    std::free(buffer);
    buffer = nullptr;
    MutexLock active(g_active_mu);
    if (g_active != nullptr) g_active->Deliver(batch);
  } catch (...) {
    // Out of memory while reading: the records are lost, CUPTI's thread must not unwind.
    std::free(buffer);
  }
}

}  // namespace

std::unique_ptr<GpuMonitor> StartCuptiGpuMonitor() {
  const Libraries& libs = Libs();
  if (libs.unavailable.status != "ok") return MakeUnavailableGpuMonitor(libs.unavailable);
  auto monitor = std::make_unique<CuptiGpuMonitor>(libs);
  trace::GpuTrace why;
  if (!monitor->Start(&why)) return MakeUnavailableGpuMonitor(std::move(why));
  return monitor;
}

}  // namespace sluice::tracer::internal

#endif  // SLUICE_HAVE_CUPTI
