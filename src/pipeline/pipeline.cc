// The runtime: builds stages from a config and runs them inline or on worker threads.
//
// Execution model (tf.data's iterator model): every stage is an iterator pulled by its
// consumer. A stage with parallelism 1 and buffer_size 0 runs inline on the thread that pulls
// it. Any other stage is asynchronous: `parallelism` workers pull from upstream (serialized by
// a lock), run the op, and push into a bounded queue of `buffer_size` that the consumer pops.
// An epoch is one pass of the chain; the chain is rebuilt for each epoch, ops persist.
#include "sluice/pipeline/pipeline.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <limits>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "pipeline/internal/bounded_queue.h"
#include "pipeline/internal/registry.h"
#include "pipeline/internal/stage_counters.h"
#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/common/strings.h"

namespace sluice::pipeline {
namespace {

using internal::BoundedQueue;
using internal::QueueStats;
using internal::tl_busy_ns;
using internal::tl_cpu;
using internal::WorkerCounters;

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
  int parallelism = 1;
  int buffer_size = 0;
  bool deterministic = true;
  bool async = false;
  std::vector<std::unique_ptr<WorkerCounters>> workers;  // one slot per worker (1 inline)
  QueueStats queue;
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

void CountOut(WorkerCounters* c, const Element& e) {
  c->elements_out.Add(1);
  c->bytes_out.Add(static_cast<int64_t>(e.ByteSize()));
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

// The view of an upstream iterator a stage pulls through: counts inputs and time blocked.
class CountingInput final : public Input {
 public:
  CountingInput(Iter* upstream, WorkerCounters* c) : upstream_(upstream), c_(c) {}
  bool Next(Element* out) override {
    int64_t busy0 = tl_busy_ns;
    int64_t t0 = MonotonicNanos();
    bool ok = upstream_->Next(out);
    int64_t spent = MonotonicNanos() - t0;
    pulled_ns_ += spent;
    c_->blocked_in_ns.Add(std::max<int64_t>(0, spent - (tl_busy_ns - busy0)));
    if (ok) c_->elements_in.Add(1);
    return ok;
  }
  int64_t TakePulledNanos() { return std::exchange(pulled_ns_, 0); }
  void set_counters(WorkerCounters* c) { c_ = c; }

 private:
  Iter* upstream_;
  WorkerCounters* c_;
  int64_t pulled_ns_ = 0;
};

class SourceIter final : public Iter {
 public:
  // `count_out`: false when an asynchronous stage counts outputs as it queues them.
  SourceIter(Stage& s, int64_t epoch, int worker, bool count_out = true)
      : s_(s),
        op_(static_cast<SourceOp*>(s.op.get())),
        c_(s.workers[worker].get()),
        count_out_(count_out) {
    ctx_ = {epoch, worker, s.name};
  }
  bool Next(Element* out) override {
    CallTimer timer(c_, true);
    bool ok = CallOp(s_, [&] { return op_->Next(out, ctx_); });
    timer.Finish();
    if (ok && count_out_) CountOut(c_, *out);
    return ok;
  }

 private:
  Stage& s_;
  SourceOp* op_;
  WorkerCounters* c_;
  bool count_out_;
  OpContext ctx_;
};

class MapIter final : public Iter {
 public:
  MapIter(Stage& s, Iter* upstream, int64_t epoch)
      : s_(s), op_(static_cast<MapOp*>(s.op.get())), c_(s.workers[0].get()), in_(upstream, c_) {
    ctx_ = {epoch, 0, s.name};
  }
  bool Next(Element* out) override {
    while (pending_pos_ == pending_.size()) {
      pending_.clear();
      pending_pos_ = 0;
      Element e;
      if (!in_.Next(&e)) return false;
      CallTimer timer(c_, true);
      CallOp(s_, [&] { op_->Process(std::move(e), pending_, ctx_); });
      timer.Finish();
    }
    *out = std::move(pending_[pending_pos_++]);
    CountOut(c_, *out);
    return true;
  }

 private:
  Stage& s_;
  MapOp* op_;
  WorkerCounters* c_;
  CountingInput in_;
  OpContext ctx_;
  std::vector<Element> pending_;
  size_t pending_pos_ = 0;
};

class StreamIter final : public Iter {
 public:
  StreamIter(Stage& s, Iter* upstream, int64_t epoch, int worker, bool count_out = true)
      : s_(s),
        op_(static_cast<StreamOp*>(s.op.get())),
        c_(s.workers[worker].get()),
        count_out_(count_out),
        in_(upstream, c_) {
    ctx_ = {epoch, worker, s.name};
  }
  bool Next(Element* out) override {
    // Stream ops pull inside their call, so CPU is apportioned rather than timed exactly.
    CallTimer timer(c_, false);
    bool ok = CallOp(s_, [&] { return op_->Next(in_, out, ctx_); });
    timer.Finish(in_.TakePulledNanos());
    if (ok && count_out_) CountOut(c_, *out);
    return ok;
  }

 private:
  Stage& s_;
  StreamOp* op_;
  WorkerCounters* c_;
  bool count_out_;
  CountingInput in_;
  OpContext ctx_;
};

}  // namespace

// Shared by the pipeline and its worker threads.
class PipelineImpl {
 public:
  void Fail(std::exception_ptr error) {
    {
      std::lock_guard lock(error_mu_);
      if (!error_) error_ = error;
    }
    failed_.store(true, std::memory_order_release);
    CancelChain();
  }
  void RethrowIfFailed() {
    if (!failed_.load(std::memory_order_acquire)) return;
    std::lock_guard lock(error_mu_);
    std::rethrow_exception(error_);
  }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  void CancelChain() {
    stopping_.store(true, std::memory_order_release);
    std::lock_guard lock(chain_mu_);
    for (auto& it : chain_) it->Cancel();
  }

