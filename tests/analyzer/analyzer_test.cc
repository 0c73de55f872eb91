// Tests of the analyzer on hand-built traces whose answers are worked out in the comments, of the
// what-if model, of the JSON output, and one end-to-end run of a real pipeline under the tracer.
#include "sluice/analyzer/analysis.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice/common/error.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"
#include "sluice/trace/io.h"
#include "sluice/tracer/tracer.h"

namespace sluice::analyzer {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// One stage of a hand-built trace; its counters grow at constant rates (per second of trace).
struct StageSpec {
  std::string name;
  std::string op;
  int parallelism = 1;
  int buffer_size = 0;
  bool parallelizable = false;
  double out_per_s = 0;    // elements emitted per second
  double busy_per_s = 0;   // busy wall seconds per second (all workers)
  double cpu_per_s = 0;    // CPU seconds per second
  double queue_per_s = 0;  // growth of the output queue, elements per second
  int64_t bytes_per_element = 0;
};

// A whole hand-built trace: one pipeline, `seconds` long, sampled every `interval`.
struct TraceSpec {
  std::vector<StageSpec> stages;
  double outputs_per_s = 0;  // consumer Next() calls per second
  double wait_per_s = 0;     // consumer seconds in Next() per second
  double seconds = 10;
  double interval = 0.1;
  int cores = 4;
  double other_cpu_per_s = 0;   // process CPU outside the stages
  double disk_bytes_per_s = 0;  // -1: the kernel does not say
  double disk_mb_per_s = 0;     // measured bandwidth; 0: none measured
  int64_t memory_bytes = 16'000'000'000;
  int64_t rss_bytes = 1'000'000'000;
  double warmup_seconds = 0;
};

trace::Trace Build(const TraceSpec& spec) {
  trace::Trace t;
  t.host.cores = spec.cores;
  t.host.memory_bytes = spec.memory_bytes;
  if (spec.disk_mb_per_s > 0) {
    t.host.disks.push_back({"8:1 /dev/vda1", "/data", spec.disk_mb_per_s, 1 << 28, 0.3, "test"});
  }
  const auto samples = static_cast<size_t>(std::llround(spec.seconds / spec.interval)) + 1;
  double stage_cpu = 0;
  for (const StageSpec& s : spec.stages) stage_cpu += s.cpu_per_s;
  for (size_t k = 0; k < samples; ++k) {
    const double x = static_cast<double>(k) * spec.interval;
    t.series.t.push_back(x);
    t.series.process_cpu.push_back((stage_cpu + spec.other_cpu_per_s) * x);
    t.series.host_busy.push_back(0);
    t.series.rss_bytes.push_back(spec.rss_bytes);
    t.series.disk_read_bytes.push_back(
        spec.disk_bytes_per_s < 0 ? -1 : std::llround(spec.disk_bytes_per_s * x));
    t.series.gpu_busy.push_back(-1);
  }
  trace::PipelineTrace p;
  p.name = "p";
  for (const StageSpec& s : spec.stages) {
    trace::StageTrace st;
    st.name = s.name;
    st.op = s.op;
    st.parallelizable = s.parallelizable;
    st.parallelism = s.parallelism;
    st.buffer_size = s.buffer_size;
    st.async = s.parallelism > 1 || s.buffer_size > 0;
    st.elements_out = std::llround(s.out_per_s * spec.seconds);
    st.bytes_out = st.elements_out * s.bytes_per_element;
    st.cpu_seconds = s.cpu_per_s * spec.seconds;
    st.busy_seconds = s.busy_per_s * spec.seconds;
    p.stages.push_back(st);
    trace::StageSeries ss;
    for (double x : t.series.t) {
      ss.elements_out.push_back(std::llround(s.out_per_s * x));
      ss.cpu_seconds.push_back(s.cpu_per_s * x);
      ss.busy_seconds.push_back(s.busy_per_s * x);
      ss.blocked_input_seconds.push_back(0);
      ss.blocked_output_seconds.push_back(0);
      ss.queue_size.push_back(std::llround(s.queue_per_s * x));
    }
    p.stage_series.push_back(ss);
  }
  for (double x : t.series.t) {
    p.consumer_next.push_back(std::llround(spec.outputs_per_s * x));
    p.consumer_wait.push_back(spec.wait_per_s * x);
  }
  p.consumer.next_calls = p.consumer_next.back();
  p.consumer.wait_seconds = p.consumer_wait.back();
  t.pipelines.push_back(p);
  t.job.duration = spec.seconds;
  t.tracer.interval = spec.interval;
  t.tracer.samples = static_cast<int64_t>(samples);
  t.tracer.warmup_seconds = spec.warmup_seconds;
  return t;
}

const StageAnalysis& StageNamed(const Analysis& a, const std::string& name) {
  for (const StageAnalysis& s : a.stages) {
    if (s.name == name) return s;
  }
  throw std::runtime_error("no stage " + name);
}

// A relative tolerance for figures worked out by hand (they are exact up to rounding).
constexpr double kRel = 1e-6;
#define EXPECT_REL(actual, expected) EXPECT_NEAR((actual), (expected), std::abs(expected) * kRel)

// A chain: src (inline) -> A (1 worker) -> B (2 workers), 500 outputs/s, 10 s.
//   W_src = 0.05 s/s / 500/s = 0.1 ms, W_A = 0.9 / 500 = 1.8 ms, W_B = 1.2 / 500 = 2.4 ms.
//   src runs inline on A's worker: one server, 1 / (0.1 + 1.8) ms = 526.3/s.
//   B: 2 / 2.4 ms = 833.3/s.  Consumer: (1 - 0.3) s/s / 500/s = 1.4 ms: 714.3/s.
//   CPU: sum D = (0.05 + 0.9 + 1.2) / 500 = 4.3 ms; 4 cores / 4.3 ms = 930.2/s.
//   Predicted: 526.3/s, bottleneck stage 'A' (with 'src'). Verdict: 30% waiting: highly.
TraceSpec Chain() {
  TraceSpec spec;
  spec.stages = {
      {"src", "generate", 1, 0, false, 500, 0.05, 0.05},
      {"A", "burn", 1, 2, true, 500, 0.9, 0.9},
      {"B", "burn", 2, 2, true, 500, 1.2, 1.2},
  };
  spec.outputs_per_s = 500;
  spec.wait_per_s = 0.3;
  spec.cores = 4;
  return spec;
}

TEST(AnalyzeTest, Chain) {
  const Analysis a = Analyze(Build(Chain()));
  EXPECT_EQ(a.pipeline, "p");
  EXPECT_EQ(a.output_noun, "output");
  EXPECT_DOUBLE_EQ(a.window.start, 0);
  EXPECT_NEAR(a.window.seconds, 10, 1e-9);
  EXPECT_EQ(a.window.samples, 101u);
  EXPECT_EQ(a.outputs, 5000);
  EXPECT_REL(a.measured_outputs_per_s, 500);
  for (const StageAnalysis& s : a.stages) EXPECT_REL(s.visit_ratio, 1.0);
  EXPECT_REL(StageNamed(a, "src").wall_demand, 0.1e-3);
  EXPECT_REL(StageNamed(a, "A").wall_demand, 1.8e-3);
  EXPECT_REL(StageNamed(a, "A").cpu_demand, 1.8e-3);
  EXPECT_REL(StageNamed(a, "A").service_seconds, 1.8e-3);
  EXPECT_REL(StageNamed(a, "A").utilization, 0.9);  // 500/s * 1.8 ms
  EXPECT_REL(StageNamed(a, "B").utilization, 0.6);  // 500/s * 2.4 ms / 2
  EXPECT_REL(StageNamed(a, "B").capacity_outputs_per_s, 2 / 2.4e-3);
  EXPECT_REL(StageNamed(a, "A").server_outputs_per_s, 1 / 1.9e-3);
  EXPECT_FALSE(StageNamed(a, "src").async);
  EXPECT_EQ(StageNamed(a, "src").runs_on, "the worker of 'A'");
  EXPECT_EQ(StageNamed(a, "src").run_by, "A");
  EXPECT_THAT(StageNamed(a, "src").shares_thread_with, ElementsAre("A"));
  EXPECT_EQ(StageNamed(a, "B").runs_on, "its 2 workers");

  ASSERT_EQ(a.limits.size(), 4u);
  EXPECT_EQ(a.limits[0].kind, LimitKind::kStage);
  EXPECT_EQ(a.limits[0].stage, "A");
  EXPECT_THAT(a.limits[0].stages, ElementsAre("src", "A"));
  EXPECT_REL(a.limits[0].outputs_per_s, 1 / 1.9e-3);
  EXPECT_EQ(a.limits[1].kind, LimitKind::kConsumer);
  EXPECT_REL(a.limits[1].outputs_per_s, 1 / 1.4e-3);
  EXPECT_EQ(a.limits[2].stage, "B");
  EXPECT_REL(a.limits[2].outputs_per_s, 2 / 2.4e-3);
  EXPECT_EQ(a.limits[3].kind, LimitKind::kCpu);
  EXPECT_REL(a.limits[3].outputs_per_s, 4 / 4.3e-3);
  EXPECT_REL(a.predicted_outputs_per_s, 1 / 1.9e-3);
  EXPECT_EQ(a.Bottleneck().stage, "A");
  EXPECT_THAT(
      a.Bottleneck().why,
      HasSubstr("stage 'A' (burn) runs on 1 worker, which also runs 'src' inline, and needs "
                "1.9 ms of wall time per output (1.8 ms in 'A')"));
  EXPECT_THAT(a.Bottleneck().why, HasSubstr("at most 526 outputs/s"));

  EXPECT_REL(a.input_bound.wait_fraction, 0.3);
  EXPECT_EQ(a.input_bound.verdict, Verdict::kHighly);
  EXPECT_REL(a.consumer_step_seconds, 1.4e-3);
  // 714.3/s * 4.3 ms of CPU per output = 3.07 cores.
  ASSERT_TRUE(a.cores_to_saturate_consumer.has_value());
  EXPECT_REL(*a.cores_to_saturate_consumer, 4.3e-3 / 1.4e-3);
  EXPECT_TRUE(a.confidence.ok) << a.confidence.reason;
  EXPECT_FALSE(a.gpu_idle_fraction.has_value());
}

// src 1000/s -> keep (filter, half) 500/s -> batch (size 10) 50/s -> prefetch 50/s; 10 s.
//   Routing ratios 0.5 and 0.1; traffic equations: lambda = 1000, 500, 50, 50 per s; V = lambda /
//   50 = 20, 10, 1, 1. W per batch: 0.2/50 = 4 ms, 0.4/50 = 8 ms, 0.1/50 = 2 ms, 0.02/50 = 0.4
//   ms. S = W / V: 0.2 ms, 0.8 ms, 2 ms, 0.4 ms. All four run on prefetch's worker: 14.4 ms per
//   batch, 69.4 batches/s, 'keep' the heaviest. Consumer: (1 - 0.4) / 50 = 12 ms: 83.3/s.
TEST(AnalyzeTest, BatchAndFilterRatios) {
  TraceSpec spec;
  spec.stages = {
      {"src", "generate", 1, 0, false, 1000, 0.2, 0.2},
      {"keep", "filter", 1, 0, true, 500, 0.4, 0.4},
      {"batch", "batch", 1, 0, false, 50, 0.1, 0.1},
      {"prefetch", "prefetch", 1, 2, false, 50, 0.02, 0.02},
  };
  spec.outputs_per_s = 50;
  spec.wait_per_s = 0.4;
  const Analysis a = Analyze(Build(spec));
  EXPECT_EQ(a.output_noun, "batch");
  EXPECT_REL(StageNamed(a, "keep").routing_ratio, 0.5);
  EXPECT_REL(StageNamed(a, "batch").routing_ratio, 0.1);
  EXPECT_REL(StageNamed(a, "src").visit_ratio, 20);
  EXPECT_REL(StageNamed(a, "keep").visit_ratio, 10);
  EXPECT_REL(StageNamed(a, "batch").visit_ratio, 1);
  EXPECT_REL(StageNamed(a, "prefetch").visit_ratio, 1);
  EXPECT_REL(StageNamed(a, "src").wall_demand, 4e-3);
  EXPECT_REL(StageNamed(a, "src").service_seconds, 0.2e-3);
  EXPECT_REL(StageNamed(a, "keep").service_seconds, 0.8e-3);
  EXPECT_REL(StageNamed(a, "batch").service_seconds, 2e-3);
  EXPECT_EQ(a.Bottleneck().kind, LimitKind::kStage);
  EXPECT_EQ(a.Bottleneck().stage, "keep");
  EXPECT_THAT(a.Bottleneck().stages, ElementsAre("src", "keep", "batch", "prefetch"));
  EXPECT_REL(a.predicted_outputs_per_s, 1 / 14.4e-3);
  EXPECT_THAT(a.Bottleneck().why,
              HasSubstr("stage 'keep' (filter) runs inline on the worker of 'prefetch', a thread "
                        "it shares with 'src', 'batch' and 'prefetch'; together they need 14.4 ms "
                        "of wall time per batch (8 ms in 'keep')"));
  EXPECT_THAT(a.Bottleneck().why, HasSubstr("at most 69.4 batches/s"));
}

// A flat map (4 lines per file) behind a source whose queue fills during the window.
//   src emits 110/s but its queue grows 10/s: 'lines' pulls 100/s and emits 400/s (ratio 4);
//   batch (40) emits 10/s (ratio 0.025). Traffic equations: lambda = 1100, 4400, 110 per window
//   second-tenths... per window: 1100, 4400, 110; V = 10, 40, 1 (not the transient 11 of
//   n_src / n_0).
TEST(AnalyzeTest, FlatMapAndAFillingQueue) {
  TraceSpec spec;
  spec.stages = {
      {"src", "generate", 1, 200, false, 110, 0.01, 0.01, 10},
      {"lines", "read_lines", 1, 0, true, 400, 0.1, 0.1},
      {"batch", "batch", 1, 0, false, 10, 0.01, 0.01},
  };
  spec.outputs_per_s = 10;
  spec.wait_per_s = 0.5;
  const Analysis a = Analyze(Build(spec));
  EXPECT_REL(StageNamed(a, "lines").routing_ratio, 4);
  EXPECT_REL(StageNamed(a, "batch").routing_ratio, 0.025);
  EXPECT_REL(StageNamed(a, "src").visit_ratio, 10);
  EXPECT_REL(StageNamed(a, "lines").visit_ratio, 40);
  EXPECT_REL(StageNamed(a, "batch").visit_ratio, 1);
}

// A sleep-bound stage: 'io' is busy 0.95 s/s for 100 outputs/s but uses 0.02 CPU s/s.
//   W_io = 9.5 ms, D_io = 0.2 ms: 1 / 9.5 ms = 105.3/s. src (own worker): 0.1 ms: 10000/s.
//   Consumer: (1 - 0.5) / 100 = 5 ms: 200/s. CPU: 2 cores / 0.3 ms = 6667/s.
//   Doubling io's workers: 2 / 9.5 ms = 210.5/s, so the consumer (200/s) becomes the bottleneck.
TraceSpec SleepBound() {
  TraceSpec spec;
  spec.stages = {
      {"src", "generate", 1, 4, false, 100, 0.01, 0.01},
      {"io", "sleep", 1, 4, true, 100, 0.95, 0.02},
  };
  spec.outputs_per_s = 100;
  spec.wait_per_s = 0.5;
  spec.cores = 2;
  return spec;
}

TEST(AnalyzeTest, SleepBoundStage) {
  const Analysis a = Analyze(Build(SleepBound()));
  EXPECT_EQ(a.Bottleneck().kind, LimitKind::kStage);
  EXPECT_EQ(a.Bottleneck().stage, "io");
  EXPECT_REL(a.predicted_outputs_per_s, 1 / 9.5e-3);
  EXPECT_REL(StageNamed(a, "io").cpu_demand, 0.2e-3);
  EXPECT_REL(StageNamed(a, "io").wall_demand, 9.5e-3);
  EXPECT_THAT(a.Bottleneck().why,
              HasSubstr("stage 'io' (sleep) runs on 1 worker and needs 9.5 ms of wall time per "
                        "output, only 200 µs of it CPU"));
  EXPECT_THAT(a.Bottleneck().why, HasSubstr("at most 105 outputs/s"));
  // Limits: io 105.3, consumer 200, CPU 6667, src 10000 (per s).
  ASSERT_EQ(a.limits.size(), 4u);
  EXPECT_EQ(a.limits[1].kind, LimitKind::kConsumer);
  EXPECT_EQ(a.limits[2].kind, LimitKind::kCpu);
  EXPECT_REL(a.limits[2].outputs_per_s, 2 / 0.3e-3);
  EXPECT_EQ(a.limits[3].stage, "src");
}

TEST(WhatIfTest, DoublingTheBottlenecksWorkersMovesTheBottleneck) {
  const Analysis a = Analyze(Build(SleepBound()));
  // The current knobs reproduce the analysis: the single model.
  EXPECT_REL(PredictThroughput(a, CurrentKnobs(a), a.cores), a.predicted_outputs_per_s);
  Knobs knobs = CurrentKnobs(a);
  knobs.stages[1].parallelism = 2;
  const Prediction p = Predict(a, knobs, CurrentResources(a));
  EXPECT_REL(p.outputs_per_s, 200);
  ASSERT_FALSE(p.limits.empty());
  EXPECT_EQ(p.limits[0].kind, LimitKind::kConsumer);
  EXPECT_REL(p.limits[1].outputs_per_s, 2 / 9.5e-3);
  EXPECT_EQ(p.limits[1].stage, "io");
  EXPECT_THAT(p.limits[1].why, HasSubstr("runs on 2 workers"));
  // A faster training step (2 ms): io's 2 workers bound it again.
  Resources faster = CurrentResources(a);
  faster.consumer_step_seconds = 2e-3;
  EXPECT_REL(Predict(a, knobs, faster).outputs_per_s, 2 / 9.5e-3);
}

TEST(WhatIfTest, ChainWithMoreWorkersAndFewerCores) {
  const Analysis a = Analyze(Build(Chain()));
  Knobs knobs = CurrentKnobs(a);
  // A on 2 workers: they also pull src inline, 2 / (0.1 + 1.8) ms = 1052.6/s were there no
  // queue for the lock. Mean-value analysis of the two workers cycling through the lock
  // (L = 0.1 ms) and their own work (Z = 1.8 ms): one worker, R = 0.1 ms, X = 1 / 1.9 ms,
  // Q = 0.1 / 1.9 = 0.05263; two, R = 0.1 (1 + 0.05263) = 0.105263 ms, X = 2 / 1.905263 ms =
  // 1049.7/s. src alone under their input lock 1 / 0.1 ms = 10000/s. The consumer (714.3/s) is
  // the bottleneck now.
  knobs.stages[1].parallelism = 2;
  Prediction p = Predict(a, knobs, CurrentResources(a));
  EXPECT_EQ(p.limits[0].kind, LimitKind::kConsumer);
  EXPECT_REL(p.outputs_per_s, 1 / 1.4e-3);
  bool saw_workers = false, saw_lock = false;
  for (const Limit& l : p.limits) {
    if (l.stage == "A") {
      saw_workers = true;
      EXPECT_REL(l.outputs_per_s, 2 / 1.905263e-3);
      EXPECT_THAT(l.why, HasSubstr("which also run 'src' inline"));
    }
    if (l.stage == "src") {
      saw_lock = true;
      EXPECT_REL(l.outputs_per_s, 1 / 0.1e-3);
      EXPECT_THAT(l.why, HasSubstr("input lock of 'A'"));
    }
  }
  EXPECT_TRUE(saw_workers);
  EXPECT_TRUE(saw_lock);
  // One core: 1 / 4.3 ms = 232.6/s, the CPU binds.
  EXPECT_REL(PredictThroughput(a, knobs, 1), 1 / 4.3e-3);
  // A sequential op cannot take workers: taken as 1, with a note.
  Knobs bad = CurrentKnobs(a);
  bad.stages[0].parallelism = 3;
  p = Predict(a, bad, CurrentResources(a));
  EXPECT_REL(p.outputs_per_s, a.predicted_outputs_per_s);
  ASSERT_EQ(p.notes.size(), 1u);
  EXPECT_THAT(p.notes[0], HasSubstr("'src' (generate) runs sequentially"));
  // A cache after A: src and A cost nothing; B (833.3/s) and the consumer remain.
  Knobs cached = CurrentKnobs(a);
  cached.cache_after = 1;
  EXPECT_REL(Predict(a, cached, CurrentResources(a)).outputs_per_s, 1 / 1.4e-3);
  // Wrong shape: an error naming the pipeline.
  Knobs wrong;
  EXPECT_THROW(Predict(a, wrong, CurrentResources(a)), Error);
}

// Ordered workers waiting for their turn: the chain with B's 2 workers blocked on output 0.4 s
//   per s while its queue has room. Turn wait 0.4 / 500 = 0.8 ms per output: B needs 2.4 + 0.8 =
//   3.2 ms, 2 / 3.2 ms = 625/s (A still binds at 526.3/s). With A on 2 workers (1052.6/s) B
//   binds, unless it runs unordered: then 2 / 2.4 ms = 833.3/s and the consumer (714.3/s) binds.
//   With B's queue full in 51 of the 101 samples, only 50/101 of the wait counts.
TEST(AnalyzeTest, OrderedWorkersWaitingForTheirTurn) {
  trace::Trace t = Build(Chain());
  t.pipelines[0].stages[2].ordered = true;
  auto& b = t.pipelines[0].stage_series[2];
  for (size_t k = 0; k < b.blocked_output_seconds.size(); ++k) {
    b.blocked_output_seconds[k] = 0.4 * t.series.t[k];
  }
  Analysis a = Analyze(t);
  EXPECT_REL(StageNamed(a, "B").turn_wait_demand, 0.8e-3);
  EXPECT_EQ(a.Bottleneck().stage, "A");
  EXPECT_REL(a.limits[1].outputs_per_s, 625);
  EXPECT_EQ(a.limits[1].stage, "B");
  EXPECT_THAT(a.limits[1].why, HasSubstr("800 µs of it waiting for their turn to emit in order"));
  Knobs knobs = CurrentKnobs(a);
  knobs.stages[1].parallelism = 2;
  Prediction p = Predict(a, knobs, CurrentResources(a));
  EXPECT_EQ(p.limits[0].stage, "B");
  EXPECT_REL(p.outputs_per_s, 625);
  knobs.stages[2].ordered = false;
  p = Predict(a, knobs, CurrentResources(a));
  EXPECT_EQ(p.limits[0].kind, LimitKind::kConsumer);
  EXPECT_REL(p.outputs_per_s, 1 / 1.4e-3);
  // More ordered workers wait longer for their turn: the wait grows as (1 - 1/p), scaled to the
  // measured one (kappa = 0.8 / (2.4 (1 - 1/2)) = 2/3). On 4 workers: 2/3 2.4 (3/4) = 1.2 ms,
  // so B needs 3.6 ms: 4 / 3.6 ms = 1111.1/s.
  knobs.stages[2].ordered = true;
  knobs.stages[2].parallelism = 4;
  p = Predict(a, knobs, CurrentResources(a));
  bool saw_b = false;
  for (const Limit& l : p.limits) {
    if (l.stage != "B") continue;
    saw_b = true;
    EXPECT_REL(l.outputs_per_s, 4 / 3.6e-3);
    EXPECT_THAT(l.why, HasSubstr("1.2 ms of it waiting for their turn"));
  }
  EXPECT_TRUE(saw_b);

  for (size_t k = 50; k < b.queue_size.size(); ++k) b.queue_size[k] = 2;  // full (buffer 2)
  a = Analyze(t);
  EXPECT_REL(StageNamed(a, "B").turn_wait_demand, 0.8e-3 * 50 / 101);
}

// Inline stages add up: src, dec and aug all run inline on the consumer's thread.
//   W = 0.1/100 + 0.3/100 + 0.2/100 = 1 + 3 + 2 = 6 ms; step = (1 - 0.62) / 100 = 3.8 ms.
//   The consumer's thread: 1 / (6 + 3.8) ms = 102.04/s, named 'dec' (the heaviest; the stages'
//   6 ms outweigh the step's 3.8). Input-bound by construction: every stage runs in Next().
//   What-if dec on 2 workers: they run src inline, 2 / 4 ms = 500/s, src's lock 1000/s; the
//   consumer's thread keeps aug: 2 + 3.8 = 5.8 ms, 172.4/s, now mostly the training step.
TEST(AnalyzeTest, InlineStagesOnTheConsumerThreadAddUp) {
  TraceSpec spec;
  spec.stages = {
      {"src", "generate", 1, 0, false, 100, 0.1, 0.1},
      {"dec", "burn", 1, 0, true, 100, 0.3, 0.3},
      {"aug", "burn", 1, 0, true, 100, 0.2, 0.2},
  };
  spec.outputs_per_s = 100;
  spec.wait_per_s = 0.62;
  const Analysis a = Analyze(Build(spec));
  EXPECT_EQ(a.Bottleneck().kind, LimitKind::kStage);
  EXPECT_EQ(a.Bottleneck().stage, "dec");
  EXPECT_THAT(a.Bottleneck().stages, ElementsAre("src", "dec", "aug"));
  EXPECT_REL(a.predicted_outputs_per_s, 1 / 9.8e-3);
  EXPECT_THAT(a.Bottleneck().why,
              HasSubstr("stage 'dec' (burn) runs inline on the consumer's thread with 'src' and "
                        "'aug'; together they need 6 ms of wall time per output (3 ms in 'dec')"));
  EXPECT_THAT(a.Bottleneck().why, HasSubstr("plus 3.8 ms in the training step"));
  EXPECT_EQ(StageNamed(a, "aug").runs_on, "the consumer's thread");
  EXPECT_EQ(a.input_bound.verdict, Verdict::kHighly);
  EXPECT_THAT(a.input_bound.why, HasSubstr("input-bound by construction"));

  Knobs knobs = CurrentKnobs(a);
  knobs.stages[1] = {2, 4};
  const Prediction p = Predict(a, knobs, CurrentResources(a));
  EXPECT_REL(p.outputs_per_s, 1 / 5.8e-3);
  EXPECT_EQ(p.limits[0].kind, LimitKind::kConsumer);
  EXPECT_THAT(p.limits[0].stages, ElementsAre("aug"));
  EXPECT_THAT(p.limits[0].why, HasSubstr("running the inline stage 'aug'"));
}

// Disk-bound: 100 outputs/s reading 50 MB/s from a disk measured at 52 MB/s.
//   500 kB per output: 52e6 / 5e5 = 104/s. read: 4 / (0.05 + 8) ms = 496.9/s; decode 4 / 12 ms =
//   333.3/s; consumer (1 - 0.3) / 100 = 7 ms: 142.9/s; CPU 8 / 13.05 ms = 613/s.
TraceSpec DiskBound() {
  TraceSpec spec;
  spec.stages = {
      {"files", "list_files", 1, 0, false, 100, 0.005, 0.005},
      {"read", "read_file", 4, 8, true, 100, 0.8, 0.1, 0, 500'000},
      {"decode", "decode_jpeg", 4, 8, true, 100, 1.2, 1.2},
  };
  spec.outputs_per_s = 100;
  spec.wait_per_s = 0.3;
  spec.cores = 8;
  spec.disk_bytes_per_s = 50e6;
  spec.disk_mb_per_s = 52;
  return spec;
}

TEST(AnalyzeTest, DiskBoundSource) {
  const Analysis a = Analyze(Build(DiskBound()));
  EXPECT_EQ(a.Bottleneck().kind, LimitKind::kDisk);
  EXPECT_EQ(a.Bottleneck().stage, "");
  EXPECT_REL(a.predicted_outputs_per_s, 104);
  EXPECT_REL(a.disk_bytes_per_output, 500'000);
  EXPECT_THAT(a.disk_bytes_source, HasSubstr("kernel"));
  EXPECT_THAT(a.Bottleneck().why, HasSubstr("each output reads 500 kB from storage and 8:1 "
                                            "/dev/vda1 reads 52 MB/s: at most 104 outputs/s"));
  EXPECT_EQ(StageNamed(a, "files").runs_on,
            "the 4 workers of 'read', one at a time under their input lock");
}

TEST(AnalyzeTest, DiskBoundFromTheReadStageWhenTheKernelCountedNothing) {
  for (double kernel : {0.0, -1.0}) {
    TraceSpec spec = DiskBound();
    spec.disk_bytes_per_s = kernel;
    const Analysis a = Analyze(Build(spec));
    EXPECT_EQ(a.Bottleneck().kind, LimitKind::kDisk);
    EXPECT_REL(a.predicted_outputs_per_s, 104);
    EXPECT_THAT(a.disk_bytes_source, HasSubstr("stage 'read' (read_file)"));
  }
}

// Consumer-bound: 100 outputs/s, 2% of the time in Next(): step = 0.98 / 100 = 9.8 ms,
//   102.04/s. work: 2 / 4 ms = 500/s. Not input-bound. CPU per output: 0.1 + 4 ms = 4.1 ms, plus
//   0.05 s/s elsewhere in the process = 0.5 ms: 4.6 ms. Cores to keep up: 102.04 * 4.6 ms = 0.469.
TEST(AnalyzeTest, ConsumerBoundJob) {
  TraceSpec spec;
  spec.stages = {
      {"src", "generate", 1, 0, false, 100, 0.01, 0.01},
      {"work", "burn", 2, 4, true, 100, 0.4, 0.4},
  };
  spec.outputs_per_s = 100;
  spec.wait_per_s = 0.02;
  spec.other_cpu_per_s = 0.05;
  const Analysis a = Analyze(Build(spec));
  EXPECT_EQ(a.Bottleneck().kind, LimitKind::kConsumer);
  EXPECT_EQ(a.Bottleneck().stage, "");
  EXPECT_REL(a.predicted_outputs_per_s, 1 / 9.8e-3);
  EXPECT_THAT(a.Bottleneck().why, HasSubstr("the consumer spends 9.8 ms per output between "
                                            "Next() calls (its training step)"));
  EXPECT_EQ(a.input_bound.verdict, Verdict::kNot);
  EXPECT_REL(a.input_bound.wait_fraction, 0.02);
  EXPECT_REL(a.other_cpu_demand, 0.5e-3);
  ASSERT_TRUE(a.cores_to_saturate_consumer.has_value());
  EXPECT_REL(*a.cores_to_saturate_consumer, 4.6e-3 / 9.8e-3);
  spec.wait_per_s = 0.1;  // 10%: moderately
  EXPECT_EQ(Analyze(Build(spec)).input_bound.verdict, Verdict::kModerately);
}

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

// End to end: a real pipeline with known costs, traced in-process for about 2 s.
//   heavy: 800 µs of CPU per element on 1 worker, batches of 4: 3.2 ms per batch, ~312/s.
//   wait: 200 µs of sleep (more on a loaded machine) on 1 worker: ~1 ms per batch, ~1000/s.
//   CPU: ~3.3 ms per batch on 2 or more cores: >= 600/s. So 'heavy' limits it, and the model's
//   bound at these knobs must match the measured rate (15% here to stay robust under sanitizers
//   on 2 cores; docs/model.md reports the figures measured with sluice profile).
TEST(AnalyzeEndToEndTest, NamesTheBottleneckAndPredictsTheMeasuredRate) {
  const fs::path dir =
      fs::temp_directory_path() / fmt::format("sluice_analyzer_test_{}", ::getpid());
  fs::create_directories(dir);
  auto doc = config::Document::Parse(R"({"name": "e2e", "stages": [
      {"name": "src", "op": "generate", "args": {"count": -1, "bytes": 64}},
      {"name": "heavy", "op": "burn", "args": {"cpu_us": 800}, "parallelism": 1, "buffer_size": 4},
      {"name": "wait", "op": "sleep", "args": {"us": 200}, "parallelism": 1, "buffer_size": 4},
      {"name": "batch", "op": "batch", "args": {"size": 4}},
      {"name": "prefetch", "op": "prefetch", "buffer_size": 2}]})",
                                     dir / "e2e.json");
  tracer::TracerOptions topt;
  topt.trace_path = dir / "trace.json";
  topt.interval = 0.05;
  topt.measure_disks = false;
  trace::Trace t;
  {
    tracer::Tracer tracer(topt);
    auto p = pipeline::Pipeline::Create(doc);
    pipeline::Element e;
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(2000);
    while (std::chrono::steady_clock::now() < end && p->Next(&e)) {
    }
    p->Stop();
    p.reset();
    tracer.Stop("completed");
    t = trace::ReadTrace(topt.trace_path);
  }
  fs::remove_all(dir);
  const Analysis a = Analyze(t);
  std::cout << "[ e2e ] measured " << a.measured_outputs_per_s << " batches/s, predicted "
            << a.predicted_outputs_per_s << "; bottleneck " << a.Bottleneck().why << "\n";
  EXPECT_EQ(a.Bottleneck().kind, LimitKind::kStage);
  EXPECT_EQ(a.Bottleneck().stage, "heavy");
  EXPECT_NEAR(a.predicted_outputs_per_s / a.measured_outputs_per_s, 1.0, 0.15);
  EXPECT_EQ(a.input_bound.verdict, Verdict::kHighly);  // nothing else happens between calls
}

}  // namespace
}  // namespace sluice::analyzer
