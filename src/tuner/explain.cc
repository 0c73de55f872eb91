// The sentences of a plan: why each knob changes, with its numbers, and the notes beside them.
#include "tuner/explain.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "sluice/common/figures.h"
#include "sluice/config/document.h"
#include "tuner/polish.h"

namespace sluice::tuner::internal {
namespace {

using analyzer::Analysis;
using analyzer::Knobs;
using analyzer::StageAnalysis;

std::string Unit(const Analysis& a) { return Plural(a.output_noun) + "/s"; }

// Writes the changes from `current` to `plan.knobs`, predicting each under the knobs changed so
// far.
class Explainer {
 public:
  Explainer(const Analysis& a, const Model& m, const Solution& sol, const TuneOptions& o,
            const analyzer::Resources& res, const Knobs& current, Plan& plan)
      : a_(a),
        m_(m),
        sol_(sol),
        o_(o),
        res_(res),
        current_(current),
        plan_(plan),
        applied_(current),
        unit_(Unit(a)),
        per_(" per " + a.output_noun) {}

  void Run() {
    for (size_t i = 0; i < a_.stages.size(); ++i) {
      const analyzer::StageKnobs& from = current_.stages[i];
      const analyzer::StageKnobs& to = plan_.knobs.stages[i];
      if (to.parallelism != from.parallelism) Workers(i);
      if (to.ordered != from.ordered) Ordered(i);
      if (to.buffer_size != from.buffer_size) Buffer(i);
    }
    if (sol_.cache_after) Cache(*sol_.cache_after);
  }

 private:
  void Record(Change change) {
    change.predicted_outputs_per_s = analyzer::Predict(a_, applied_, res_).outputs_per_s;
    change.effect = fmt::format("predicted {} {} with this change and those above it (now {})",
                                Num(change.predicted_outputs_per_s), unit_,
                                Num(plan_.current_predicted_outputs_per_s));
    plan_.changes.push_back(std::move(change));
  }

  std::string Names(const std::vector<size_t>& idx) const {
    std::vector<std::string> v;
    for (size_t j : idx) v.push_back(a_.stages[j].name);
    return Quoted(v);
  }

  void Workers(size_t i) {
    const StageAnalysis& s = a_.stages[i];
    const analyzer::StageKnobs& from = current_.stages[i];
    const analyzer::StageKnobs& to = plan_.knobs.stages[i];
    const double planned = plan_.predicted_outputs_per_s;
    applied_.stages[i].parallelism = to.parallelism;
    const Group g = GroupOf(m_, plan_.knobs, i);
    const double w = g.wall;
    std::string with;
    if (!g.fused.empty()) {
      with += fmt::format(", with {} fused onto its workers", Names(g.fused));
    }
    if (!g.locked.empty()) {
      with += fmt::format("{} {} pulled under its input lock", g.fused.empty() ? ", with" : " and",
                          Names(g.locked));
    }
    if (!with.empty()) with = " (" + with.substr(2) + ")";
    Change c{
        s.name, std::string(config::kKnobParallelism), from.parallelism, to.parallelism, "", "", 0};
    c.why = fmt::format(
        "stage '{}' needs {} of wall time{}{}, so the planned {} {} keep {} of its {} worker{} "
        "busy ({}% each)",
        s.name, Duration(w), per_, with, Num(planned), unit_, Num(planned * w), to.parallelism,
        to.parallelism == 1 ? "" : "s",
        static_cast<int>(std::lround(100 * planned * w / to.parallelism)));
    Record(c);
  }

  void Ordered(size_t i) {
    const StageAnalysis& s = a_.stages[i];
    const analyzer::StageKnobs& from = current_.stages[i];
    const analyzer::StageKnobs& to = plan_.knobs.stages[i];
    applied_.stages[i].ordered = to.ordered;
    Change c{s.name, kKnobDeterministic, from.ordered ? 1 : 0, to.ordered ? 1 : 0, "", "", 0};
    c.why = fmt::format(
        "stage '{}' allows reordering (\"allow_reorder\": true), so its {} workers emit each "
        "element as soon as it is done instead of waiting for the one ahead of it{}",
        s.name, to.parallelism,
        s.turn_wait_demand > 0 && from.parallelism > 1
            ? fmt::format(" (that wait took {}{} as traced)", Duration(s.turn_wait_demand), per_)
            : "");
    Record(c);
  }