  bool Next(Element* out);
  void StartEpoch();
  // Cancels and joins the current chain. When a thread outlives `deadline_ns`, the chain is kept
  // (never destroyed) and its stage named in stuck_stages_.
  void TearDownChain(int64_t deadline_ns = std::numeric_limits<int64_t>::max());
  void Stop();
  // True once a thread was left running: the pipeline's state must then never be destroyed.
  bool abandoned() const { return abandoned_.load(std::memory_order_acquire); }
  std::vector<std::string> StuckStages() const {
    std::lock_guard lock(stuck_mu_);
    return stuck_stages_;
  }
  void NoteStuck(const std::string& stage, int threads);
  PipelineSnapshot Snapshot() const;

  std::string name;
  uint64_t id = 0;
  std::string config_path;
  std::string config_text;
  std::vector<std::unique_ptr<Stage>> stages;
  int64_t epochs = 1;
  int64_t stop_timeout_ns = 5'000'000'000;
  std::atomic<int> running_threads{0};

  // Consumer counters: written by the consumer thread, read by snapshots.
  internal::RelaxedCounter next_calls, wait_ns, between_ns;
  int64_t last_return_ns = 0;  // consumer-thread private

  std::atomic<int64_t> start_ns{0};
  std::atomic<int64_t> epoch{0};
  std::atomic<bool> finished{false};

