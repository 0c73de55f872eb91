// An asynchronous stage: worker threads pulling from upstream and feeding the stage's output.
//
// A parallel map stage's workers take input under one lock, and only for what must be
// sequential (the iterators upstream of the fused group); they take a sequence number there.
// The inline parallelizable maps fused into the stage (see LiveIter) then run on the worker
// outside the lock, followed by the stage's own op. Ordered output goes through a
// reorder buffer, so a worker never waits for its turn: only delivery is in order.
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

#include "common/thread_annotations.h"
#include "pipeline/internal/async_iter.h"
#include "pipeline/internal/bounded_queue.h"
#include "pipeline/internal/inline_iters.h"
#include "pipeline/internal/pipeline_impl.h"
#include "pipeline/internal/reorder_buffer.h"

namespace sluice::pipeline::internal {
namespace {

class AsyncIter final : public AsyncStageIter {
 public:
  AsyncIter(PipelineImpl& p, Stage& s, Iter* upstream, int64_t epoch, const Stage::Knobs& knobs,
            std::vector<Stage*> fused)
      : p_(p),
        s_(s),
        fused_(std::move(fused)),
        upstream_(upstream),
        epoch_(epoch),
        ordered_(s.Ordered(knobs)),
        workers_(knobs.parallelism),
        buffer_(std::max(0, knobs.buffer_size)),
        queue_(static_cast<size_t>(std::max(1, buffer_)), &s.queue),
        reorder_(static_cast<size_t>(knobs.parallelism + buffer_), &s.queue),
        slots_(s.workers.size()),
        threads_(s.workers.size()) {}
  ~AsyncIter() override {
    Cancel();
    Join(std::numeric_limits<int64_t>::max());
  }

  void Start() override { SetWorkers(workers_); }
  bool Next(Element* out) override {
    bool ok = ordered_ ? reorder_.Pop(out) : queue_.Pop(out);
    if (!ok) p_.RethrowIfFailed();
    return ok;
  }
  void Cancel() override {
    cancelled_.store(true, std::memory_order_release);
    queue_.Cancel();
    reorder_.Cancel();
  }
  bool Join(int64_t deadline_ns) override;

  void SetWorkers(int n) override;
  void SetBufferSize(int n) override {
    MutexLock lock(exit_mu_);
    buffer_ = std::max(0, n);
    queue_.SetCapacity(static_cast<size_t>(std::max(1, buffer_)));
    reorder_.SetWindow(static_cast<size_t>(target_ + buffer_));
  }
  void RetireAll() override {
    MutexLock lock(exit_mu_);
    target_ = 0;
    for (Slot& slot : slots_) slot.wanted = false;
    retiring_all_.store(true, std::memory_order_release);
  }
  bool ordered() const override { return ordered_; }
  bool InputEnded() const override { return input_ended_.load(std::memory_order_acquire); }
  bool Settled() const override {
    MutexLock lock(exit_mu_);
    int running = 0;
    for (const Slot& slot : slots_) running += slot.state == kRunning || slot.state == kRetiring;
    if (running > target_) return false;
    return ordered_ ? reorder_.WithinWindow()
                    : queue_.size() <= static_cast<size_t>(std::max(1, buffer_));
  }

 private:
  void Run(int w) {
    p_.running_threads.fetch_add(1);
    std::string thread_name = s_.name.substr(0, 15);
    pthread_setname_np(pthread_self(), thread_name.c_str());
    tl_cpu.Start(s_.workers[w].get());
    s_.workers[w]->tid.store(static_cast<int>(::gettid()), std::memory_order_relaxed);
    try {
      if (s_.props.kind == OpKind::kMap) {
        RunMap(w);
      } else {
        RunInner(w);
      }
    } catch (...) {
      p_.Fail(std::current_exception());
    }
    tl_cpu.Flush();
    s_.workers[w]->tid.store(0, std::memory_order_relaxed);
    if (--live_workers_ == 0) CloseOutput();
    p_.running_threads.fetch_sub(1);
    MutexLock lock(exit_mu_);
    slots_[static_cast<size_t>(w)].state = kExited;
    exit_cv_.NotifyAll();
  }

  // The last worker left: the consumer drains what was delivered, then sees the end.
  void CloseOutput() {
    queue_.Close();
    if (!ordered_) return;
    MutexLock lock(input_mu_);
    reorder_.Close(next_seq_);
  }

  // Whether worker `w` leaves now, at an element boundary: its slot is no longer wanted.
  bool Retire(int w) {
    Slot& slot = slots_[static_cast<size_t>(w)];
    if (slot.wanted.load(std::memory_order_acquire)) return false;
    MutexLock lock(exit_mu_);
    if (slot.wanted.load(std::memory_order_relaxed)) return false;
    slot.state = kRetiring;
    return true;
  }

