// Analyze: the steady-state window, per-stage visit ratios (the traffic equations, solved with
// Eigen) and demands, the resources, the ranked limits and the input-bound verdict.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <Eigen/Sparse>
#include <Eigen/SparseLU>

#include "analyzer/model.h"
#include "sluice/analyzer/analysis.h"
#include "sluice/common/error.h"
#include "sluice/trace/steady.h"

namespace sluice::analyzer {
namespace {

using internal::Duration;
using internal::kConsumer;
using internal::Num;
using internal::Percent;
using internal::Quoted;

// Thresholds of the verdict and of the confidence flag (docs/model.md).
constexpr double kHighlyInputBound = 0.20;
constexpr double kModeratelyInputBound = 0.05;
constexpr double kMinWindowSeconds = 3.0;
constexpr size_t kMinWindowSamples = 20;
constexpr double kMaxRateCv = 0.25;
constexpr double kTargetStderr = 0.05;
// Outputs per block when measuring the rate's variation: fewer and counting one output more or
// less in a block would look like instability.
constexpr double kOutputsPerBlock = 10;
constexpr size_t kMinBlocks = 5;

// Where the steady state begins (trace::FindSteadyStart, the tracer's rule too), for pipelines
// the tracer did not cut for; the start of the series when it finds none.
double FindSteadyStart(const std::vector<double>& t, const std::vector<int64_t>& counts) {
  const double first = t.empty() ? 0 : t.front();
  return trace::FindSteadyStart(t, counts).value_or(first);
}

// The checked view of one pipeline's columns.
class PipelineView {
 public:
  PipelineView(const trace::Trace& trace, size_t index, const std::string& origin)
      : trace_(trace), p_(trace.pipelines[index]), index_(index), origin_(origin) {
    const size_t total = trace.series.t.size();
    if (p_.first_index > total) {
      FailAt("series.first_index",
             fmt::format("{} is past the trace's {} samples", p_.first_index, total));
    }
    n_ = total - p_.first_index;
    CheckLength("series.consumer_next", p_.consumer_next.size());
    CheckLength("series.consumer_wait", p_.consumer_wait.size());
    if (!p_.consumer_between.empty()) {
      CheckLength("series.consumer_between", p_.consumer_between.size());
    }
    if (p_.stages.empty()) FailAt("stages", "the pipeline has no stages");
    if (p_.stage_series.size() != p_.stages.size()) {
      FailAt("series.stages", fmt::format("has {} entries, expected one per stage ({})",
                                          p_.stage_series.size(), p_.stages.size()));
    }
    for (size_t s = 0; s < p_.stages.size(); ++s) {
      const trace::StageSeries& ss = p_.stage_series[s];
      const std::string at = fmt::format("series.stages[{}].", s);
      CheckLength(at + "elements_out", ss.elements_out.size());
      CheckLength(at + "cpu_seconds", ss.cpu_seconds.size());
      CheckLength(at + "busy_seconds", ss.busy_seconds.size());
      CheckOptional(at + "blocked_input_seconds", ss.blocked_input_seconds.size());
      CheckOptional(at + "blocked_output_seconds", ss.blocked_output_seconds.size());
      CheckOptional(at + "queue_size", ss.queue_size.size());
    }
  }

  [[noreturn]] void FailAt(const std::string& field, const std::string& what) const {
    Fail("{}: pipelines[{}].{}: {}", origin_, index_, field, what);
  }

  size_t Samples() const { return n_; }
  double T(size_t k) const { return trace_.series.t[p_.first_index + k]; }
  size_t Global(size_t k) const { return p_.first_index + k; }

 private:
  void CheckLength(const std::string& field, size_t size) const {
    if (size != n_) {
      FailAt(field, fmt::format("has {} values, expected {} (one per sample from first_index {})",
                                size, n_, p_.first_index));
    }
  }
  void CheckOptional(const std::string& field, size_t size) const {
    if (size != 0) CheckLength(field, size);
  }

