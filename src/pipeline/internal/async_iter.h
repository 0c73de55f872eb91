// The iterator of an asynchronous stage (async_iter.cc), with the knobs it changes while it runs.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "pipeline/internal/stage.h"

namespace sluice::pipeline {
class PipelineImpl;
}

namespace sluice::pipeline::internal {

// Worker threads feeding a bounded queue (or, for an ordered parallel map, a reorder buffer).
class AsyncStageIter : public Iter {
 public:
  // Runs `n` workers from now on (at least 1; at most the stage's worker slots): new ones start
  // at once, surplus ones leave at their next element boundary, after delivering what they hold.
  virtual void SetWorkers(int n) = 0;
  // The output queue holds `n` elements (at least 1): growing at once, shrinking by draining.
  virtual void SetBufferSize(int n) = 0;
  // Every worker leaves at its next element boundary; once all have, Next() drains what they
  // delivered and then returns false. For rebuilding the stage with other knobs.
  virtual void RetireAll() = 0;
  // Whether outputs go through a reorder buffer (fixed for the iterator's life).
  virtual bool ordered() const = 0;
  // True once a worker saw the end of the stage's input (not merely retired).
  virtual bool InputEnded() const = 0;
  // No more workers run than asked for, and the output holds no more than its capacity.
  virtual bool Settled() const = 0;
};

// Runs stage `s` with `knobs` (read once, consistently, by the caller). A map stage's workers
// run the maps `fused` (first upstream first; empty for other stages) on each input before the
// stage's own op; `upstream` is then the iterator above the first of them.
std::unique_ptr<AsyncStageIter> MakeAsyncIter(PipelineImpl& p, Stage& s, Iter* upstream,
                                              int64_t epoch, const Stage::Knobs& knobs,
                                              std::vector<Stage*> fused);

}  // namespace sluice::pipeline::internal
