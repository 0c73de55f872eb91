// Tests of the analyzer's checks and options on hand-built traces: unstable and short windows,
// warm-up, memory, the GPU, the cores override, choosing a pipeline, errors, the JSON output and
// a one-hour trace.
#include "sluice/analyzer/analysis.h"

#include <chrono>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice/common/error.h"
#include "tests/analyzer/analyzer_test_util.h"

namespace sluice::analyzer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace test_util;  // NOLINT(google-build-using-namespace): the hand-built traces

// Unstable: 1 s at 20 outputs/s, 1 s at 80/s, alternating for 10 s (2 and 8 per 0.1 s sample).
//   5 outputs per sample: blocks of 2 samples (>= 10 outputs), rates 20 or 80 /s; 50 blocks,
//   mean 50, sample sd 30 * sqrt(50/49) = 30.30: CV 0.606 > 0.25. Blocks for a 5% standard
//   error: ceil((0.606/0.05)^2) = 147, 29.4 s: 19.4 s more.
TEST(AnalyzeTest, UnstableWindowIsFlagged) {
  TraceSpec spec = Chain();
  trace::Trace t = Build(spec);
  auto& next = t.pipelines[0].consumer_next;
  int64_t count = 0;
  for (size_t k = 0; k < next.size(); ++k) {
    next[k] = count;
    count += (k / 10) % 2 == 0 ? 2 : 8;
  }
  const Analysis a = Analyze(t);
  EXPECT_FALSE(a.confidence.ok);
  EXPECT_THAT(a.confidence.reason, HasSubstr("unsteady"));
  EXPECT_NEAR(a.confidence.rate_cv, 30 * std::sqrt(50.0 / 49) / 50, 1e-3);
  EXPECT_NEAR(a.confidence.block_seconds, 0.2, 1e-9);
  EXPECT_NEAR(a.confidence.more_seconds, 19.4, 0.11);
  // The steady chain is not flagged.
  EXPECT_TRUE(Analyze(Build(spec)).confidence.ok);
}

TEST(AnalyzeTest, ShortWindowIsFlagged) {
  TraceSpec spec = Chain();
  spec.seconds = 2;  // 21 samples, 2 s: 1 s short of the 3 s needed
  const Analysis a = Analyze(Build(spec));
  EXPECT_FALSE(a.confidence.ok);
  EXPECT_THAT(a.confidence.reason, HasSubstr("short"));
  EXPECT_NEAR(a.confidence.more_seconds, 1.0, 1e-9);
}

TEST(AnalyzeTest, WarmupIsCutOff) {
  TraceSpec spec = Chain();
  spec.warmup_seconds = 2;
  trace::Trace t = Build(spec);
  // Nothing happened in the first 2 s: the counters start there.
  auto shift = [](auto& v, size_t by) {
    for (size_t k = v.size(); k-- > 0;) v[k] = k < by ? v[0] : v[k - by];
  };
  auto& p = t.pipelines[0];
  shift(p.consumer_next, 20);
  shift(p.consumer_wait, 20);
  for (auto& s : p.stage_series) {
    shift(s.elements_out, 20);
    shift(s.busy_seconds, 20);
    shift(s.cpu_seconds, 20);
  }
  const Analysis a = Analyze(t);
  EXPECT_NEAR(a.window.start, 2, 1e-9);
  EXPECT_NEAR(a.window.seconds, 8, 1e-9);
  EXPECT_REL(a.measured_outputs_per_s, 500);
  EXPECT_REL(a.predicted_outputs_per_s, 1 / 1.9e-3);
}

