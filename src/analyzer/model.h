// The analyzer's queueing-network model, shared by Analyze (current knobs) and Predict (other
// knobs): which stages share a thread, each thread's capacity, and the ranked limits.
#pragma once

#include "sluice/common/figures.h"

#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "sluice/analyzer/analysis.h"

namespace sluice::analyzer::internal {

inline constexpr size_t kConsumer = std::numeric_limits<size_t>::max();

// A set of stages served by the same thread(s): one server of the queueing network.
struct Server {
  std::vector<size_t> stages;  // stages whose work this server does, in pipeline order
  // The async stage whose workers these are; kConsumer for the consumer's thread.
  size_t owner = kConsumer;
  // Inline stages run under the input lock of `owner`'s parallel workers: one at a time.
  bool input_lock = false;
  int workers = 1;
  double wall = 0;       // wall seconds per output the server's threads spend (step included)
  double step = 0;       // the consumer's step per output (consumer thread only)
  double capacity = 0;   // outputs/s: workers / wall, less the workers' wait for their input lock;
                         // infinity when wall is 0
  double lock_wait = 0;  // seconds per output a worker waits for the input lock (mean-value
                         // analysis; parallel workers with inline stages upstream only)
};

// Per-output demands after a cache: stages at or upstream of `cache_after` cost nothing.
std::vector<double> EffectiveDemand(const std::vector<double>& demand, const Knobs& knobs);

// The servers of the pipeline under `knobs` (tf.data's iterator model: consecutive inline stages
// run on the thread that pulls them). `wall` holds W_i per stage, `step` the consumer's step.
// `fusible[i]`: stage i is a parallelizable map, which runs on the workers of a parallel map
// stage directly below it outside their input lock (the runtime's map fusion).
std::vector<Server> BuildServers(const std::vector<StageKnobs>& knobs,
                                 const std::vector<double>& wall, double step,
                                 const std::vector<bool>& fusible);

// Per stage of the analysis: whether it is a parallelizable map (fusible, as above).
std::vector<bool> Fusible(const Analysis& a);

// Seconds per output that stage `s`'s workers wait for their turn to emit in order under knobs
// `k`: the measured wait at the traced knobs, scaled by (1 - 1/p) to other worker counts; none
// when the stage runs unordered or on one worker, or when no wait was measured.
double TurnWait(const StageAnalysis& s, const StageKnobs& k);

// Formatting for the sentences: "243", "4.1 ms", "8.4 MB", "'a', 'b' and 'c'".
// Sentences use the project's one way of writing numbers (sluice/common/figures.h).
using ::sluice::Bytes;
using ::sluice::Duration;
using ::sluice::Num;
using ::sluice::Percent;
using ::sluice::Plural;
using ::sluice::Quoted;

}  // namespace sluice::analyzer::internal
