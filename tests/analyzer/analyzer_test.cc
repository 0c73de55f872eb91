// Tests of the analyzer on hand-built traces whose answers are worked out in the comments: the
// bound of each stage, batch/filter/flat-map ratios, ordered workers, inline stages, disk- and
// consumer-bound jobs, and the what-if model. (The end-to-end run of a real pipeline under the
// tracer is in tests/integration.)
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
using namespace test_util;  // NOLINT(google-build-using-namespace): the hand-built traces

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

}  // namespace
}  // namespace sluice::analyzer
