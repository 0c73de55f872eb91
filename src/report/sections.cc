// The report's sections below the verdict: graph, stage table, limits, time series, plan,
// what-if curve, environment and glossary.
#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>

#include <fmt/format.h>

#include "report/internal/sections.h"
#include "report/internal/svg.h"
#include "sluice/common/error.h"
#include "sluice/common/figures.h"

namespace sluice::report::internal {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

template <typename T>
std::vector<double> ToDouble(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// Bucket boundaries over n samples: at most `max_points` buckets of consecutive samples.
std::vector<size_t> Bounds(size_t n, size_t max_points) {
  std::vector<size_t> b;
  if (n < 2) return b;
  const size_t m = std::max<size_t>(1, std::min(n - 1, max_points));
  for (size_t k = 0; k <= m; ++k) b.push_back(k * (n - 1) / m);
  return b;
}

std::string Ms(double seconds) { return Num(seconds * 1e3); }

// A table row of cells already escaped.
std::string Row(const std::vector<std::string>& cells, const std::string& cls = "") {
  std::string s = cls.empty() ? "<tr>" : fmt::format("<tr class=\"{}\">", cls);
  for (const std::string& c : cells) s += "<td>" + c + "</td>";
  return s + "</tr>";
}

std::string Head(const std::vector<std::string>& cells) {
  std::string s = "<tr>";
  for (const std::string& c : cells) s += "<th>" + c + "</th>";
  return s + "</tr>";
}

// A definition-list entry; `value` already escaped.
std::string Item(const std::string& term, const std::string& value) {
  return fmt::format("<dt>{}</dt><dd>{}</dd>", Escape(term), value);
}

const trace::StageTrace* FindStage(const trace::PipelineTrace& p, const std::string& name) {
  for (const trace::StageTrace& s : p.stages) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::string Workers(const analyzer::StageAnalysis& s) {
  if (!s.async) return "inline";
  return fmt::format("{} worker{}, queue {}", s.parallelism, s.parallelism == 1 ? "" : "s",
                     s.buffer_size);
}

std::string UtcTime(double unix_seconds) {
  if (unix_seconds <= 0) return "unknown";
  const std::time_t secs = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

}  // namespace

View MakeView(const Run& run) {
  const analyzer::Analysis& a = run.analysis;
  for (const trace::PipelineTrace& p : run.trace.pipelines) {
    if (p.name == a.pipeline) {
      const std::string noun = a.output_noun.empty() ? "output" : a.output_noun;
      return View{run, p, noun, Plural(noun) + "/s"};
    }
  }
  Fail("{}: pipelines: no pipeline named '{}' (the analysis does not belong to this trace)",
       run.origin, a.pipeline);
}

Points Rates(const std::vector<double>& t, const std::vector<double>& cumulative, double scale,
             size_t max_points) {
  Points out;
  const size_t n = std::min(t.size(), cumulative.size());
  const std::vector<size_t> b = Bounds(n, max_points);
  for (size_t k = 0; k + 1 < b.size(); ++k) {
    const size_t i = b[k], j = b[k + 1];
    const double dt = t[j] - t[i];
    out.x.push_back((t[i] + t[j]) / 2);
    out.y.push_back(dt > 0 && cumulative[i] >= 0 && cumulative[j] >= 0
                        ? (cumulative[j] - cumulative[i]) / dt * scale
                        : kNaN);
  }
  return out;
}

Points Means(const std::vector<double>& t, const std::vector<double>& values, double scale,
             size_t max_points) {
  Points out;
  const size_t n = std::min(t.size(), values.size());
  const std::vector<size_t> b = Bounds(n, max_points);
  for (size_t k = 0; k + 1 < b.size(); ++k) {
    double sum = 0;
    size_t count = 0;
    for (size_t i = k == 0 ? 0 : b[k] + 1; i <= b[k + 1]; ++i) {
      if (values[i] >= 0) sum += values[i], ++count;
    }
    out.x.push_back((t[b[k]] + t[b[k + 1]]) / 2);
    out.y.push_back(count > 0 ? sum / count * scale : kNaN);
  }
  return out;
}

std::vector<double> PipelineTimes(const View& v) {
  const std::vector<double>& t = v.trace().series.t;
  const size_t first = std::min(v.pipeline.first_index, t.size());
  return std::vector<double>(t.begin() + static_cast<std::ptrdiff_t>(first), t.end());
}

double MeanCoresUsed(const View& v) {
  const trace::Series& s = v.trace().series;
  const analyzer::Window& w = v.analysis().window;
  size_t i = s.t.size(), j = 0;
  for (size_t k = 0; k < s.t.size() && k < s.process_cpu.size(); ++k) {
    if (s.t[k] >= w.start - 1e-9 && i == s.t.size()) i = k;
    if (s.t[k] <= w.end + 1e-9) j = k;
  }
  if (i >= j || s.t[j] <= s.t[i]) return -1;
  return (s.process_cpu[j] - s.process_cpu[i]) / (s.t[j] - s.t[i]);
}

std::string CutShortSentence(const trace::Trace& t) {
  if (!t.job.cut_short) return "";
  const std::string& r = t.job.end_reason;
  const std::string after = fmt::format(" after {} of tracing", Duration(t.job.duration));
  if (!t.job.exit_signal.empty()) return "the job was killed by " + t.job.exit_signal + after;
  if (r.starts_with("job ")) return "the " + r + after;
  if (t.job.exit_code)
    return fmt::format("the job exited with status {}{}", *t.job.exit_code, after);
  if (r.starts_with("signal ")) return "the job received " + r.substr(7) + after;
  if (r == "in progress" || r.empty()) {
    return "the trace stops at a periodic flush" + after +
           ": the job died or was killed outright (a crash, SIGKILL) before the tracer could "
           "finish it";
  }
  return "the trace was cut short (" + r + ")" + after;
}

std::string PipelineSection(const View& v) {
  const analyzer::Analysis& a = v.analysis();
  const analyzer::Limit* b = a.limits.empty() ? nullptr : &a.Bottleneck();
  std::vector<Box> boxes;
  for (const analyzer::StageAnalysis& s : a.stages) {
    Box box;
    box.title = s.name;
    box.subtitle = s.op;
    box.lines = {
        Workers(s), fmt::format("{} elements/s", Num(s.elements_per_s)),
        s.capacity_outputs_per_s > 0
            ? fmt::format("U {}, at most {}", Percent(s.utilization), Num(s.capacity_outputs_per_s))
            : "no work measured"};
    if (s.capacity_outputs_per_s > 0) box.utilization = s.utilization;
    box.highlight = b && b->kind == analyzer::LimitKind::kStage && b->stage == s.name;
    box.tooltip = fmt::format(
        "{} ({}): runs on {}; {} elements/s; visit ratio {}; CPU demand {} ms and wall demand {} "
        "ms per {}; service time {} ms per element; utilization {}; capacity {} {}",
        s.name, s.op, s.runs_on, Num(s.elements_per_s), Num(s.visit_ratio), Ms(s.cpu_demand),
        Ms(s.wall_demand), v.noun, Ms(s.service_seconds), Percent(s.utilization),
        s.capacity_outputs_per_s > 0 ? Num(s.capacity_outputs_per_s) : "unbounded", v.unit);
    if (box.highlight) box.tooltip += "; the bottleneck: " + b->why;
    boxes.push_back(std::move(box));
  }
  Box consumer;
  consumer.title = "consumer";
  consumer.subtitle = "training step";
  consumer.lines = {fmt::format("{} per {}", Duration(a.consumer_step_seconds), v.noun),
                    fmt::format("waits {} in Next()", Percent(a.input_bound.wait_fraction)),
                    fmt::format("{} {}", Num(a.measured_outputs_per_s), v.unit)};
  consumer.utilization = std::clamp(1 - a.input_bound.wait_fraction, 0.0, 1.0);
  consumer.highlight = b && b->kind == analyzer::LimitKind::kConsumer;
  consumer.tooltip = fmt::format(
      "the training job: {} per {} outside Next() (at most {} {}); it waited in Next() {} of the "
      "window",
      Duration(a.consumer_step_seconds), v.noun,
      a.consumer_outputs_per_s > 0 ? Num(a.consumer_outputs_per_s) : "unbounded", v.unit,
      Percent(a.input_bound.wait_fraction));
  boxes.push_back(std::move(consumer));

  std::string caption =
      "Stages in pipeline order, then the training job that consumes them. Each box shows the "
      "stage's workers and queue, the elements it emits per second and the utilization U of its "
      "threads with its capacity in " +
      v.unit + "; hover for every figure. ";
  if (b && (b->kind == analyzer::LimitKind::kStage || b->kind == analyzer::LimitKind::kConsumer)) {
    caption += "The bottleneck has a red border: " + b->why;
  } else if (b) {
    caption += "No single stage limits the pipeline: " + b->why;
  }
  std::string s = "<section id=\"pipeline\"><h2>Pipeline</h2>";
  s += FlowGraph("graph", boxes, caption);
  return s + "</section>";
}

std::string StagesSection(const View& v) {
  const analyzer::Analysis& a = v.analysis();
  const analyzer::Limit* b = a.limits.empty() ? nullptr : &a.Bottleneck();
  std::string s = "<section id=\"stages\"><h2>Stages</h2>";
  s += fmt::format(
      "<p>Figures over the steady-state window ({} to {} s). Demands are per {} delivered to the "
      "consumer; see the <a href=\"#glossary\">glossary</a>.</p>",
      Num(a.window.start), Num(a.window.end), Escape(v.noun));
  s += "<div class=\"scroll\"><table id=\"stage-table\">";
  s += Head({"stage", "op", "workers", "runs on", "elements/s", "visit ratio V",
             fmt::format("CPU demand D (ms/{})", Escape(v.noun)),
             fmt::format("wall demand W (ms/{})", Escape(v.noun)), "service time S (ms/element)",
             "utilization U", fmt::format("capacity ({})", Escape(v.unit)), "blocked on input",
             "blocked on output", "bytes/element", "involuntary switches"});
  for (const analyzer::StageAnalysis& st : a.stages) {
    const trace::StageTrace* tr = FindStage(v.pipeline, st.name);
    const bool is_bottleneck = b && b->kind == analyzer::LimitKind::kStage && b->stage == st.name;
    s += Row({Escape(st.name) + (is_bottleneck ? " <strong class=\"tag\">bottleneck</strong>" : ""),
              Escape(st.op), Escape(Workers(st)), Escape(st.runs_on), Num(st.elements_per_s),
              Num(st.visit_ratio), Ms(st.cpu_demand), Ms(st.wall_demand), Ms(st.service_seconds),
              Percent(st.utilization),
              st.capacity_outputs_per_s > 0 ? Num(st.capacity_outputs_per_s) : "unbounded",
              Percent(st.blocked_input_fraction), Percent(st.blocked_output_fraction),
              Escape(Bytes(st.bytes_per_element)),
              tr ? fmt::format("{}", tr->involuntary_switches) : "-"},
             is_bottleneck ? "bottleneck" : "");
  }
  s += "</table></div></section>";
  return s;
}

std::string LimitsSection(const View& v) {
  const analyzer::Analysis& a = v.analysis();
  std::string s = "<section id=\"limits\"><h2>What limits the throughput</h2>";
  s += fmt::format(
      "<p>Every upper bound the model finds on the {} the job can deliver, lowest first: the "
      "first is the bottleneck. Measured: {} {}; the model's bound at these settings: {} {}.</p>",
      Escape(v.unit), Num(a.measured_outputs_per_s), Escape(v.unit), Num(a.predicted_outputs_per_s),
      Escape(v.unit));
  s += "<table id=\"limits-table\">";
  s += Head({"#", "kind", "stage", Escape(v.unit), "why"});
  for (size_t i = 0; i < a.limits.size(); ++i) {
    const analyzer::Limit& l = a.limits[i];
    s += Row({fmt::format("{}", i + 1), analyzer::ToString(l.kind), Escape(l.stage),
              Num(l.outputs_per_s), Escape(l.why)},
             i == 0 ? "bottleneck" : "");
  }
  return s + "</table></section>";
}

std::string TimelineSection(const View& v) {
  const analyzer::Analysis& a = v.analysis();
  const trace::Trace& t = v.trace();
  const std::vector<double> tp = PipelineTimes(v);
  const std::string x_label = "seconds since tracing began";
  const std::string window =
      fmt::format("steady window {}-{} s", Num(a.window.start), Num(a.window.end));
  const size_t samples = t.series.t.size();
  // Buckets of consecutive samples: at most kMaxPoints of them, and long enough to hold about 4
  // outputs, so that a slow pipeline's rate does not zigzag between 0 and one batch per sample.
  size_t per_point = samples > kMaxPoints ? (samples - 1 + kMaxPoints - 1) / kMaxPoints : 1;
  if (a.measured_outputs_per_s > 0 && t.tracer.interval > 0) {
    const double for_outputs = std::ceil(4 / (a.measured_outputs_per_s * t.tracer.interval));
    per_point = std::max(per_point, static_cast<size_t>(std::min(for_outputs, 1e6)));
  }
  const size_t points = samples > 1 ? std::max<size_t>(1, (samples - 1) / per_point) : 1;
  const std::string thinning =
      per_point > 1 ? fmt::format(" Each point is the mean over about {} samples.", per_point) : "";
  std::string s = "<section id=\"timeline\"><h2>Over time</h2>";
  s += fmt::format(
      "<p>{} samples every {}; the shaded band is the steady-state window the figures are taken "
      "over.{}</p>",
      samples, Escape(Duration(t.tracer.interval)), Escape(thinning));
  s += "<div class=\"charts\">";

  ChartSpec outputs{.id = "chart-outputs",
                    .title = "Outputs delivered to the consumer",
                    .x_label = x_label,
                    .y_label = v.unit};
  const Points o = Rates(tp, ToDouble(v.pipeline.consumer_next), 1, points);
  outputs.lines.push_back({"measured " + v.unit, o.x, o.y});
  outputs.shade_from = a.window.start;
  outputs.shade_to = a.window.end;
  outputs.shade_label = window;
  outputs.y_markers.push_back(
      {a.predicted_outputs_per_s, fmt::format("model's bound {}", Num(a.predicted_outputs_per_s))});
  outputs.caption =
      fmt::format("Measured over the window: {} {}.", Num(a.measured_outputs_per_s), v.unit);
  s += LineChart(outputs);

  ChartSpec cpu{
      .id = "chart-cpu", .title = "CPU cores used", .x_label = x_label, .y_label = "cores"};
  const Points pc = Rates(t.series.t, t.series.process_cpu, 1, points);
  cpu.lines.push_back({"this process", pc.x, pc.y});
  const Points hb = Means(t.series.t, t.series.host_busy, t.host.cores, points);
  cpu.lines.push_back({"whole host", hb.x, hb.y, true});
  if (t.host.cores > 0) {
    cpu.y_markers.push_back(
        {static_cast<double>(t.host.cores), fmt::format("{} cores on the host", t.host.cores)});
  }
  cpu.shade_from = a.window.start;
  cpu.shade_to = a.window.end;
  cpu.shade_label = window;
  const double used = MeanCoresUsed(v);
  cpu.caption =
      used >= 0 ? fmt::format("The process used {} cores on average over the window.", Num(used))
                : "";
  s += LineChart(cpu);

  ChartSpec wait{.id = "chart-wait",
                 .title = "Consumer wait: share of time the training job spent in Next()",
                 .x_label = x_label,
                 .y_label = "% of time"};
  Points w = Rates(tp, v.pipeline.consumer_wait, 100, points);
  // A wait is counted when Next() returns, so a long one lands in one sample and can exceed the
  // sample's length: the chart clamps at 100 %, the window's figure is exact.
  bool clamped = false;
  for (double& y : w.y) {
    if (y > 100) y = 100, clamped = true;
  }
  wait.lines.push_back({"waiting for input", w.x, w.y});
  wait.y_markers = {{20, "20%: highly input-bound"}, {5, "5%: moderately"}};
  wait.y_max = 100;
  wait.shade_from = a.window.start;
  wait.shade_to = a.window.end;
  wait.shade_label = window;
  wait.caption =
      fmt::format("Over the window: {} ({} input-bound).{}", Percent(a.input_bound.wait_fraction),
                  analyzer::ToString(a.input_bound.verdict),
                  clamped ? " A wait is counted when Next() returns, so one longer than "
                            "a sample shows as 100% there."
                          : "");
  s += LineChart(wait);

  bool gpu_samples = false;
  for (double g : t.series.gpu_busy) gpu_samples = gpu_samples || g >= 0;
  if (t.gpu.status == "ok" && gpu_samples) {
    ChartSpec gpu{.id = "chart-gpu",
                  .title = "GPU busy: share of time a kernel ran",
                  .x_label = x_label,
                  .y_label = "% of time"};
    const Points g = Means(t.series.t, t.series.gpu_busy, 100, points);
    gpu.lines.push_back({t.gpu.device_name.empty() ? "GPU" : t.gpu.device_name, g.x, g.y});
    gpu.y_max = 100;
    gpu.shade_from = a.window.start;
    gpu.shade_to = a.window.end;
    gpu.shade_label = window;
    gpu.caption = a.gpu_idle_fraction ? fmt::format("The GPU ran no kernel {} of the window.",
                                                    Percent(*a.gpu_idle_fraction))
                                      : "";
    s += LineChart(gpu);
  } else {
    s += EmptyChart("chart-gpu", "GPU busy",
                    fmt::format("No GPU activity was recorded ({}): {}", t.gpu.status,
                                t.gpu.reason.empty() ? "no reason recorded" : t.gpu.reason));
  }

  ChartSpec queues{.id = "chart-queues",
                   .title = "Queue depths: elements waiting in each stage's output queue",
                   .x_label = x_label,
                   .y_label = "elements"};
  for (size_t i = 0; i < v.pipeline.stages.size() && i < v.pipeline.stage_series.size(); ++i) {
    const trace::StageTrace& st = v.pipeline.stages[i];
    if (!st.async) continue;
    const Points q = Means(tp, ToDouble(v.pipeline.stage_series[i].queue_size), 1, points);
    queues.lines.push_back({fmt::format("{} (capacity {})", st.name, st.buffer_size), q.x, q.y});
  }
  queues.shade_from = a.window.start;
  queues.shade_to = a.window.end;
  queues.shade_label = window;
  queues.caption =
      "A queue that stays full means its consumer is slower; one that stays empty means its "
      "producer is.";
  if (queues.lines.empty()) {
    s += EmptyChart("chart-queues", "Queue depths",
                    "No stage has an output queue: every stage runs inline on the thread that "
                    "pulls it.");
  } else {
    s += LineChart(queues);
  }
  return s + "</div></section>";
}

// The profile's trials: each candidate the tuner proposed, predicted, then run and measured.
std::string TrialsPart(const View& v, const ReportInput& in) {
  if (in.trials.empty()) return "";
  auto rate = [&](const std::optional<double>& x) {
    return x ? Num(*x) + " " + Escape(v.unit) : std::string("—");
  };
  std::string s = fmt::format(
      "<h3>Trials</h3><p id=\"trials-kept\">sluice profile ran the tuned candidates and kept "
      "{}: its <code>tuned.json</code> is that config, measured rather than predicted.</p>",
      in.kept_round == 0 ? std::string("the config as given (no candidate measured faster)")
                         : fmt::format("round {}", in.kept_round));
  s += "<table id=\"trials-table\">";
  s += Head({"round", "changes", "predicted before", "measured", "outcome"});
  for (const TrialRound& r : in.trials) {
    std::string outcome;
    if (!r.error.empty()) {
      outcome = "the trial failed: " + r.error;
    } else if (!r.tried) {
      outcome = "kept on the model's word: a cache, which a short trial would spend filling";
    } else if (r.round == in.kept_round) {
      outcome = "kept";
    } else if (r.round == 0) {
      outcome = "the starting point";
    } else {
      outcome = r.kept ? "kept, then beaten" : "not kept: no faster than the best before it";
    }
    s += Row({fmt::format("{}", r.round),
              r.round == 0 ? std::string("the config as given") : Escape(r.changes),
              rate(r.predicted_outputs_per_s), rate(r.measured_outputs_per_s), Escape(outcome)},
             r.round == in.kept_round ? "kept" : "");
  }
  return s + "</table>";
}

std::string PlanSection(const View& v, const ReportInput& in) {
  std::string s = "<section id=\"plan\"><h2>Tuning plan</h2>";
  if (!in.plan) {
    return s + fmt::format("<p class=\"warn\">No tuning plan: {}</p></section>",
                           Escape(in.plan_error.empty() ? "none was given" : in.plan_error));
  }
  const tuner::Plan& p = *in.plan;
  s += fmt::format(
      "<p>Planned for {} cores and {} of queues, in-flight elements and cache. Predicted: "
      "<strong>{} {}</strong>, {}x the {} {} the model predicts at the traced knobs (measured: {} "
      "{}). The tuned pipeline runs {} worker thread{} and holds {} in queues, workers and "
      "cache.</p>",
      Num(p.cores), Escape(Bytes(p.memory_budget_bytes)), Num(p.predicted_outputs_per_s),
      Escape(v.unit), Num(p.speedup), Num(p.current_predicted_outputs_per_s), Escape(v.unit),
      Num(p.current_outputs_per_s), Escape(v.unit), p.threads, p.threads == 1 ? "" : "s",
      Escape(Bytes(p.memory_bytes)));
  if (p.changes.empty()) {
    s += "<p id=\"plan-nochange\">No change: the traced knobs are already the best the model "
         "finds.</p>";
  } else {
    s += "<table id=\"plan-table\">";
    s += Head({"stage", "knob", "from", "to", "why", "predicted effect"});
    for (const tuner::Change& c : p.changes) {
      s += Row({Escape(c.stage), Escape(c.knob), fmt::format("{}", c.from), fmt::format("{}", c.to),
                Escape(c.why), Escape(c.effect)});
    }
    s += "</table>";
  }
  if (!p.prediction.limits.empty()) {
    s += fmt::format("<p>With the changes, the pipeline is then limited by: {}</p>",
                     Escape(p.prediction.limits.front().why));
  }
  if (p.cores_needed_for_consumer) {
    s += fmt::format(
        "<p>To keep pace with the training step it would need <strong>{} cores</strong>{}.</p>",
        Num(*p.cores_needed_for_consumer),
        p.outputs_per_s_with_cores_needed
            ? fmt::format("; with them the tuner predicts {} {}",
                          Num(*p.outputs_per_s_with_cores_needed), Escape(v.unit))
            : "");
  }
  if (!p.notes.empty()) {
    s += "<ul class=\"notes\">";
    for (const std::string& n : p.notes) s += "<li>" + Escape(n) + "</li>";
    s += "</ul>";
  }
  s += fmt::format(
      "<p>Write the tuned config with <code>sluice tune {0} -o tuned.json</code> and apply it "
      "with <code>sluice apply tuned.json</code>.</p>",
      Escape(v.run.origin));
  return s + TrialsPart(v, in) + "</section>";
}

std::string WhatIfSection(const View& v, const ReportInput& in) {
  const analyzer::Analysis& a = v.analysis();
  std::string s = "<section id=\"whatif\"><h2>What if: throughput against cores</h2>";
  std::optional<double> needed = a.cores_to_saturate_consumer;
  if (in.plan && in.plan->cores_needed_for_consumer) needed = in.plan->cores_needed_for_consumer;
  double hi = std::max({2 * a.cores, 4.0, needed ? std::ceil(*needed * 1.25) : 0.0});
  hi = std::min(hi, 256.0);
  // From 1 core to `hi`, in steps of a quarter core on small hosts, at most 64 points.
  const int points = static_cast<int>(std::min(64.0, 1 + 4 * (hi - 1)));
  std::vector<double> cores;
  for (int k = 0; k < points; ++k) {
    cores.push_back(std::round((1 + k * (hi - 1) / (points - 1)) * 100) / 100);
  }

  ChartSpec chart{.id = "chart-whatif",
                  .title = "Predicted " + v.unit + " against the cores available",
                  .x_label = "cores",
                  .y_label = v.unit};
  chart.x_from_zero = true;
  const std::vector<analyzer::Knobs> knobs_sets = [&] {
    std::vector<analyzer::Knobs> k{analyzer::CurrentKnobs(a)};
    if (in.plan) k.push_back(in.plan->knobs);
    return k;
  }();
  std::string notes;
  std::vector<double> tuned_curve;
  for (size_t k = 0; k < knobs_sets.size(); ++k) {
    Line line{k == 0 ? "traced knobs" : "tuned knobs", cores, {}, k == 0, true, v.unit};
    try {
      for (double c : cores) line.y.push_back(analyzer::PredictThroughput(a, knobs_sets[k], c));
    } catch (const std::exception& e) {
      notes += fmt::format(" The {} could not be predicted: {}.", line.name, e.what());
      continue;
    }
    if (k + 1 == knobs_sets.size()) tuned_curve = line.y;
    chart.lines.push_back(std::move(line));
  }
  if (a.consumer_outputs_per_s > 0) {
    chart.y_markers.push_back(
        {a.consumer_outputs_per_s,
         fmt::format("consumer's pace {} {}", Num(a.consumer_outputs_per_s), v.unit)});
  }
  chart.x_markers.push_back({a.cores, fmt::format("traced: {} cores", Num(a.cores))});
  if (needed) {
    chart.x_markers.push_back(
        {*needed, fmt::format("needed to keep pace: {} cores", Num(*needed))});
  }
  // In words: from how many cores the best knobs reach the consumer's pace, if ever.
  std::string words;
  if (a.consumer_outputs_per_s > 0 && !tuned_curve.empty()) {
    size_t reach = tuned_curve.size();
    for (size_t i = 0; i < tuned_curve.size(); ++i) {
      if (tuned_curve[i] >= 0.99 * a.consumer_outputs_per_s) {
        reach = i;
        break;
      }
    }
    const std::string which = in.plan ? "With the tuned knobs" : "With the traced knobs";
    words =
        reach < tuned_curve.size()
            ? fmt::format("{} the pipeline keeps pace with the consumer ({} {}) from {} cores on.",
                          which, Num(a.consumer_outputs_per_s), v.unit, Num(cores[reach]))
            : fmt::format(
                  "{} the pipeline does not reach the consumer's pace ({} {}) with up to {} "
                  "cores: something other than the CPU limits it.",
                  which, Num(a.consumer_outputs_per_s), v.unit, Num(hi));
  }
  chart.caption = fmt::format(
      "The analyzer's what-if model (analyzer::Predict) with the traced and the tuned knobs, "
      "the measured per-{} demands, and 1 to {} cores; the traced memory, disk bandwidth and "
      "training step. {}{}",
      v.noun, Num(hi), words, notes);
  if (needed) {
    chart.caption +=
        fmt::format(" The pipeline's CPU work needs {} cores to keep pace with the training step.",
                    Num(*needed));
  }
  s += LineChart(chart);
  return s + "</section>";
}

std::string EnvironmentSection(const View& v) {
  const trace::Trace& t = v.trace();
  const analyzer::Analysis& a = v.analysis();
  std::string s = "<section id=\"environment\"><h2>Environment and measurement</h2>";
  s += "<div class=\"cols\"><div><h3>Host</h3><dl>";
  s += Item("host", Escape(t.host.hostname.empty() ? "unknown" : t.host.hostname));
  s += Item("OS", Escape(t.host.os));
  s += Item("CPU", Escape(t.host.cpu_model));
  s += Item("cores", fmt::format("{}{}", t.host.cores,
                                 a.cores_overridden
                                     ? fmt::format(" (analysed for {} with --cores)", Num(a.cores))
                                     : ""));
  s += Item("memory", Escape(Bytes(static_cast<double>(t.host.memory_bytes))));
  for (const trace::DiskBandwidth& d : t.host.disks) {
    s += Item("disk " + d.device,
              Escape(fmt::format("{} MB/s read under {} ({}{})", Num(d.read_mb_per_s), d.path,
                                 d.method, d.cached ? ", remembered from an earlier run" : "")));
  }
  if (a.host_other_cores > 0) {
    s += Item("other processes", fmt::format("{} cores on average", Num(a.host_other_cores)));
  }
  s += "</dl></div><div><h3>Job</h3><dl>";
  std::string command;
  for (const std::string& arg : t.job.command) command += (command.empty() ? "" : " ") + arg;
  s += Item("command", "<code>" + Escape(command.empty() ? "unknown" : command) + "</code>");
  s += Item("pid", fmt::format("{}", t.job.pid));
  s += Item("traced from", Escape(UtcTime(t.job.start_unix)));
  s += Item("duration", Escape(Duration(t.job.duration)));
  s += Item("ended", Escape(t.job.end_reason.empty() ? "unknown" : t.job.end_reason) +
                         (t.job.cut_short ? " <strong class=\"tag\">cut short</strong>" : ""));
  if (t.job.exit_code || !t.job.exit_signal.empty()) {
    s += Item("exit", Escape(t.job.exit_signal.empty()
                                 ? fmt::format("status {}", t.job.exit_code.value_or(0))
                                 : "killed by " + t.job.exit_signal));
  }
  s += Item("trace", "<code>" + Escape(v.run.origin) + "</code>" +
                         (t.sluice_version.empty()
                              ? ""
                              : fmt::format(" (written by sluice {})", Escape(t.sluice_version))));
  s += Item("pipeline", Escape(v.pipeline.name) +
                            fmt::format(", {} epoch{} completed{}", v.pipeline.epochs_completed,
                                        v.pipeline.epochs_completed == 1 ? "" : "s",
                                        v.pipeline.finished ? ", ran to the end of its data" : ""));
  if (t.pipelines.size() > 1) {
    std::vector<std::string> others;
    for (const trace::PipelineTrace& p : t.pipelines) {
      if (p.name != v.pipeline.name) others.push_back(p.name);
    }
    s += Item("other pipelines",
              Escape(Quoted(others)) + " (choose one with <code>--pipeline NAME</code>)");
  }
  s += Item("config", "<code>" + Escape(v.pipeline.config_path) + "</code>");
  s += "</dl></div></div>";
  if (!v.pipeline.config_text.empty()) {
    s += "<details><summary>The config's text</summary><pre id=\"config-text\">" +
         Escape(v.pipeline.config_text) + "</pre></details>";
  }

  s += "<div class=\"cols\"><div id=\"gpu-status\"><h3>GPU (CUPTI)</h3><dl>";
  s += Item("status", Escape(t.gpu.status));
  if (t.gpu.status == "ok") {
    s += Item("device", Escape(t.gpu.device_name));
    s += Item("kernels", fmt::format("{}", t.gpu.kernels));
    s += Item("busy", Escape(fmt::format("{} of the trace ({} with a kernel running)",
                                         Percent(t.gpu.busy_fraction),
                                         Duration(t.gpu.kernel_busy_seconds))));
    s += Item("host to device",
              Escape(fmt::format("{} in {}", Bytes(t.gpu.h2d_bytes), Duration(t.gpu.h2d_seconds))));
    s += Item("device to host",
              Escape(fmt::format("{} in {}", Bytes(t.gpu.d2h_bytes), Duration(t.gpu.d2h_seconds))));
  }
  s += Item(t.gpu.status == "ok" ? "note" : "why not",
            Escape(t.gpu.reason.empty() ? (t.gpu.status == "ok" ? "-" : "no reason recorded")
                                        : t.gpu.reason));
  s += "</dl></div><div id=\"tracer-overhead\"><h3>The tracer's own cost</h3><dl>";
  s += Item("overhead", Escape(fmt::format("{} of the job's CPU ({} of CPU in {} samples)",
                                           Percent(t.tracer.overhead_fraction),
                                           Duration(t.tracer.cpu_seconds), t.tracer.samples)));
  s += Item("sampling", Escape("every " + Duration(t.tracer.interval)));
  s += Item("warm-up cut",
            Escape(fmt::format(
                "{} s ({})", Num(t.tracer.warmup_seconds),
                t.tracer.warmup_method.empty() ? "no method recorded" : t.tracer.warmup_method)));
  s += "</dl></div></div>";

  s += "<h3>Analysis window and confidence</h3><dl>";
  s += Item("window",
            Escape(fmt::format("{} to {} s ({}, {} samples, {} {}): {}", Num(a.window.start),
                               Num(a.window.end), Duration(a.window.seconds), a.window.samples,
                               a.outputs, Plural(v.noun), a.window.method)));
  s += Item(
      "confidence",
      a.confidence.ok
          ? Escape(fmt::format("ok: the rate varies {} over {} blocks; standard error {}",
                               Percent(a.confidence.rate_cv), Duration(a.confidence.block_seconds),
                               Percent(a.confidence.rate_stderr)))
          : "<strong>low</strong>: " + Escape(a.confidence.reason));
  if (a.disk_bytes_per_output > 0) {
    s += Item("disk reads", Escape(fmt::format("{} per {} ({})", Bytes(a.disk_bytes_per_output),
                                               v.noun, a.disk_bytes_source)));
  }
  s += "</dl>";
  if (!a.notes.empty()) {
    s += "<ul class=\"notes\">";
    for (const std::string& n : a.notes) s += "<li>" + Escape(n) + "</li>";
    s += "</ul>";
  }
  return s + "</section>";
}

std::string GlossarySection(const View& v) {
  const std::string n = v.noun;
  const std::vector<std::pair<std::string, std::string>> terms = {
      {"output", "One item the training job receives from Pipeline::Next(): a " +
                     std::string(n == "batch" ? "batch, since this pipeline batches" : "element") +
                     ". Every demand is per output, every rate in outputs per second."},
      {"outputs/s",
       "Outputs delivered to the consumer per second (X). Measured: outputs in the "
       "steady-state window divided by its length. Shown as " +
           v.unit + " here."},
      {"elements/s", "Elements a stage emits per second, before any batching."},
      {"steady-state window",
       "The part of the trace the figures are taken over: from the "
       "tracer's warm-up cut to the last sample (or the last output of a "
       "pipeline that finished its data)."},
      {"visit ratio (V)",
       "Elements of a stage per output, from the traffic equations of the "
       "stage graph: 32 for a stage before a batch of 32."},
      {"CPU demand (D)",
       "CPU seconds a stage spends per output (all its workers), from the "
       "threads' CPU clocks."},
      {"wall demand (W)",
       "Busy wall-clock seconds a stage spends per output. W above D means "
       "blocking inside the op (I/O, sleep, a lock) or waiting for a core."},
      {"service time (S)", "Busy wall seconds per element the stage emits: W / V."},
      {"utilization (U)",
       "The share of its workers' time a stage is busy: X * W / p, with p "
       "its workers. Near 100% a stage is saturated."},
      {"capacity", "The most outputs per second a stage could support on its own threads: p / W."},
      {"server",
       "The thread or threads a group of stages shares: inline stages run on the thread "
       "that pulls them, so their wall demands add up."},
      {"limit",
       "An upper bound on outputs/s: each server's capacity, the host's CPU (cores / "
       "total CPU demand), the disk (bandwidth / bytes read per output), the consumer "
       "(1 / training step) and memory."},
      {"bottleneck", "The lowest limit: what to change first."},
      {"predicted outputs/s",
       "The model's bound: the lowest limit at the given knobs and "
       "resources (analyzer::Predict). Its gap to the measured rate is "
       "how far the bottleneck is from saturation."},
      {"wait fraction",
       "The share of the window the training job spent inside Next() waiting "
       "for input."},
      {"input-bound verdict",
       "Highly input-bound when the wait fraction is at least 20%, "
       "moderately when at least 5%, else not."},
      {"training step",
       "The consumer's seconds per output outside Next(); its pace is one "
       "output per step."},
      {"blocked on input / output",
       "The share of a stage's workers' time spent waiting for "
       "upstream elements, or for room in its full output queue."},
      {"queue depth",
       "Elements waiting in a stage's output queue at a sample; its capacity is "
       "the stage's buffer_size."},
      {"CPU cores used", "CPU seconds the process (or host) used per second of wall time."},
      {"GPU busy",
       "The share of time at least one GPU kernel ran (CUPTI activity records, "
       "intervals merged)."},
      {"cores needed to keep pace",
       "The cores the pipeline's CPU work needs so that it "
       "delivers outputs as fast as the training step consumes "
       "them: consumer pace * (sum of D + other CPU per output)."},
      {"speedup",
       "Predicted outputs/s with the tuned knobs divided by the prediction at the "
       "traced knobs, on the same resources."},
      {"tracer overhead",
       "CPU seconds the tracer's own thread used, as a share of the CPU the "
       "job used."},
      {"involuntary switches",
       "Times a stage's worker threads were preempted while runnable: "
       "many of them are the sign of more threads than cores."},
  };
  std::string s =
      "<section id=\"glossary\"><h2>Glossary</h2><p>Every figure of this report, as "
      "docs/model.md defines it.</p><dl>";
  for (const auto& [term, definition] : terms) s += Item(term, Escape(definition));
  return s + "</dl></section>";
}

}  // namespace sluice::report::internal
