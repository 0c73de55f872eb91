// Loading the CUDA driver and libcupti with dlopen, and their checking helpers.
//
// Compiled to nothing without the CUPTI headers (SLUICE_HAVE_CUPTI), like gpu_cupti.cc.
#ifdef SLUICE_HAVE_CUPTI

#include "tracer/cuda_libs.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace sluice::tracer::internal {
namespace {

template <typename Fn>
bool Resolve(void* library, const char* name, Fn* fn) {
  *fn = reinterpret_cast<Fn>(dlsym(library, name));
  return *fn != nullptr;
}
#define SLUICE_RESOLVE(library, table, fn) Resolve((library), #fn, &(table).fn)

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

// Records why the GPU cannot be recorded; returns false.
bool Unavailable(Libraries& libs, const char* status, std::string reason) {
  libs.unavailable.status = status;
  libs.unavailable.reason = std::move(reason);
  libs.unavailable.device_name = libs.device_name;
  return false;
}

// Loads the driver, initialises it and names device 0; false (with the reason in `libs`) when
// there is no usable driver or device.
bool LoadDriver(Libraries& libs) {
  // Only libcuda.so.1 is tried: the toolkit's stubs/libcuda.so is not a driver.
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (cuda == nullptr) {
    return Unavailable(libs, "no_driver",
                       "libcuda.so.1 not found: no NVIDIA driver on this machine");
  }
  for (bool ok :
       {SLUICE_RESOLVE(cuda, libs.cu, cuInit), SLUICE_RESOLVE(cuda, libs.cu, cuDeviceGetCount),
        SLUICE_RESOLVE(cuda, libs.cu, cuDeviceGet),
        SLUICE_RESOLVE(cuda, libs.cu, cuDeviceGetName)}) {
    if (!ok) {
      return Unavailable(libs, "no_driver",
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
    return Unavailable(libs, "no_device",
                       failure +
                           ": the driver sees no GPU (check nvidia-smi and "
                           "CUDA_VISIBLE_DEVICES)");
  }
  if (init == CUDA_ERROR_STUB_LIBRARY) {
    return Unavailable(libs, "no_driver",
                       failure +
                           ": libcuda.so.1 is the CUDA toolkit's stub, not a "
                           "driver; take the stubs directory out of "
                           "LD_LIBRARY_PATH");
  }
  if (init != CUDA_SUCCESS) {
    return Unavailable(libs, "no_driver", failure + ": the NVIDIA driver could not be initialised");
  }
  int driver_version = 0;
  if (libs.cu.cuDriverGetVersion != nullptr &&
      SLUICE_CU_CALL(libs.cu, &failure, cuDriverGetVersion, &driver_version) == CUDA_SUCCESS) {
    libs.versions =
        fmt::format("driver for CUDA {}.{}", driver_version / 1000, driver_version % 1000 / 10);
  }
  if (SLUICE_CU_CALL(libs.cu, &failure, cuDeviceGetCount, &libs.device_count) != CUDA_SUCCESS) {
    return Unavailable(libs, "error", failure);
  }
  if (libs.device_count == 0) {
    return Unavailable(libs, "no_device",
                       "the NVIDIA driver reports no device (check nvidia-smi and "
                       "CUDA_VISIBLE_DEVICES)");
  }
  CUdevice device = 0;
  char name[256] = {};
  if (SLUICE_CU_CALL(libs.cu, &failure, cuDeviceGet, &device, 0) != CUDA_SUCCESS ||
      SLUICE_CU_CALL(libs.cu, &failure, cuDeviceGetName, name, sizeof(name) - 1, device) !=
          CUDA_SUCCESS) {
    return Unavailable(libs, "error", failure);
  }
  libs.device_name = name;
  return true;
}

// Finds and loads libcupti and resolves the entry points sluice uses; false (with the reason in
// `libs`) when there is none usable.
bool LoadCupti(Libraries& libs) {
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
    return Unavailable(
        libs, "no_libcupti",
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
      return Unavailable(libs, "no_libcupti",
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
  std::string failure;
  if (libs.cupti.cuptiGetVersion != nullptr &&
      SLUICE_CUPTI_CALL(libs.cupti, &failure, cuptiGetVersion, &cupti_version) == CUPTI_SUCCESS) {
    loaded = fmt::format("API {} ({})", cupti_version, loaded);
  }
  libs.versions += fmt::format("{}libcupti {}", libs.versions.empty() ? "" : ", ", loaded);
  return true;
}

Libraries LoadLibraries() {
  Libraries libs;
  if (!LoadDriver(libs) || !LoadCupti(libs)) return libs;
  libs.unavailable.status = "ok";
  libs.unavailable.device_name = libs.device_name;
  return libs;
}

}  // namespace

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

const Libraries& Libs() {
  static const Libraries* libs = new Libraries(LoadLibraries());
  return *libs;
}

}  // namespace sluice::tracer::internal

#endif  // SLUICE_HAVE_CUPTI
