// The words of a plan: each change's reason and predicted effect, and the notes on what the
// tuner chose not to do or could not predict.
#pragma once

#include <string>

#include "sluice/analyzer/analysis.h"
#include "sluice/trace/trace.h"
#include "sluice/tuner/tuner.h"
#include "tuner/model.h"
#include "tuner/program.h"

namespace sluice::tuner::internal {

// A note when the program's throughput and the analyzer's prediction for the chosen knobs
// (`plan.predicted_outputs_per_s`) disagree beyond the program's headroom.
void NoteDisagreement(const analyzer::Analysis& a, const Model& m, const Solution& sol, Plan& plan);

// Appends to `plan.changes` every knob that differs between `current` and `plan.knobs`, stage by
// stage and then the cache, each with its reason and the throughput predicted once it and the
// earlier ones are made (Predict under `res`).
void ExplainChanges(const analyzer::Analysis& a, const Model& m, const Solution& sol,
                    const TuneOptions& o, const analyzer::Resources& res,
                    const analyzer::Knobs& current, Plan& plan);

// Notes on the parallelizable stages kept inline because an element costs less than a hand-off.
void NoteInlineStages(const analyzer::Analysis& a, const Model& m, Plan& plan);

// A note on the chosen cache, or on why there is none.
void NoteCache(const analyzer::Analysis& a, const trace::PipelineTrace& p, const TuneOptions& o,
               const Solution& sol, Plan& plan);

// The note when the consumer only drains the pipeline: the pipeline alone sets the pace.
std::string DrainNote(const analyzer::Analysis& a);

// The note when the CPU holds the pipeline below the consumer's pace: it `needed` cores (the plan
// had `plan.cores`), and with `cores` of them the tuner plans `bigger`.
std::string CoresNote(const analyzer::Analysis& a, const Plan& plan, double needed, double cores,
                      const Plan& bigger);

}  // namespace sluice::tuner::internal
