// One stage's place in the per-epoch chain: it runs the stage inline or asynchronously, and
// changes how while the consumer iterates (Pipeline::Apply).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>

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
  // The stage runs on the thread that pulls it (read by that thread).
  bool runs_inline() const { return puller_async() == nullptr; }
  const Stage& stage() const { return s_; }

 private:
  // The iterator the stage's knobs call for now.
  std::unique_ptr<Iter> Build() SLUICE_REQUIRES(mu_);
  void Drain();  // on the puller's thread: empties the old iterator
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
};

}  // namespace sluice::pipeline::internal
