// The output of an ordered parallel map stage: results parked by input sequence number and
// delivered in that order, so that no worker ever waits for its turn (tf.data's deterministic
// ParallelMap keeps its result slots the same way).
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "common/thread_annotations.h"
#include "pipeline/internal/stage_counters.h"

namespace sluice::pipeline::internal {

// A window of `window` result slots over the input sequence: input `seq` may be taken only
// while seq < next + window, where `next` is the oldest input not yet fully delivered. A worker
// that finishes early parks its outputs in their slot and takes the next input; the consumer
// pops outputs strictly in input order. So at most `window` inputs are in flight or parked
// (the stage's workers plus its buffer_size), whatever their processing times.
template <typename T>
class ReorderBuffer {
 public:
  ReorderBuffer(size_t window, QueueStats* stats)
      : window_(window < 1 ? 1 : window), stats_(stats) {}

  // A wider window admits more inputs at once; a narrower one drains: no input is admitted
  // until the delivered ones bring the oldest within it, and nothing parked is dropped.
  void SetWindow(size_t window) {
    MutexLock lock(mu_);
    window_ = window < 1 ? 1 : window;
    room_.NotifyAll();
  }
  // Inputs admitted and not yet fully delivered, against the window.
  bool WithinWindow() const {
    MutexLock lock(mu_);
    return admitted_ <= next_ + window_;
  }

  // Blocks until input `seq` is inside the window. False once cancelled.
  bool WaitForRoom(uint64_t seq) {
    MutexLock lock(mu_);
    while (seq >= next_ + window_ && !cancelled_) room_.Wait(mu_);
    if (!cancelled_ && seq + 1 > admitted_) admitted_ = seq + 1;
    return !cancelled_;
  }

  // Parks the outputs (possibly none) of input `seq`, which WaitForRoom admitted.
  void Put(uint64_t seq, std::vector<T>&& items) {
    MutexLock lock(mu_);
    if (cancelled_) return;
    Slot& slot = SlotOf(seq);
    slot.items = std::move(items);
    slot.pos = 0;
    slot.filled = true;
    parked_ += static_cast<int64_t>(slot.items.size());
    stats_->Record(parked_);
    if (seq == next_) ready_.NotifyOne();
  }

  // No input at or after `end` will come: Pop returns false once everything before is delivered.
  void Close(uint64_t end) {
    MutexLock lock(mu_);
    end_ = end;
    closed_ = true;
    ready_.NotifyAll();
  }

  // The next output in input order; blocks until its input's slot is filled. False at the end
  // (closed and delivered) or on cancel.
  bool Pop(T* out) {
    MutexLock lock(mu_);
    for (;;) {
      while (!cancelled_ && !(closed_ && next_ >= end_) && !(!slots_.empty() && slots_[0].filled)) {
        ready_.Wait(mu_);
      }
      if (cancelled_ || slots_.empty() || !slots_[0].filled) return false;
      Slot& slot = slots_[0];
      if (slot.pos < slot.items.size()) {
        *out = std::move(slot.items[slot.pos++]);
        --parked_;
        stats_->Record(parked_);
        if (slot.pos == slot.items.size()) ReleaseOldest();
        return true;
      }
      ReleaseOldest();  // an input with no outputs (a filter dropped it)
    }
  }

  // Wakes every waiter; WaitForRoom and Pop return false from now on.
  void Cancel() {
    MutexLock lock(mu_);
    cancelled_ = true;
    room_.NotifyAll();
    ready_.NotifyAll();
  }

 private:
  struct Slot {
    std::vector<T> items;
    size_t pos = 0;
    bool filled = false;
  };

  // The slot of input `seq` (not yet released).
  Slot& SlotOf(uint64_t seq) SLUICE_REQUIRES(mu_) {
    const size_t i = static_cast<size_t>(seq - next_);
    if (slots_.size() <= i) slots_.resize(i + 1);
    return slots_[i];
  }
  // Frees the oldest slot and opens the window by one.
  void ReleaseOldest() SLUICE_REQUIRES(mu_) {
    slots_.pop_front();
    ++next_;
    room_.NotifyAll();
  }

  mutable Mutex mu_;
  size_t window_ SLUICE_GUARDED_BY(mu_);
  CondVar room_;
  CondVar ready_;
  std::deque<Slot> slots_ SLUICE_GUARDED_BY(mu_);  // input seq lives in slots_[seq - next_]
  uint64_t admitted_ SLUICE_GUARDED_BY(mu_) = 0;   // one past the newest input admitted
  uint64_t next_ SLUICE_GUARDED_BY(mu_) = 0;       // the oldest input not fully delivered
  uint64_t end_ SLUICE_GUARDED_BY(mu_) = 0;        // valid once closed_
  bool closed_ SLUICE_GUARDED_BY(mu_) = false;
  bool cancelled_ SLUICE_GUARDED_BY(mu_) = false;
  int64_t parked_ SLUICE_GUARDED_BY(mu_) = 0;  // outputs parked, for the occupancy statistics
  QueueStats* stats_ SLUICE_PT_GUARDED_BY(mu_);
};

}  // namespace sluice::pipeline::internal
