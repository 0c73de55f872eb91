// Op rewrites the tuner proposes: a faster op doing the work of two adjacent ones.
#pragma once

#include "sluice/analyzer/analysis.h"
#include "sluice/tuner/tuner.h"

namespace sluice::tuner::internal {

// Adds to plan.rewrites the rewrites the pipeline allows (decode_jpeg directly followed by
// random_resized_crop → decode_random_resized_crop), each with the throughput predicted at the
// plan's knobs; with `o.allow_rewrite` they are applied (the plan's prediction and speedup then
// include them), otherwise they are advice in the plan's notes.
void ProposeRewrites(const analyzer::Analysis& a, const analyzer::Resources& res,
                     const TuneOptions& o, Plan& plan);

}  // namespace sluice::tuner::internal
