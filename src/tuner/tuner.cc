// Tune: the model, the program's two solves, the polish and the plan's words, in that order; and
// the advice for a larger machine when the CPU holds the pipeline below the consumer's pace.
// The formulation is described at the top of program.cc.
#include "sluice/tuner/tuner.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "sluice/common/error.h"
#include "tuner/explain.h"
#include "tuner/model.h"
#include "tuner/polish.h"
#include "tuner/program.h"
#include "tuner/rewrite.h"

namespace sluice::tuner {
namespace {

using analyzer::Analysis;
using analyzer::Knobs;
using analyzer::LimitKind;
using internal::Model;
using internal::Solution;

// The program's choice as knobs, from the traced knobs `current`.
Knobs KnobsOf(const Solution& sol, const Knobs& current) {
  Knobs knobs = current;
  for (size_t i = 0; i < knobs.stages.size(); ++i) {
    analyzer::StageKnobs& k = knobs.stages[i];
    if (!sol.async[i]) {
      k.parallelism = 1;
      k.buffer_size = 0;
      continue;
    }
    k.parallelism = std::max(1, sol.workers[i]);
    k.buffer_size = std::max(1, sol.buffer[i]);
    // A parallel stage already running without a queue keeps it that way when one slot is all
    // it would get: the runtime already treats it as async.
    if (current.stages[i].buffer_size == 0 && k.parallelism > 1 && k.buffer_size == 1) {
      k.buffer_size = 0;
    }
  }
  knobs.cache_after = sol.cache_after;
  return knobs;
}

// Whether the CPU holds the tuned pipeline below the consumer's pace.
bool CpuHoldsBelowConsumer(const Analysis& a, const Plan& plan) {
  return a.consumer_outputs_per_s > 0 &&
         plan.predicted_outputs_per_s < 0.99 * a.consumer_outputs_per_s &&
         std::any_of(plan.prediction.limits.begin(), plan.prediction.limits.end(),
                     [&](const analyzer::Limit& l) {
                       return l.kind == LimitKind::kCpu &&
                              l.outputs_per_s <= plan.predicted_outputs_per_s * (1 + 1e-3);
                     });
}

Plan TuneImpl(const Analysis& a, const trace::PipelineTrace& p, const TuneOptions& o,
              bool explore_cores);

// The consumer's pace: when the CPU holds the tuned pipeline below it, what more cores buy.
// A consumer ten times faster than the tuned pipeline only drains it (a benchmark, a dry run):
// the cores that would saturate it are no advice.
void AdviseCores(const Analysis& a, const trace::PipelineTrace& p, const TuneOptions& o,
                 Plan& plan) {
  const bool drain = a.consumer_outputs_per_s > 10 * plan.predicted_outputs_per_s;
  if (drain) {
    plan.notes.push_back(internal::DrainNote(a));
    return;
  }
  if (!CpuHoldsBelowConsumer(a, plan)) return;
  double cpu = a.other_cpu_demand;
  for (size_t i = 0; i < a.stages.size(); ++i) {
    if (!plan.knobs.cache_after || i > *plan.knobs.cache_after) cpu += a.stages[i].cpu_demand;
  }
  const double needed = a.consumer_outputs_per_s * cpu;
  plan.cores_needed_for_consumer = needed;
  TuneOptions more = o;
  more.cores = std::ceil(needed);
  try {
    const Plan bigger = TuneImpl(a, p, more, false);
    plan.outputs_per_s_with_cores_needed = bigger.predicted_outputs_per_s;
    plan.notes.push_back(internal::CoresNote(a, plan, needed, *more.cores, bigger));
  } catch (const Error&) {
    // The larger machine is only advice; a plan without it stands.
  }
}

Plan TuneImpl(const Analysis& a, const trace::PipelineTrace& p, const TuneOptions& o,
              bool explore_cores) {
  Model m = internal::BuildModel(a, p, o);
  const Solution sol = internal::SolveProgram(m, a);

  Plan plan;
  plan.pipeline = a.pipeline;
  plan.output_noun = a.output_noun;
  plan.cores = m.cores;
  plan.memory_budget_bytes = m.memory_budget;
  plan.milp_outputs_per_s = sol.x;
  plan.current_outputs_per_s = a.measured_outputs_per_s;

  analyzer::Resources res = analyzer::CurrentResources(a);
  res.cores = m.cores;
  const Knobs current = analyzer::CurrentKnobs(a);
  plan.current_predicted_outputs_per_s = analyzer::Predict(a, current, res).outputs_per_s;

  // Where the config allows it, parallel workers emit in completion order (never slower).
  const Knobs knobs = internal::Polish(m, a, res, KnobsOf(sol, current));
  plan.threads = internal::Threads(knobs);
  plan.memory_bytes = internal::Memory(m, knobs);
  plan.knobs = knobs;
  plan.prediction = analyzer::Predict(a, knobs, res);
  plan.predicted_outputs_per_s = plan.prediction.outputs_per_s;
  plan.speedup = plan.current_predicted_outputs_per_s > 0
                     ? plan.predicted_outputs_per_s / plan.current_predicted_outputs_per_s
                     : 1.0;

  internal::NoteDisagreement(a, m, sol, plan);
  internal::ExplainChanges(a, m, sol, o, res, current, plan);
  internal::NoteInlineStages(a, m, plan);
  internal::NoteCache(a, p, o, sol, plan);
  internal::ProposeRewrites(a, res, o, plan);
  for (const std::string& note : plan.prediction.notes) plan.notes.push_back(note);
  if (explore_cores) AdviseCores(a, p, o, plan);
  return plan;
}

}  // namespace

Plan Tune(const Analysis& analysis, const trace::PipelineTrace& pipeline,
          const TuneOptions& options) {
  return TuneImpl(analysis, pipeline, options, true);
}

}  // namespace sluice::tuner
