// Structural golden tests of the HTML report: the page is parsed (libxml2) and its sections,
// figures and numbers are checked against the analysis and the plan it was rendered from.
#include "sluice/report/report.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/common/error.h"
#include "sluice/common/figures.h"
#include "sluice/trace/compact.h"
#include "tests/common/files.h"
#include "tests/common/harness.h"
#include "tests/report/html_dom.h"
#include "tests/report/synthetic_trace.h"

namespace sluice::report {
namespace {

namespace fs = std::filesystem;
using testing::BuildTrace;
using ::testing::HasSubstr;
using testing::HtmlDom;
using testing::ImageLikeSpec;
using ::testing::Not;
using testing::OneHourSpec;
using testing::SyntheticSpec;

// A run of `spec`, analysed, with the tuner's plan.
ReportInput InputOf(const SyntheticSpec& spec, bool with_plan = true) {
  ReportInput in;
  in.run.trace = BuildTrace(spec);
  in.run.origin = "prof/trace.json";
  in.run.analysis = analyzer::Analyze(in.run.trace);
  if (with_plan) in.plan = tuner::Tune(in.run.analysis, in.run.trace.pipelines[0]);
  in.generator = "sluice test";
  return in;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

TEST(ReportTest, IsWellFormedWithEverySectionAndFigure) {
  const ReportInput in = InputOf(ImageLikeSpec());
  const std::string html = Render(in);
  const HtmlDom dom(html);
  ASSERT_TRUE(dom.ok()) << "the report is not well-formed";
  for (const char* id : kSectionIds) {
    EXPECT_EQ(dom.Count(fmt::format("//section[@id='{}']", id)), 1u) << id;
  }
  EXPECT_EQ(dom.Count("//section[@id='comparison']"), 0u);
  for (const char* id : {"graph", "chart-outputs", "chart-cpu", "chart-wait", "chart-gpu",
                         "chart-queues", "chart-whatif"}) {
    EXPECT_EQ(dom.Count(fmt::format("//figure[@id='{}']", id)), 1u) << id;
  }
  // Charts are drawn (no GPU in this trace: its figure says why instead).
  for (const char* id : {"chart-outputs", "chart-cpu", "chart-wait", "chart-queues"}) {
    EXPECT_GE(dom.Count(fmt::format("//figure[@id='{}']//path[@class='line']", id)), 1u) << id;
    EXPECT_GE(dom.Count(fmt::format("//figure[@id='{}']//text[@class='label']", id)), 2u)
        << id << ": axis labels";
  }
  // One box per stage plus the consumer; the queue chart has one line per async stage.
  EXPECT_EQ(dom.Count("//figure[@id='graph']//*[name()='g'][contains(@class,'box')]"), 7u);
  EXPECT_EQ(dom.Count("//figure[@id='chart-queues']//path[@class='line']"), 3u);
  EXPECT_EQ(dom.Count("//table[@id='stage-table']//tr"), 1u + 6u);
  EXPECT_EQ(dom.Count("//table[@id='limits-table']//tr"), 1u + in.run.analysis.limits.size());
  // No script at all: tooltips are SVG <title> elements.
  EXPECT_EQ(dom.Count("//script"), 0u);
  EXPECT_GE(dom.Count("//*[name()='title']"), 10u);
}

TEST(ReportTest, ShowsTheAnalysisFigures) {
  const ReportInput in = InputOf(ImageLikeSpec());
  const analyzer::Analysis& a = in.run.analysis;
  ASSERT_EQ(a.Bottleneck().stage, "decode");  // the spec's premise
  const HtmlDom dom(Render(in));
  ASSERT_TRUE(dom.ok());
  EXPECT_THAT(dom.Text("//section[@id='verdict']"), HasSubstr("highly input-bound"));
  EXPECT_THAT(dom.Text("//p[@id='bottleneck']"), HasSubstr("'decode'"));
  EXPECT_THAT(dom.Text("//p[@id='bottleneck']"), HasSubstr(a.Bottleneck().why));
  EXPECT_THAT(dom.Text("//section[@id='verdict']//div[@class='figures']"),
              HasSubstr(Num(a.measured_outputs_per_s) + "measured batches/s"));
  EXPECT_THAT(dom.Text("//section[@id='verdict']"),
              HasSubstr(Percent(a.input_bound.wait_fraction)));
  // The bottleneck's row and box are marked.
  EXPECT_THAT(dom.Text("//table[@id='stage-table']//tr[@class='bottleneck']/td[1]"),
              HasSubstr("decode"));
  EXPECT_THAT(dom.Text("//figure[@id='graph']//*[name()='g'][@class='box bottleneck']/*[name()="
                       "'title']"),
              HasSubstr("decode (decode_jpeg)"));
  // Every stage's utilization, as the analysis computed it.
  for (size_t i = 0; i < a.stages.size(); ++i) {
    EXPECT_EQ(dom.Text(fmt::format("//table[@id='stage-table']//tr[{}]/td[10]", i + 2)),
              Percent(a.stages[i].utilization))
        << a.stages[i].name;
  }
  EXPECT_EQ(dom.Text("//table[@id='limits-table']//tr[2]/td[4]"),
            Num(a.Bottleneck().outputs_per_s));
}

TEST(ReportTest, ShowsThePlanWithReasonsAndPredictedEffect) {
  const ReportInput in = InputOf(ImageLikeSpec());
  ASSERT_TRUE(in.plan);
  const tuner::Plan& plan = *in.plan;
  ASSERT_FALSE(plan.changes.empty()) << "decode at 95% on 4 cores: the tuner adds workers";
  const HtmlDom dom(Render(in));
  ASSERT_TRUE(dom.ok());
  EXPECT_EQ(dom.Count("//table[@id='plan-table']//tr"), 1 + plan.changes.size());
  for (size_t i = 0; i < plan.changes.size(); ++i) {
    const tuner::Change& c = plan.changes[i];
    const std::string row = fmt::format("//table[@id='plan-table']//tr[{}]", i + 2);
    EXPECT_EQ(dom.Text(row + "/td[1]"), c.stage);
    EXPECT_EQ(dom.Text(row + "/td[2]"), c.knob);
    EXPECT_EQ(dom.Text(row + "/td[4]"), std::to_string(c.to));
    EXPECT_EQ(dom.Text(row + "/td[5]"), c.why);
    EXPECT_EQ(dom.Text(row + "/td[6]"), c.effect);
  }
  EXPECT_THAT(dom.Text("//section[@id='plan']"), HasSubstr(Num(plan.predicted_outputs_per_s)));
  EXPECT_THAT(dom.Text("//section[@id='verdict']"), HasSubstr("What to change?"));
  EXPECT_THAT(dom.Text("//section[@id='verdict']"),
              HasSubstr(fmt::format("predicted {} batches/s", Num(plan.predicted_outputs_per_s))));
}

// The profile's trials: one row per round, the kept one marked, names from the trial as text.
TEST(ReportTest, ShowsTheProfilesTrials) {
  ReportInput in = InputOf(ImageLikeSpec());
  EXPECT_EQ(HtmlDom(Render(in)).Count("//table[@id='trials-table']"), 0u) << "no trials given";
  in.trials = {{.round = 0, .measured_outputs_per_s = 23.1},
               {.round = 1,
                .changes = "crop.parallelism 1->2",
                .predicted_outputs_per_s = 46.4,
                .measured_outputs_per_s = 40.8,
                .kept = true},
               {.round = 2,
                .changes = "<b>decode</b>.buffer_size 0->64",
                .predicted_outputs_per_s = 48.1,
                .measured_outputs_per_s = 40.9}};
  in.kept_round = 1;
  const HtmlDom dom(Render(in));
  ASSERT_TRUE(dom.ok());
  EXPECT_EQ(dom.Count("//table[@id='trials-table']//tr"), 1u + 3u);
  EXPECT_EQ(dom.Count("//table[@id='trials-table']//tr[@class='kept']"), 1u);
  EXPECT_EQ(dom.Text("//table[@id='trials-table']//tr[@class='kept']/td[1]"), "1");
  EXPECT_EQ(dom.Text("//table[@id='trials-table']//tr[3]/td[4]"), "40.8 batches/s");
  EXPECT_EQ(dom.Text("//table[@id='trials-table']//tr[4]/td[2]"),
            "<b>decode</b>.buffer_size 0->64");
  EXPECT_EQ(dom.Count("//section[@id='plan']//b"), 0u) << "a name is text, never markup";
  EXPECT_THAT(dom.Text("//table[@id='trials-table']//tr[4]/td[5]"), HasSubstr("not kept"));
  EXPECT_THAT(dom.Text("//p[@id='trials-kept']"), HasSubstr("round 1"));
}

TEST(ReportTest, SaysWhyThereIsNoPlan) {
  ReportInput in = InputOf(ImageLikeSpec(), false);
  in.plan_error = "memory budget 10 MB is below what the pipeline's buffers need: 24 MB";
  const HtmlDom dom(Render(in));
  ASSERT_TRUE(dom.ok());
  EXPECT_THAT(dom.Text("//section[@id='plan']"), HasSubstr(in.plan_error));
  EXPECT_EQ(dom.Count("//table[@id='plan-table']"), 0u);
  // The what-if curve still draws the traced knobs.
  EXPECT_EQ(dom.Count("//figure[@id='chart-whatif']//path[@class='line']"), 1u);
}

TEST(ReportTest, WhatIfCurveFollowsThePredictionAndMarksTheConsumer) {
  const ReportInput in = InputOf(ImageLikeSpec());
  const analyzer::Analysis& a = in.run.analysis;
  const HtmlDom dom(Render(in));
  ASSERT_TRUE(dom.ok());
  const std::string fig = "//figure[@id='chart-whatif']";
  EXPECT_EQ(dom.Count(fig + "//path[@class='line']"), 2u);  // traced and tuned knobs
  // Each point's tooltip is the analyzer's prediction at that many cores; 1 core is the first.
  const auto tips = dom.Texts(fig + "//*[name()='circle']/*[name()='title']");
  ASSERT_GE(tips.size(), 8u);
  const double at_one = analyzer::PredictThroughput(a, analyzer::CurrentKnobs(a), 1);
  EXPECT_EQ(tips.front(), fmt::format("traced knobs: {} batches/s at 1 cores", Num(at_one)));
  ASSERT_GT(a.consumer_outputs_per_s, 0);
  EXPECT_THAT(dom.Text(fig), HasSubstr("consumer's pace " + Num(a.consumer_outputs_per_s)));
  EXPECT_THAT(dom.Text(fig), HasSubstr("traced: 4 cores"));
}

TEST(ReportTest, StageNamedScriptAppearsAsText) {
  const std::string evil = "<script>alert(1)</script>";
  SyntheticSpec spec = ImageLikeSpec();
  spec.stages[2].name = evil;  // the bottleneck
  spec.stages[3].op = "op\" onmouseover=\"alert(2)";
  spec.pipeline = "p'\"&<b>";
  ReportInput in = InputOf(spec);
  in.run.trace.host.hostname = "<img src=x onerror=alert(3)>";
  in.run.trace.job.command = {"./train", "</code><script>alert(4)</script>"};
  in.run.trace.pipelines[0].config_text = "</pre><script>alert(5)</script>";
  in.run.origin = "dir/<i>trace</i>.json";
  const std::string html = Render(in);
  const HtmlDom dom(html);
  ASSERT_TRUE(dom.ok());
  EXPECT_EQ(dom.Count("//script | //img | //i | //h1/*"), 0u);
  EXPECT_EQ(dom.Count("//@*[starts-with(name(), 'on')]"), 0u);
  EXPECT_THAT(Lower(html), Not(HasSubstr("<script")));
  EXPECT_THAT(html, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;"));
  // As text: in the verdict, the stage table, the graph's tooltip, the plan, the environment.
  EXPECT_THAT(dom.Text("//p[@id='bottleneck']"), HasSubstr("'" + evil + "'"));
  EXPECT_THAT(dom.Text("//table[@id='stage-table']//tr[4]/td[1]"), HasSubstr(evil));
  EXPECT_THAT(dom.Text("//figure[@id='graph']//*[name()='g'][@class='box bottleneck']/*[name()="
                       "'title']"),
              HasSubstr(evil));
  EXPECT_THAT(dom.Text("//table[@id='stage-table']//tr[5]/td[2]"),
              HasSubstr("op\" onmouseover=\"alert(2)"));
  EXPECT_THAT(dom.Text("//h1"), HasSubstr("p'\"&<b>"));
  EXPECT_THAT(dom.Text("//section[@id='environment']"), HasSubstr("<img src=x onerror=alert(3)>"));
  EXPECT_THAT(dom.Text("//section[@id='environment']"),
              HasSubstr("</code><script>alert(4)</script>"));
  EXPECT_EQ(dom.Text("//pre[@id='config-text']"), "</pre><script>alert(5)</script>");
  EXPECT_THAT(dom.Text("//footer"), HasSubstr("dir/<i>trace</i>.json"));
}

TEST(ReportTest, RequestsNothingOverTheNetwork) {
  ReportInput in = InputOf(ImageLikeSpec());
  in.baseline = InputOf(ImageLikeSpec(), false).run;
  const std::string html = Render(in);
  const HtmlDom dom(html);
  ASSERT_TRUE(dom.ok());
  EXPECT_EQ(dom.Count("//link | //script | //iframe | //object | //embed | //img | //image | "
                      "//video | //audio | //source | //use | //form"),
            0u);
  // Every reference stays inside the page.
  const std::regex attribute(
      R"re(\b(src|href|xlink:href|action|poster|data|srcset)\s*=\s*"([^"]*)")re");
  size_t references = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), attribute);
       it != std::sregex_iterator(); ++it) {
    EXPECT_EQ((*it)[2].str().substr(0, 1), "#") << (*it)[0].str();
    ++references;
  }
  EXPECT_GT(references, 5u);  // the navigation links are found, so the pattern works
  const std::regex url(R"(url\(\s*['"]?([^)'"]*))");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), url); it != std::sregex_iterator();
       ++it) {
    EXPECT_EQ((*it)[1].str().substr(0, 1), "#") << (*it)[0].str();
  }
  EXPECT_THAT(Lower(html), Not(HasSubstr("@import")));
  EXPECT_THAT(Lower(html), Not(HasSubstr("http://")));
  EXPECT_THAT(Lower(html), Not(HasSubstr("https://")));
}

TEST(ReportTest, BaselineIsShownSideBySide) {
  SyntheticSpec before_spec = ImageLikeSpec();
  SyntheticSpec after_spec = ImageLikeSpec();
  // After: decode has 4 workers and the pipeline keeps pace with the training step.
  after_spec.stages[2].parallelism = 4;
  for (auto& s : after_spec.stages) {
    s.out_per_s *= 1.6;
    s.cpu_per_s *= 1.6;
    s.busy_per_s *= 1.6;
  }
  after_spec.outputs_per_s = 32;
  after_spec.wait_per_s = 0.05;
  ReportInput in = InputOf(after_spec);
  ReportInput before = InputOf(before_spec, false);
  before.run.origin = "before/trace.json";
  in.baseline = before.run;
  const HtmlDom dom(Render(in));
  ASSERT_TRUE(dom.ok());
  ASSERT_EQ(dom.Count("//section[@id='comparison']"), 1u);
  for (const char* id : kSectionIds) {
    EXPECT_EQ(dom.Count(fmt::format("//section[@id='{}']", id)), 1u) << id;
  }
  const std::string row = "//table[@id='comparison-table']//tr[2]";
  EXPECT_EQ(dom.Text(row + "/td[2]"), Num(before.run.analysis.measured_outputs_per_s));
  EXPECT_EQ(dom.Text(row + "/td[3]"), Num(in.run.analysis.measured_outputs_per_s));
  EXPECT_EQ(dom.Text(row + "/td[4]"), Num(in.run.analysis.measured_outputs_per_s /
                                          before.run.analysis.measured_outputs_per_s) +
                                          "x");
  EXPECT_THAT(dom.Text("//table[@id='comparison-stages']//tr[4]"), HasSubstr("2, queue 4"));
  EXPECT_THAT(dom.Text("//table[@id='comparison-stages']//tr[4]"), HasSubstr("4, queue 4"));
  EXPECT_EQ(dom.Count("//figure[@id='chart-comparison']//path[@class='line']"), 2u);
  EXPECT_THAT(dom.Text("//section[@id='comparison']"), HasSubstr("before/trace.json"));
}

TEST(ReportTest, ShowsWhyThereIsNoGpu) {
  SyntheticSpec spec = ImageLikeSpec();
  spec.gpu_reason = "libcupti.so was not found: install the CUDA toolkit's CUPTI";
  const HtmlDom dom(Render(InputOf(spec)));
  ASSERT_TRUE(dom.ok());
  EXPECT_THAT(dom.Text("//div[@id='gpu-status']"), HasSubstr("no_device"));
  EXPECT_THAT(dom.Text("//div[@id='gpu-status']"), HasSubstr(spec.gpu_reason));
  EXPECT_THAT(dom.Text("//figure[@id='chart-gpu']"), HasSubstr(spec.gpu_reason));
  EXPECT_EQ(dom.Count("//figure[@id='chart-gpu']//*[name()='svg']"), 0u);
  EXPECT_THAT(dom.Text("//div[@id='tracer-overhead']"), HasSubstr("of the job's CPU"));
}

TEST(ReportTest, ChartsGpuBusyWhenTraced) {
  SyntheticSpec spec = ImageLikeSpec();
  spec.gpu_busy = 0.4;
  const ReportInput in = InputOf(spec);
  ASSERT_TRUE(in.run.analysis.gpu_idle_fraction);
  const HtmlDom dom(Render(in));
  ASSERT_TRUE(dom.ok());
  EXPECT_EQ(dom.Count("//figure[@id='chart-gpu']//path[@class='line']"), 1u);
  EXPECT_THAT(dom.Text("//section[@id='verdict']"),
              HasSubstr(Percent(*in.run.analysis.gpu_idle_fraction) + "GPU idle"));
  EXPECT_THAT(dom.Text("//div[@id='gpu-status']"), HasSubstr("Test GPU"));
}

TEST(ReportTest, BannerSaysHowAJobThatDiedEnded) {
  ReportInput in = InputOf(ImageLikeSpec());
  in.run.trace.job.cut_short = true;
  in.run.trace.job.end_reason = "job was killed by SIGSEGV (Segmentation fault)";
  in.run.trace.job.exit_signal = "SIGSEGV";
  in.run.trace.job.duration = 4.2;
  HtmlDom dom(Render(in));
  ASSERT_TRUE(dom.ok());
  EXPECT_THAT(dom.Text("//section[@id='verdict']//p[@id='cut-short']"),
              HasSubstr("the job was killed by SIGSEGV after 4.2 s"));

  // A trace left at a periodic flush (the job vanished without a word).
  in.run.trace.job.exit_signal.clear();
  in.run.trace.job.end_reason = "in progress";
  const HtmlDom flushed(Render(in));
  EXPECT_THAT(flushed.Text("//p[@id='cut-short']"), HasSubstr("periodic flush after 4.2 s"));

  // A job that ended normally has no such warning.
  in.run.trace.job.cut_short = false;
  in.run.trace.job.end_reason = "completed";
  EXPECT_EQ(HtmlDom(Render(in)).Count("//p[@id='cut-short']"), 0u);
}

TEST(ReportTest, GlossaryDefinesEveryMetricShown) {
  const HtmlDom dom(Render(InputOf(ImageLikeSpec())));
  ASSERT_TRUE(dom.ok());
  const auto terms = dom.Texts("//section[@id='glossary']//dt");
  for (const char* term : {"output",
                           "outputs/s",
                           "elements/s",
                           "visit ratio (V)",
                           "CPU demand (D)",
                           "wall demand (W)",
                           "service time (S)",
                           "utilization (U)",
                           "capacity",
                           "wait fraction",
                           "input-bound verdict",
                           "bottleneck",
                           "limit",
                           "predicted outputs/s",
                           "steady-state window",
                           "queue depth",
                           "CPU cores used",
                           "GPU busy",
                           "cores needed to keep pace",
                           "speedup",
                           "tracer overhead",
                           "blocked on input / output",
                           "involuntary switches"}) {
    EXPECT_NE(std::find(terms.begin(), terms.end(), term), terms.end()) << term;
  }
  for (const std::string& d : dom.Texts("//section[@id='glossary']//dd")) EXPECT_GT(d.size(), 20u);
}

// A one-hour trace sampled every 100 ms (36,001 samples per series) with 10 stages stays small:
// every series is thinned to at most kMaxPoints points. (Its rendering time is in bench/.)
TEST(ReportTest, OneHourTraceStaysUnderTwoMegabytes) {
  const SyntheticSpec spec = OneHourSpec();
  const ReportInput in = InputOf(spec);
  ASSERT_EQ(in.run.trace.series.t.size(), 36'001u);
  const std::string html = Render(in);
  EXPECT_LT(html.size(), 2'000'000u);
  const HtmlDom dom(html);
  ASSERT_TRUE(dom.ok());
  EXPECT_EQ(dom.Count("//figure[@id='chart-queues']//path[@class='line']"), 5u);
  EXPECT_THAT(dom.Text("//section[@id='timeline']"),
              HasSubstr("Each point is the mean over about 75 samples"));
}

// The points of the first line of chart `id`: the segments of its path.
size_t LinePoints(const HtmlDom& dom, const std::string& id) {
  const std::vector<std::string> d =
      dom.Texts("//figure[@id='" + id + "']//path[@class='line']/@d");
  if (d.empty()) return 0;
  return static_cast<size_t>(std::count(d[0].begin(), d[0].end(), 'L')) + 1;
}

// A trace whose older samples were merged into buckets (as a day-long job's are) is charted
// twice: the whole job coarsely, points spread evenly in time, and the samples after the last
// bucket at full resolution, one point per sample.
TEST(ReportTest, ShowsTheWholeJobCoarselyAndTheRecentSamplesAtFullResolution) {
  ReportInput in = InputOf(OneHourSpec(), false);
  trace::Trace& t = in.run.trace;
  t.tracer.full_resolution_seconds = 600;
  t.tracer.bucket_seconds = 10;
  t.tracer.max_buckets = 1024;
  trace::Compact(t);
  const size_t buckets = t.series.merged.size();
  ASSERT_GT(buckets, 290u);  // 3000 s of 10 s buckets, or so
  const size_t fine = t.series.t.size() - buckets;
  ASSERT_GT(fine, 6000u);
  in.run.analysis = analyzer::Analyze(t);
  const HtmlDom dom(Render(in));
  ASSERT_TRUE(dom.ok());
  EXPECT_THAT(dom.Text("//section[@id='timeline']/p[1]"),
              HasSubstr(fmt::format("buckets of 10 s or more ({} buckets)", buckets)));
  // The whole job: at most kMaxPoints points, one per 10 s bucket over the first 3000 s and the
  // rest over the last 600 s (by sample counts, the buckets would get 15 points).
  const size_t whole = LinePoints(dom, "chart-outputs");
  EXPECT_LE(whole, 480u);
  EXPECT_GT(whole, buckets + 50);
  // The recent samples: one point per sample, from the last bucket on.
  EXPECT_THAT(dom.Text("//section[@id='timeline']"),
              HasSubstr(fmt::format("{} samples every 100 ms, from {} s", fine,
                                    Num(t.series.t[buckets - 1]))));
  EXPECT_EQ(LinePoints(dom, "chart-outputs-recent"), fine);
  EXPECT_EQ(LinePoints(dom, "chart-cpu-recent"), fine);
  EXPECT_EQ(dom.Count("//figure[@id='chart-queues-recent']//path[@class='line']"), 5u);
  EXPECT_EQ(dom.Count("//h3[@id='timeline-recent']"), 1u);
  // Without buckets there is no recent part.
  const HtmlDom plain(Render(InputOf(OneHourSpec(), false)));
  EXPECT_EQ(plain.Count("//figure[@id='chart-outputs-recent']"), 0u);
}

// A bound that does not bind is infinite: it is written "unbounded" and drawn nowhere.
TEST(ReportTest, UnboundedFiguresRender) {
  ReportInput in = InputOf(ImageLikeSpec(), false);
  in.run.analysis.predicted_outputs_per_s = std::numeric_limits<double>::infinity();
  const HtmlDom dom(Render(in));
  ASSERT_TRUE(dom.ok());
  EXPECT_THAT(dom.Text("//section[@id='verdict']"), HasSubstr("unbounded"));
  EXPECT_THAT(dom.Text("//figure[@id='chart-outputs']"), Not(HasSubstr("model's bound")));
}

TEST(ReportTest, RejectsAnAnalysisOfAnotherTrace) {
  ReportInput in = InputOf(ImageLikeSpec(), false);
  in.run.analysis.pipeline = "other";
  EXPECT_THROW(Render(in), Error);
}

TEST(EscapeTest, ReplacesMarkupCharactersAndInvalidText) {
  EXPECT_EQ(Escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
  EXPECT_EQ(Escape("plain µs text…"), "plain µs text…");
  EXPECT_EQ(Escape("tab\tnewline\n"), "tab\tnewline\n");
  EXPECT_EQ(Escape(std::string("nul\0bell\a", 9)),
            "nul\xEF\xBF\xBD"
            "bell\xEF\xBF\xBD");
  EXPECT_EQ(Escape("bad \xFF byte"), "bad \xEF\xBF\xBD byte");
  EXPECT_EQ(Escape("cut \xE2\x82"), "cut \xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(Escape("overlong \xC0\xBC"), "overlong \xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(Escape("surrogate \xED\xA0\x80"), "surrogate \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(ReportTest, InvalidUtf8InTheTraceStillGivesAWellFormedPage) {
  SyntheticSpec spec = ImageLikeSpec();
  spec.stages[0].name = "fi\xFFles\x01";
  const HtmlDom dom(Render(InputOf(spec)));
  ASSERT_TRUE(dom.ok());
  EXPECT_THAT(dom.Text("//table[@id='stage-table']//tr[2]/td[1]"), HasSubstr("fi\xEF\xBF\xBDles"));
}

TEST(WriteReportTest, WritesAtomicallyAndReplaces) {
  const test_util::TempDir tmp("sluice_report_test");
  const fs::path& dir = tmp.path();
  const fs::path path = dir / "report.html";
  WriteReport("<p>one</p>", path);
  WriteReport("<p>two</p>", path);
  EXPECT_EQ(test_util::ReadFile(path), "<p>two</p>");
  EXPECT_EQ(test_util::SortedEntries(dir), std::vector<std::string>{"report.html"});
  try {
    WriteReport("x", dir / "missing" / "report.html");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("missing"));
  }
}

}  // namespace
}  // namespace sluice::report

namespace sluice::report {
namespace {

TEST(ReportTest, ListsTheRetunesAndMarksThemOnTheOutputsChart) {
  ReportInput in = InputOf(ImageLikeSpec());
  EXPECT_EQ(HtmlDom(Render(in)).Count("//section[@id='retunes']"), 0u) << "not autotuned";
  trace::Retune apply;
  apply.t = 2.5;
  apply.action = "apply";
  apply.reason = "stage 'decode' limits the pipeline";
  apply.changes = {{"decode", "parallelism", 1, 2, "decode needs <2> workers", "now", ""}};
  apply.before_outputs_per_s = 20;
  apply.predicted_outputs_per_s = 40;
  apply.calibrated_outputs_per_s = 36;
  apply.measured_outputs_per_s = 18;
  apply.kept = false;
  trace::Retune back;
  back.t = 5;
  back.action = "rollback";
  back.reason = "measured 18 below 20";
  back.changes = {{"decode", "parallelism", 2, 1, "", "now", ""}};
  trace::Retune replan;
  replan.t = 8;
  replan.action = "replan";
  replan.reason = "the rate moved from 20 to 9 (a phase change); nothing is changed";
  replan.before_outputs_per_s = 9;
  replan.predicted_outputs_per_s = 9.2;
  in.run.trace.pipelines[0].retunes = {apply, back, replan};
  const HtmlDom dom(Render(in));
  ASSERT_TRUE(dom.ok());
  EXPECT_EQ(dom.Count("//table[@id='retune-table']//tr"), 1u + 3u);
  EXPECT_EQ(dom.Count("//table[@id='retune-table']//tr[@class='rolled-back']"), 1u);
  EXPECT_THAT(dom.Text("//table[@id='retune-table']//tr[2]/td[4]"),
              HasSubstr("decode.parallelism 1->2"));
  EXPECT_THAT(dom.Text("//table[@id='retune-table']//tr[2]/td[4]"),
              HasSubstr("decode needs <2> workers"));
  EXPECT_EQ(dom.Text("//table[@id='retune-table']//tr[2]/td[10]"), "rolled back");
  EXPECT_EQ(dom.Text("//table[@id='retune-table']//tr[3]/td[3]"), "rollback");
  const std::string chart = dom.Text("//figure[@id='chart-outputs']");
  EXPECT_THAT(chart, HasSubstr("re-tune 1"));
  EXPECT_THAT(chart, HasSubstr("rollback 2"));
  // A phase change that needed no change: listed, counted apart from the changes, marked.
  EXPECT_EQ(dom.Text("//table[@id='retune-table']//tr[4]/td[3]"), "replan");
  EXPECT_EQ(dom.Text("//table[@id='retune-table']//tr[4]/td[4]"), "no change");
  EXPECT_EQ(dom.Text("//table[@id='retune-table']//tr[4]/td[7]"), "9.2");
  EXPECT_EQ(dom.Text("//table[@id='retune-table']//tr[4]/td[10]"), "-");
  EXPECT_THAT(dom.Text("//section[@id='retunes']/p"), HasSubstr("changed its knobs 2 times"));
  EXPECT_THAT(dom.Text("//section[@id='retunes']/p"), HasSubstr("re-planned 1 more time"));
  EXPECT_THAT(chart, HasSubstr("re-plan 3"));
}

}  // namespace
}  // namespace sluice::report
