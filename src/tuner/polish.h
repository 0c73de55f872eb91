// The polish after the program: knob changes judged by the analyzer's prediction, and the
// threads, memory and groups of workers of a set of knobs.
#pragma once

#include <cstddef>
#include <vector>

#include "sluice/analyzer/analysis.h"
#include "tuner/model.h"

namespace sluice::tuner::internal {

// The work of async stage `owner`'s thread(s) under some knobs: the maps fused onto its workers
// (run outside the input lock) and the inline stages it pulls under the lock, each list first
// upstream first; and the wall time per output of all of it (stages a cache relieves excluded).
struct Group {
  std::vector<size_t> fused, locked;
  double wall = 0;
};
Group GroupOf(const Model& m, const analyzer::Knobs& knobs, size_t owner);

// Worker threads of the async stages under `knobs` (the consumer's not counted).
int Threads(const analyzer::Knobs& knobs);

// Bytes of the queued and in-flight elements of the async stages, plus the cache.
double Memory(const Model& m, const analyzer::Knobs& knobs);

// The program's knobs `knobs` walked one change at a time to where the analyzer predicts best
// (polish.cc says how); `res` is what Predict plans with.
analyzer::Knobs Polish(const Model& m, const analyzer::Analysis& a, const analyzer::Resources& res,
                       analyzer::Knobs knobs);

}  // namespace sluice::tuner::internal
