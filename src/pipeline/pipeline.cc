// The runtime: builds stages from a config and runs them inline or on worker threads.
//
// Execution model (tf.data's iterator model): every stage is an iterator pulled by its
// consumer. A stage with parallelism 1 and buffer_size 0 runs inline on the thread that pulls
// it. Any other stage is asynchronous (async_iter.cc): `parallelism` workers pull from upstream
// (serialized by a lock), run the op, and deliver into a bounded queue of `buffer_size` (an
// ordered parallel map: a reorder buffer) that the consumer pops. Inline parallelizable maps
// directly above a parallel map stage are fused into it: they run on its workers, outside the
// lock. An epoch is one pass of the chain; the chain is rebuilt for each epoch, ops persist.
#include "sluice/pipeline/pipeline.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <limits>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "pipeline/internal/cuda_host.h"
#include "pipeline/internal/inline_iters.h"
#include "pipeline/internal/pipeline_impl.h"
#include "pipeline/internal/registry.h"
#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/common/log.h"
#include "sluice/common/strings.h"

namespace sluice::pipeline {

using internal::CallOp;
using internal::Iter;
using internal::MapIter;
using internal::SourceIter;
using internal::Stage;
using internal::StreamIter;
using internal::tl_cpu;
using internal::WorkerCounters;

void PipelineImpl::StartEpoch() {
  ApplyDeferred();
  const auto& stages = consumer_stages();
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
  // Every stage gets its iterator; one fused into the stage below it stays dormant while it is.
  std::vector<std::unique_ptr<internal::LiveIter>> chain;
  std::vector<internal::LiveIter*> above;  // nearest first
  for (size_t i = first; i < stages.size(); ++i) {
    Iter* upstream = above.empty() ? nullptr : above.front();
    chain.push_back(std::make_unique<internal::LiveIter>(*this, *stages[i], upstream, epoch));
    chain.back()->SetAbove(above);
    above.insert(above.begin(), chain.back().get());
  }
  std::vector<internal::LiveIter*> order;
  {
    MutexLock lock(chain_mu_);
    chain_ = std::move(chain);
    for (auto& it : chain_) order.push_back(it.get());
  }
  // Started outside chain_mu_, as before: a Cancel from another thread never waits on a Start.
  for (internal::LiveIter* it : order) it->Start();
}

void PipelineImpl::TearDownChain(int64_t deadline_ns) {
  std::vector<std::unique_ptr<internal::LiveIter>> chain;
  {
    MutexLock lock(chain_mu_);
    chain.swap(chain_);
  }
  for (auto& it : chain) it->Cancel();
  bool joined = true;
  for (auto& it : chain) joined = it->Join(deadline_ns) && joined;
  if (!joined) {
    // A detached worker may still use any iterator of the chain (its upstream, its queue) and
    // the stages: keep them all. The memory is lost; a use after free would be worse.
    MutexLock lock(stuck_mu_);
    for (auto& it : chain) kept_chains_.push_back(std::move(it));
    return;
  }
  // Destroy consumer-side iterators last-first: downstream ones point at upstream ones.
  while (!chain.empty()) chain.pop_back();
}

bool PipelineImpl::Next(Element* out) {
  // Held for the whole call: Stop() from another thread tears the chain down only once the
  // consumer has left (it runs inline stages on this thread, and pops from the last queue).
  MutexLock consumer(consumer_mu_);
  int64_t enter = MonotonicNanos();
  if (last_return_ns != 0) between_ns.Add(enter - last_return_ns);
  RethrowIfFailed();
  if (finished.load(std::memory_order_relaxed) || stopping()) return false;
  bool ok = false;
  bool consumer_runs_stages = false;  // the last stage is inline: its work is on this thread
  try {
    if (!started_) {
      started_ = true;
      start_ns.store(enter, std::memory_order_relaxed);
      // Inside the try: an op failing to begin its epoch fails the pipeline like any op error.
      StartEpoch();
    }
    {
      MutexLock lock(chain_mu_);
      consumer_runs_stages = chain_.back()->runs_inline();
    }
    if (consumer_runs_stages) tl_cpu.Start();
    for (;;) {
      Iter* last;
      {
        MutexLock lock(chain_mu_);
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
      if ((epochs >= 0 && next_epoch - first_epoch >= epochs) ||
          (epochs < 0 && !epoch_had_output_)) {
        finished.store(true);
        break;
      }
      epoch.store(next_epoch);
      epoch_had_output_ = false;
      StartEpoch();
    }
  } catch (...) {
    if (consumer_runs_stages) tl_cpu.Flush();
    Fail(std::current_exception());
    throw;
  }
  if (consumer_runs_stages) tl_cpu.Flush();
  int64_t leave = MonotonicNanos();
  wait_ns.Add(leave - enter);
  last_return_ns = leave;
  if (ok) next_calls.Add(1);
  return ok;
}

void PipelineImpl::NoteStuck(const std::string& stage, int threads) {
  abandoned_.store(true, std::memory_order_release);
  {
    MutexLock lock(stuck_mu_);
    stuck_stages_.push_back(stage);
  }
  const std::string who =
      stage == "consumer"
          ? "the thread calling Next() is still inside an inline stage's op"
          : fmt::format("stage '{}' still has {} thread(s) inside its op", stage, threads);
  Warn(
      "pipeline '{}': {} {:.1f} s after stop; left running, and the pipeline's memory is kept "
      "for it",
      name, who, stop_timeout_ns * 1e-9);
}

void PipelineImpl::Stop() {
  CancelChain();  // wakes a consumer blocked in Next, which then returns false
  const int64_t deadline = MonotonicNanos() + stop_timeout_ns;
  // Polls TryLock rather than using a timed mutex, whose clocklock ThreadSanitizer cannot see.
  while (!consumer_mu_.TryLock()) {
    if (MonotonicNanos() >= deadline) {
      // The consumer's thread is inside Next(), in an inline stage's op: it will see the stop
      // when the op returns. The chain it runs is kept (the destructor keeps this whole object).
      NoteStuck("consumer", 1);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  MutexLock consumer(consumer_mu_, kAdoptLock);
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
  ReaderLock stages_lock(stages_mu);
  for (const auto& s : stages) {
    StageSnapshot st;
    st.name = s->name;
    st.op = s->op_name;
    st.properties = s->props;
    st.parallelism = s->parallelism;
    st.buffer_size = s->buffer_size;
    st.deterministic = s->deterministic;
    st.async = s->async;
    if (s->fused_into != nullptr) st.fused_into = s->fused_into->name;
    const size_t slots = static_cast<size_t>(std::max(1, s->slots_used.load()));
    for (size_t i = 0; i < slots && i < s->workers.size(); ++i) {
      const auto& w = s->workers[i];
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

namespace {

// Whether batches can be page-locked; says why not on stderr, once per process.
bool CanPinMemory() {
  std::string why;
  if (internal::CudaHost::Get(&why) != nullptr) return true;
  static std::once_flag warned;
  std::call_once(warned,
                 [&] { Warn("pin_memory: {}; batches stay in ordinary (pageable) memory", why); });
  return false;
}

// Worker slots every parallelizable map stage gets, so that Apply can add workers to it live: as
// many as the tuner may plan (twice the cores, at least 8, at most 128), or the most any stage is
// configured with. One count for all, since a stage fused into another (while it runs)
// uses its owner's slots.
int LiveWorkerSlots(const std::vector<std::unique_ptr<Stage>>& stages) {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  int slots = std::clamp(2 * cores, 8, 128);
  for (const auto& s : stages) slots = std::max(slots, s->parallelism.load());
  return slots;
}

// Gives every stage its counter slots, and marks used those its configured knobs use.
void AllocateSlots(std::vector<std::unique_ptr<Stage>>& stages) {
  const int live_slots = LiveWorkerSlots(stages);
  for (auto& s : stages) {
    const bool parallel_map = s->props.kind == OpKind::kMap && s->props.parallelizable;
    const int slots = parallel_map ? live_slots : 1;
    for (int w = 0; w < slots; ++w) s->workers.push_back(std::make_unique<WorkerCounters>());
    const int used = std::max(
        1, s->fused_into != nullptr ? s->fused_into->parallelism.load() : s->parallelism.load());
    s->slots_used.store(used);
  }
}

}  // namespace

namespace internal {

std::vector<Stage*> MapsToFuse(const std::vector<std::unique_ptr<Stage>>& stages, size_t at) {
  std::vector<Stage*> fused;
  const Stage& owner = *stages[at];
  if (owner.props.kind != OpKind::kMap || owner.parallelism.load() <= 1) return fused;
  for (size_t j = at - 1; j > 0 && j < at; --j) {
    Stage& up = *stages[j];
    if (up.async.load() || up.props.kind != OpKind::kMap || !up.props.parallelizable) break;
    fused.push_back(&up);
  }
  return fused;
}

void FuseMaps(std::vector<std::unique_ptr<Stage>>& stages) {
  for (auto& s : stages) {
    s->fused.clear();
    s->fused_into = nullptr;
  }
  for (size_t i = 1; i < stages.size(); ++i) {
    for (Stage* up : MapsToFuse(stages, i)) {
      up->fused_into = stages[i].get();
      stages[i]->fused.insert(stages[i]->fused.begin(), up);
    }
  }
}

}  // namespace internal

std::unique_ptr<Pipeline> Pipeline::Create(const config::Document& config,
                                           const PipelineOptions& options) {
  auto impl = std::make_unique<PipelineImpl>();
  impl->name = config.name();
  impl->epochs = options.epochs.value_or(config.epochs());
  if (options.first_epoch < 0)
    Fail("PipelineOptions::first_epoch must be >= 0, got {}", options.first_epoch);
  impl->first_epoch = options.first_epoch;
  impl->epoch.store(options.first_epoch);
  impl->stop_timeout_ns = static_cast<int64_t>(std::max(0.0, options.stop_timeout_seconds) * 1e9);
  const std::string file = config.origin().string();
  const auto& specs = config.stages();
  const bool pin = options.pin_memory && CanPinMemory();
  std::vector<std::unique_ptr<Stage>> stages;
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
    args.set_pin_memory(pin);
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
        fail(config::kKnobParallelism,
             fmt::format("op '{}' runs sequentially and does not support parallelism (only 1 is "
                         "allowed){}",
                         spec.op,
                         s->props.holds_gil ? ": it is a Python op and holds the GIL" : ""));
      }
    }
    s->buffer_size = static_cast<int>(spec.buffer_size.value_or(0));
    if (spec.deterministic && !parallelizable) {
      fail(config::kKnobDeterministic,
           fmt::format("op '{}' runs sequentially; 'deterministic' applies only "
                       "to parallel ops",
                       spec.op));
    }
    s->deterministic = spec.deterministic.value_or(true);
    s->allow_reorder = spec.allow_reorder;
    if (!s->deterministic && !spec.allow_reorder) {
      fail(config::kKnobDeterministic,
           "false reorders outputs; set \"allow_reorder\": true on the stage to permit it");
    }
    s->async = s->WantsAsync();
    s->props.parallelizable = parallelizable;  // what the trace and the model see
    stages.push_back(std::move(s));
  }
  internal::FuseMaps(stages);
  AllocateSlots(stages);
  {
    WriterLock lock(impl->stages_mu);  // no other thread yet; the analysis asks for it
    impl->stages = std::move(stages);
  }
  static std::atomic<uint64_t> next_id{1};
  impl->id = next_id.fetch_add(1);
  impl->config_path = config.origin().string();
  impl->config_text = config.text();
  auto pipeline = std::unique_ptr<Pipeline>(new Pipeline(std::move(impl)));
  internal::RegisterPipeline(*pipeline, options.autotune);
  return pipeline;
}

Pipeline::Pipeline(std::unique_ptr<PipelineImpl> impl) : impl_(std::move(impl)) {}

Pipeline::~Pipeline() {
  impl_->Stop();
  internal::UnregisterPipeline(*this, impl_->Snapshot());
  if (impl_->abandoned()) {
    // Threads left running by Stop() still use the stages and iterators: never free them.
    static Mutex kept_mu;
    static auto* kept = new std::vector<std::unique_ptr<PipelineImpl>>();  // reachable, no leak
    MutexLock lock(kept_mu);
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

std::optional<int64_t> Pipeline::EpochLength() const {
  std::optional<int64_t> n;
  ReaderLock lock(impl_->stages_mu);
  for (const auto& s : impl_->stages) n = s->op->EpochOutputs(n);
  return n;
}

std::optional<int64_t> Pipeline::Length() const {
  const std::optional<int64_t> each = EpochLength();
  if (!each || impl_->epochs < 0) return std::nullopt;
  return *each * impl_->epochs;
}

std::vector<std::string> Pipeline::ClassNames() const {
  ReaderLock lock(impl_->stages_mu);
  return static_cast<const SourceOp&>(*impl_->stages.front()->op).ClassNames();
}

}  // namespace sluice::pipeline
