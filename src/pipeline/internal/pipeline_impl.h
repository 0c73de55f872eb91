// The pipeline's shared state: its stages, the per-epoch chain of iterators, failure and stop.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "pipeline/internal/live_iter.h"
#include "pipeline/internal/stage.h"
#include "sluice/pipeline/pipeline.h"

namespace sluice::pipeline {

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
  // Keeps an iterator whose thread did not leave in time for the life of the process.
  void KeepForever(std::unique_ptr<internal::Iter> it) {
    std::lock_guard lock(stuck_mu_);
    kept_chains_.push_back(std::move(it));
  }
  std::vector<AppliedChange> Apply(const std::vector<KnobChange>& changes, double settle_seconds);
  PipelineSnapshot Snapshot() const;

  std::string name;
  uint64_t id = 0;
  std::string config_path;
  std::string config_text;
  std::vector<std::unique_ptr<internal::Stage>> stages;
  // Guards the `stages` vector (not the stages, which never move) for threads other than the
  // consumer's: a cache stage is inserted there at an epoch boundary (ApplyDeferred), the only
  // change it ever sees. The consumer's thread reads it without the lock.
  mutable std::shared_mutex stages_mu;
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
  std::mutex error_mu_;
  std::exception_ptr error_;  // guarded by error_mu_
  std::atomic<bool> failed_{false};
  std::atomic<bool> stopping_{false};
  std::mutex chain_mu_;  // guards chain_ against Cancel from other threads
  std::vector<std::unique_ptr<internal::LiveIter>> chain_;  // per-epoch iterators, source first
  // Apply (apply.cc): one call at a time; changes that wait for the next epoch, and the fusion
  // of stages, which only changes at an epoch boundary.
  std::mutex apply_mu_;
  std::mutex deferred_mu_;
  std::vector<KnobChange> deferred_;           // guarded by deferred_mu_
  void ApplyDeferred();                        // at an epoch boundary
  void InsertCache(const std::string& after);  // a cache stage after stage `after`
  void SetKnob(internal::Stage& s, const std::string& knob, int64_t to);
  internal::LiveIter* FindLive(const internal::Stage& s);  // with chain_mu_ held
  bool WaitSettled(const std::vector<internal::Stage*>& stages, int64_t deadline_ns);
  std::mutex consumer_mu_;         // held by Next for its whole call, and by Stop
  bool started_ = false;           // guarded by consumer_mu_
  bool epoch_had_output_ = false;  // guarded by consumer_mu_
  std::atomic<bool> abandoned_{false};
  mutable std::mutex stuck_mu_;
  std::vector<std::string> stuck_stages_;  // guarded by stuck_mu_
  std::vector<std::unique_ptr<internal::Iter>>
      kept_chains_;  // guarded by stuck_mu_; never destroyed
};

namespace internal {
// Map fusion: the inline, parallelizable maps directly above a parallel map stage run on its
// workers. Decided from the knobs at creation and again at each epoch boundary.
void FuseMaps(std::vector<std::unique_ptr<Stage>>& stages);
}  // namespace internal

}  // namespace sluice::pipeline
