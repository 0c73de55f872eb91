// The report's sections on the analysis and the plan: graph, stage table, limits, plan and
// what-if curve; and the series helpers every section shares. The time series, environment and
// glossary are in measurement.cc.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "report/internal/sections.h"
#include "report/internal/svg.h"
#include "sluice/common/error.h"
#include "sluice/common/figures.h"

namespace sluice::report::internal {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Bucket boundaries over the first n samples of `t`: at most `max_points` buckets of consecutive
// samples, of about equal length in time, so that a series whose older part is merged into coarse
// buckets spreads its points evenly over the job (a bucket then holds one coarse sample or many
// fine ones). Times that do not rise fall back to equal counts.
std::vector<size_t> Bounds(const std::vector<double>& t, size_t n, size_t max_points) {
  std::vector<size_t> b;
  if (n < 2) return b;
  const size_t m = std::max<size_t>(1, std::min(n - 1, max_points));
  const double span = t[n - 1] - t[0];
  if (!(span > 0)) {
    for (size_t k = 0; k <= m; ++k) b.push_back(k * (n - 1) / m);
    return b;
  }
  b.push_back(0);
  for (size_t k = 1; k < m && b.back() + 1 < n - 1; ++k) {
    const double target = t[0] + span * static_cast<double>(k) / static_cast<double>(m);
    if (t[b.back()] >= target) continue;
    size_t j = b.back() + 1;
    while (j < n - 1 && t[j] < target) ++j;
    if (j < n - 1) b.push_back(j);
  }
  b.push_back(n - 1);
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
  const std::vector<size_t> b = Bounds(t, n, max_points);
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
  const std::vector<size_t> b = Bounds(t, n, max_points);
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

}  // namespace sluice::report::internal
