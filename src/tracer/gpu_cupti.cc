// The CUPTI backend of GpuMonitor: libcuda and libcupti are dlopen'ed at run time, so one binary
// runs with or without a GPU (XLA's cupti_stub.cc), and kernel and memcpy activity records are
// merged into busy intervals on the tracer's clock (sluice::MonotonicNanos).
//
// Compiled to nothing without the CUPTI headers (SLUICE_HAVE_CUPTI, from cmake/SluiceCuda.cmake),
// so the build lists it unconditionally.
#ifdef SLUICE_HAVE_CUPTI

#include <dlfcn.h>

#include <cuda.h>
#include <cupti.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "sluice/common/clock.h"
#include "sluice/trace/trace.h"
#include "sluice/tracer/gpu_monitor.h"
#include "tracer/busy_intervals.h"
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

// Driver entry points resolved from libcuda.so.1. Members are named after the C functions they
// point to (not snake_case) so that the checking helper's messages name the call as written.
struct DriverApi {
  decltype(&::cuInit) cuInit = nullptr;
  decltype(&::cuDeviceGetCount) cuDeviceGetCount = nullptr;
  decltype(&::cuDeviceGet) cuDeviceGet = nullptr;
  decltype(&::cuDeviceGetName) cuDeviceGetName = nullptr;
  // Optional: used only to describe versions and errors.
  decltype(&::cuDriverGetVersion) cuDriverGetVersion = nullptr;
  decltype(&::cuGetErrorName) cuGetErrorName = nullptr;
  decltype(&::cuGetErrorString) cuGetErrorString = nullptr;
};

// CUPTI entry points resolved from libcupti, named like DriverApi's.
struct CuptiApi {
  decltype(&::cuptiActivityEnable) cuptiActivityEnable = nullptr;
  decltype(&::cuptiActivityDisable) cuptiActivityDisable = nullptr;
  decltype(&::cuptiActivityRegisterCallbacks) cuptiActivityRegisterCallbacks = nullptr;
  decltype(&::cuptiActivityFlushAll) cuptiActivityFlushAll = nullptr;
  decltype(&::cuptiActivityGetNextRecord) cuptiActivityGetNextRecord = nullptr;
  decltype(&::cuptiGetTimestamp) cuptiGetTimestamp = nullptr;
  decltype(&::cuptiGetResultString) cuptiGetResultString = nullptr;
  // Optional: sluice records without them.
  decltype(&::cuptiActivityRegisterTimestampCallback) cuptiActivityRegisterTimestampCallback =
      nullptr;
  decltype(&::cuptiActivityGetNumDroppedRecords) cuptiActivityGetNumDroppedRecords = nullptr;
  decltype(&::cuptiGetErrorMessage) cuptiGetErrorMessage = nullptr;
  decltype(&::cuptiGetVersion) cuptiGetVersion = nullptr;
  // Resolved but not called: see CuptiGpuMonitor::Stop.
  decltype(&::cuptiFinalize) cuptiFinalize = nullptr;
};

// The one checking helper for driver calls: returns the call's result and, when it is not
// CUDA_SUCCESS, writes "cuInit: CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)" to
// *failure. cuGetErrorName/String only describe a failure, so they are not checked themselves.
CUresult CheckCu(const DriverApi& cu, CUresult result, const char* call, std::string* failure) {
  if (result != CUDA_SUCCESS && failure != nullptr) {
    const char* name = nullptr;
    const char* text = nullptr;
    if (cu.cuGetErrorName != nullptr) cu.cuGetErrorName(result, &name);
    if (cu.cuGetErrorString != nullptr) cu.cuGetErrorString(result, &text);
    *failure =
        fmt::format("{}: {} ({})", call,
                    name != nullptr ? name : fmt::format("CUresult {}", static_cast<int>(result)),
                    text != nullptr ? text : "no description");
  }
  return result;
}
#define SLUICE_CU_CALL(cu, failure, fn, ...) CheckCu((cu), (cu).fn(__VA_ARGS__), #fn, (failure))

