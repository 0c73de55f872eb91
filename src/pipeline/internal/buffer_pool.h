// Reuses large output buffers (a batch's tensor) once their last holder lets them go.
//
// A fresh multi-megabyte allocation is served by mmap and then faulted in page by page (the
// kernel zeroes each page first): for a batch of 64 float32 images (38 MB) that costs about as
// much as copying the images in. A buffer freed by the consumer goes back to its pool and is
// handed out again already mapped. The pool keeps at most `max_free` idle buffers, so its memory
// beyond the buffers in use is bounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/thread_annotations.h"
#include "pipeline/internal/cuda_host.h"

namespace sluice::pipeline::internal {

class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  // Buffers below `min_bytes` are not pooled (malloc serves them well).
  // With `pin`, every pooled buffer is page-locked through the CUDA runtime while it lives.
  static std::shared_ptr<BufferPool> Create(size_t max_free, size_t min_bytes = 1 << 20,
                                            const CudaHost* pin = nullptr) {
    return std::shared_ptr<BufferPool>(new BufferPool(max_free, min_bytes, pin));
  }
  ~BufferPool() {
    for (const Free& f : free_) Release(pin_, f.data);
  }
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // An uninitialized buffer of `bytes`; returned to this pool (while it lives) when released.
  std::shared_ptr<uint8_t[]> Get(size_t bytes) {
    if (bytes < min_bytes_) return std::make_shared_for_overwrite<uint8_t[]>(bytes);
    uint8_t* data = nullptr;
    {
      MutexLock lock(mu_);
      for (size_t i = 0; i < free_.size(); ++i) {
        if (free_[i].bytes == bytes) {
          data = free_[i].data;
          free_[i] = free_.back();
          free_.pop_back();
          break;
        }
      }
    }
    if (data == nullptr) {
      data = new uint8_t[bytes];
      if (pin_ != nullptr) pin_->Register(data, bytes);
    }
    std::weak_ptr<BufferPool> pool = weak_from_this();
    return std::shared_ptr<uint8_t[]>(data, [pool, bytes, pin = pin_](uint8_t* p) {
      if (auto alive = pool.lock()) {
        alive->Put(p, bytes);
      } else {
        Release(pin, p);
      }
    });
  }

  size_t idle() const {
    MutexLock lock(mu_);
    return free_.size();
  }

 private:
  BufferPool(size_t max_free, size_t min_bytes, const CudaHost* pin)
      : max_free_(max_free), min_bytes_(min_bytes), pin_(pin) {}

  static void Release(const CudaHost* pin, uint8_t* data) {
    if (pin != nullptr) pin->Unregister(data);
    delete[] data;
  }

  void Put(uint8_t* data, size_t bytes) {
    {
      MutexLock lock(mu_);
      if (free_.size() < max_free_) {
        free_.push_back({data, bytes});
        return;
      }
    }
    Release(pin_, data);
  }

  struct Free {
    uint8_t* data;
    size_t bytes;
  };
  const size_t max_free_;
  const size_t min_bytes_;
  const CudaHost* const pin_;  // page-locks pooled buffers when set
  mutable Mutex mu_;
  std::vector<Free> free_ SLUICE_GUARDED_BY(mu_);
};

}  // namespace sluice::pipeline::internal
