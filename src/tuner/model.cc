// The tuner's model of a pipeline, built from its analysis and trace: per-stage demands, sizes,
// worker caps, queue targets and cache candidates, and the budgets the program plans within.
#include "tuner/model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "sluice/common/error.h"
#include "sluice/common/memory.h"

namespace sluice::tuner::internal {
namespace {

using analyzer::Analysis;
using analyzer::StageAnalysis;

constexpr double kInf = std::numeric_limits<double>::infinity();
// Buffer rule: cover a dip of this many standard deviations of one interval's output.
constexpr double kBufferSigmas = 2.0;
constexpr int kMaxBuffer = 64;
// Handing an element to another thread (a queue, a worker's input lock, waking a sleeper) costs
// from a fraction of a microsecond to tens of microseconds when threads contend; a stage whose
// elements take less than this is never made async or given workers by the tuner.
constexpr double kMinHandoffSeconds = 20e-6;
// A stage whose CPU time is at least this share of its wall time computes rather than waits.
constexpr double kCpuBoundShare = 0.7;

// GLPK aborts the process on a NaN or infinite coefficient: such inputs are rejected here.
void CheckInput(const Analysis& a, const std::string& stage, const char* what, double v) {
  if (!std::isfinite(v) || v < 0) {
    Fail("tune '{}': stage '{}': {} is {}, not a finite non-negative number", a.pipeline, stage,
         what, v);
  }
}

void CheckInputs(const Analysis& a, const Model& m) {
  CheckInput(a, "(consumer)", "the consumer step", m.step);
  if (!std::isfinite(m.other_cpu)) {
    Fail("tune '{}': the CPU demand outside the stages is {}, not a finite number", a.pipeline,
         m.other_cpu);
  }
  CheckInput(a, "(disk)", "the bytes read per output", m.disk_bytes);
  CheckInput(a, "(disk)", "the disk bandwidth", m.disk_bps);
  for (const StageAnalysis& s : a.stages) {
    CheckInput(a, s.name, "the wall demand", s.wall_demand);
    CheckInput(a, s.name, "the CPU demand", s.cpu_demand);
    CheckInput(a, s.name, "the turn wait", s.turn_wait_demand);
    CheckInput(a, s.name, "the bytes per element", s.bytes_per_element);
    CheckInput(a, s.name, "the visit ratio", s.visit_ratio);
  }
}

// The budgets, the consumer's step, the disk and the first stage reading storage.
void SetBudgets(Model& m, const Analysis& a, const TuneOptions& o) {
  m.cores = o.cores.value_or(a.cores);
  if (!(m.cores > 0)) Fail("tune '{}': the CPU budget must be positive (--cores)", a.pipeline);
  if (o.memory_bytes) {
    if (*o.memory_bytes <= 0) Fail("tune '{}': the memory budget must be positive", a.pipeline);
    m.memory_budget = static_cast<double>(*o.memory_bytes);
  } else {
    const double free = static_cast<double>(a.memory_bytes - a.rss_bytes);
    m.memory_budget = a.memory_bytes > 0 ? std::max(free, 0.0) / 2 : 1e9;
  }
  m.reserved = static_cast<double>(kTensorPoolIdleBytes);
  m.step = std::max(0.0, a.consumer_step_seconds);
  m.other_cpu = a.other_cpu_demand;  // may be slightly negative; Predict uses it as is
  m.disk_bytes = a.disk_bytes_per_output;
  m.disk_bps = a.disk_mb_per_s * 1e6;
  for (size_t i = 0; i < a.stages.size(); ++i) {
    if (a.stages[i].op == "read_file" || a.stages[i].op == "read_lines") {
      m.reader = i;
      break;
    }
  }
}

// Stage i's demands, sizes and worker cap (`cap`: the most workers any stage may get).
StageModel ModelStage(const Analysis& a, const trace::PipelineTrace& p, const TuneOptions& o,
                      size_t i, int cap) {
  const StageAnalysis& s = a.stages[i];
  StageModel sm;
  sm.wall = s.wall_demand;
  sm.reorder = s.parallelizable && s.ordered && o.reorder_allowed.count(s.name) > 0;
  // Unordered, the workers never wait for their turn.
  sm.owner_wall = s.wall_demand + (s.ordered && !sm.reorder ? s.turn_wait_demand : 0.0);
  sm.cpu = s.cpu_demand;
  sm.bytes = s.bytes_per_element;
  // A worker holds the element it makes and what it consumes for it: its input element, or
  // for a stage that gathers (a batch), the inputs of one output while it stacks them.
  const double inputs_per_output =
      i > 0 && s.visit_ratio > 0 ? a.stages[i - 1].visit_ratio / s.visit_ratio : 0;
  sm.worker_bytes =
      s.bytes_per_element + (i > 0 ? inputs_per_output * a.stages[i - 1].bytes_per_element : 0);
  sm.parallelizable = s.parallelizable;
  sm.fusible = i > 0 && s.parallelizable && s.fusible;
  sm.fixed_async = s.async || s.parallelism > 1 || s.buffer_size > 0;
  sm.cap = s.parallelizable ? std::max(cap, s.parallelism) : 1;
  const double service = s.visit_ratio > 0 ? s.wall_demand / s.visit_ratio : 0;
  if (service < kMinHandoffSeconds && s.elements > 0) {
    sm.too_fast = true;
    sm.cap = std::min(sm.cap, s.parallelism);  // no more workers than it has
  }
  if (i < p.stage_series.size()) {
    sm.rate_cv = IncrementCv(p.stage_series[i].elements_out, a.window.samples);
  }
  return sm;
}

// A cache may follow a stage when the job reads its data more than once, every stage up to it is
// deterministic, one epoch of its output fits the memory budget, and it is below any cache the
// pipeline has (a cache at or above one saves nothing: what it would save no longer runs).
void OfferCaches(Model& m, const Analysis& a, const trace::PipelineTrace& p, const TuneOptions& o) {
  const bool many_epochs = o.epochs > 1 || o.epochs < 0;
  const std::vector<double> epoch_elements = EpochElements(p, o.epoch_outputs);
  size_t below = 0;  // the first stage below the last existing cache
  for (size_t i = 0; i < p.stages.size(); ++i) {
    if (p.stages[i].op == kKnobCache) below = i + 1;
  }
  bool deterministic_so_far = true;
  for (size_t i = 0; i < m.stages.size(); ++i) {
    StageModel& sm = m.stages[i];
    deterministic_so_far = deterministic_so_far && Deterministic(p.stages[i]);
    if (many_epochs && deterministic_so_far && !epoch_elements.empty() && i >= below) {
      sm.cache_elements = epoch_elements[i];
      sm.cache_bytes = epoch_elements[i] * a.stages[i].bytes_per_element;
      sm.cache_ok = sm.cache_bytes > 0 && sm.cache_bytes + m.reserved <= m.memory_budget;
    }
  }
}

// Ordered workers of a CPU-bound stage beyond its share of the cores wait for each other: with
// more such workers than the cores its CPU demand would get on a saturated host, one of them is
// always descheduled and the others idle until it emits (on 2 cores a third worker for a
// 400 us burn stage measured 2-6 % slower in 15 of 18 configs, docs/benchmarks.md). The polish
// gives such a stage no more workers than that share.
// The share counts the CPU demand left after a cache upstream of the stage, where one may go.
void SetShareCaps(Model& m, const Analysis& a, double pipeline_cpu) {
  const size_t n = m.stages.size();
  for (size_t i = 0; i < n; ++i) {
    StageModel& sm = m.stages[i];
    const bool ordered = a.stages[i].ordered && !sm.reorder;
    double total_cpu = pipeline_cpu;
    for (size_t k = 0; k < i; ++k) {
      if (!m.stages[k].cache_ok) continue;
      double left = std::max(0.0, m.other_cpu);
      for (size_t j = k + 1; j < n; ++j) left += m.stages[j].cpu;
      total_cpu = std::min(total_cpu, left);
    }
    if (!ordered || !sm.parallelizable || total_cpu <= 0 || sm.cpu < kCpuBoundShare * sm.wall) {
      continue;
    }
    const int share = std::max(1, static_cast<int>(std::ceil(m.cores * sm.cpu / total_cpu - 1e-9)));
    sm.share_cap = std::min(sm.cap, share);
    sm.share_cpu_total = total_cpu;
  }
}

// An upper bound on X with a cache after stage k (-1: none), taking every stage alone on its most
// workers, the CPU and disk budgets and the consumer.
double BoundAfter(const Model& m, int k) {
  double x = m.step > 0 ? 1 / m.step : kInf;
  double cpu = m.other_cpu;
  for (size_t i = 0; i < m.stages.size(); ++i) {
    if (static_cast<int>(i) <= k) continue;
    cpu += m.stages[i].cpu;
    // Inline, a stage skips its turn wait: its plain wall time gives the looser bound.
    if (m.stages[i].wall > 0) x = std::min(x, m.stages[i].cap / m.stages[i].wall);
  }
  if (cpu > 0) x = std::min(x, m.cores / cpu);
  if (m.disk_bps > 0 && m.disk_bytes > 0 && k < static_cast<int>(m.reader)) {
    x = std::min(x, m.disk_bps / m.disk_bytes);
  }
  return x;
}

// X_max, for the big-M rows: the best bound of no cache and each cache.
void SetThroughputBound(Model& m) {
  m.x_max = BoundAfter(m, -1);
  for (size_t k = 0; k < m.stages.size(); ++k) {
    if (!m.stages[k].cache_ok) continue;
    const double bound = BoundAfter(m, static_cast<int>(k));
    // A cache that would leave the model nothing to bound the rate by (no work after it and no
    // training step) cannot be predicted: not offered.
    if (!std::isfinite(bound)) {
      m.stages[k].cache_ok = false;
      continue;
    }
    m.x_max = std::max(m.x_max, bound);
  }
  if (!std::isfinite(m.x_max)) m.x_max = 1e6;
}

}  // namespace

bool Waiting(double wall, double cpu) { return wall > 0 && cpu < kWaitingShare * wall; }

double Headroom(const StageModel& s) {
  return s.parallelizable && s.cap > 1 && Waiting(s.owner_wall, s.cpu) ? kWaitingHeadroom
                                                                       : kServerHeadroom;
}

double IncrementCv(const std::vector<int64_t>& counts, size_t samples) {
  if (counts.size() < 3) return -1;
  const size_t n = std::min(samples > 1 ? samples - 1 : counts.size() - 1, counts.size() - 1);
  double sum = 0, sum2 = 0;
  for (size_t i = counts.size() - n; i < counts.size(); ++i) {
    const double d = static_cast<double>(counts[i] - counts[i - 1]);
    sum += d;
    sum2 += d * d;
  }
  const double mean = sum / n;
  if (n < 2 || mean <= 0) return -1;
  const double var = std::max(0.0, sum2 / n - mean * mean);
  return std::sqrt(var) / mean;
}

bool Deterministic(const trace::StageTrace& s) {
  return s.deterministic && s.inspected != "non-deterministic";
}

std::vector<double> EpochElements(const trace::PipelineTrace& p,
                                  std::optional<double> epoch_outputs) {
  std::vector<double> out;
  if (p.epochs_completed >= 1) {
    for (const trace::StageTrace& s : p.stages) {
      out.push_back(static_cast<double>(s.elements_out) / static_cast<double>(p.epochs_completed));
    }
    return out;
  }
  // Within the first epoch: each stage's count so far, scaled by the epoch's known share done.
  if (!epoch_outputs || !(*epoch_outputs > 0) || p.stages.empty()) return out;
  const double done = static_cast<double>(p.stages.back().elements_out) / *epoch_outputs;
  if (!(done > 0)) return out;
  for (const trace::StageTrace& s : p.stages) {
    out.push_back(static_cast<double>(s.elements_out) / done);
  }
  return out;
}

// Queue targets, from a fluid approximation of the queue between a stage and its consumer
// (normal approximation of one interval's output): over an interval tau the stage emits
// lambda tau elements with standard deviation CV lambda tau; a queue of
// b* = ceil(z CV lambda tau), z = 2, covers a dip of two standard deviations, so the consumer
// finds it empty in about 2.3 % of intervals. lambda = V_i x, at the planned throughput x.
void SetBufferTargets(Model& m, const Analysis& a, double x) {
  const size_t n = m.stages.size();
  for (size_t i = 0; i < n; ++i) {
    StageModel& sm = m.stages[i];
    const double per_interval = a.stages[i].visit_ratio * x * m.interval;
    int target = 1;
    if (sm.rate_cv > 0 && std::isfinite(per_interval)) {
      target = static_cast<int>(
          std::min<double>(kMaxBuffer, std::ceil(kBufferSigmas * sm.rate_cv * per_interval)));
    }
    target = std::clamp(target, 1, kMaxBuffer);
    if (m.input_bound && i + 1 == n) target = std::max(target, 2);
    sm.buffer_target = target;
  }
}

Model BuildModel(const Analysis& a, const trace::PipelineTrace& p, const TuneOptions& o) {
  const size_t n = a.stages.size();
  if (p.stages.size() != n) {
    Fail("tune '{}': the trace has {} stages and the analysis {}", a.pipeline, p.stages.size(), n);
  }
  if (n == 0) Fail("tune '{}': the pipeline has no stages", a.pipeline);
  Model m;
  SetBudgets(m, a, o);
  // A prefetch pays when the consumer starves and has a training step to overlap with; a consumer
  // that only drains the pipeline (a step under a hand-off, or ten times faster than the host's
  // cores could ever feed it) would gain nothing from another thread but its hand-off cost (on
  // the suite's cacheable pipeline a forced prefetch measured 13-23 % slower).
  // The CPU demand per output of the whole pipeline (with the rest of the process).
  double pipeline_cpu = std::max(0.0, a.other_cpu_demand);
  for (const StageAnalysis& s : a.stages) pipeline_cpu += s.cpu_demand;
  const bool drain = m.step > 0 && pipeline_cpu > 0 && 1 / m.step > 10 * m.cores / pipeline_cpu;
  m.input_bound =
      a.input_bound.verdict != analyzer::Verdict::kNot && m.step >= kMinHandoffSeconds && !drain;
  const int cap = o.max_workers > 0
                      ? o.max_workers
                      : std::min(128, std::max(8, static_cast<int>(std::ceil(2 * m.cores))));
  CheckInputs(a, m);
  for (size_t i = 0; i < n; ++i) m.stages.push_back(ModelStage(a, p, o, i, cap));
  OfferCaches(m, a, p, o);
  SetShareCaps(m, a, pipeline_cpu);
  SetThroughputBound(m);
  m.interval = o.sample_interval;
  SetBufferTargets(m, a, m.x_max);
  return m;
}

}  // namespace sluice::tuner::internal
