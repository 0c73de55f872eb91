// The tuner's mixed-integer program: the two solves over a model (src/tuner/program.cc describes
// the formulation).
#pragma once

#include <optional>
#include <vector>

#include "sluice/analyzer/analysis.h"
#include "tuner/model.h"

namespace sluice::tuner::internal {

// The program's choice, per stage: async or inline, workers, queue size; and where a cache goes.
struct Solution {
  double x = 0;  // X* of the first solve
  std::vector<int> async, workers, buffer;
  std::optional<size_t> cache_after;
};

// Runs both solves: the best throughput, then the fewest threads and least memory at it. Sets the
// model's queue targets for that throughput. Throws sluice::Error when no configuration meets the
// budgets (naming the stages whose buffers a memory budget cannot hold) or GLPK fails.
Solution SolveProgram(Model& m, const analyzer::Analysis& a);

}  // namespace sluice::tuner::internal