  // Why stage i's queue gets `size` slots.
  std::string BufferBasis(size_t i, int size) const {
    const StageAnalysis& s = a_.stages[i];
    const StageModel& sm = m_.stages[i];
    if (size == 0) {
      return fmt::format(
          "the stage runs inline: at the planned {} {} it needs no thread of "
          "its own",
          Num(sol_.x), unit_);
    }
    std::string basis;
    if (m_.input_bound && i + 1 == a_.stages.size()) {
      basis = fmt::format(
          "the consumer waited in Next() {}% of the window, and a prefetch queue of {} lets the "
          "next {} be ready while it trains",
          static_cast<int>(std::lround(100 * a_.input_bound.wait_fraction)), size, a_.output_noun);
    } else if (sm.rate_cv > 0) {
      basis = fmt::format(
          "its output varies {}% between {} s samples, and {} elements cover a dip of two "
          "standard deviations at the planned {} elements/s",
          static_cast<int>(std::lround(100 * sm.rate_cv)), Num(o_.sample_interval), size,
          Num(s.visit_ratio * sol_.x));
    } else {
      basis = fmt::format(
          "a queue of {} lets it run on its own thread, overlapping with the "
          "stages downstream",
          size);
    }
    if (size < sm.buffer_target) {
      basis += fmt::format(" (the memory budget of {} leaves room for {} of the {} wanted)",
                           Bytes(m_.memory_budget), size, sm.buffer_target);
    }
    return basis;
  }

  void Buffer(size_t i) {
    const StageAnalysis& s = a_.stages[i];
    const analyzer::StageKnobs& from = current_.stages[i];
    const analyzer::StageKnobs& to = plan_.knobs.stages[i];
    applied_.stages[i].buffer_size = to.buffer_size;
    Change c{s.name, std::string(config::kKnobBufferSize), from.buffer_size, to.buffer_size, "", "",
             0};
    const std::string basis = BufferBasis(i, to.buffer_size);
    c.why = to.buffer_size == 0 ? fmt::format("stage '{}': {}", s.name, basis)
                                : fmt::format("stage '{}' gets an output queue of {}: {}", s.name,
                                              to.buffer_size, basis);
    Record(c);
  }

  void Cache(size_t k) {
    const StageModel& sm = m_.stages[k];
    double saved = 0;
    for (size_t i = 0; i <= k; ++i) saved += m_.stages[i].cpu;
    applied_.cache_after = k;
    Change c{a_.stages[k].name, kKnobCache, 0, 1, "", "", 0};
    c.why = fmt::format(
        "every stage up to '{}' is deterministic and one epoch of its output ({} elements of {}, "
        "{}) fits the memory budget of {}, so with {} a cache after it saves {} of CPU{} from the "
        "second epoch on",
        a_.stages[k].name, Num(sm.cache_elements), Bytes(sm.bytes), Bytes(sm.cache_bytes),
        Bytes(m_.memory_budget),
        o_.epochs < 0 ? "endless epochs" : fmt::format("{} epochs", o_.epochs), Duration(saved),
        per_);
    Record(c);
  }

