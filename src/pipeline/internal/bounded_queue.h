// The bounded, closable, cancellable queue between an asynchronous stage and its consumer.
#pragma once

#include <cstdint>
#include <deque>

#include "common/thread_annotations.h"
#include "pipeline/internal/stage_counters.h"
#include "sluice/common/clock.h"

namespace sluice::pipeline::internal {

template <typename T>
class BoundedQueue {
 public:
  BoundedQueue(size_t capacity, QueueStats* stats) : capacity_(capacity), stats_(stats) {}

  // Blocks while full. Returns false (dropping `item`) once the queue is cancelled.
  bool Push(T&& item) {
    MutexLock lock(mu_);
    while (items_.size() >= capacity_ && !cancelled_) not_full_.Wait(mu_);
    if (cancelled_) return false;
    items_.push_back(std::move(item));
    Record();
    not_empty_.NotifyOne();
    return true;
  }

  // Blocks while empty and open. Returns false at the end (closed and drained) or on cancel.
  bool Pop(T* out) {
    MutexLock lock(mu_);
    while (items_.empty() && !closed_ && !cancelled_) not_empty_.Wait(mu_);
    if (cancelled_ || items_.empty()) return false;
    *out = std::move(items_.front());
    items_.pop_front();
    Record();
    not_full_.NotifyOne();
    return true;
  }

  // No more pushes: Pop drains what is left, then returns false.
  void Close() {
    MutexLock lock(mu_);
    closed_ = true;
    not_empty_.NotifyAll();
  }

  // Wakes every waiter; Push and Pop return false from now on.
  void Cancel() {
    MutexLock lock(mu_);
    cancelled_ = true;
    not_empty_.NotifyAll();
    not_full_.NotifyAll();
  }

  // Grows at once (waking blocked pushers); a smaller capacity drains: pushes wait until the
  // consumer has taken the queue below it, nothing queued is dropped.
  void SetCapacity(size_t capacity) {
    MutexLock lock(mu_);
    capacity_ = capacity < 1 ? 1 : capacity;
    not_full_.NotifyAll();
  }
  size_t capacity() const {
    MutexLock lock(mu_);
    return capacity_;
  }
  size_t size() const {
    MutexLock lock(mu_);
    return items_.size();
  }

 private:
  // Updates occupancy statistics after every change in size.
  void Record() SLUICE_REQUIRES(mu_) { stats_->Record(static_cast<int64_t>(items_.size())); }

  mutable Mutex mu_;
  CondVar not_full_;
  CondVar not_empty_;
  std::deque<T> items_ SLUICE_GUARDED_BY(mu_);
  bool closed_ SLUICE_GUARDED_BY(mu_) = false;
  bool cancelled_ SLUICE_GUARDED_BY(mu_) = false;
  size_t capacity_ SLUICE_GUARDED_BY(mu_);
  QueueStats* stats_ SLUICE_PT_GUARDED_BY(mu_);
};

}  // namespace sluice::pipeline::internal
