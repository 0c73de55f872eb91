// The pipeline's shared state: its stages, the per-epoch chain of iterators, failure and stop.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "common/thread_annotations.h"
#include "pipeline/internal/live_iter.h"
#include "pipeline/internal/stage.h"
#include "sluice/pipeline/pipeline.h"

namespace sluice::pipeline {

// Shared by the pipeline and its worker threads.
class PipelineImpl {
 public:
  void Fail(std::exception_ptr error) {
    {
      MutexLock lock(error_mu_);
      if (!error_) error_ = error;
    }
    failed_.store(true, std::memory_order_release);
    CancelChain();
  }
  void RethrowIfFailed() {
    if (!failed_.load(std::memory_order_acquire)) return;
    MutexLock lock(error_mu_);
    std::rethrow_exception(error_);
  }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  void CancelChain() {
    stopping_.store(true, std::memory_order_release);
    MutexLock lock(chain_mu_);
    for (auto& it : chain_) it->Cancel();
  }

  bool Next(Element* out);
  void StartEpoch() SLUICE_REQUIRES(consumer_mu_);
  // Cancels and joins the current chain. When a thread outlives `deadline_ns`, the chain is kept
  // (never destroyed) and its stage named in stuck_stages_.
  void TearDownChain(int64_t deadline_ns = std::numeric_limits<int64_t>::max())
      SLUICE_REQUIRES(consumer_mu_);
  void Stop();
  // True once a thread was left running: the pipeline's state must then never be destroyed.
  bool abandoned() const { return abandoned_.load(std::memory_order_acquire); }
  std::vector<std::string> StuckStages() const {
    MutexLock lock(stuck_mu_);
    return stuck_stages_;
  }
  void NoteStuck(const std::string& stage, int threads);
  // Keeps an iterator whose thread did not leave in time for the life of the process.
  void KeepForever(std::unique_ptr<internal::Iter> it) {
    MutexLock lock(stuck_mu_);
    kept_chains_.push_back(std::move(it));
  }
  std::vector<AppliedChange> Apply(const std::vector<KnobChange>& changes, double settle_seconds);
  PipelineSnapshot Snapshot() const;

  // Map fusion while the pipeline runs (LiveIter builds the parallel stage's iterator with it).
  // The maps the knobs now fuse into `owner`, nearest first.
  std::vector<internal::Stage*> WantedFusion(const internal::Stage& owner) const;
  // Records that `fused` (first upstream first) run on `owner`'s workers from now on.
  void PublishFusion(internal::Stage& owner, const std::vector<internal::Stage*>& fused);
  // Bumped by every knob change: an iterator whose fusion the change may alter checks it.
  std::atomic<uint64_t> fusion_generation{0};

  std::string name;
  uint64_t id = 0;
  std::string config_path;
  std::string config_text;
  // Guards the `stages` vector (not the stages, which never move) for threads other than the
  // consumer's: a cache stage is inserted there at an epoch boundary (ApplyDeferred), the only
  // change it ever sees. The consumer's thread reads it without the lock (consumer_stages).
  mutable SharedMutex stages_mu;
  std::vector<std::unique_ptr<internal::Stage>> stages SLUICE_GUARDED_BY(stages_mu);
  // `stages` for its only writer: the consumer's thread (with consumer_mu_ held), which changes
  // it under stages_mu and so reads it without. The analysis cannot tell writer from reader.
  std::vector<std::unique_ptr<internal::Stage>>& consumer_stages()
      SLUICE_REQUIRES(consumer_mu_) SLUICE_NO_THREAD_SAFETY_ANALYSIS {
    return stages;
  }
  int64_t epochs = 1;
  int64_t first_epoch = 0;  // the number the first epoch runs as (seeds, shuffles)
  int64_t stop_timeout_ns = 5'000'000'000;
  std::atomic<int> running_threads{0};

  // Consumer counters: written by the consumer thread, read by snapshots.
  internal::RelaxedCounter next_calls, wait_ns, between_ns;
  int64_t last_return_ns = 0;  // consumer-thread private

  std::atomic<int64_t> start_ns{0};
  std::atomic<int64_t> epoch{0};
  std::atomic<bool> finished{false};

 private:
  Mutex error_mu_;
  std::exception_ptr error_ SLUICE_GUARDED_BY(error_mu_);
  std::atomic<bool> failed_{false};
  std::atomic<bool> stopping_{false};
  // Guards chain_ against Cancel from other threads; the consumer's thread changes it.
  Mutex chain_mu_;
  // Per-epoch iterators, source first.
  std::vector<std::unique_ptr<internal::LiveIter>> chain_ SLUICE_GUARDED_BY(chain_mu_);
  // Apply (apply.cc): one call at a time; changes that wait for the next epoch, and the fusion
  // of stages, which only changes at an epoch boundary.
  Mutex apply_mu_;
  Mutex deferred_mu_;
  std::vector<KnobChange> deferred_ SLUICE_GUARDED_BY(deferred_mu_);
  void ApplyDeferred() SLUICE_REQUIRES(consumer_mu_);  // at an epoch boundary
  // A cache stage after stage `after`.
  void InsertCache(const std::string& after) SLUICE_REQUIRES(consumer_mu_);
  void SetKnob(internal::Stage& s, const std::string& knob, int64_t to);
  internal::LiveIter* FindLive(const internal::Stage& s) SLUICE_REQUIRES(chain_mu_);
  bool WaitSettled(const std::vector<internal::Stage*>& stages, int64_t deadline_ns);
  Mutex consumer_mu_;  // held by Next for its whole call, and by Stop
  bool started_ SLUICE_GUARDED_BY(consumer_mu_) = false;
  bool epoch_had_output_ SLUICE_GUARDED_BY(consumer_mu_) = false;
  std::atomic<bool> abandoned_{false};
  mutable Mutex stuck_mu_;
  std::vector<std::string> stuck_stages_ SLUICE_GUARDED_BY(stuck_mu_);
  // Never destroyed.
  std::vector<std::unique_ptr<internal::Iter>> kept_chains_ SLUICE_GUARDED_BY(stuck_mu_);
};

namespace internal {
// Map fusion: the inline, parallelizable maps directly above a parallel map stage run on its
// workers. The maps the knobs fuse into stages[at], nearest first.
std::vector<Stage*> MapsToFuse(const std::vector<std::unique_ptr<Stage>>& stages, size_t at);
// Sets every stage's fusion to what the knobs call for (at creation and at epoch boundaries,
// before the chain is built).
void FuseMaps(std::vector<std::unique_ptr<Stage>>& stages);
}  // namespace internal

}  // namespace sluice::pipeline
