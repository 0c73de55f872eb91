// The CUDA driver and libcupti, dlopen'ed at run time so that one binary runs with or without a
// GPU: their entry points, the one checking helper per library, and what loading them found.
// Only with the CUPTI headers (SLUICE_HAVE_CUPTI); gpu_cupti.cc is the one user.
#pragma once

#ifdef SLUICE_HAVE_CUPTI

#include <cuda.h>
#include <cupti.h>

#include <string>

#include "sluice/trace/trace.h"

namespace sluice::tracer::internal {

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
CUresult CheckCu(const DriverApi& cu, CUresult result, const char* call, std::string* failure);
#define SLUICE_CU_CALL(cu, failure, fn, ...) CheckCu((cu), (cu).fn(__VA_ARGS__), #fn, (failure))

// The one checking helper for CUPTI calls (kineto's CUPTI_CALL): returns the call's result and,
// when it is not CUPTI_SUCCESS, writes "cuptiActivityEnable: CUPTI_ERROR_INSUFFICIENT_PRIVILEGES
// (<CUPTI's message>)" to *failure. Callers decide what a result means: the end of a buffer,
// for instance, is a result too. cuptiGetResultString/ErrorMessage only describe a failure.
CUptiResult CheckCupti(const CuptiApi& api, CUptiResult result, const char* call,
                       std::string* failure);
#define SLUICE_CUPTI_CALL(api, failure, fn, ...) \
  CheckCupti((api), (api).fn(__VA_ARGS__), #fn, (failure))

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

// Loaded on the first call; leaked on purpose so that CUPTI's threads may still use it while
// the process exits.
const Libraries& Libs();

}  // namespace sluice::tracer::internal

#endif  // SLUICE_HAVE_CUPTI
