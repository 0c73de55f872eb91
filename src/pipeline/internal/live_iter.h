// One stage's place in the per-epoch chain: it runs the stage inline or asynchronously, and
// changes how while the consumer iterates (Pipeline::Apply).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "common/thread_annotations.h"
#include "pipeline/internal/async_iter.h"
#include "pipeline/internal/stage.h"

namespace sluice::pipeline {
class PipelineImpl;
}

namespace sluice::pipeline::internal {

class MapIter;

// Delegates to the stage's current iterator (inline, or asynchronous workers). A change of
// workers or queue size that the asynchronous iterator can take is made at once; any other
// (inline to asynchronous and back, ordered to unordered) rebuilds the iterator on the thread
// that pulls this stage, at an element boundary: the old workers finish what they hold and
// leave, what they delivered is handed on first, in order, and only then does the new iterator
// start, so that no element is lost, repeated or reordered and no more memory or threads are
// used than either setting alone would.
//
// Map fusion follows the knobs the same way. Every stage of the chain has its LiveIter; one
// fused into the parallel map stage below it is dormant (nobody pulls it) while the parallel
// stage's workers run its op. A knob change that alters which maps are fused rebuilds the
// parallel stage's iterator: with its old workers gone, it fuses the maps the knobs call for,
// down to the first whose iterator still holds an element (it tries again later), and pulls
// from the iterator above them; un-fused maps' iterators are pulled again as before.
class LiveIter final : public Iter {
 public:
  LiveIter(PipelineImpl& p, Stage& s, Iter* upstream, int64_t epoch)
      : p_(p), s_(s), upstream_(upstream), epoch_(epoch) {}
  ~LiveIter() override;

  bool Next(Element* out) override;
  void Start() override;
  void Cancel() override;
  bool Join(int64_t deadline_ns) override;

  // The stage's knobs changed (any thread).
  void Reconfigure();
  // The last change has taken full effect (workers left, queues drained to their new size).
  bool Settled() const;
  // The iterators of the stages above this one in the chain, nearest first (before Start).
  void SetAbove(std::vector<LiveIter*> above) { above_ = std::move(above); }
  // The stage runs on the thread that pulls it (read by that thread).
  bool runs_inline() const { return puller_async() == nullptr; }
  const Stage& stage() const { return s_; }

 private:
  // The iterator the stage's knobs call for now.
  std::unique_ptr<Iter> Build() SLUICE_REQUIRES(mu_);
  void Drain();  // on the puller's thread: empties the old iterator
  // On the puller's thread: the maps to fuse now (first upstream first), published.
  std::vector<Stage*> TakeFusion(const Stage::Knobs& knobs);
  // On the puller's thread, every element: asks for a rebuild when the fusion the knobs call
  // for is not the one built (checked when a knob changed, or when a retry is due).
  void CheckFusion();
  // Runs inline and holds no element: the stage below may run this one on its workers. Called
  // by the thread that pulls this iterator, or by the stage below while no one pulls it.
  bool Bypassable() const;
  // The puller's thread is the only one that changes the delegate (under mu_), so it reads it
  // without the lock; the analysis cannot know which thread calls, hence these two accessors.
  Iter* puller_delegate() const SLUICE_NO_THREAD_SAFETY_ANALYSIS { return delegate_.get(); }
  AsyncStageIter* puller_async() const SLUICE_NO_THREAD_SAFETY_ANALYSIS { return async_; }

  PipelineImpl& p_;
  Stage& s_;
  Iter* upstream_;
  int64_t epoch_;
  mutable Mutex mu_;  // guards the delegate against Reconfigure and Cancel
  // The puller reads these two without mu_ (puller_delegate, puller_async).
  std::unique_ptr<Iter> delegate_ SLUICE_GUARDED_BY(mu_);
  AsyncStageIter* async_ SLUICE_GUARDED_BY(mu_) = nullptr;  // delegate_ when asynchronous
  MapIter* map_ = nullptr;  // delegate_ when an inline map; used by the puller only
  bool cancelled_ SLUICE_GUARDED_BY(mu_) = false;
  bool draining_ SLUICE_GUARDED_BY(mu_) = false;  // a rebuild is under way
  std::atomic<bool> rebuild_{false};
  // The knob generation this iterator has taken in (Build or Reconfigure); the puller checks it
  // on every element, so that a change made while the chain was being replaced is not missed.
  std::atomic<uint64_t> seen_generation_{0};
  // Puller-private: what the old iterator delivered, handed on before the new one starts.
  std::deque<Element> carry_;
  bool build_after_carry_ = false;
  bool input_ended_ = false;  // the old iterator saw the end of its input: build nothing
  bool ended_ = false;
  // Fusion, puller-private: the iterators above, the maps fused now, the fusion generation
  // they were chosen at, and when to try again a fusion that a map holding elements prevented.
  std::vector<LiveIter*> above_;
  std::vector<Stage*> fused_;
  uint64_t fusion_seen_ = 0;
  int64_t fusion_retry_ns_ = 0;
  int fusion_tries_ = 0;
};

}  // namespace sluice::pipeline::internal
