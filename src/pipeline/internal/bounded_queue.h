// The bounded, closable, cancellable queue between an asynchronous stage and its consumer.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>

#include "pipeline/internal/stage_counters.h"
#include "sluice/common/clock.h"

namespace sluice::pipeline::internal {

template <typename T>
class BoundedQueue {
 public:
  BoundedQueue(size_t capacity, QueueStats* stats) : capacity_(capacity), stats_(stats) {}

  // Blocks while full. Returns false (dropping `item`) once the queue is cancelled.
  bool Push(T&& item) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return items_.size() < capacity_ || cancelled_; });
    if (cancelled_) return false;
    items_.push_back(std::move(item));
    Record();
    not_empty_.notify_one();
    return true;
  }

  // Blocks while empty and open. Returns false at the end (closed and drained) or on cancel.
  bool Pop(T* out) {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return !items_.empty() || closed_ || cancelled_; });
    if (cancelled_ || items_.empty()) return false;
    *out = std::move(items_.front());
    items_.pop_front();
    Record();
    not_full_.notify_one();
    return true;
  }

  // No more pushes: Pop drains what is left, then returns false.
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }

  // Wakes every waiter; Push and Pop return false from now on.
  void Cancel() {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

  // Grows at once (waking blocked pushers); a smaller capacity drains: pushes wait until the
  // consumer has taken the queue below it, nothing queued is dropped.
  void SetCapacity(size_t capacity) {
    std::lock_guard lock(mu_);
    capacity_ = capacity < 1 ? 1 : capacity;
    not_full_.notify_all();
  }
  size_t capacity() const {
    std::lock_guard lock(mu_);
    return capacity_;
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return items_.size();
  }

 private:
  // Updates occupancy statistics; called with mu_ held after every change in size.
  void Record() { stats_->Record(static_cast<int64_t>(items_.size())); }

  mutable std::mutex mu_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<T> items_;     // guarded by mu_
  bool closed_ = false;     // guarded by mu_
  bool cancelled_ = false;  // guarded by mu_
  size_t capacity_;         // guarded by mu_
  QueueStats* stats_;       // written under mu_
};

}  // namespace sluice::pipeline::internal