  const Analysis& a_;
  const Model& m_;
  const Solution& sol_;
  const TuneOptions& o_;
  const analyzer::Resources& res_;
  const Knobs& current_;
  Plan& plan_;
  Knobs applied_;  // the knobs changed so far
  const std::string unit_, per_;
};

}  // namespace

void NoteDisagreement(const Analysis& a, const Model& m, const Solution& sol, Plan& plan) {
  // The program plans each thread at most 90 % busy (50 % on waiting work), so the prediction may
  // exceed its X by up to 1/h; outside that band the two models disagree, and the plan says so.
  double headroom = kServerHeadroom;
  for (size_t i = 0; i < a.stages.size(); ++i) {
    if (sol.async[i]) headroom = std::min(headroom, Headroom(m.stages[i]));
  }
  if (sol.x > 0 && (plan.predicted_outputs_per_s < 0.95 * sol.x ||
                    plan.predicted_outputs_per_s > 1.05 * sol.x / headroom)) {
    const std::string unit = Unit(a);
    plan.notes.push_back(fmt::format(
        "the program's throughput ({} {}, with every thread at most {}% busy) and the analyzer's "
        "prediction for the chosen knobs ({} {}) differ by {:.0f}%; the prediction is the one "
        "reported",
        Num(sol.x), unit, static_cast<int>(std::lround(100 * headroom)),
        Num(plan.predicted_outputs_per_s), unit,
        100 * std::abs(plan.predicted_outputs_per_s / sol.x - 1)));
  }
}

void ExplainChanges(const Analysis& a, const Model& m, const Solution& sol, const TuneOptions& o,
                    const analyzer::Resources& res, const Knobs& current, Plan& plan) {
  Explainer(a, m, sol, o, res, current, plan).Run();
}

void NoteInlineStages(const Analysis& a, const Model& m, Plan& plan) {
  double total_wall = 0;
  for (const StageAnalysis& s : a.stages) total_wall += s.wall_demand;
  for (size_t i = 0; i < a.stages.size(); ++i) {
    const StageAnalysis& s = a.stages[i];
    if (m.stages[i].too_fast && s.parallelizable && !m.stages[i].fixed_async &&
        s.wall_demand >= 0.1 * total_wall) {
      plan.notes.push_back(fmt::format(
          "stage '{}' takes {} per element, less than handing an element to another thread "
          "costs, so it stays inline: workers would slow it down",
          s.name, Duration(s.visit_ratio > 0 ? s.wall_demand / s.visit_ratio : 0)));
    }
  }
}

void NoteCache(const Analysis& a, const trace::PipelineTrace& p, const TuneOptions& o,
               const Solution& sol, Plan& plan) {
  if (sol.cache_after) {
    plan.notes.push_back(fmt::format(
        "the first epoch fills the cache after '{}' at today's pace; the predicted {} {} hold "
        "from the second epoch on",
        a.stages[*sol.cache_after].name, Num(plan.predicted_outputs_per_s), Unit(a)));
  } else if (o.epochs == 0 || o.epochs == 1) {
    plan.notes.push_back(o.epochs == 1 ? "no cache: the job reads its data once (epochs 1)"
                                       : "no cache: the number of epochs is unknown");
  } else if (p.epochs_completed < 1 && !o.epoch_outputs) {
    plan.notes.push_back(
        "no cache: no epoch completed in the trace, so the size of one epoch's data is unknown");
  }
}

std::string DrainNote(const Analysis& a) {
  return fmt::format(
      "the consumer takes {} {}, far more than the pipeline can make: the pipeline alone sets "
      "the pace",
      Num(a.consumer_outputs_per_s), Unit(a));
}

std::string CoresNote(const Analysis& a, const Plan& plan, double needed, double cores,
                      const Plan& bigger) {
  const std::string unit = Unit(a);
  return fmt::format(
      "the consumer could take {} {}, but the CPU holds the pipeline to {}: it needs {} cores "
      "({} more than the {} planned for); with {} cores the tuner predicts {} {} ({} "
      "threads){}",
      Num(a.consumer_outputs_per_s), unit, Num(plan.predicted_outputs_per_s), Num(needed),
      Num(needed - plan.cores), Num(plan.cores), Num(cores), Num(bigger.predicted_outputs_per_s),
      unit, bigger.threads,
      bigger.prediction.limits.empty()
          ? std::string()
          : ", then limited because " + bigger.prediction.limits.front().why);
}

}  // namespace sluice::tuner::internal