// The consumer's own clock (consumer_between) at 1.4 ms a step, as Chain() has it, except that
// its first step takes 0.5 s (a model's lazy set-up): one output by 0.1 s, none more until
// 0.6 s, then 500/s. To the first sample with two outputs (0.7 s) the mean step is far above
// 1.4 ms: the window starts there, and its step is the steady one.
TEST(AnalyzeTest, AColdFirstStepIsLeftOutOfTheWindow) {
  TraceSpec spec = Chain();
  trace::Trace t = Build(spec);
  auto& p = t.pipelines[0];
  p.consumer_between.assign(p.consumer_next.size(), 0);
  for (size_t k = 0; k < p.consumer_next.size(); ++k) {
    const double x = t.series.t[k];
    p.consumer_next[k] = x < 0.05 ? 0 : x < 0.65 ? 1 : std::llround(500 * (x - 0.6));
    p.consumer_between[k] =
        x < 0.65 ? 0 : 0.5 + 1.4e-3 * static_cast<double>(p.consumer_next[k] - 1);
  }
  const Analysis a = Analyze(t);
  EXPECT_NEAR(a.window.start, 0.7, 1e-9);
  EXPECT_THAT(a.window.method, HasSubstr("after the consumer's first step"));
  EXPECT_NEAR(a.consumer_step_seconds, 1.4e-3, 1e-9);
  // The same steps without the cold one: the window is the whole trace.
  for (size_t k = 0; k < p.consumer_next.size(); ++k) {
    p.consumer_next[k] = std::llround(500 * t.series.t[k]);
    p.consumer_between[k] =
        1.4e-3 * static_cast<double>(std::max<int64_t>(0, p.consumer_next[k] - 1));
  }
  const Analysis b = Analyze(t);
  EXPECT_NEAR(b.window.start, 0, 1e-9);
  EXPECT_THAT(b.window.method, Not(HasSubstr("first step")));
  EXPECT_NEAR(b.consumer_step_seconds, 1.4e-3, 1e-6);
}

TEST(AnalyzeTest, MemoryNearlyFull) {
  TraceSpec spec = Chain();
  spec.memory_bytes = 10'000'000'000;
  spec.rss_bytes = 9'500'000'000;  // 95% >= 90%: no faster than measured
  const Analysis a = Analyze(Build(spec));
  EXPECT_EQ(a.Bottleneck().kind, LimitKind::kMemory);
  EXPECT_REL(a.predicted_outputs_per_s, 500);
  EXPECT_THAT(a.Bottleneck().why, HasSubstr("95%"));
  // Elements of 100 MB in a 20-deep queue on B would not fit: 0 outputs/s.
  trace::Trace t = Build(spec);
  for (auto& st : t.pipelines[0].stages) st.bytes_out = st.elements_out * 100'000'000;
  const Analysis b = Analyze(t);
  Knobs knobs = CurrentKnobs(b);
  knobs.stages[2].buffer_size = 20;
  const Prediction p = Predict(b, knobs, CurrentResources(b));
  EXPECT_EQ(p.outputs_per_s, 0);
  EXPECT_EQ(p.limits[0].kind, LimitKind::kMemory);
  EXPECT_THAT(p.limits[0].why, HasSubstr("would swap or be killed"));
}

TEST(AnalyzeTest, GpuIdleFraction) {
  trace::Trace t = Build(Chain());
  t.gpu.status = "ok";
  for (size_t k = 1; k < t.series.gpu_busy.size(); ++k) t.series.gpu_busy[k] = 0.25;
  const Analysis a = Analyze(t);
  ASSERT_TRUE(a.gpu_idle_fraction.has_value());
  EXPECT_NEAR(*a.gpu_idle_fraction, 0.75, 1e-9);
}

TEST(AnalyzeTest, CoresOverride) {
  AnalyzeOptions opt;
  opt.cores = 1;
  const Analysis a = Analyze(Build(Chain()), opt);
  EXPECT_EQ(a.Bottleneck().kind, LimitKind::kCpu);  // 1 / 4.3 ms = 232.6/s
  EXPECT_REL(a.predicted_outputs_per_s, 1 / 4.3e-3);
  EXPECT_THAT(a.Bottleneck().why, HasSubstr("has 1 core: at most 233 outputs/s"));
}

TEST(AnalyzeTest, ChoosesAPipelineByNameOrTheBusiest) {
  trace::Trace t = Build(Chain());
  trace::PipelineTrace quiet = t.pipelines[0];
  quiet.name = "quiet";
  quiet.consumer.next_calls = 1;
  t.pipelines.insert(t.pipelines.begin(), quiet);
  t.pipelines[1].name = "busy";
  EXPECT_EQ(Analyze(t).pipeline, "busy");
  AnalyzeOptions opt;
  opt.pipeline = "quiet";
  EXPECT_EQ(Analyze(t, opt).pipeline, "quiet");
  opt.pipeline = "nope";
  opt.origin = "t.json";
  try {
    Analyze(t, opt);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "t.json: pipelines: no pipeline named 'nope' (the trace has 'quiet' and 'busy')");
  }
}

