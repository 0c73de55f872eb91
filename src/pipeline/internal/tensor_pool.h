// Recycles the buffers of mid-sized tensors (an image: tens of kilobytes to a few megabytes)
// between the ops that free them and the ops that allocate the next ones.
//
// Without it, the cost of such a buffer depends on the state of glibc's malloc: a buffer above
// its mmap threshold (128 KiB until a freed mapping raises it) is a fresh mapping, and one
// served from a thread's arena lands in memory that the arena's trim handed back to the kernel
// when a burst of frees left its top free. Either way each page is faulted in and zeroed again.
// On examples/cacheable_pipeline.json the same config replayed its cache at 270 or 430 batches/s
// depending on which thread had decoded the recording (random_resized_crop's 150 KiB outputs
// faulted 3.7 times as many pages). A buffer handed back here is handed out again already
// mapped, whatever malloc's state.
//
// Buffers are matched by exact size (a stage's outputs mostly share one: a crop, a resize); the
// idle ones are bounded by `max_idle_bytes` in all, the least recently returned dropped first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <unordered_map>
#include <vector>

#include "common/thread_annotations.h"

namespace sluice::pipeline::internal {

class TensorPool {
 public:
  // Buffers below `min_bytes` are left to malloc, whose bins serve them without faults.
  TensorPool(size_t min_bytes, size_t max_idle_bytes)
      : min_bytes_(min_bytes), max_idle_bytes_(max_idle_bytes) {}
  ~TensorPool();
  TensorPool(const TensorPool&) = delete;
  TensorPool& operator=(const TensorPool&) = delete;

  // The process's pool (never destroyed: buffers may outlive every static).
  static TensorPool& Global();

  // An uninitialized buffer of `bytes` (at least 1), handed back here when its last holder
  // lets it go.
  std::shared_ptr<uint8_t[]> Get(size_t bytes);

  // For tests: idle buffers and their bytes, and how many Gets an idle buffer served.
  size_t idle_buffers() const;
  size_t idle_bytes() const;
  uint64_t reused() const;

 private:
  struct Idle {
    size_t bytes;
    uint8_t* data;
  };
  using Lru = std::list<Idle>;  // most recently returned first

  void Put(uint8_t* data, size_t bytes);

  const size_t min_bytes_;
  const size_t max_idle_bytes_;
  mutable Mutex mu_;
  Lru lru_ SLUICE_GUARDED_BY(mu_);
  // Each size's idle buffers, oldest first (their places in lru_).
  std::unordered_map<size_t, std::vector<Lru::iterator>> by_size_ SLUICE_GUARDED_BY(mu_);
  size_t idle_bytes_ SLUICE_GUARDED_BY(mu_) = 0;
  uint64_t reused_ SLUICE_GUARDED_BY(mu_) = 0;
};

}  // namespace sluice::pipeline::internal
