// The report page: the verdict banner, the before/after comparison, and the sections in order.
#include "sluice/report/report.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "report/internal/sections.h"
#include "report/internal/svg.h"
#include "sluice/common/figures.h"

namespace sluice::report {
namespace {

using internal::View;

// No '<' or '&' anywhere: the page must stay well-formed XML too.
constexpr const char* kStyle = R"(
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       margin: 0 auto; max-width: 1180px; padding: 0 20px 40px; }
h1 { font-size: 22px; margin: 0 0 6px; }
h2 { font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
h3 { font-size: 15px; margin-bottom: 4px; }
nav { font-size: 13px; margin: 12px 0; }
nav a { margin-right: 12px; }
.banner { border-radius: 8px; padding: 14px 18px; margin-top: 16px; border-left: 8px solid; }
.banner.highly { background: #fdecea; border-color: #c62828; }
.banner.moderately { background: #fff6e0; border-color: #ef8f00; }
.banner.not { background: #e8f5e9; border-color: #2e7d32; }
.banner p { margin: 6px 0; }
.figures { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 10px; }
.figure { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 6px 10px; }
.figure b { display: block; font-size: 18px; }
.warn { background: #fff3cd; border: 1px solid #e0b000; border-radius: 6px; padding: 6px 10px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
tr.bottleneck td { background: #fdecea; }
tr.rolled-back td { color: #777; }
.tag { color: #c62828; font-size: 11px; text-transform: uppercase; }
.scroll { overflow-x: auto; }
figure { margin: 14px 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 0 24px; }
figure svg { max-width: 100%; height: auto; }
.chart-title { font-weight: 600; }
.caption { color: #555; font-size: 13px; margin: 2px 0; }
.legend { list-style: none; padding: 0; margin: 2px 0; font-size: 12px; }
.legend li { display: inline-block; margin-right: 14px; }
.swatch { display: inline-block; width: 18px; border-top: 3px solid; margin-right: 5px;
          vertical-align: middle; }
.swatch.dashed { border-top-style: dashed; }
svg text { font-family: system-ui, sans-serif; fill: #333; }
svg .tick, svg .small { font-size: 11px; }
svg .label { font-size: 12px; }
svg .grid { stroke: #eee; }
svg .axis { stroke: #888; }
svg .marker { stroke: #999; stroke-dasharray: 3 3; }
svg .shade { fill: #e8eef8; }
svg .line { fill: none; stroke-width: 1.8; }
svg .edge { stroke: #555; fill: none; stroke-width: 1.5; }
svg .box rect { stroke: #777; }
svg .box.bottleneck rect { stroke: #c62828; stroke-width: 4; }
svg .box-title { font-size: 13px; font-weight: 700; }
svg .box-sub { font-size: 11px; fill: #555; }
svg .box-line { font-size: 11.5px; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; margin: 4px 0; }
dt { font-weight: 600; }
dd { margin: 0; }
.cols { display: flex; flex-wrap: wrap; gap: 28px; }
.cols div { min-width: 320px; flex: 1; }
pre { background: #f7f7f7; padding: 8px; overflow-x: auto; font-size: 12px; }
.side { display: flex; flex-wrap: wrap; gap: 16px; }
.side figure { flex: 1; min-width: 420px; }
footer { margin-top: 30px; color: #777; font-size: 12px; }
)";

std::string Verdict(const View& v, const ReportInput& in) {
  const analyzer::Analysis& a = v.analysis();
  const trace::Trace& t = v.trace();
  const analyzer::InputBound& ib = a.input_bound;
  std::string s =
      fmt::format("<section id=\"verdict\" class=\"banner {}\">", analyzer::ToString(ib.verdict));
  const std::string headline = ib.verdict == analyzer::Verdict::kHighly ? "highly input-bound"
                               : ib.verdict == analyzer::Verdict::kModerately
                                   ? "moderately input-bound"
                                   : "not input-bound";
  s += fmt::format("<h1>Pipeline '{}': {}</h1>", Escape(a.pipeline), headline);
  const std::string cut = internal::CutShortSentence(t);
  if (!cut.empty()) {
    s += fmt::format(
        "<p class=\"warn\" id=\"cut-short\"><strong>The job did not finish normally:</strong> "
        "{}. The figures cover what was traced until then.</p>",
        Escape(cut));
  }
  s += fmt::format(
      "<p><strong>Is it input-bound?</strong> The training job waited for input {} of the "
      "steady-state window. {}</p>",
      Percent(ib.wait_fraction), Escape(ib.why));
  if (!a.limits.empty()) {
    const analyzer::Limit& b = a.Bottleneck();
    const std::string name =
        b.stage.empty() ? std::string(analyzer::ToString(b.kind)) : "'" + b.stage + "'";
    s += fmt::format(
        "<p id=\"bottleneck\"><strong>What limits it?</strong> <span class=\"name\">{}</span>: "
        "{}</p>",
        Escape(name), Escape(b.why));
  }
  if (in.plan) {
    const tuner::Plan& p = *in.plan;
    if (p.changes.empty()) {
      s += "<p><strong>What to change?</strong> Nothing in the pipeline's knobs: the tuner "
           "finds no better setting";
      s += p.prediction.limits.empty()
               ? ".</p>"
               : fmt::format(" ({})</p>", Escape(p.prediction.limits.front().why));
    } else {
      std::vector<std::string> items;
      for (const tuner::Change& c : p.changes) {
        items.push_back(c.knob == tuner::kKnobCache
                            ? fmt::format("a cache after '{}'", c.stage)
                            : fmt::format("'{}' {} {} to {}", c.stage, c.knob, c.from, c.to));
      }
      std::string list;
      const size_t shown = std::min<size_t>(items.size(), 4);
      for (size_t i = 0; i < shown; ++i) list += (i ? "; " : "") + Escape(items[i]);
      if (items.size() > shown) list += fmt::format("; and {} more", items.size() - shown);
      s += fmt::format(
          "<p><strong>What to change?</strong> {}: predicted {} {} ({}x). <a "
          "href=\"#plan\">The plan and its reasons</a>.</p>",
          list, Num(p.predicted_outputs_per_s), Escape(v.unit), Num(p.speedup));
    }
  } else {
    s += fmt::format("<p><strong>What to change?</strong> No tuning plan: {}</p>",
                     Escape(in.plan_error.empty() ? "none was given" : in.plan_error));
  }
  if (!a.confidence.ok) {
    s += fmt::format("<p class=\"warn\">Low confidence in these figures: {}</p>",
                     Escape(a.confidence.reason));
  }
  // Key figures at a glance.
  s += "<div class=\"figures\">";
  const auto figure = [&](const std::string& label, const std::string& value) {
    s += fmt::format("<div class=\"figure\"><b>{}</b>{}</div>", Escape(value), Escape(label));
  };
  figure("measured " + v.unit, Num(a.measured_outputs_per_s));
  figure("model's bound at these knobs", Num(a.predicted_outputs_per_s));
  if (in.plan) figure("predicted after tuning", Num(in.plan->predicted_outputs_per_s));
  figure("waiting for input", Percent(ib.wait_fraction));
  const double used = internal::MeanCoresUsed(v);
  if (used >= 0) figure(fmt::format("CPU cores used of {}", Num(a.cores)), Num(used));
  if (a.gpu_idle_fraction) {
    figure("GPU idle", Percent(*a.gpu_idle_fraction));
  } else {
    figure("GPU", t.gpu.status == "ok" ? "no activity" : "not traced (" + t.gpu.status + ")");
  }
  figure("tracer overhead", Percent(t.tracer.overhead_fraction));
  s += "</div></section>";
  return s;
}

std::string BottleneckName(const analyzer::Analysis& a) {
  if (a.limits.empty()) return "none";
  const analyzer::Limit& b = a.Bottleneck();
  return b.stage.empty() ? analyzer::ToString(b.kind)
                         : fmt::format("{} '{}'", analyzer::ToString(b.kind), b.stage);
}

std::string Comparison(const View& before, const View& after) {
  const analyzer::Analysis& a0 = before.analysis();
  const analyzer::Analysis& a1 = after.analysis();
  std::string s = fmt::format("<section id=\"{}\"><h2>Before and after</h2>", kComparisonId);
  s += fmt::format("<p>Before: <code>{}</code>; after: <code>{}</code> (this report).</p>",
                   Escape(before.run.origin), Escape(after.run.origin));
  const auto ratio = [](double x0, double x1) {
    return x0 > 0 ? fmt::format("{}x", Num(x1 / x0)) : std::string("-");
  };
  s += "<table id=\"comparison-table\"><tr><th>figure</th><th>before</th><th>after</th>"
       "<th>change</th></tr>";
  const auto row = [&](const std::string& label, const std::string& x0, const std::string& x1,
                       const std::string& change) {
    s += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", Escape(label),
                     Escape(x0), Escape(x1), Escape(change));
  };
  row("measured " + after.unit, Num(a0.measured_outputs_per_s), Num(a1.measured_outputs_per_s),
      ratio(a0.measured_outputs_per_s, a1.measured_outputs_per_s));
  row("model's bound", Num(a0.predicted_outputs_per_s), Num(a1.predicted_outputs_per_s),
      ratio(a0.predicted_outputs_per_s, a1.predicted_outputs_per_s));
  row("waiting for input", Percent(a0.input_bound.wait_fraction),
      Percent(a1.input_bound.wait_fraction),
      fmt::format("{:+.0f} points",
                  100 * (a1.input_bound.wait_fraction - a0.input_bound.wait_fraction)));
  row("verdict", analyzer::ToString(a0.input_bound.verdict),
      analyzer::ToString(a1.input_bound.verdict), "");
  row("bottleneck", BottleneckName(a0), BottleneckName(a1), "");
  const double u0 = internal::MeanCoresUsed(before), u1 = internal::MeanCoresUsed(after);
  row("CPU cores used", u0 >= 0 ? Num(u0) : "-", u1 >= 0 ? Num(u1) : "-",
      u0 > 0 && u1 >= 0 ? ratio(u0, u1) : "");
  row("cores on the host", Num(a0.cores), Num(a1.cores), "");
  s += "</table>";

  // Stages side by side, matched by name.
  s += "<h3>Stages</h3><table id=\"comparison-stages\"><tr><th>stage</th><th>workers before</th>"
       "<th>workers after</th><th>utilization before</th><th>utilization after</th>"
       "<th>elements/s before</th><th>elements/s after</th></tr>";
  std::vector<std::string> names;
  for (const analyzer::StageAnalysis& st : a0.stages) names.push_back(st.name);
  for (const analyzer::StageAnalysis& st : a1.stages) {
    if (std::find(names.begin(), names.end(), st.name) == names.end()) names.push_back(st.name);
  }
  const auto find = [](const analyzer::Analysis& a,
                       const std::string& name) -> const analyzer::StageAnalysis* {
    for (const analyzer::StageAnalysis& st : a.stages) {
      if (st.name == name) return &st;
    }
    return nullptr;
  };
  for (const std::string& name : names) {
    const analyzer::StageAnalysis* x0 = find(a0, name);
    const analyzer::StageAnalysis* x1 = find(a1, name);
    const auto workers = [](const analyzer::StageAnalysis* st) {
      if (!st) return std::string("absent");
      return st->async ? fmt::format("{}, queue {}", st->parallelism, st->buffer_size)
                       : std::string("inline");
    };
    s += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        Escape(name), Escape(workers(x0)), Escape(workers(x1)), x0 ? Percent(x0->utilization) : "-",
        x1 ? Percent(x1->utilization) : "-", x0 ? Num(x0->elements_per_s) : "-",
        x1 ? Num(x1->elements_per_s) : "-");
  }
  s += "</table>";

  // The two runs' output rates, each against its own time axis.
  internal::ChartSpec chart{.id = "chart-comparison",
                            .title = "Outputs delivered, before and after",
                            .x_label = "seconds since tracing began",
                            .y_label = after.unit};
  const internal::Points p0 = internal::Rates(
      internal::PipelineTimes(before), std::vector<double>(before.pipeline.consumer_next.begin(),
                                                           before.pipeline.consumer_next.end()));
  const internal::Points p1 = internal::Rates(
      internal::PipelineTimes(after), std::vector<double>(after.pipeline.consumer_next.begin(),
                                                          after.pipeline.consumer_next.end()));
  chart.lines.push_back({"before", p0.x, p0.y, true});
  chart.lines.push_back({"after", p1.x, p1.y});
  chart.x_from_zero = true;
  s += internal::LineChart(chart);
  return s + "</section>";
}

}  // namespace

std::string Render(const ReportInput& in) {
  const View v = internal::MakeView(in.run);
  std::optional<View> before;
  if (in.baseline) before.emplace(internal::MakeView(*in.baseline));

  std::string s;
  s.reserve(256 * 1024);
  s += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>";
  s += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>";
  s += fmt::format("<title>sluice report: {}</title>", Escape(v.analysis().pipeline));
  s += fmt::format("<style>{}</style></head><body>", kStyle);
  s += "<nav>";
  if (before) s += fmt::format("<a href=\"#{0}\">before/after</a>", kComparisonId);
  for (const char* id : kSectionIds) s += fmt::format("<a href=\"#{0}\">{0}</a>", id);
  if (!v.pipeline.retunes.empty()) s += "<a href=\"#retunes\">retunes</a>";
  s += "</nav>";
  s += Verdict(v, in);
  if (before) s += Comparison(*before, v);
  s += internal::PipelineSection(v);
  s += internal::StagesSection(v);
  s += internal::LimitsSection(v);
  s += internal::TimelineSection(v);
  s += internal::RetunesSection(v);
  s += internal::PlanSection(v, in);
  s += internal::WhatIfSection(v, in);
  s += internal::EnvironmentSection(v);
  s += internal::GlossarySection(v);
  s += fmt::format("<footer>Written by {} from <code>{}</code>.</footer></body></html>\n",
                   Escape(in.generator), Escape(in.run.origin));
  return s;
}

}  // namespace sluice::report