  // The pipeline stops, or this epoch's chain is torn down (a downstream stream op ended the
  // epoch without reading all of its input).
  bool done() const { return p_.stopping() || cancelled_.load(std::memory_order_acquire); }

  bool Push(WorkerCounters* c, Element&& e) {
    int64_t size = static_cast<int64_t>(e.ByteSize());
    int64_t t0 = MonotonicNanos();
    bool ok = queue_.Push(std::move(e));
    c->blocked_out_ns.Add(MonotonicNanos() - t0);
    if (ok) {
      c->elements_out.Add(1);
      c->bytes_out.Add(size);
    }
    return ok;
  }

  // A source or stream op (always one worker): run the stage's own iterator on this thread.
  void RunInner(int w) {
    std::unique_ptr<Iter> inner;
    if (s_.props.kind == OpKind::kSource) {
      inner = std::make_unique<SourceIter>(s_, epoch_, w, /*count_out=*/false);
    } else {
      inner = std::make_unique<StreamIter>(s_, upstream_, epoch_, w, /*count_out=*/false);
    }
    WorkerCounters* c = s_.workers[w].get();
    Element e;
    while (!done() && !Retire(w)) {
      if (!inner->Next(&e)) {
        input_ended_.store(true, std::memory_order_release);
        return;
      }
      if (!Push(c, std::move(e))) return;
    }
  }

  // Takes the next input and its sequence number under the input lock; false at the end of
  // the input or on stop. An ordered stage first waits for the input to fit the reorder window
  // (back-pressure, counted as blocked on output). False too when worker `w` is to retire.
  bool TakeInput(int w, WorkerCounters* c, CountingInput& input, Element* in, uint64_t* seq) {
    int64_t t0 = MonotonicNanos();
    MutexLock lock(input_mu_);
    c->blocked_in_ns.Add(MonotonicNanos() - t0);
    if (input_done_ || Retire(w)) return false;
    if (ordered_) {
      t0 = MonotonicNanos();
      const bool room = reorder_.WaitForRoom(next_seq_);
      c->blocked_out_ns.Add(MonotonicNanos() - t0);
      if (!room || Retire(w)) return false;
    }
    if (!input.Next(in)) {
      input_done_ = true;
      input_ended_.store(true, std::memory_order_release);
      if (ordered_) reorder_.Close(next_seq_);
      return false;
    }
    *seq = next_seq_++;
    return true;
  }

  // Runs map `stage` (slot `w`) on every element of `items`, in place.
  void RunStage(Stage& stage, int w, std::vector<Element>& items, std::vector<Element>& scratch,
                bool count_in) {
    WorkerCounters* c = stage.workers[static_cast<size_t>(w)].get();
    auto* op = static_cast<MapOp*>(stage.op.get());
    const OpContext ctx{epoch_, w, stage.name};
    scratch.clear();
    for (Element& e : items) {
      if (count_in) c->elements_in.Add(1);
      CallTimer timer(c, true);
      CallOp(stage, [&] { op->Process(std::move(e), scratch, ctx); });
      timer.Finish();
    }
    items.swap(scratch);
  }

  // A map op on `parallelism` workers, with the fused maps above it run first on each input.
  void RunMap(int w) {
    WorkerCounters* c = s_.workers[static_cast<size_t>(w)].get();
    // The stage that pulls from upstream counts the inputs and the time blocked pulling.
    Stage& top = fused_.empty() ? s_ : *fused_.front();
    CountingInput input(upstream_, top.workers[static_cast<size_t>(w)].get());
    std::vector<Element> items, scratch;
    while (!done()) {
      Element in;
      uint64_t seq = 0;
      if (!TakeInput(w, c, input, &in, &seq)) break;
      items.clear();
      items.push_back(std::move(in));
      for (size_t f = 0; f < fused_.size(); ++f) {
        RunStage(*fused_[f], w, items, scratch, /*count_in=*/f > 0);
        WorkerCounters* fc = fused_[f]->workers[static_cast<size_t>(w)].get();
        for (const Element& e : items) CountOut(fc, e);
      }
      RunStage(s_, w, items, scratch, /*count_in=*/!fused_.empty());
      if (ordered_) {
        for (const Element& e : items) CountOut(c, e);
        reorder_.Put(seq, std::move(items));
        items = std::vector<Element>();
        continue;
      }
      for (Element& e : items) {
        if (!Push(c, std::move(e))) return;
      }
    }
  }