 private:
  std::mutex error_mu_;
  std::exception_ptr error_;  // guarded by error_mu_
  std::atomic<bool> failed_{false};
  std::atomic<bool> stopping_{false};
  std::mutex chain_mu_;                       // guards chain_ against Cancel from other threads
  std::vector<std::unique_ptr<Iter>> chain_;  // per-epoch iterators, source first
  std::mutex consumer_mu_;                    // held by Next for its whole call, and by Stop
  bool started_ = false;                      // guarded by consumer_mu_
  bool consumer_runs_stages_ = false;         // guarded by consumer_mu_; the last stage is inline
  bool epoch_had_output_ = false;             // guarded by consumer_mu_
  std::atomic<bool> abandoned_{false};
  mutable std::mutex stuck_mu_;
  std::vector<std::string> stuck_stages_;           // guarded by stuck_mu_
  std::vector<std::unique_ptr<Iter>> kept_chains_;  // guarded by stuck_mu_; never destroyed
};

namespace {

// An asynchronous stage: worker threads feeding a bounded queue.
class AsyncIter final : public Iter {
 public:
  AsyncIter(PipelineImpl& p, Stage& s, Iter* upstream, int64_t epoch)
      : p_(p),
        s_(s),
        upstream_(upstream),
        epoch_(epoch),
        queue_(static_cast<size_t>(std::max(1, s.buffer_size)), &s.queue),
        ordered_(s.deterministic && s.parallelism > 1) {}
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
    bool ok = queue_.Pop(out);
    if (!ok) p_.RethrowIfFailed();
    return ok;
  }
  void Cancel() override {
    // Set before taking order_mu_: a worker waiting for its turn re-checks it under the lock.
    cancelled_.store(true, std::memory_order_release);
    queue_.Cancel();
    std::lock_guard lock(order_mu_);
    order_cv_.notify_all();
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
  // epoch without reading all of its input): a worker waiting for its turn must not wait on.
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

  // A map op on `parallelism` workers; in order when the stage is deterministic.
  void RunMap(int w) {
    WorkerCounters* c = s_.workers[w].get();
    auto* op = static_cast<MapOp*>(s_.op.get());
    OpContext ctx{epoch_, w, s_.name};
    CountingInput input(upstream_, c);
    std::vector<Element> outs;
    while (!done()) {
      Element in;
      uint64_t seq = 0;
      {
        int64_t t0 = MonotonicNanos();
        std::unique_lock lock(input_mu_);
        c->blocked_in_ns.Add(MonotonicNanos() - t0);
        if (input_done_) break;
        if (!input.Next(&in)) {
          input_done_ = true;
          break;
        }
        seq = next_seq_++;
      }
      outs.clear();
      CallTimer timer(c, true);
      CallOp(s_, [&] { op->Process(std::move(in), outs, ctx); });
      timer.Finish();
      if (ordered_) {
        int64_t t0 = MonotonicNanos();
        std::unique_lock lock(order_mu_);
        order_cv_.wait(lock, [&] { return next_emit_ == seq || done(); });
        c->blocked_out_ns.Add(MonotonicNanos() - t0);
        if (next_emit_ != seq) return;
      }
      for (Element& e : outs) {
        if (!Push(c, std::move(e))) return;
      }
      if (ordered_) {
        std::lock_guard lock(order_mu_);
        ++next_emit_;
        order_cv_.notify_all();
      }
    }
  }

  PipelineImpl& p_;
  Stage& s_;
  Iter* upstream_;
  int64_t epoch_;
  BoundedQueue<Element> queue_;
  const bool ordered_;
  std::vector<std::thread> threads_;
  std::atomic<int> live_workers_{0};
  std::atomic<bool> cancelled_{false};

  std::mutex input_mu_;      // serializes pulls from upstream
  bool input_done_ = false;  // guarded by input_mu_
  uint64_t next_seq_ = 0;    // guarded by input_mu_

  std::mutex order_mu_;
  std::condition_variable order_cv_;
  uint64_t next_emit_ = 0;  // guarded by order_mu_

  std::mutex exit_mu_;
  std::condition_variable exit_cv_;
  std::vector<bool> exited_;  // guarded by exit_mu_: worker w has left Run()
};

}  // namespace

void PipelineImpl::StartEpoch() {
  for (auto& s : stages) {
    CallOp(*s, [&] { s->op->BeginEpoch(epoch); });
  }
  // A stage that needs no input this epoch (a filled cache) cuts off everything upstream.
  size_t first = 0;
  for (size_t i = stages.size(); i-- > 0;) {
    auto* stream = dynamic_cast<StreamOp*>(stages[i]->op.get());
    if (stream != nullptr && !stream->WantsInput()) {
      first = i;
      break;
    }
  }
  std::vector<std::unique_ptr<Iter>> chain;
  Iter* upstream = nullptr;
  for (size_t i = first; i < stages.size(); ++i) {
    Stage& s = *stages[i];
    std::unique_ptr<Iter> it;
    if (s.async) {
      it = std::make_unique<AsyncIter>(*this, s, upstream, epoch);
    } else if (s.props.kind == OpKind::kSource) {
      it = std::make_unique<SourceIter>(s, epoch, 0);
    } else if (s.props.kind == OpKind::kMap) {
      it = std::make_unique<MapIter>(s, upstream, epoch);
    } else {
      it = std::make_unique<StreamIter>(s, upstream, epoch, 0);
    }
    upstream = it.get();
    chain.push_back(std::move(it));
  }
  {
    std::lock_guard lock(chain_mu_);
    chain_ = std::move(chain);
  }
  for (auto& it : chain_) it->Start();
}

void PipelineImpl::TearDownChain(int64_t deadline_ns) {
  std::vector<std::unique_ptr<Iter>> chain;
  {
    std::lock_guard lock(chain_mu_);
    chain.swap(chain_);
  }
  for (auto& it : chain) it->Cancel();
  bool joined = true;
  for (auto& it : chain) joined = it->Join(deadline_ns) && joined;
  if (!joined) {
    // A detached worker may still use any iterator of the chain (its upstream, its queue) and
    // the stages: keep them all. The memory is lost; a use after free would be worse.
    std::lock_guard lock(stuck_mu_);
    for (auto& it : chain) kept_chains_.push_back(std::move(it));
    return;
  }
  // Destroy consumer-side iterators last-first: downstream ones point at upstream ones.
  while (!chain.empty()) chain.pop_back();
}

bool PipelineImpl::Next(Element* out) {
  // Held for the whole call: Stop() from another thread tears the chain down only once the
  // consumer has left (it runs inline stages on this thread, and pops from the last queue).
  std::lock_guard consumer(consumer_mu_);
  int64_t enter = MonotonicNanos();
  if (last_return_ns != 0) between_ns.Add(enter - last_return_ns);
  RethrowIfFailed();
  if (finished.load(std::memory_order_relaxed) || stopping()) return false;
  bool ok = false;
  try {
    if (!started_) {
      started_ = true;
      start_ns.store(enter, std::memory_order_relaxed);
      consumer_runs_stages_ = !stages.back()->async;
      // Inside the try: an op failing to begin its epoch fails the pipeline like any op error.
      StartEpoch();
    }
    if (consumer_runs_stages_) tl_cpu.Start();
    for (;;) {
      Iter* last;
      {
        std::lock_guard lock(chain_mu_);
        last = chain_.back().get();
      }
      ok = last->Next(out);
      if (ok) {
        epoch_had_output_ = true;
        break;
      }
      RethrowIfFailed();
      if (stopping()) break;
      TearDownChain();
      int64_t next_epoch = epoch.load() + 1;
      // Repeating forever an epoch that delivered nothing would spin here without returning;
      // like tf.data's repeat(), end instead.
      if ((epochs >= 0 && next_epoch >= epochs) || (epochs < 0 && !epoch_had_output_)) {
        finished.store(true);
        break;
      }
      epoch.store(next_epoch);
      epoch_had_output_ = false;
      StartEpoch();
    }
  } catch (...) {
    if (consumer_runs_stages_) tl_cpu.Flush();
    Fail(std::current_exception());
    throw;
  }
  if (consumer_runs_stages_) tl_cpu.Flush();
  int64_t leave = MonotonicNanos();
  wait_ns.Add(leave - enter);
  last_return_ns = leave;
  if (ok) next_calls.Add(1);
  return ok;
}

void PipelineImpl::NoteStuck(const std::string& stage, int threads) {
  abandoned_.store(true, std::memory_order_release);
  {
    std::lock_guard lock(stuck_mu_);
    stuck_stages_.push_back(stage);
  }
  const std::string who =
      stage == "consumer"
          ? "the thread calling Next() is still inside an inline stage's op"
          : fmt::format("stage '{}' still has {} thread(s) inside its op", stage, threads);
  std::fprintf(stderr,
               "sluice: pipeline '%s': %s %.1f s after stop; left running, and the pipeline's "
               "memory is kept for it\n",
               name.c_str(), who.c_str(), stop_timeout_ns * 1e-9);
}

void PipelineImpl::Stop() {
  CancelChain();  // wakes a consumer blocked in Next, which then returns false
  const int64_t deadline = MonotonicNanos() + stop_timeout_ns;
  // Polls try_lock rather than using a timed mutex, whose clocklock ThreadSanitizer cannot see.
  std::unique_lock consumer(consumer_mu_, std::defer_lock);
  while (!consumer.try_lock()) {
    if (MonotonicNanos() >= deadline) {
      // The consumer's thread is inside Next(), in an inline stage's op: it will see the stop
      // when the op returns. The chain it runs is kept (the destructor keeps this whole object).
      NoteStuck("consumer", 1);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  TearDownChain(deadline);
}

PipelineSnapshot PipelineImpl::Snapshot() const {
  PipelineSnapshot snap;
  snap.name = name;
  int64_t start = start_ns.load(std::memory_order_relaxed);
  int64_t now = MonotonicNanos();
  snap.seconds = start == 0 ? 0.0 : (now - start) * 1e-9;
  snap.epoch = epoch.load(std::memory_order_relaxed);
  snap.finished = finished.load(std::memory_order_relaxed);
  for (const auto& s : stages) {
    StageSnapshot st;
    st.name = s->name;
    st.op = s->op_name;
    st.properties = s->props;
    st.parallelism = s->parallelism;
    st.buffer_size = s->buffer_size;
    st.deterministic = s->deterministic;
    st.async = s->async;
    for (const auto& w : s->workers) {
      WorkerSnapshot ws;
      ws.tid = w->tid.load(std::memory_order_relaxed);
      ws.elements_out = w->elements_out.Get();
      ws.busy_seconds = w->busy_ns.Get() * 1e-9;
      ws.cpu_seconds = w->cpu_ns.Get() * 1e-9;
      st.elements_in += w->elements_in.Get();
      st.elements_out += ws.elements_out;
      st.bytes_out += w->bytes_out.Get();
      st.cpu_seconds += ws.cpu_seconds;
      st.busy_seconds += ws.busy_seconds;
      st.blocked_input_seconds += w->blocked_in_ns.Get() * 1e-9;
      st.blocked_output_seconds += w->blocked_out_ns.Get() * 1e-9;
      st.workers.push_back(ws);
    }
    st.queue_size = s->queue.size.load(std::memory_order_relaxed);
    st.queue_max = s->queue.max.load(std::memory_order_relaxed);
    if (start != 0 && now > start) {
      int64_t last = s->queue.last_change_ns.load(std::memory_order_relaxed);
      int64_t area = s->queue.area_ns.load(std::memory_order_relaxed);
      if (last != 0) area += st.queue_size * (now - last);
      st.queue_mean = static_cast<double>(area) / static_cast<double>(now - start);
    }
    snap.stages.push_back(std::move(st));
  }
  snap.consumer.next_calls = next_calls.Get();
  snap.consumer.wait_seconds = wait_ns.Get() * 1e-9;
  snap.consumer.between_seconds = between_ns.Get() * 1e-9;
  return snap;
}

std::unique_ptr<Pipeline> Pipeline::Create(const config::Document& config,
                                           const PipelineOptions& options) {
  auto impl = std::make_unique<PipelineImpl>();
  impl->name = config.name();
  impl->epochs = options.epochs.value_or(config.epochs());
  impl->stop_timeout_ns = static_cast<int64_t>(std::max(0.0, options.stop_timeout_seconds) * 1e9);
  const std::string file = config.origin().string();
  const auto& specs = config.stages();
  for (const config::StageSpec& spec : specs) {
    auto s = std::make_unique<Stage>();
    s->index = spec.index;
    s->name = spec.name;
    s->op_name = spec.op;
    auto fail = [&](std::string_view key, const std::string& message) {
      sluice::Fail("{}: stage '{}': key '{}': {}", file, spec.name, key, message);
    };
    if (!OpRegistry::Global().Contains(spec.op)) {
      const std::vector<std::string> names = OpRegistry::Global().Names();
      const std::string guess = ClosestMatch(spec.op, names, 3);
      fail("op", fmt::format("unknown op '{}' ({}known ops: {})", spec.op,
                             guess.empty() ? "" : fmt::format("did you mean '{}'? ", guess),
                             fmt::join(names, ", ")));
    }
    OpArgs args(spec.args, file, spec.name, spec.op, config.base_dir());
    try {
      s->op = OpRegistry::Global().Create(spec.op, args);
      args.Finish();
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      sluice::Fail("{}: stage '{}': {}", file, spec.name, e.what());
    }
    s->props = s->op->properties();
    const OpKind kind = s->props.kind;
    if (kind == OpKind::kSource && spec.index != 0) {
      fail("op", fmt::format("'{}' is a source and can only be the first stage", spec.op));
    }
    if (kind != OpKind::kSource && spec.index == 0) {
      fail("op", fmt::format("the first stage must be a source (such as list_files or generate), "
                             "but '{}' consumes an input",
                             spec.op));
    }
    if (kind == OpKind::kMap && (dynamic_cast<MapOp*>(s->op.get()) == nullptr)) {
      fail("op", "op declares kind map but does not derive from MapOp");
    }
    if (kind == OpKind::kSource && (dynamic_cast<SourceOp*>(s->op.get()) == nullptr)) {
      fail("op", "op declares kind source but does not derive from SourceOp");
    }
    if (kind == OpKind::kStream && (dynamic_cast<StreamOp*>(s->op.get()) == nullptr)) {
      fail("op", "op declares kind stream but does not derive from StreamOp");
    }
    s->parallelism = static_cast<int>(spec.parallelism.value_or(1));
    // Sources and stream ops always run on one thread, whatever they declare.
    const bool parallelizable = s->props.parallelizable && kind == OpKind::kMap;
    if (spec.parallelism && !parallelizable) {
      if (*spec.parallelism != 1) {
        fail("parallelism", fmt::format("op '{}' runs sequentially and does not support "
                                        "parallelism (only 1 is allowed)",
                                        spec.op));
      }
    }
    s->buffer_size = static_cast<int>(spec.buffer_size.value_or(0));
    if (spec.deterministic && !parallelizable) {
      fail("deterministic", fmt::format("op '{}' runs sequentially; 'deterministic' applies only "
                                        "to parallel ops",
                                        spec.op));
    }
    s->deterministic = spec.deterministic.value_or(true);
    if (!s->deterministic && !spec.allow_reorder) {
      fail("deterministic",
           "false reorders outputs; set \"allow_reorder\": true on the stage to permit it");
    }
    s->async = s->parallelism > 1 || s->buffer_size > 0;
    int slots = std::max(1, s->parallelism);
    for (int w = 0; w < slots; ++w) s->workers.push_back(std::make_unique<WorkerCounters>());
    impl->stages.push_back(std::move(s));
  }
  static std::atomic<uint64_t> next_id{1};
  impl->id = next_id.fetch_add(1);
  impl->config_path = config.origin().string();
  impl->config_text = config.text();
  auto pipeline = std::unique_ptr<Pipeline>(new Pipeline(std::move(impl)));
  internal::RegisterPipeline(*pipeline);
  return pipeline;
}

Pipeline::Pipeline(std::unique_ptr<PipelineImpl> impl) : impl_(std::move(impl)) {}

Pipeline::~Pipeline() {
  impl_->Stop();
  internal::UnregisterPipeline(*this, impl_->Snapshot());
  if (impl_->abandoned()) {
    // Threads left running by Stop() still use the stages and iterators: never free them.
    static std::mutex kept_mu;
    static auto* kept = new std::vector<std::unique_ptr<PipelineImpl>>();  // reachable, no leak
    std::lock_guard lock(kept_mu);
    kept->push_back(std::move(impl_));
  }
}

bool Pipeline::Next(Element* out) { return impl_->Next(out); }
void Pipeline::Stop() { impl_->Stop(); }
PipelineSnapshot Pipeline::Snapshot() const { return impl_->Snapshot(); }
const std::string& Pipeline::name() const { return impl_->name; }
int Pipeline::RunningThreads() const { return impl_->running_threads.load(); }
std::vector<std::string> Pipeline::StuckStages() const { return impl_->StuckStages(); }
uint64_t Pipeline::id() const { return impl_->id; }
const std::string& Pipeline::config_path() const { return impl_->config_path; }
const std::string& Pipeline::config_text() const { return impl_->config_text; }

}  // namespace sluice::pipeline
