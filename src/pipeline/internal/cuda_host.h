// Page-locking host memory through the CUDA runtime, loaded with dlopen so that the runtime
// needs no CUDA at build or run time: PipelineOptions::pin_memory. A pinned batch is copied to
// the GPU by DMA without a staging copy, and asynchronously (`tensor.to("cuda",
// non_blocking=True)`).
#pragma once

#include <cstddef>
#include <string>

namespace sluice::pipeline::internal {

class CudaHost {
 public:
  // The CUDA runtime, loaded once per process; nullptr, with `why` in words, when there is no
  // libcudart or no CUDA device.
  static const CudaHost* Get(std::string* why);
  // cudaHostRegister: false (the memory stays pageable) when the runtime refuses.
  bool Register(void* data, size_t bytes) const;
  void Unregister(void* data) const;

 private:
  using RegisterFn = int (*)(void*, size_t, unsigned);
  using UnregisterFn = int (*)(void*);
  RegisterFn register_ = nullptr;
  UnregisterFn unregister_ = nullptr;
};

}  // namespace sluice::pipeline::internal