  enum SlotState { kIdle, kRunning, kRetiring, kExited };
  // Guarded by exit_mu_ as commented: a nested struct's members cannot name the iterator's lock.
  struct Slot {
    std::atomic<bool> wanted{false};  // written under exit_mu_; the worker polls it
    SlotState state = kIdle;          // guarded by exit_mu_
  };

  PipelineImpl& p_;
  Stage& s_;
  const std::vector<Stage*> fused_;  // the maps run first on each input, first upstream first
  Iter* upstream_;                   // the iterator above the first of them
  int64_t epoch_;
  const bool ordered_;
  const int workers_;                           // at the start
  int buffer_ SLUICE_GUARDED_BY(exit_mu_);      // set before any thread starts
  int target_ SLUICE_GUARDED_BY(exit_mu_) = 0;  // workers asked for
  BoundedQueue<Element> queue_;                 // the output of an unordered or single-worker stage
  ReorderBuffer<Element> reorder_;              // the output of an ordered parallel map stage
  std::vector<Slot> slots_;                     // one per worker slot of the stage
  // threads_[w] runs slot w.
  std::vector<std::thread> threads_ SLUICE_GUARDED_BY(exit_mu_);
  std::atomic<int> live_workers_{0};
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> retiring_all_{false};
  std::atomic<bool> input_ended_{false};

  Mutex input_mu_;  // serializes pulls from upstream
  bool input_done_ SLUICE_GUARDED_BY(input_mu_) = false;
  uint64_t next_seq_ SLUICE_GUARDED_BY(input_mu_) = 0;

  mutable Mutex exit_mu_;
  CondVar exit_cv_;
};

void AsyncIter::SetWorkers(int n) {
  MutexLock lock(exit_mu_);
  if (cancelled_.load() || retiring_all_.load()) return;
  n = std::clamp(n, 1, static_cast<int>(slots_.size()));
  target_ = n;
  reorder_.SetWindow(static_cast<size_t>(n + buffer_));
  int have = 0;
  for (const Slot& slot : slots_) have += slot.wanted.load() ? 1 : 0;
  // Surplus workers: the newest leave first.
  for (size_t w = slots_.size(); w-- > 0 && have > n;) {
    if (slots_[w].wanted.load()) {
      slots_[w].wanted.store(false, std::memory_order_release);
      --have;
    }
  }
  // Missing ones: a worker told to leave that has not yet left stays; then idle slots start.
  for (size_t w = 0; w < slots_.size() && have < n; ++w) {
    Slot& slot = slots_[w];
    if (slot.wanted.load() || slot.state != kRunning) continue;
    slot.wanted.store(true, std::memory_order_release);
    ++have;
  }
  int used = 0;
  for (size_t w = 0; w < slots_.size() && have < n; ++w) {
    Slot& slot = slots_[w];
    if (slot.state == kRunning || slot.state == kRetiring) continue;
    if (threads_[w].joinable()) threads_[w].join();  // it has left Run(): returns at once
    slot.state = kRunning;
    slot.wanted.store(true, std::memory_order_release);
    ++have;
    ++live_workers_;
    threads_[w] = std::thread([this, w] { Run(static_cast<int>(w)); });
    used = static_cast<int>(w) + 1;
  }
  s_.UseSlots(used);
  for (Stage* f : fused_) f->UseSlots(used);
}

bool AsyncIter::Join(int64_t deadline_ns) {
  int stuck = 0;
  {
    MutexLock lock(exit_mu_);
    const auto all_left = [&] {
      return std::none_of(slots_.begin(), slots_.end(), [](const Slot& s) {
        return s.state == kRunning || s.state == kRetiring;
      });
    };
    while (!all_left()) {
      const int64_t now = MonotonicNanos();
      if (now >= deadline_ns) break;
      exit_cv_.WaitFor(
          exit_mu_, std::chrono::nanoseconds(std::min<int64_t>(deadline_ns - now, 1'000'000'000)));
    }
    for (size_t w = 0; w < threads_.size(); ++w) {
      if (!threads_[w].joinable()) continue;
      if (slots_[w].state == kExited) {
        threads_[w].join();  // it has left Run(): returns at once
      } else {
        threads_[w].detach();  // still inside the op; this iterator is then kept forever
        ++stuck;
      }
    }
  }
  if (stuck > 0) p_.NoteStuck(s_.name, stuck);
  return stuck == 0;
}

}  // namespace

std::unique_ptr<AsyncStageIter> MakeAsyncIter(PipelineImpl& p, Stage& s, Iter* upstream,
                                              int64_t epoch, const Stage::Knobs& knobs,
                                              std::vector<Stage*> fused) {
  return std::make_unique<AsyncIter>(p, s, upstream, epoch, knobs, std::move(fused));
}

}  // namespace sluice::pipeline::internal
