// The baseline the online tuner is measured against: tf.data AUTOTUNE's published hill-climbing
// procedure, run online through the same Pipeline::Apply. From the knobs as given, each round
// tries one more worker on each parallel stage (up to the cores) and one more slot of the last
// stage's queue (up to 8), one candidate per measured window; it keeps the best candidate when
// it gains at least 3 %, and stops when none does. No model, no memory check.
#pragma once

#include <string>
#include <vector>

#include "sluice/pipeline/pipeline.h"
#include "sluice/trace/trace.h"

namespace sluice::autotune::internal {

class HillClimber {
 public:
  struct Step {
    std::vector<pipeline::KnobChange> changes;  // to apply now; empty: leave the pipeline be
    std::string action;                         // "trial", "apply", or "" (none)
    std::string reason;
  };

  // The knobs it climbs, from the pipeline's stages; `cores` caps the workers.
  HillClimber(const trace::PipelineTrace& p, double cores);
  // The rate measured over the window since the last step; returns the next step.
  Step OnWindow(double rate);
  bool done() const { return done_; }

 private:
  struct Knob {
    std::string stage, knob;
    int64_t value = 0, cap = 0;
  };
  Step StartRound();
  Step Trial(size_t i, std::vector<pipeline::KnobChange> changes);

  std::vector<Knob> knobs_;
  double base_ = -1;             // the rate of the kept knobs; -1: to be measured
  int trying_ = -1;              // the candidate in trial, -1: none
  std::vector<double> results_;  // this round's rate per candidate (-1: not tried)
  bool done_ = false;
};

}  // namespace sluice::autotune::internal
