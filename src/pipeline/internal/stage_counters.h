// Per-worker counters written without locks, the per-thread CPU accountant, and queue stats.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "sluice/common/clock.h"

namespace sluice::pipeline::internal {

// A counter with one writer at a time (a worker, or whichever thread holds the lock that
// serializes an inline stage) and any number of relaxed readers. A load and a store are
// cheaper than an atomic read-modify-write on the hot path.
class RelaxedCounter {
 public:
  void Add(int64_t delta) {
    value_.store(value_.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }
  int64_t Get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// A counter that several threads may add to at once (an atomic read-modify-write); for
// updates made rarely enough that the cost does not matter.
class SharedCounter {
 public:
  void Add(int64_t delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  int64_t Get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Counters of one worker of one stage; cache-line aligned so workers never share a line.
struct alignas(64) WorkerCounters {
  RelaxedCounter elements_in;
  RelaxedCounter elements_out;
  RelaxedCounter bytes_out;
  // CPU is handed out by each thread's CpuAccountant when it flushes, and an inline stage
  // pulled by a parallel stage's workers runs on (and is flushed from) several threads at once.
  SharedCounter cpu_ns;
  RelaxedCounter busy_ns;
  RelaxedCounter blocked_in_ns;
  RelaxedCounter blocked_out_ns;
  // Kernel thread id of the worker running this slot (0 for an inline stage, which runs on
  // whichever thread pulls it), for samplers that read per-thread /proc files.
  std::atomic<int> tid{0};
  // Writer-private running mean of one call's wall time; long calls get exact CPU timing.
  int64_t mean_call_ns = 0;
};

// Occupancy of a stage's output queue, written under the queue's mutex, read relaxed.
struct QueueStats {
  std::atomic<int64_t> size{0};
  std::atomic<int64_t> max{0};
  std::atomic<int64_t> area_ns{0};  // integral of size over time
  std::atomic<int64_t> last_change_ns{0};

  // Records a change of the occupancy to `new_size`; called by the queue's only writer at a
  // time (with the queue's mutex held).
  void Record(int64_t new_size) {
    const int64_t now = MonotonicNanos();
    const int64_t old_size = size.load(std::memory_order_relaxed);
    const int64_t last = last_change_ns.load(std::memory_order_relaxed);
    if (last != 0) {
      area_ns.store(area_ns.load(std::memory_order_relaxed) + old_size * (now - last),
                    std::memory_order_relaxed);
    }
    size.store(new_size, std::memory_order_relaxed);
    last_change_ns.store(now, std::memory_order_relaxed);
    if (new_size > max.load(std::memory_order_relaxed)) {
      max.store(new_size, std::memory_order_relaxed);
    }
  }
};

// Wall time spent in op work on the calling thread, summed over all stages; a stage subtracts
// what its upstream did on the same thread from the time it spent pulling.
inline thread_local int64_t tl_busy_ns = 0;

// Apportions the calling thread's CPU clock to the stages that ran on it. Reading the thread
// CPU clock is a system call, so it is read once per ~kFlushNs of work and the difference is
// split by each stage's share of the wall time; calls long enough to be timed exactly (see
// ChargeExact) are taken out of the split.
class CpuAccountant {
 public:
  static constexpr int64_t kFlushNs = 2'000'000;
  // Calls at least this long on average read the CPU clock around themselves.
  static constexpr int64_t kExactCallNs = 20'000;

  // Sets the baseline: CPU used before now belongs to no stage. `owner` is the stage whose
  // worker this thread is: it is charged the thread's overhead (queues, locks) that no op's
  // wall time can account for. The consumer thread has no owner.
  void Start(WorkerCounters* owner = nullptr) {
    owner_ = owner;
    entries_used_ = 0;
    pending_ns_ = 0;
    exact_ns_ = 0;
    last_cpu_ns_ = ThreadCpuNanos();
  }
  void Charge(WorkerCounters* counters, int64_t busy_ns) {
    for (size_t i = 0; i < entries_used_; ++i) {
      if (entries_[i].counters == counters) {
        entries_[i].busy_ns += busy_ns;
        pending_ns_ += busy_ns;
        if (pending_ns_ >= kFlushNs) Flush();
        return;
      }
    }
    if (entries_used_ == entries_.size()) Flush();
    entries_[entries_used_++] = {counters, busy_ns};
    pending_ns_ += busy_ns;
    if (pending_ns_ >= kFlushNs) Flush();
  }
  void ChargeExact(WorkerCounters* counters, int64_t cpu_ns) {
    counters->cpu_ns.Add(cpu_ns);
    exact_ns_ += cpu_ns;
  }
  // Reads the CPU clock and hands the CPU used since the last read to the charged stages.
  void Flush() {
    int64_t now = ThreadCpuNanos();
    int64_t delta = now - last_cpu_ns_ - exact_ns_;
    last_cpu_ns_ = now;
    exact_ns_ = 0;
    if (delta > 0 && pending_ns_ > 0) {
      // A thread cannot use more CPU than wall time, so no stage gets more than its busy time;
      // what is left over is the thread's own overhead.
      int64_t left = delta;
      for (size_t i = 0; i < entries_used_; ++i) {
        auto share = static_cast<int64_t>(static_cast<double>(delta) * entries_[i].busy_ns /
                                          static_cast<double>(pending_ns_));
        share = std::min(share, entries_[i].busy_ns);
        entries_[i].counters->cpu_ns.Add(share);
        left -= share;
      }
      if (owner_ != nullptr && left > 0) owner_->cpu_ns.Add(left);
    } else if (delta > 0 && owner_ != nullptr) {
      owner_->cpu_ns.Add(delta);
    }
    entries_used_ = 0;
    pending_ns_ = 0;
  }

 private:
  struct Entry {
    WorkerCounters* counters;
    int64_t busy_ns;
  };
  WorkerCounters* owner_ = nullptr;
  std::array<Entry, 16> entries_{};
  size_t entries_used_ = 0;
  int64_t pending_ns_ = 0;
  int64_t exact_ns_ = 0;
  int64_t last_cpu_ns_ = 0;
};

inline thread_local CpuAccountant tl_cpu;

}  // namespace sluice::pipeline::internal
