// The online tuner's decisions (internal/decide.h) and the run's convergence figures.
#include "autotune/internal/decide.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sluice/autotune/autotune.h"
#include "sluice/common/figures.h"
#include "sluice/config/document.h"

namespace sluice::autotune {
namespace internal {

std::vector<pipeline::KnobChange> LiveChanges(const tuner::Plan& plan) {
  std::vector<pipeline::KnobChange> out;
  for (const tuner::Change& c : plan.changes) {
    if (c.knob == tuner::kKnobCache) continue;
    out.push_back({c.stage, c.knob, c.to});
  }
  return out;
}

double WindowNoise(const trace::Trace& trace, const trace::PipelineTrace& p, double from,
                   int parts) {
  const size_t first = std::min(p.first_index, trace.series.t.size());
  const double* t = trace.series.t.data() + first;
  const size_t end = std::min(p.consumer_next.size(), trace.series.t.size() - first);
  size_t k0 = 0;
  while (k0 < end && t[k0] < from) ++k0;
  const size_t spans = static_cast<size_t>(std::max(parts, 2));
  if (end < k0 + 2 * spans + 1) return 0;
  // Spans of equal sample counts (the tracer samples at a steady interval).
  std::vector<double> rates;
  double mean = 0;
  for (size_t j = 0; j < spans; ++j) {
    const size_t a = k0 + j * (end - 1 - k0) / spans;
    const size_t b = k0 + (j + 1) * (end - 1 - k0) / spans;
    if (!(t[b] > t[a])) return 0;
    rates.push_back(static_cast<double>(p.consumer_next[b] - p.consumer_next[a]) / (t[b] - t[a]));
    mean += rates.back() / static_cast<double>(spans);
  }
  if (!(mean > 0)) return 0;
  double var = 0;
  for (double r : rates) var += (r - mean) * (r - mean) / static_cast<double>(spans - 1);
  return std::sqrt(var / static_cast<double>(spans)) / mean;
}

double NoiseBetween(double se_a, double se_b, double floor) {
  return std::max(floor, 2 * std::sqrt(se_a * se_a + se_b * se_b));
}

bool KeepTrial(double before, double measured, double noise) {
  return measured >= before * (1 - noise);
}

std::string WhenText(pipeline::AppliedChange::When when) {
  switch (when) {
    case pipeline::AppliedChange::When::kNextEpoch:
      return "next_epoch";
    case pipeline::AppliedChange::When::kNotApplied:
      return "not_applied";
    case pipeline::AppliedChange::When::kNow:
      break;
  }
  return "now";
}

bool KeepProbe(double before, double measured, double noise) {
  return measured > before * (1 + noise);
}

bool MeasureProbeAgain(double before, double measured, double noise) {
  return measured > before && !KeepProbe(before, measured, noise);
}

namespace {

// "the model's bound at these knobs, B/s (calibrated), is G% above the M measured", when the
// bound (scaled by `calibration`) is more than `gap` above the measured rate; nullopt otherwise.
std::optional<std::string> FarAboveTheRate(const analyzer::Analysis& a, double gap,
                                           double calibration) {
  const double measured = a.measured_outputs_per_s;
  const double bound = a.predicted_outputs_per_s;
  if (!(measured > 0) || !(bound * calibration > measured * (1 + gap))) return std::nullopt;
  const std::string calibrated = calibration == 1
                                     ? ""
                                     : fmt::format(" ({} calibrated: {} {}/s)", Num(calibration),
                                                   Num(bound * calibration), Plural(a.output_noun));
  return fmt::format("the model's bound at these knobs, {} {}/s{}, is {}% above the {} measured",
                     Num(bound), Plural(a.output_noun), calibrated,
                     Num(100 * (bound * calibration / measured - 1)), Num(measured));
}

// The buffer_size changes of `plan` that at least double a queue (from 0: to 2 or more), with
// how a reason names them; nullopt when there are none.
struct DoubledQueues {
  std::vector<pipeline::KnobChange> changes;
  std::string queues;  // "the queue of 'a' 0 to 64", or "the queues of 'a' 0 to 64, 'b' 1 to 64"
  std::string grow;    // "the queue grows", or "the queues grow"
};
std::optional<DoubledQueues> QueuesThePlanDoubles(const tuner::Plan& plan) {
  DoubledQueues d;
  std::vector<std::string> grown;
  for (const tuner::Change& c : plan.changes) {
    if (c.knob != config::kKnobBufferSize || c.to < 2 * std::max<int64_t>(c.from, 1)) continue;
    d.changes.push_back({c.stage, c.knob, c.to});
    grown.push_back(fmt::format("'{}' {} to {}", c.stage, c.from, c.to));
  }
  if (d.changes.empty()) return std::nullopt;
  const bool many = grown.size() > 1;
  d.queues = fmt::format("the queue{} of {}", many ? "s" : "", fmt::join(grown, ", "));
  d.grow = many ? "the queues grow" : "the queue grows";
  return d;
}

}  // namespace

std::optional<Probe> ProbeChange(const analyzer::Analysis& a, const std::set<std::string>& tried,
                                 double gap, double calibration) {
  const std::optional<std::string> far = FarAboveTheRate(a, gap, calibration);
  if (!far) return std::nullopt;
  for (const analyzer::Limit& l : a.limits) {  // the tightest first
    if (l.kind != analyzer::LimitKind::kStage || tried.contains(l.stage)) continue;
    for (const analyzer::StageAnalysis& s : a.stages) {
      if (s.name != l.stage || !s.parallelizable || s.parallelism != 1) continue;
      Probe p;
      p.change = {s.name, std::string(config::kKnobParallelism), 2};
      p.reason = fmt::format(
          "{}: something it does not model limits the pipeline, and no plan it solves promises a "
          "gain. A trial outside the model: stage '{}', the tightest stage bound ({} {}/s), gets "
          "a second worker, kept only if the rate rises by more than the noise",
          *far, s.name, Num(l.outputs_per_s), Plural(a.output_noun));
      return p;
    }
  }
  return std::nullopt;
}

std::optional<QueueTrial> QueueGrowth(const tuner::Plan& plan, double before, double rate,
                                      double min_gain) {
  const std::optional<DoubledQueues> d = QueuesThePlanDoubles(plan);
  if (!d) return std::nullopt;
  const std::string noun = Plural(plan.output_noun);
  return QueueTrial{
      d->changes,
      fmt::format(
          "the rate rose from {} to {} {}/s, and the plan for it grows {}, each sized for the "
          "variability of its stage's output at the planned {} {}/s; the model gives a hand-off "
          "no cost, so a larger queue raises no predicted rate and the plan promises less than "
          "the {}% gain. A trial outside the model: {} as planned, within the memory budget, and "
          "stay unless the rate falls by more than the noise",
          Num(before), Num(rate), noun, d->queues, Num(plan.predicted_outputs_per_s), noun,
          Num(100 * min_gain), d->grow)};
}

std::optional<QueueTrial> QueueProbe(const analyzer::Analysis& a, const tuner::Plan& plan,
                                     double gap, double calibration) {
  const std::optional<std::string> far = FarAboveTheRate(a, gap, calibration);
  if (!far) return std::nullopt;
  const std::optional<DoubledQueues> d = QueuesThePlanDoubles(plan);
  if (!d) return std::nullopt;
  return QueueTrial{
      d->changes,
      fmt::format(
          "{}: something it does not model limits the pipeline, no plan it solves promises a "
          "gain, and no stage is left to try with a second worker. The plan grows {}; a producer "
          "that finds its queue full waits for the consumer to take an element, a wake-up per "
          "hand-off the model does not price. A trial outside the model: {} as planned, within "
          "the memory budget, kept only if the rate rises by more than the noise",
          *far, d->queues, d->grow)};
}

PhaseMove AfterPhaseChange(double before, double rate) {
  PhaseMove m;
  m.queues = rate >= kQueueRise * before;
  m.reprobe = std::abs(rate - before) > kProbeGap * before;
  return m;
}

double Calibrate(double factor, double predicted, double measured) {
  if (!(predicted > 0) || !(measured > 0)) return factor;
  return 0.5 * factor + 0.5 * (measured / predicted);
}

analyzer::Analysis AnalyzeWindow(trace::Trace trace, double from, const std::string& pipeline,
                                 std::optional<double> cores) {
  trace.tracer.warmup_seconds = from;
  trace.tracer.warmup_method = fmt::format("the autotuner's window from {} s", Num(from));
  analyzer::AnalyzeOptions opt;
  opt.pipeline = pipeline;
  opt.cores = cores;
  opt.origin = "the live trace";
  return analyzer::Analyze(trace, opt);
}

trace::Retune RecordApply(double t, const std::string& reason, const tuner::Plan& plan,
                          const std::vector<pipeline::AppliedChange>& applied, double before,
                          double calibration) {
  trace::Retune r;
  r.t = t;
  r.action = "apply";
  r.reason = reason;
  r.before_outputs_per_s = before;
  r.predicted_outputs_per_s = plan.predicted_outputs_per_s;
  r.calibrated_outputs_per_s = plan.predicted_outputs_per_s * calibration;
  for (const pipeline::AppliedChange& a : applied) {
    trace::RetuneChange c{a.stage, a.knob, a.from, a.to, "", WhenText(a.when), a.note};
    for (const tuner::Change& p : plan.changes) {
      if (p.stage == a.stage && p.knob == a.knob) c.why = p.why;
    }
    r.changes.push_back(std::move(c));
  }
  return r;
}

trace::Retune RecordReplan(double t, const std::string& reason, const tuner::Plan& plan,
                           double before, double calibration, double min_gain) {
  trace::Retune r;
  r.t = t;
  r.action = "replan";
  r.reason = reason + "; " +
             (plan.changes.empty()
                  ? std::string("the model finds no knob to change")
                  : fmt::format("the best plan promises {}% over the current config, not more "
                                "than the {}% minimum gain",
                                Num(100 * (plan.speedup - 1)), Num(100 * min_gain))) +
             ": nothing is changed";
  r.before_outputs_per_s = before;
  r.predicted_outputs_per_s = plan.predicted_outputs_per_s;
  r.calibrated_outputs_per_s = plan.predicted_outputs_per_s * calibration;
  return r;
}

int64_t EpochsToReplay(int64_t epochs, int64_t epoch) {
  if (epochs < 0) return -1;
  // The next epoch records; those after it replay.
  return std::max<int64_t>(0, epochs - epoch - 2);
}

std::optional<tuner::Change> CacheToInsert(const tuner::Plan& with_cache,
                                           const tuner::Plan& without, double min_gain) {
  for (const tuner::Change& c : with_cache.changes) {
    if (c.knob != tuner::kKnobCache) continue;
    if (with_cache.predicted_outputs_per_s > (1 + min_gain) * without.predicted_outputs_per_s) {
      return c;
    }
  }
  return std::nullopt;
}

trace::Retune RecordCache(double t, const tuner::Change& cache, const tuner::Plan& with_cache,
                          const pipeline::AppliedChange& applied, double before,
                          double calibration) {
  trace::Retune r;
  r.t = t;
  r.action = "apply";
  r.reason = fmt::format(
      "a cache after stage '{}' stops the stages up to it from the epoch after next; the plan "
      "with it promises {} outputs/s (its other knobs are re-planned once it replays)",
      cache.stage, Num(with_cache.predicted_outputs_per_s));
  r.before_outputs_per_s = before;
  r.predicted_outputs_per_s = with_cache.predicted_outputs_per_s;
  r.calibrated_outputs_per_s = with_cache.predicted_outputs_per_s * calibration;
  trace::RetuneChange c{applied.stage, applied.knob,           applied.from, applied.to,
                        cache.why,     WhenText(applied.when), applied.note};
  r.changes.push_back(std::move(c));
  return r;
}

namespace {

// The stages of `a` with `planned` applied to their knobs (parallelism, buffer, async).
std::vector<analyzer::StageAnalysis> AfterChanges(
    const analyzer::Analysis& a, const std::vector<pipeline::KnobChange>& planned) {
  std::vector<analyzer::StageAnalysis> out = a.stages;
  for (analyzer::StageAnalysis& s : out) {
    for (const pipeline::KnobChange& c : planned) {
      if (c.stage != s.name) continue;
      if (c.knob == config::kKnobParallelism) s.parallelism = static_cast<int>(c.to);
      if (c.knob == config::kKnobBufferSize) s.buffer_size = static_cast<int>(c.to);
    }
    s.async = s.parallelism > 1 || s.buffer_size > 0;
  }
  return out;
}

// The index of the stage whose workers run inline stage `i` under `stages`' knobs: the first
// stage below it that is not an inline parallelizable map, when that one is a parallel map.
std::optional<size_t> FusedOwner(const std::vector<analyzer::StageAnalysis>& stages, size_t i) {
  for (size_t j = i + 1; j < stages.size(); ++j) {
    if (!stages[j].parallelizable) return std::nullopt;
    if (stages[j].async) {
      return stages[j].parallelism > 1 ? std::optional<size_t>(j) : std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace

RecordingWorkers WorkersForRecording(const analyzer::Analysis& a, const std::string& cache_after,
                                     const std::vector<pipeline::KnobChange>& planned) {
  RecordingWorkers out;
  const std::vector<analyzer::StageAnalysis> stages = AfterChanges(a, planned);
  const auto find = [&](const std::string& name) -> const analyzer::StageAnalysis* {
    for (const analyzer::StageAnalysis& s : stages) {
      if (s.name == name) return &s;
    }
    return nullptr;
  };
  const analyzer::StageAnalysis* stage = find(cache_after);
  if (stage == nullptr || stage->async || !stage->parallelizable) return out;
  const analyzer::StageAnalysis* owner = nullptr;
  if (planned.empty()) {
    owner = stage->run_by.empty() ? nullptr : find(stage->run_by);
  } else if (const auto j = FusedOwner(stages, static_cast<size_t>(stage - stages.data()))) {
    owner = &stages[*j];
  }
  if (owner == nullptr || owner->parallelism <= 1) return out;
  out.changes = {{stage->name, std::string(config::kKnobParallelism), owner->parallelism},
                 {stage->name, std::string(config::kKnobBufferSize),
                  std::max(owner->buffer_size, owner->parallelism)}};
  out.why = fmt::format(
      "'{}' runs on the {} workers of '{}'; the cache after it ends that chain, so it gets workers "
      "of its own (as many, with their buffer) for the epoch the cache records, which would "
      "otherwise run it and the stages above it on one thread",
      stage->name, owner->parallelism, owner->name);
  return out;
}

std::vector<pipeline::KnobChange> Undo(const std::vector<pipeline::AppliedChange>& applied) {
  std::vector<pipeline::KnobChange> out;
  for (const pipeline::AppliedChange& a : applied) {
    // A cache cannot leave a running pipeline; nothing else waits for it.
    if (a.when == pipeline::AppliedChange::When::kNotApplied || a.knob == config::kKnobCache) {
      continue;
    }
    out.push_back({a.stage, a.knob, a.from});
  }
  return out;
}

}  // namespace internal

bool WriteLastConfig(const trace::Trace& trace, const std::string& pipeline,
                     const std::filesystem::path& out) {
  const trace::PipelineTrace* p = nullptr;
  for (const trace::PipelineTrace& q : trace.pipelines) {
    if (q.name == pipeline ||
        (pipeline.empty() && (p == nullptr || q.consumer.next_calls > p->consumer.next_calls))) {
      p = &q;
    }
  }
  if (p == nullptr || p->config_text.empty()) return false;
  config::Document doc = config::Document::Parse(p->config_text, p->config_path);
  // A stage the running pipeline gained (a cache) goes after the stage it followed.
  for (size_t i = 0; i < p->stages.size(); ++i) {
    const trace::StageTrace& s = p->stages[i];
    const auto& specs = doc.stages();
    if (std::any_of(specs.begin(), specs.end(), [&](const auto& c) { return c.name == s.name; })) {
      continue;
    }
    const size_t at = i == 0 ? 0 : doc.Stage(p->stages[i - 1].name).index + 1;
    doc.InsertStage(at, config::Json{{"name", s.name}, {"op", s.op}});
  }
  for (const trace::StageTrace& s : p->stages) {
    const config::StageSpec& spec = doc.Stage(s.name);
    if (spec.parallelism.value_or(1) != s.parallelism) {
      doc.SetKnob(s.name, config::kKnobParallelism, config::Json(s.parallelism));
    }
    if (spec.buffer_size.value_or(0) != s.buffer_size) {
      doc.SetKnob(s.name, config::kKnobBufferSize, config::Json(s.buffer_size));
    }
    if (spec.deterministic.value_or(true) != s.ordered) {
      doc.SetKnob(s.name, config::kKnobDeterministic, config::Json(s.ordered));
    }
  }
  doc.Save(out, std::filesystem::path(out.string() + ".bak"));
  return true;
}

void Converge(const trace::Trace& trace, const std::string& pipeline, Summary& summary,
              double final_seconds) {
  const trace::PipelineTrace* p = nullptr;
  for (const trace::PipelineTrace& q : trace.pipelines) {
    if (q.name == pipeline ||
        (pipeline.empty() && (p == nullptr || q.consumer.next_calls > p->consumer.next_calls))) {
      p = &q;
    }
  }
  summary.final_outputs_per_s = 0;
  summary.converged_after_s = 0;
  if (p == nullptr || p->consumer_next.size() < 2) return;
  const std::vector<double> t(trace.series.t.begin() + static_cast<long>(p->first_index),
                              trace.series.t.end());
  const std::vector<int64_t>& n = p->consumer_next;
  const size_t last = std::min(t.size(), n.size()) - 1;
  // The count `seconds` before sample k, interpolated between samples.
  const auto rate_before = [&](size_t k, double seconds) {
    size_t j = k;
    while (j > 0 && t[k] - t[j] < seconds) --j;
    const double dt = t[k] - t[j];
    return dt > 0 ? static_cast<double>(n[k] - n[j]) / dt : 0.0;
  };
  summary.final_outputs_per_s = rate_before(last, final_seconds);
  // Windows as long as the final one: a shorter window's rate is noisier than the rate it is
  // compared with (a 2-second window of a 45-outputs/s image pipeline swings by over 5 % with
  // its config unchanged), which would put convergence at the last swing rather than at the
  // last change. A window's start is when it converged; never before the config last changed.
  const double target = 0.95 * summary.final_outputs_per_s;
  const double start = t.front();
  double converged = t[last];
  for (size_t k = last + 1; k-- > 0;) {
    if (t[k] - start < final_seconds) break;
    if (rate_before(k, final_seconds) < target) break;
    converged = t[k] - final_seconds;
  }
  for (const trace::Retune& r : p->retunes) {
    const bool applied =
        std::any_of(r.changes.begin(), r.changes.end(),
                    [](const trace::RetuneChange& c) { return c.when != "not_applied"; });
    if (applied) converged = std::max(converged, r.t);
  }
  summary.converged_after_s = std::max(0.0, converged - start);
}

}  // namespace sluice::autotune