// The one checking helper for CUPTI calls (kineto's CUPTI_CALL): returns the call's result and,
// when it is not CUPTI_SUCCESS, writes "cuptiActivityEnable: CUPTI_ERROR_INSUFFICIENT_PRIVILEGES
// (<CUPTI's message>)" to *failure. Callers decide what a result means: the end of a buffer,
// for instance, is a result too. cuptiGetResultString/ErrorMessage only describe a failure.
CUptiResult CheckCupti(const CuptiApi& api, CUptiResult result, const char* call,
                       std::string* failure) {
  if (result != CUPTI_SUCCESS && failure != nullptr) {
    const char* name = nullptr;
    const char* text = nullptr;
    if (api.cuptiGetResultString != nullptr) api.cuptiGetResultString(result, &name);
    if (api.cuptiGetErrorMessage != nullptr) api.cuptiGetErrorMessage(result, &text);
    *failure = fmt::format(
        "{}: {}", call,
        name != nullptr ? name : fmt::format("CUptiResult {}", static_cast<int>(result)));
    if (text != nullptr && *text != '\0' && (name == nullptr || std::string_view(name) != text)) {
      *failure += fmt::format(" ({})", text);
    }
  }
  return result;
}
#define SLUICE_CUPTI_CALL(api, failure, fn, ...) \
  CheckCupti((api), (api).fn(__VA_ARGS__), #fn, (failure))

template <typename Fn>
bool Resolve(void* library, const char* name, Fn* fn) {
  *fn = reinterpret_cast<Fn>(dlsym(library, name));
  return *fn != nullptr;
}
#define SLUICE_RESOLVE(library, table, fn) Resolve((library), #fn, &(table).fn)

// What loading the driver and libcupti found. Built once per process and never destroyed or
// changed afterwards, so CUPTI's threads read it without a lock. The libraries are never
// dlclose'd: CUPTI keeps its threads and sluice's callbacks for the life of the process.
struct Libraries {
  trace::GpuTrace unavailable;  // status "ok" when everything below is usable
  DriverApi cu;
  CuptiApi cupti;
  std::string device_name;  // device 0's
  int device_count = 0;
  std::string versions;  // "driver for CUDA 12.8, libcupti API 130001 (/path)", for messages
};

// Where libcupti is looked for, most specific first: by soname (the one matching these
// headers' major version, then any) on the loader's search path, then in the usual toolkit
// directories.
struct CuptiSearch {
  std::vector<std::string> names;
  std::vector<std::string> dirs;
};

CuptiSearch CuptiSearchPath() {
  CuptiSearch search;
  search.names = {fmt::format("libcupti.so.{}", CUDA_VERSION / 1000), "libcupti.so"};
  std::vector<std::string> roots;
  // Read once, when the first monitor starts, before CUPTI has threads of its own.
  // NOLINTNEXTLINE(concurrency-mt-unsafe)
  if (const char* cuda_home = std::getenv("CUDA_HOME"); cuda_home != nullptr && *cuda_home) {
    roots.push_back(cuda_home);
  }
  roots.push_back("/usr/local/cuda");
  std::vector<std::string> dirs;
#ifdef SLUICE_CUPTI_LIBRARY_DIR
  dirs.push_back(SLUICE_CUPTI_LIBRARY_DIR);  // where the build found it
#endif
  for (const std::string& root : roots) {
    for (const char* sub : {"lib64", "extras/CUPTI/lib64", "targets/x86_64-linux/lib"}) {
      dirs.push_back(fmt::format("{}/{}", root, sub));
    }
  }
  for (std::string& dir : dirs) {
    if (std::find(search.dirs.begin(), search.dirs.end(), dir) == search.dirs.end()) {
      search.dirs.push_back(std::move(dir));
    }
  }
  return search;
}

Libraries LoadLibraries() {
  Libraries libs;
  auto unavailable = [&libs](const char* status, std::string reason) {
    libs.unavailable.status = status;
    libs.unavailable.reason = std::move(reason);
    libs.unavailable.device_name = libs.device_name;
    return std::move(libs);
  };

  // The driver. Only libcuda.so.1 is tried: the toolkit's stubs/libcuda.so is not a driver.
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (cuda == nullptr) {
    return unavailable("no_driver", "libcuda.so.1 not found: no NVIDIA driver on this machine");
  }
  for (bool ok :
       {SLUICE_RESOLVE(cuda, libs.cu, cuInit), SLUICE_RESOLVE(cuda, libs.cu, cuDeviceGetCount),
        SLUICE_RESOLVE(cuda, libs.cu, cuDeviceGet),
        SLUICE_RESOLVE(cuda, libs.cu, cuDeviceGetName)}) {
    if (!ok) {
      return unavailable("no_driver",
                         "libcuda.so.1 lacks the CUDA driver API (cuInit, "
                         "cuDeviceGetCount, cuDeviceGet, cuDeviceGetName): it is not "
                         "an NVIDIA driver library");
    }
  }
  SLUICE_RESOLVE(cuda, libs.cu, cuDriverGetVersion);
  SLUICE_RESOLVE(cuda, libs.cu, cuGetErrorName);
  SLUICE_RESOLVE(cuda, libs.cu, cuGetErrorString);

  std::string failure;
  const CUresult init = SLUICE_CU_CALL(libs.cu, &failure, cuInit, 0);
  if (init == CUDA_ERROR_NO_DEVICE) {
    return unavailable("no_device", failure +
                                        ": the driver sees no GPU (check nvidia-smi and "
                                        "CUDA_VISIBLE_DEVICES)");
  }
  if (init == CUDA_ERROR_STUB_LIBRARY) {
    return unavailable("no_driver", failure +
                                        ": libcuda.so.1 is the CUDA toolkit's stub, not a "
                                        "driver; take the stubs directory out of "
                                        "LD_LIBRARY_PATH");
  }
  if (init != CUDA_SUCCESS) {
    return unavailable("no_driver", failure + ": the NVIDIA driver could not be initialised");
  }
  int driver_version = 0;
  if (libs.cu.cuDriverGetVersion != nullptr &&
      SLUICE_CU_CALL(libs.cu, &failure, cuDriverGetVersion, &driver_version) == CUDA_SUCCESS) {
    libs.versions =
        fmt::format("driver for CUDA {}.{}", driver_version / 1000, driver_version % 1000 / 10);
  }
  if (SLUICE_CU_CALL(libs.cu, &failure, cuDeviceGetCount, &libs.device_count) != CUDA_SUCCESS) {
    return unavailable("error", failure);
  }
  if (libs.device_count == 0) {
    return unavailable("no_device",
                       "the NVIDIA driver reports no device (check nvidia-smi and "
                       "CUDA_VISIBLE_DEVICES)");
  }
  CUdevice device = 0;
  char name[256] = {};
  if (SLUICE_CU_CALL(libs.cu, &failure, cuDeviceGet, &device, 0) != CUDA_SUCCESS ||
      SLUICE_CU_CALL(libs.cu, &failure, cuDeviceGetName, name, sizeof(name) - 1, device) !=
          CUDA_SUCCESS) {
    return unavailable("error", failure);
  }
  libs.device_name = name;

  // libcupti.
  const CuptiSearch search = CuptiSearchPath();
  std::vector<std::string> candidates = search.names;
  for (const std::string& dir : search.dirs) {
    for (const std::string& name : search.names) {
      candidates.push_back(fmt::format("{}/{}", dir, name));
    }
  }
  void* cupti = nullptr;
  std::string loaded;
  for (const std::string& candidate : candidates) {
    cupti = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (cupti != nullptr) {
      loaded = candidate;
      break;
    }
  }
  if (cupti == nullptr) {
    return unavailable(
        "no_libcupti",
        fmt::format("libcupti not found: tried {} on the loader's search path and in {}; "
                    "install the CUDA toolkit's CUPTI or set CUDA_HOME to the toolkit",
                    fmt::join(search.names, " and "), fmt::join(search.dirs, ", ")));
  }
  for (bool ok : {SLUICE_RESOLVE(cupti, libs.cupti, cuptiActivityEnable),
                  SLUICE_RESOLVE(cupti, libs.cupti, cuptiActivityDisable),
                  SLUICE_RESOLVE(cupti, libs.cupti, cuptiActivityRegisterCallbacks),
                  SLUICE_RESOLVE(cupti, libs.cupti, cuptiActivityFlushAll),
                  SLUICE_RESOLVE(cupti, libs.cupti, cuptiActivityGetNextRecord),
                  SLUICE_RESOLVE(cupti, libs.cupti, cuptiGetTimestamp),
                  SLUICE_RESOLVE(cupti, libs.cupti, cuptiGetResultString)}) {
    if (!ok) {
      return unavailable("no_libcupti",
                         fmt::format("{} lacks the CUPTI activity API sluice uses "
                                     "(cuptiActivityFlushAll and others): use CUPTI from CUDA 12 "
                                     "or later",
                                     loaded));
    }
  }
  SLUICE_RESOLVE(cupti, libs.cupti, cuptiActivityRegisterTimestampCallback);
  SLUICE_RESOLVE(cupti, libs.cupti, cuptiActivityGetNumDroppedRecords);
  SLUICE_RESOLVE(cupti, libs.cupti, cuptiGetErrorMessage);
  SLUICE_RESOLVE(cupti, libs.cupti, cuptiGetVersion);
  SLUICE_RESOLVE(cupti, libs.cupti, cuptiFinalize);
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(libs.cupti.cuptiActivityEnable), &info) != 0 &&
      info.dli_fname != nullptr) {
    loaded = info.dli_fname;
  }
  uint32_t cupti_version = 0;
  if (libs.cupti.cuptiGetVersion != nullptr &&
      SLUICE_CUPTI_CALL(libs.cupti, &failure, cuptiGetVersion, &cupti_version) == CUPTI_SUCCESS) {
    loaded = fmt::format("API {} ({})", cupti_version, loaded);
  }
  libs.versions += fmt::format("{}libcupti {}", libs.versions.empty() ? "" : ", ", loaded);
  libs.unavailable.status = "ok";
  libs.unavailable.device_name = libs.device_name;
  return libs;
}