TEST(AnalyzeTest, ErrorsNameTheFieldAtFault) {
  AnalyzeOptions opt;
  opt.origin = "t.json";
  trace::Trace empty;
  EXPECT_THAT([&] { Analyze(empty, opt); },
              ::testing::ThrowsMessage<Error>(HasSubstr("t.json: pipelines: the trace holds no")));
  trace::Trace idle = Build(Chain());
  for (auto& v : idle.pipelines[0].consumer_next) v = 0;
  EXPECT_THAT([&] { Analyze(idle, opt); },
              ::testing::ThrowsMessage<Error>(
                  HasSubstr("t.json: pipelines[0].consumer: no output reached the consumer")));
  trace::Trace ragged = Build(Chain());
  ragged.pipelines[0].stage_series[1].busy_seconds.pop_back();
  EXPECT_THAT([&] { Analyze(ragged, opt); },
              ::testing::ThrowsMessage<Error>(HasSubstr(
                  "t.json: pipelines[0].series.stages[1].busy_seconds: has 100 values, expected "
                  "101")));
}

TEST(AnalyzeTest, JsonHasTheDocumentedFields) {
  const Analysis a = Analyze(Build(Chain()));
  const nlohmann::json j = nlohmann::json::parse(ToJson(a));
  EXPECT_NEAR(j.at("measured_outputs_per_s").get<double>(), 500, 1e-6);
  EXPECT_NEAR(j.at("predicted_outputs_per_s").get<double>(), 1 / 1.9e-3, 1e-6);
  EXPECT_EQ(j.at("bottleneck").at("kind"), "stage");
  EXPECT_EQ(j.at("bottleneck").at("stage"), "A");
  EXPECT_THAT(j.at("bottleneck").at("why").get<std::string>(), HasSubstr("at most 526"));
  ASSERT_EQ(j.at("limits").size(), 4u);
  double previous = 0;
  for (const auto& l : j.at("limits")) {
    EXPECT_TRUE(l.contains("kind") && l.contains("stage") && l.contains("outputs_per_s"));
    EXPECT_GE(l.at("outputs_per_s").get<double>(), previous);
    previous = l.at("outputs_per_s").get<double>();
  }
  EXPECT_TRUE(j.at("limits")[1].at("stage").is_null());  // the consumer
  EXPECT_NEAR(j.at("input_bound").at("wait_fraction").get<double>(), 0.3, 1e-9);
  EXPECT_EQ(j.at("input_bound").at("verdict"), "highly");
  ASSERT_EQ(j.at("stages").size(), 3u);
  EXPECT_EQ(j.at("stages")[1].at("name"), "A");
  EXPECT_NEAR(j.at("stages")[1].at("wall_demand_seconds").get<double>(), 1.8e-3, 1e-12);
  EXPECT_NEAR(j.at("stages")[1].at("visit_ratio").get<double>(), 1, 1e-12);
  EXPECT_EQ(j.at("confidence").at("ok"), true);
  EXPECT_TRUE(j.at("gpu").at("idle_fraction").is_null());
}

// A one-hour trace sampled every 100 ms (36,000 samples), 10 stages: the analysis must take well
// under a second. Behaviour only: the time is printed, not asserted.
TEST(AnalyzeTest, OneHourTrace) {
  TraceSpec spec;
  for (int s = 0; s < 10; ++s) {
    const bool async = s % 2 == 1;
    spec.stages.push_back({fmt::format("stage{}", s), s == 0 ? "generate" : "burn", async ? 4 : 1,
                           async ? 8 : 0, s > 0, 1000, 0.05 * (s + 1), 0.04 * (s + 1)});
  }
  spec.outputs_per_s = 1000;
  spec.wait_per_s = 0.1;
  spec.seconds = 3600;
  const trace::Trace t = Build(spec);
  ASSERT_EQ(t.series.t.size(), 36'001u);
  const auto t0 = std::chrono::steady_clock::now();
  const Analysis a = Analyze(t);
  const auto t1 = std::chrono::steady_clock::now();
  std::cout << "[ timing ] Analyze of a one-hour trace (36,001 samples, 10 stages): "
            << std::chrono::duration<double, std::milli>(t1 - t0).count() << " ms\n";
  EXPECT_EQ(a.outputs, 3'600'000);
  EXPECT_TRUE(a.confidence.ok);
}

}  // namespace
}  // namespace sluice::analyzer
