#include "pipeline/internal/cuda_host.h"

#include <dlfcn.h>

#include <fmt/format.h>

namespace sluice::pipeline::internal {
namespace {

struct Loaded {
  CudaHost host;
  bool ok = false;
  std::string why;
};

}  // namespace

const CudaHost* CudaHost::Get(std::string* why) {
  static const Loaded loaded = [] {
    Loaded l;
    void* lib = nullptr;
    for (const char* name :
         {"libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so"}) {
      lib = ::dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (lib != nullptr) break;
    }
    if (lib == nullptr) {
      l.why = "the CUDA runtime (libcudart.so) is not installed";
      return l;
    }
    using CountFn = int (*)(int*);
    auto count = reinterpret_cast<CountFn>(::dlsym(lib, "cudaGetDeviceCount"));
    l.host.register_ = reinterpret_cast<RegisterFn>(::dlsym(lib, "cudaHostRegister"));
    l.host.unregister_ = reinterpret_cast<UnregisterFn>(::dlsym(lib, "cudaHostUnregister"));
    if (count == nullptr || l.host.register_ == nullptr || l.host.unregister_ == nullptr) {
      l.why = "libcudart.so lacks cudaGetDeviceCount/cudaHostRegister";
      return l;
    }
    int devices = 0;
    if (const int rc = count(&devices); rc != 0 || devices == 0) {
      l.why = rc != 0 ? fmt::format("no CUDA device (cudaGetDeviceCount: error {})", rc)
                      : std::string("no CUDA device");
      return l;
    }
    l.ok = true;
    return l;
  }();
  if (!loaded.ok) {
    if (why != nullptr) *why = loaded.why;
    return nullptr;
  }
  return &loaded.host;
}

bool CudaHost::Register(void* data, size_t bytes) const {
  return register_(data, bytes, /*cudaHostRegisterDefault=*/0) == 0;
}

void CudaHost::Unregister(void* data) const { unregister_(data); }

}  // namespace sluice::pipeline::internal