// Loaded on the first call; leaked on purpose so that CUPTI's threads may still use it while
// the process exits.
const Libraries& Libs() {
  static const Libraries* libs = new Libraries(LoadLibraries());
  return *libs;
}

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
std::mutex g_control_mu;
bool g_callbacks_registered = false;  // guarded by g_control_mu
bool g_monotonic_registered = false;  // guarded by g_control_mu: CUPTI took MonotonicTimestamp
std::mutex g_active_mu;
CuptiGpuMonitor* g_active = nullptr;  // guarded by g_active_mu; changed under g_control_mu too

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
    std::lock_guard control(g_control_mu);
    const CuptiApi& api = libs_.cupti;
    {
      std::lock_guard active(g_active_mu);
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
      std::lock_guard lock(mu_);
      offset_ns_ = same_clock_ ? 0 : offset;
      start_ns_ = MonotonicNanos();
      monotonic_registered_ = g_monotonic_registered;
      clock_ = same_clock_ ? "CUPTI stamps with the tracer's clock"
                           : "converted from CUPTI's clock by a measured offset";
    }
    {
      std::lock_guard active(g_active_mu);
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
        std::lock_guard active(g_active_mu);
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
    std::lock_guard control(g_control_mu);
    if (!running_) return;
    std::string failure;
    if (!same_clock_) {
      // Re-measured at each flush so that a slewing CLOCK_REALTIME cannot drift far.
      int64_t offset = 0;
      if (MeasureOffset(&offset, &failure) != CUPTI_SUCCESS) return RecordFailure(failure);
      std::lock_guard lock(mu_);
      offset_ns_ = offset;
    }
    // A default flush: buffers whose records have all completed (no device synchronization).
    if (SLUICE_CUPTI_CALL(libs_.cupti, &failure, cuptiActivityFlushAll, 0) != CUPTI_SUCCESS) {
      return RecordFailure(failure);
    }
    std::lock_guard lock(mu_);
    busy_.Prune(MonotonicNanos() - kHorizonNs);
  }

  double BusyFraction(int64_t begin_ns, int64_t end_ns) override {
    std::lock_guard lock(mu_);
    if (!failure_.empty() || begin_ns < busy_.horizon()) return -1;  // unreliable or forgotten
    if (end_ns <= begin_ns) return 0;
    return static_cast<double>(busy_.Busy(begin_ns, end_ns)) /
           static_cast<double>(end_ns - begin_ns);
  }

  trace::GpuTrace Summary(double traced_seconds) override {
    std::lock_guard lock(mu_);
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
    std::lock_guard control(g_control_mu);
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
    std::lock_guard active(g_active_mu);
    if (g_active == this) g_active = nullptr;
  }

  // Takes one completed buffer's records; called by BufferCompleted with g_active_mu held.
  void Deliver(const RecordBatch& batch) {
    const int64_t now = MonotonicNanos();
    std::lock_guard lock(mu_);
    for (const BusyIntervals::Interval& kernel : batch.kernels) {
      auto plausible = [&](int64_t shift) {
        return kernel.begin + shift >= start_ns_ - kPlausibleNs &&
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
    std::lock_guard lock(mu_);
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
  bool running_ = false;                     // guarded by g_control_mu
  bool same_clock_ = false;                  // guarded by g_control_mu: CUPTI stamps MonotonicNanos
  std::vector<CUpti_ActivityKind> enabled_;  // guarded by g_control_mu

  std::mutex mu_;
  int64_t offset_ns_ = 0;   // guarded by mu_: MonotonicNanos() minus CUPTI's clock
  int64_t start_ns_ = 0;    // guarded by mu_: when recording began (MonotonicNanos)
  const char* clock_ = "";  // guarded by mu_: how CUPTI's timestamps reach the tracer's clock
  bool monotonic_registered_ = false;  // guarded by mu_: copy of g_monotonic_registered
  BusyIntervals busy_;   // guarded by mu_: kernel intervals on the MonotonicNanos clock
  int64_t kernels_ = 0;  // guarded by mu_, like every figure below
  int64_t untimed_records_ = 0;
  int64_t dropped_records_ = 0;
  int64_t misplaced_records_ = 0;  // kernels whose converted time fell outside the recording
  int64_t h2d_bytes_ = 0;
  int64_t h2d_ns_ = 0;
  int64_t d2h_bytes_ = 0;
  int64_t d2h_ns_ = 0;
  std::string failure_;  // guarded by mu_: the first call that failed mid-way
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
    std::lock_guard active(g_active_mu);
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