  const trace::Trace& trace_;
  const trace::PipelineTrace& p_;
  size_t index_;
  const std::string& origin_;
  size_t n_ = 0;
};

template <typename T>
double Delta(const std::vector<T>& v, size_t a, size_t b) {
  return v.size() > b ? static_cast<double>(v[b]) - static_cast<double>(v[a]) : 0.0;
}

size_t SelectPipeline(const trace::Trace& trace, const AnalyzeOptions& opt) {
  if (trace.pipelines.empty()) {
    Fail("{}: pipelines: the trace holds no pipeline (the job built none while it was traced)",
         opt.origin);
  }
  if (!opt.pipeline.empty()) {
    std::vector<std::string> names;
    for (size_t i = 0; i < trace.pipelines.size(); ++i) {
      if (trace.pipelines[i].name == opt.pipeline) return i;
      names.push_back(trace.pipelines[i].name);
    }
    Fail("{}: pipelines: no pipeline named '{}' (the trace has {})", opt.origin, opt.pipeline,
         Quoted(names));
  }
  // The tracer cuts the warm-up of the same one: the pipeline that delivered the most outputs.
  size_t best = 0;
  for (size_t i = 1; i < trace.pipelines.size(); ++i) {
    if (trace.pipelines[i].consumer.next_calls > trace.pipelines[best].consumer.next_calls) {
      best = i;
    }
  }
  return best;
}

size_t BusiestPipeline(const trace::Trace& trace) {
  AnalyzeOptions none;
  return SelectPipeline(trace, none);
}

// Visit ratios from the traffic equations of an open network, lambda = gamma + R^T lambda
// (Jackson 1963; Denning & Buzen 1978): gamma_i are elements a stage creates without input
// (sources), R[i][j] the elements stage j emits per element stage i routes to it. A chain's R
// has one entry below the diagonal per stage, its out/in ratio; other graphs add entries. V_i =
// lambda_i / lambda_last: elements of stage i per delivered output.
std::vector<double> SolveTrafficEquations(const std::vector<double>& gamma,
                                          const std::vector<double>& ratio,
                                          const std::string& where) {
  const auto n = static_cast<Eigen::Index>(gamma.size());
  std::vector<Eigen::Triplet<double>> entries;
  for (Eigen::Index i = 0; i < n; ++i) {
    entries.emplace_back(i, i, 1.0);
    if (i > 0 && ratio[static_cast<size_t>(i)] != 0) {
      entries.emplace_back(i, i - 1, -ratio[static_cast<size_t>(i)]);  // (I - R^T)
    }
  }
  Eigen::SparseMatrix<double> a(n, n);
  a.setFromTriplets(entries.begin(), entries.end());
  Eigen::VectorXd g(n);
  for (Eigen::Index i = 0; i < n; ++i) g[i] = gamma[static_cast<size_t>(i)];
  Eigen::SparseLU<Eigen::SparseMatrix<double>> lu;
  lu.compute(a);
  if (lu.info() != Eigen::Success) Fail("{}: the traffic equations have no solution", where);
  Eigen::VectorXd lambda = lu.solve(g);
  if (lu.info() != Eigen::Success) Fail("{}: the traffic equations have no solution", where);
  std::vector<double> visits(gamma.size(), 0.0);
  const double last = lambda[n - 1];
  for (Eigen::Index i = 0; i < n; ++i) {
    visits[static_cast<size_t>(i)] = last > 0 ? lambda[i] / last : 0.0;
  }
  return visits;
}

// The confidence flag: a short window, too few outputs, or an unstable rate.
Confidence Judge(const PipelineView& view, const std::vector<int64_t>& next, size_t a, size_t b,
                 double interval) {
  Confidence c;
  const double seconds = view.T(b) - view.T(a);
  const size_t samples = b - a + 1;
  const double outputs = static_cast<double>(next[b] - next[a]);
  std::vector<std::string> reasons;
  double more = 0;
  if (seconds < kMinWindowSeconds || samples < kMinWindowSamples) {
    reasons.push_back(
        fmt::format("the steady window is short ({} s, {} samples; at least {} s and "
                    "{} samples are needed)",
                    Num(seconds), samples, Num(kMinWindowSeconds), kMinWindowSamples));
    more = std::max(more, kMinWindowSeconds - seconds);
    if (samples < kMinWindowSamples) {
      more = std::max(more, static_cast<double>(kMinWindowSamples - samples) * interval);
    }
  }
  // Rates over blocks of consecutive samples lasting at least a sampling interval and holding
  // about kOutputsPerBlock outputs; a shorter remainder (the last sample, taken when tracing
  // stops, can come milliseconds after the one before) is left out.
  const double mean_rate = seconds > 0 ? outputs / seconds : 0;
  const double block_len =
      std::max(interval, mean_rate > 0 ? kOutputsPerBlock / mean_rate : seconds) * (1 - 1e-6);
  std::vector<double> rates;
  double covered = 0;
  for (size_t k0 = a, k = a + 1; k <= b; ++k) {
    const double dt = view.T(k) - view.T(k0);
    if (dt >= block_len) {
      rates.push_back(static_cast<double>(next[k] - next[k0]) / dt);
      covered += dt;
      k0 = k;
    }
  }
  c.block_seconds = rates.empty() ? seconds : covered / static_cast<double>(rates.size());
  if (rates.size() >= 2) {
    double mean = 0;
    for (double r : rates) mean += r;
    mean /= static_cast<double>(rates.size());
    double var = 0;
    for (double r : rates) var += (r - mean) * (r - mean);
    var /= static_cast<double>(rates.size() - 1);
    c.rate_cv = mean > 0 ? std::sqrt(var) / mean : 0;
    c.rate_stderr = c.rate_cv / std::sqrt(static_cast<double>(rates.size()));
  }
  if (rates.size() < kMinBlocks) {
    reasons.push_back(fmt::format(
        "too few outputs ({}) in the window to judge whether the rate is steady", outputs));
    more = std::max(more, static_cast<double>(kMinBlocks - rates.size()) * c.block_seconds);
  } else if (c.rate_cv > kMaxRateCv) {
    // Blocks needed for a standard error of the mean rate of kTargetStderr: (cv / target)^2,
    // treating blocks as independent.
    const double blocks = std::ceil(std::pow(c.rate_cv / kTargetStderr, 2));
    reasons.push_back(
        fmt::format("the output rate is unsteady (coefficient of variation {} over blocks of {})",
                    Num(c.rate_cv), Duration(c.block_seconds)));
    more = std::max(more, blocks * c.block_seconds - seconds);
  }
  if (!reasons.empty()) {
    c.ok = false;
    c.more_seconds = std::max(0.0, std::ceil(more * 10) / 10);
    c.reason = reasons.front();
    for (size_t i = 1; i < reasons.size(); ++i) c.reason += "; " + reasons[i];
  }
  return c;
}

// The steady window as a span of the pipeline's samples, [first, last].
struct Span {
  size_t first = 0, last = 0;
  size_t samples = 0;  // the pipeline's samples, the window's and the others
  double seconds = 0;  // its length
  double outputs = 0;  // n_0: outputs delivered to the consumer in it
};

// The first sample after the consumer's first step, where that step weighs on the window: it
// pays the job's one-time costs (lazy initialisation, kernel selection, compilation), and its
// mean between Next() calls, to the first sample with two outputs, is over twice the mean
// after. Else `first`. Needs the consumer's own clock (consumer_between); fills `note`.
size_t AfterAColdFirstStep(const trace::PipelineTrace& p, size_t first, size_t n,
                           std::string& note) {
  const std::vector<int64_t>& next = p.consumer_next;
  const std::vector<double>& between = p.consumer_between;
  if (between.size() != next.size() || first >= n) return first;
  size_t f = first;
  while (f + 2 < n && next[f] < 2) ++f;
  const int64_t rest = next[n - 1] - next[f];
  if (f == first || next[f] < 2 || rest < 2) return first;
  const double early_steps =
      std::max<double>(1, static_cast<double>(next[f] - 1 - std::max<int64_t>(next[first] - 1, 0)));
  const double early = (between[f] - between[first]) / early_steps;
  const double after = (between[n - 1] - between[f]) / static_cast<double>(rest);
  if (!(early > 2 * after)) return first;
  note = fmt::format("; after the consumer's first step ({} per step to there, {} after)",
                     Duration(early), Duration(after));
  return f;
}

// The steady-state window: from the warm-up cut (the tracer's, for the pipeline it cut for) to
// the end of the trace or the pipeline's last output. Fills a.window, a.outputs and the measured
// rate.
Span SelectWindow(const trace::Trace& trace, size_t index, const PipelineView& view, Analysis& a) {
  const trace::PipelineTrace& p = trace.pipelines[index];
  const size_t n = view.Samples();
  double start = 0;
  if (index == BusiestPipeline(trace)) {
    start = trace.tracer.warmup_seconds;
    a.window.method = trace.tracer.warmup_method.empty()
                          ? "from the trace's warm-up cut"
                          : "from the tracer's warm-up cut: " + trace.tracer.warmup_method;
  } else {
    std::vector<double> t(trace.series.t.begin() + static_cast<long>(p.first_index),
                          trace.series.t.end());
    start = FindSteadyStart(t, p.consumer_next);
    a.window.method = trace::kSteadyStartRule;
  }
  Span w;
  w.samples = n;
  while (w.first + 1 < n && view.T(w.first) < start - 1e-9) ++w.first;
  if (w.first + 1 >= n) {
    w.first = 0;
    a.notes.push_back(fmt::format(
        "the warm-up cut ({} s) leaves no window; the whole trace of the pipeline is used",
        Num(start)));
  }
  // Nor before the consumer's first Next(): the job's set-up (building a model, loading
  // weights) is not its training step.
  if (w.first + 2 < n && p.consumer_next[w.first + 1] == 0) {
    while (w.first + 2 < n && p.consumer_next[w.first + 1] == 0) ++w.first;
    a.window.method += "; from the consumer's first Next() call";
  }
  std::string cold;
  w.first = AfterAColdFirstStep(p, w.first, n, cold);
  a.window.method += cold;
  w.last = n - 1;
  if (p.finished || p.closed) {
    // A pipeline that ran out of data, or that the job destroyed: the window ends at its last
    // output, not in the time the job spent afterwards (shutting down, printing, exiting).
    while (w.last > w.first + 1 && p.consumer_next[w.last - 1] == p.consumer_next[n - 1]) --w.last;
    if (w.last < n - 1) {
      a.window.method += p.finished ? "; to the pipeline's last output (it finished)"
                                    : "; to the pipeline's last output (the job closed it)";
    }
  }
  a.window.start = view.T(w.first);
  a.window.end = view.T(w.last);
  a.window.seconds = a.window.end - a.window.start;
  a.window.samples = w.last - w.first + 1;
  w.seconds = a.window.seconds;
  if (!(w.seconds > 0)) {
    view.FailAt("series", fmt::format("the steady window [{}, {}] s has no length",
                                      Num(a.window.start), Num(a.window.end)));
  }
  const int64_t outputs = p.consumer_next[w.last] - p.consumer_next[w.first];
  if (outputs <= 0) {
    view.FailAt("consumer",
                fmt::format("no output reached the consumer in the steady window [{}, {}] s: "
                            "nothing to analyze (profile longer, or check that the job consumes "
                            "the pipeline)",
                            Num(a.window.start), Num(a.window.end)));
  }
  a.outputs = outputs;
  w.outputs = static_cast<double>(outputs);
  a.measured_outputs_per_s = w.outputs / w.seconds;
  return w;
}

// Elements out of each stage in the window, and from them the routing: gamma_i (elements made
// without input) and ratio_i (elements out per element in).
struct Traffic {
  std::vector<double> out, gamma, ratio;
};

Traffic CountTraffic(const trace::PipelineTrace& p, const Span& w) {
  const size_t ns = p.stages.size();
  Traffic r{std::vector<double>(ns), std::vector<double>(ns, 0.0), std::vector<double>(ns, 0.0)};
  for (size_t i = 0; i < ns; ++i) {
    r.out[i] = Delta(p.stage_series[i].elements_out, w.first, w.last);
  }
  for (size_t i = 0; i < ns; ++i) {
    // Elements stage i pulled: what its upstream emitted, less what stayed in the upstream's
    // output queue.
    double in = 0;
    if (i > 0) {
      in = r.out[i - 1] - Delta(p.stage_series[i - 1].queue_size, w.first, w.last);
      if (in <= 0) in = r.out[i - 1];
    }
    if (in > 0) {
      r.ratio[i] = r.out[i] / in;
    } else {
      r.gamma[i] = r.out[i];  // a source, or a stage that replays without input (a filled cache)
    }
  }
  return r;
}

// Stage i's figures over the window: knobs, counts, visit ratio and demands, utilization,
// blocking and the ordered workers' turn wait. `cpu` receives its CPU seconds.
StageAnalysis StageFigures(const trace::PipelineTrace& p, size_t i, const Span& w,
                           const Traffic& traffic, double visit, double measured, double& cpu) {
  const trace::StageTrace& st = p.stages[i];
  const trace::StageSeries& ss = p.stage_series[i];
  const size_t first = w.first, last = w.last;
  const double n0 = w.outputs, window = w.seconds;
  StageAnalysis s;
  s.name = st.name;
  s.op = st.op;
  s.parallelizable = st.parallelizable;
  s.holds_gil = st.holds_gil;
  s.parallelism = std::max(1, st.parallelism);
  s.buffer_size = std::max(0, st.buffer_size);
  s.async = s.parallelism > 1 || s.buffer_size > 0;
  s.ordered = st.ordered;
  s.elements = static_cast<int64_t>(std::llround(traffic.out[i]));
  s.elements_per_s = traffic.out[i] / window;
  s.routing_ratio = i == 0 || traffic.gamma[i] > 0 ? 1.0 : traffic.ratio[i];
  s.visit_ratio = visit;
  cpu = std::max(0.0, Delta(ss.cpu_seconds, first, last));
  const double busy = std::max(0.0, Delta(ss.busy_seconds, first, last));
  s.cpu_demand = cpu / n0;                                                    // D_i (s per output)
  s.wall_demand = busy / n0;                                                  // W_i (s per output)
  s.service_seconds = s.visit_ratio > 0 ? s.wall_demand / s.visit_ratio : 0;  // S_i = W_i / V_i
  s.utilization = measured * s.wall_demand / s.parallelism;                   // U = X W / p
  s.capacity_outputs_per_s = s.wall_demand > 0 ? s.parallelism / s.wall_demand : 0;
  s.bytes_per_element =
      st.elements_out > 0 ? static_cast<double>(st.bytes_out) / st.elements_out : 0;
  const double workers_seconds = window * s.parallelism;
  s.blocked_input_fraction =
      std::max(0.0, Delta(ss.blocked_input_seconds, first, last)) / workers_seconds;
  const double blocked_out = std::max(0.0, Delta(ss.blocked_output_seconds, first, last));
  s.blocked_output_fraction = blocked_out / workers_seconds;
  if (s.parallelism > 1 && s.ordered && ss.queue_size.size() == w.samples) {
    // Blocked on output while the queue had room is waiting for the turn to emit in order;
    // the share of samples with a full queue estimates the back-pressure part.
    size_t full = 0;
    for (size_t k = first; k <= last; ++k) {
      if (ss.queue_size[k] >= std::max(1, s.buffer_size)) ++full;
    }
    const double room = 1 - static_cast<double>(full) / static_cast<double>(last - first + 1);
    s.turn_wait_demand = blocked_out * room / n0;
  }
  return s;
}

// Every stage's figures (the visit ratios from the traffic equations); returns the stages' CPU
// seconds in the window.
double AnalyzeStages(const trace::PipelineTrace& p, const Span& w, const std::string& where,
                     Analysis& a) {
  for (const trace::StageTrace& st : p.stages) {
    if (st.op == "batch" || st.op == "bucket_by_length") a.output_noun = "batch";
  }
  const Traffic traffic = CountTraffic(p, w);
  const std::vector<double> visits = SolveTrafficEquations(traffic.gamma, traffic.ratio, where);
  double stage_cpu_seconds = 0;
  for (size_t i = 0; i < p.stages.size(); ++i) {
    double cpu = 0;
    a.stages.push_back(StageFigures(p, i, w, traffic, visits[i], a.measured_outputs_per_s, cpu));
    stage_cpu_seconds += cpu;
  }
  return stage_cpu_seconds;
}

// The host's cores, the CPU the process spent outside the stages, and other processes' CPU.
// [ga, gb]: the window in the global series.
void HostFigures(const trace::Trace& trace, const AnalyzeOptions& opt, size_t ga, size_t gb,
                 const Span& w, double stage_cpu_seconds, Analysis& a) {
  const trace::Series& series = trace.series;
  const size_t total = series.t.size();
  const double window = w.seconds;
  a.cores_overridden = opt.cores.has_value();
  a.cores = opt.cores.value_or(static_cast<double>(trace.host.cores));
  if (a.cores <= 0) {
    a.notes.push_back("the trace does not say how many cores the host has: no CPU bound");
  }
  if (series.process_cpu.size() == total) {
    const double process = Delta(series.process_cpu, ga, gb);
    const double tracer_share =
        trace.job.duration > 0 ? trace.tracer.cpu_seconds * window / trace.job.duration : 0;
    a.other_cpu_demand = std::max(0.0, process - stage_cpu_seconds - tracer_share) / w.outputs;
    if (series.host_busy.size() == total && trace.host.cores > 0 && gb > ga) {
      // host_busy is the share of all CPUs busy; what the process did not use, others did.
      double busy = 0;
      for (size_t k = ga + 1; k <= gb; ++k) {
        busy += series.host_busy[k] * (series.t[k] - series.t[k - 1]);
      }
      a.host_other_cores = std::max(0.0, (busy * trace.host.cores - process) / window);
    }
  }
  if (a.host_other_cores >= 0.25) {
    a.notes.push_back(
        fmt::format("other processes used about {} of the host's {} cores during the window: their "
                    "competition for the CPU is part of the measured wall times",
                    Num(a.host_other_cores), Num(static_cast<double>(trace.host.cores))));
  }
}

// The slowest measured disk, and the bytes read from storage per output: the kernel's count where
// it saw reads, else what the reading stage read.
void DiskFigures(const trace::Trace& trace, size_t ga, size_t gb, const Span& w, Analysis& a) {
  const trace::Series& series = trace.series;
  const trace::DiskBandwidth* disk = nullptr;
  for (const trace::DiskBandwidth& d : trace.host.disks) {
    if (d.read_mb_per_s > 0 && (disk == nullptr || d.read_mb_per_s < disk->read_mb_per_s)) {
      disk = &d;
    }
  }
  if (disk != nullptr) {
    a.disk_mb_per_s = disk->read_mb_per_s;
    a.disk_device = disk->device.empty() ? disk->path : disk->device;
  }
  const bool kernel_known = series.disk_read_bytes.size() == series.t.size() &&
                            series.disk_read_bytes[ga] >= 0 && series.disk_read_bytes[gb] >= 0;
  double kernel_bytes = kernel_known ? Delta(series.disk_read_bytes, ga, gb) : 0;
  // A trickle (a config file, /proc, a shared library paged in) bounds nothing: reads under 1%
  // of the disk's bandwidth, or under 1 MB/s when it was not measured, count as none.
  const double trickle = 0.01 * (a.disk_mb_per_s > 0 ? a.disk_mb_per_s : 100) * 1e6;
  if (kernel_bytes / w.seconds < trickle) kernel_bytes = 0;
  if (kernel_bytes > 0) {
    a.disk_bytes_per_output = kernel_bytes / w.outputs;
    a.disk_bytes_source =
        "the kernel's count of bytes the process read from storage (/proc/self/io read_bytes)";
  } else {
    for (const StageAnalysis& s : a.stages) {
      if (s.op != "read_file" && s.op != "read_lines") continue;
      a.disk_bytes_per_output = s.visit_ratio * s.bytes_per_element;
      a.disk_bytes_source = fmt::format(
          "the bytes stage '{}' ({}) read per output; the kernel {}, so this bound applies when "
          "the files are not in the page cache",
          s.name, s.op,
          kernel_known ? "counted no reads from storage in the window (the page cache served them)"
                       : "does not report the bytes read from storage");
      break;
    }
  }
  if (a.disk_bytes_per_output > 0 && a.disk_mb_per_s <= 0) {
    a.notes.push_back("the disk's read bandwidth was not measured: no disk bound");
  }
}

// The host's memory and the process's peak resident set; the GPU's idle share of the window.
void MemoryAndGpuFigures(const trace::Trace& trace, size_t ga, size_t gb, Analysis& a) {
  const trace::Series& series = trace.series;
  const size_t total = series.t.size();
  a.memory_bytes = trace.host.memory_bytes;
  if (series.rss_bytes.size() == total) {
    for (size_t k = ga; k <= gb; ++k) a.rss_bytes = std::max(a.rss_bytes, series.rss_bytes[k]);
  }
  a.gpu_status = trace.gpu.status;
  if (trace.gpu.status == "ok") {
    double busy = 0, span = 0;
    if (series.gpu_busy.size() == total) {
      for (size_t k = ga + 1; k <= gb; ++k) {
        if (series.gpu_busy[k] < 0) continue;
        const double dt = series.t[k] - series.t[k - 1];
        busy += series.gpu_busy[k] * dt;
        span += dt;
      }
    }
    a.gpu_idle_fraction = span > 0 ? 1 - busy / span : 1 - trace.gpu.busy_fraction;
  }
}

// The inline stages on the consumer's thread, and their wall time per output.
struct ConsumerThread {
  std::vector<std::string> stages;
  double wall = 0;
};

// Which stages share a thread, from the servers at the current knobs: each stage's runs_on,
// run_by, shares_thread_with and server capacity.
ConsumerThread AssignServers(Analysis& a) {
  std::vector<double> wall;
  for (const StageAnalysis& s : a.stages) wall.push_back(s.wall_demand);
  ConsumerThread consumer;
  for (const internal::Server& server : internal::BuildServers(
           CurrentKnobs(a).stages, wall, a.consumer_step_seconds, internal::Fusible(a))) {
    const double capacity = std::isfinite(server.capacity) ? server.capacity : 0;
    for (size_t i : server.stages) {
      StageAnalysis& s = a.stages[i];
      if (server.input_lock) {
        // Listed by the workers' server too: their capacity and this lock's both bind.
        s.runs_on = fmt::format("the {} workers of '{}', one at a time under their input lock",
                                a.stages[server.owner].parallelism, a.stages[server.owner].name);
        if (capacity > 0) {
          s.server_outputs_per_s =
              s.server_outputs_per_s > 0 ? std::min(s.server_outputs_per_s, capacity) : capacity;
        }
        continue;
      }
      if (server.owner == kConsumer) {
        s.runs_on = "the consumer's thread";
        consumer.stages.push_back(s.name);
        consumer.wall += s.wall_demand;
      } else if (server.owner == i) {
        s.runs_on = s.parallelism > 1 ? fmt::format("its {} workers", s.parallelism) : "its worker";
      } else {
        const int workers = a.stages[server.owner].parallelism;
        s.runs_on = workers > 1 ? fmt::format(
                                      "the {} workers of '{}', fused with it outside their "
                                      "input lock",
                                      workers, a.stages[server.owner].name)
                                : fmt::format("the worker of '{}'", a.stages[server.owner].name);
        s.run_by = a.stages[server.owner].name;
      }
      if (server.owner != kConsumer && server.owner != i) s.run_by = a.stages[server.owner].name;
      s.server_outputs_per_s = capacity;
      for (size_t j : server.stages) {
        if (j != i) s.shares_thread_with.push_back(a.stages[j].name);
      }
    }
  }
  return consumer;
}

// The input-bound verdict from the consumer's wait (`wait` seconds in the window), and why.
void JudgeInputBound(double wait, const Span& w, const ConsumerThread& consumer, Analysis& a) {
  const size_t ns = a.stages.size();
  InputBound& v = a.input_bound;
  v.wait_fraction = wait / w.seconds;
  v.verdict = v.wait_fraction >= kHighlyInputBound       ? Verdict::kHighly
              : v.wait_fraction >= kModeratelyInputBound ? Verdict::kModerately
                                                         : Verdict::kNot;
  const std::string waited =
      fmt::format("the consumer spent {} of the window in Next() ({} per {})",
                  Percent(v.wait_fraction), Duration(wait / w.outputs), a.output_noun);
  if (consumer.stages.size() == ns) {
    v.why = fmt::format(
        "{}; every stage runs inline on the consumer's thread, so that time is the pipeline's own "
        "work and the job is input-bound by construction (an asynchronous stage, e.g. a prefetch "
        "with a buffer, would let the pipeline work while the training step runs)",
        waited);
  } else if (!consumer.stages.empty()) {
    v.why = fmt::format(
        "{}, {} of it running the inline stage{} {} on its own thread and the rest waiting for "
        "the queue of '{}'",
        waited, Duration(consumer.wall), consumer.stages.size() > 1 ? "s" : "",
        Quoted(consumer.stages), a.stages[ns - consumer.stages.size() - 1].name);
  } else {
    v.why = fmt::format("{} waiting for the output queue of '{}'", waited, a.stages.back().name);
  }
  v.why += v.verdict == Verdict::kHighly       ? ": the training step is starved of input"
           : v.verdict == Verdict::kModerately ? ": the training step sometimes waits for input"
                                               : ": the input keeps up with the training step";
}

}  // namespace

Analysis Analyze(const trace::Trace& trace, const AnalyzeOptions& opt) {
  const size_t index = SelectPipeline(trace, opt);
  const trace::PipelineTrace& p = trace.pipelines[index];
  const PipelineView view(trace, index, opt.origin);
  Analysis a;
  a.pipeline = p.name;
  const size_t n = view.Samples();
  if (n < 2) {
    view.FailAt("series", fmt::format("{} sample{}; at least 2 are needed to measure rates", n,
                                      n == 1 ? "" : "s"));
  }
  if (opt.cores && !(*opt.cores > 0)) Fail("--cores: expected a number of cores > 0");

  const Span w = SelectWindow(trace, index, view, a);
  const double stage_cpu_seconds =
      AnalyzeStages(p, w, fmt::format("{}: pipelines[{}]", opt.origin, index), a);

  // The consumer.
  const double wait = std::clamp(Delta(p.consumer_wait, w.first, w.last), 0.0, w.seconds);
  // The step as the consumer's own clock has it, between a Next() return and the next call;
  // older traces: the window less the waits.
  const int64_t calls =
      p.consumer_between.empty() ? 0 : p.consumer_next[w.last] - p.consumer_next[w.first];
  a.consumer_step_seconds = calls > 0 ? std::max(0.0, Delta(p.consumer_between, w.first, w.last)) /
                                            static_cast<double>(calls)
                                      : (w.seconds - wait) / w.outputs;
  a.consumer_outputs_per_s = a.consumer_step_seconds > 0 ? 1 / a.consumer_step_seconds : 0;

  const size_t ga = view.Global(w.first), gb = view.Global(w.last);
  HostFigures(trace, opt, ga, gb, w, stage_cpu_seconds, a);
  DiskFigures(trace, ga, gb, w, a);
  MemoryAndGpuFigures(trace, ga, gb, a);

  // Limits, from the same model the what-if uses.
  const Prediction pred = Predict(a, CurrentKnobs(a), CurrentResources(a));
  a.limits = pred.limits;
  a.predicted_outputs_per_s = pred.outputs_per_s;
  for (const std::string& note : pred.notes) a.notes.push_back(note);
  if (a.limits.empty()) {
    view.FailAt("stages",
                "no stage recorded any work and the consumer took no time: nothing "
                "bounds the pipeline");
  }
  const ConsumerThread consumer = AssignServers(a);
  if (a.consumer_outputs_per_s > 0) {
    double cpu = a.other_cpu_demand;
    for (const StageAnalysis& s : a.stages) cpu += s.cpu_demand;
    a.cores_to_saturate_consumer = a.consumer_outputs_per_s * cpu;
  }

  JudgeInputBound(wait, w, consumer, a);
  a.confidence = Judge(view, p.consumer_next, w.first, w.last,
                       trace.tracer.interval > 0 ? trace.tracer.interval : 0.1);
  if (trace.job.cut_short) {
    a.notes.push_back(fmt::format("the trace was cut short ({})", trace.job.end_reason));
  }
  return a;
}

}  // namespace sluice::analyzer
