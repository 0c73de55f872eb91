// What a stage is for the pipeline's whole life, the per-epoch iterator interface, and the
// timing of op calls, shared by the runtime's inline iterators and its worker threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common/thread_annotations.h"
#include "pipeline/internal/stage_counters.h"
#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/pipeline/op.h"

namespace sluice::pipeline::internal {

// An op failure already tagged with its stage; passes through downstream stages untouched.
class StageFailure : public Error {
 public:
  using Error::Error;
};

// What a stage is, for the whole life of the pipeline (its per-epoch iterators come and go).
struct Stage {
  size_t index = 0;
  std::string name;
  std::string op_name;
  std::unique_ptr<Op> op;
  OpProperties props;
  // The knobs: set at creation, changed by Pipeline::Apply (any thread), read by snapshots.
  std::atomic<int> parallelism{1};
  std::atomic<int> buffer_size{0};
  std::atomic<bool> deterministic{true};
  std::atomic<bool> async{false};
  bool allow_reorder = false;  // the config permits `deterministic` false
  // Map fusion: an inline, parallelizable map stage directly above a parallel map stage (or
  // above another such stage) runs on that stage's workers, outside their input lock. `fused`
  // lists them on the parallel stage, first upstream first; `fused_into` points back. What is in
  // force now: set when the parallel stage's iterator is built (LiveIter), under the pipeline's
  // stages_mu, which readers hold too.
  std::vector<Stage*> fused;
  Stage* fused_into = nullptr;
  // One slot per thread that runs the stage: its workers, the workers of the stage it is fused
  // into, or one for an inline stage.
  // A parallelizable map stage has a slot for as many workers as Apply may give it; the first
  // `slots_used` are the ones ever used (what snapshots report).
  std::vector<std::unique_ptr<WorkerCounters>> workers;
  std::atomic<int> slots_used{0};
  QueueStats queue;

  // The knobs as one consistent reading, with the generation SetKnobs gave them.
  struct Knobs {
    int parallelism = 1;
    int buffer_size = 0;
    bool deterministic = true;
    uint64_t generation = 0;
    bool wants_async() const { return parallelism > 1 || buffer_size > 0; }
  };
  mutable Mutex knob_mu;                     // serializes knob writes against consistent reads
  std::atomic<uint64_t> knob_generation{0};  // bumped by every change
  Knobs ReadKnobs() const {
    MutexLock lock(knob_mu);
    return {parallelism.load(), buffer_size.load(), deterministic.load(), knob_generation.load()};
  }
  // Whether parallel workers with these knobs deliver through a reorder buffer.
  bool Ordered(const Knobs& k) const {
    return k.deterministic && k.parallelism > 1 && props.kind == OpKind::kMap;
  }
  bool WantsAsync() const { return ReadKnobs().wants_async(); }

  // Marks slots [0, n) as used.
  void UseSlots(int n) {
    int used = slots_used.load();
    while (used < n && !slots_used.compare_exchange_weak(used, n)) {
    }
  }
};

// Runs `fn` (an op call) and tags any exception with the stage's name.
template <typename Fn>
auto CallOp(const Stage& stage, Fn&& fn) {
  try {
    return fn();
  } catch (const StageFailure&) {
    throw;
  } catch (const std::exception& e) {
    throw StageFailure(fmt::format("stage '{}' ({}): {}", stage.name, stage.op_name, e.what()));
  } catch (...) {
    throw StageFailure(
        fmt::format("stage '{}' ({}): unknown exception", stage.name, stage.op_name));
  }
}

// A per-epoch iterator over one stage's outputs.
class Iter {
 public:
  virtual ~Iter() = default;
  virtual bool Next(Element* out) = 0;
  virtual void Start() {}
  virtual void Cancel() {}
  // Waits until `deadline_ns` (MonotonicNanos) for the iterator's threads; false when some are
  // still running then (they are detached and the iterator must be kept alive).
  virtual bool Join(int64_t /*deadline_ns*/) { return true; }
};

// Records a finished call of an op: wall time, and CPU (exact for long calls, else apportioned).
class CallTimer {
 public:
  CallTimer(WorkerCounters* c, bool may_time_exactly)
      : c_(c),
        exact_(may_time_exactly && c->mean_call_ns >= internal::CpuAccountant::kExactCallNs),
        cpu0_(exact_ ? ThreadCpuNanos() : 0),
        t0_(MonotonicNanos()) {}
  // `excluded_ns`: time inside the call spent pulling upstream (charged to the upstream).
  void Finish(int64_t excluded_ns = 0) {
    int64_t busy = MonotonicNanos() - t0_ - excluded_ns;
    if (busy < 0) busy = 0;
    c_->busy_ns.Add(busy);
    tl_busy_ns += busy;
    c_->mean_call_ns += (busy - c_->mean_call_ns) / 8;
    if (exact_) {
      tl_cpu.ChargeExact(c_, ThreadCpuNanos() - cpu0_);
    } else {
      tl_cpu.Charge(c_, busy);
    }
  }

 private:
  WorkerCounters* c_;
  bool exact_;
  int64_t cpu0_;
  int64_t t0_;
};

inline void CountOut(WorkerCounters* c, const Element& e) {
  c->elements_out.Add(1);
  c->bytes_out.Add(static_cast<int64_t>(e.ByteSize()));
}

}  // namespace sluice::pipeline::internal
