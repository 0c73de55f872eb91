// An asynchronous stage: worker threads pulling from upstream and feeding the stage's output.
//
// A parallel map stage's workers take input under one lock, and only for what must be
// sequential (the iterators upstream of the fused group); they take a sequence number there.
// The inline parallelizable maps directly above the stage (its `fused` stages) then run on the
// worker outside the lock, followed by the stage's own op. Ordered output goes through a
// reorder buffer, so a worker never waits for its turn: only delivery is in order.
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include "pipeline/internal/bounded_queue.h"
#include "pipeline/internal/inline_iters.h"
#include "pipeline/internal/pipeline_impl.h"
#include "pipeline/internal/reorder_buffer.h"

namespace sluice::pipeline::internal {
namespace {

class AsyncIter final : public Iter {
 public:
  AsyncIter(PipelineImpl& p, Stage& s, Iter* upstream, int64_t epoch)
      : p_(p),
        s_(s),
        upstream_(upstream),
        epoch_(epoch),
        ordered_(s.deterministic && s.parallelism > 1 && s.props.kind == OpKind::kMap),
        queue_(static_cast<size_t>(std::max(1, s.buffer_size)), &s.queue),
        reorder_(static_cast<size_t>(s.parallelism + std::max(0, s.buffer_size)), &s.queue) {}
  ~AsyncIter() override {
    Cancel();
    Join(std::numeric_limits<int64_t>::max());
  }

  void Start() override {
    live_workers_ = s_.parallelism;
    exited_.assign(static_cast<size_t>(s_.parallelism), false);
    for (int w = 0; w < s_.parallelism; ++w) {
      threads_.emplace_back([this, w] { Run(w); });
    }
  }
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
  bool Join(int64_t deadline_ns) override {
    std::unique_lock lock(exit_mu_);
    const auto all_left = [&] {
      return std::all_of(exited_.begin(), exited_.end(), [](bool e) { return e; });
    };
    while (!all_left()) {
      const int64_t now = MonotonicNanos();
      if (now >= deadline_ns) break;
      exit_cv_.wait_for(
          lock, std::chrono::nanoseconds(std::min<int64_t>(deadline_ns - now, 1'000'000'000)));
    }
    int stuck = 0;
    for (size_t w = 0; w < threads_.size(); ++w) {
      if (!threads_[w].joinable()) continue;
      if (exited_[w]) {
        threads_[w].join();  // it has left Run(): returns at once
      } else {
        threads_[w].detach();  // still inside the op; this iterator is then kept forever
        ++stuck;
      }
    }
    lock.unlock();
    if (stuck > 0) p_.NoteStuck(s_.name, stuck);
    return stuck == 0;
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
    if (--live_workers_ == 0) queue_.Close();
    s_.workers[w]->tid.store(0, std::memory_order_relaxed);
    p_.running_threads.fetch_sub(1);
    std::lock_guard lock(exit_mu_);
    exited_[static_cast<size_t>(w)] = true;
    exit_cv_.notify_all();
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
    while (!done() && inner->Next(&e)) {
      if (!Push(c, std::move(e))) return;
    }
  }

  // Takes the next input and its sequence number under the input lock; false at the end of
  // the input or on stop. An ordered stage first waits for the input to fit the reorder window
  // (back-pressure, counted as blocked on output).
  bool TakeInput(WorkerCounters* c, CountingInput& input, Element* in, uint64_t* seq) {
    int64_t t0 = MonotonicNanos();
    std::unique_lock lock(input_mu_);
    c->blocked_in_ns.Add(MonotonicNanos() - t0);
    if (input_done_) return false;
    if (ordered_) {
      t0 = MonotonicNanos();
      const bool room = reorder_.WaitForRoom(next_seq_);
      c->blocked_out_ns.Add(MonotonicNanos() - t0);
      if (!room) return false;
    }
    if (!input.Next(in)) {
      input_done_ = true;
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
    Stage& top = s_.fused.empty() ? s_ : *s_.fused.front();
    CountingInput input(upstream_, top.workers[static_cast<size_t>(w)].get());
    std::vector<Element> items, scratch;
    while (!done()) {
      Element in;
      uint64_t seq = 0;
      if (!TakeInput(c, input, &in, &seq)) break;
      items.clear();
      items.push_back(std::move(in));
      for (size_t f = 0; f < s_.fused.size(); ++f) {
        RunStage(*s_.fused[f], w, items, scratch, /*count_in=*/f > 0);
        WorkerCounters* fc = s_.fused[f]->workers[static_cast<size_t>(w)].get();
        for (const Element& e : items) CountOut(fc, e);
      }
      RunStage(s_, w, items, scratch, /*count_in=*/!s_.fused.empty());
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

  PipelineImpl& p_;
  Stage& s_;
  Iter* upstream_;
  int64_t epoch_;
  const bool ordered_;
  BoundedQueue<Element> queue_;     // the output of an unordered or single-worker stage
  ReorderBuffer<Element> reorder_;  // the output of an ordered parallel map stage
  std::vector<std::thread> threads_;
  std::atomic<int> live_workers_{0};
  std::atomic<bool> cancelled_{false};

  std::mutex input_mu_;      // serializes pulls from upstream
  bool input_done_ = false;  // guarded by input_mu_
  uint64_t next_seq_ = 0;    // guarded by input_mu_

  std::mutex exit_mu_;
  std::condition_variable exit_cv_;
  std::vector<bool> exited_;  // guarded by exit_mu_: worker w has left Run()
};

}  // namespace

std::unique_ptr<Iter> MakeAsyncIter(PipelineImpl& p, Stage& s, Iter* upstream, int64_t epoch) {
  return std::make_unique<AsyncIter>(p, s, upstream, epoch);
}

}  // namespace sluice::pipeline::internal
