// Tests of the tuner on hand-built analyses whose solutions are worked out in the comments: the
// MILP's workers, cache and budgets, the plan's agreement with the analyzer, the config rewrite,
// the JSON output and memory sizes.
#include "sluice/tuner/tuner.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice/common/error.h"
#include "sluice/config/document.h"
#include "tests/tuner/tuner_fixture.h"

namespace sluice::tuner {
namespace {

using test::Stage;
using test::TunerTest;

using ::testing::HasSubstr;

// 4 cores; decode needs 10 ms per batch, everything else 0.2 ms. CPU bound: 4 / 10.2 ms = 392
// batches/s; decode then needs 392 x 10 ms = 3.92 workers: 4. The source stays inline under
// decode's input lock (392 x 0.1 ms = 4 % of the lock), batch inline on prefetch's worker. The
// consumer starves, and its 0.5 ms step (2000/s) is worth overlapping: a prefetch of 2 or more.
TEST_F(TunerTest, HeavyParallelStageGetsWorkersUpToTheCpuBound) {
  Build({{.name = "src", .op = "generate", .wall = 0.0001},
         {.name = "decode", .op = "decode_jpeg", .parallelizable = true, .wall = 0.010},
         {.name = "batch", .op = "batch", .wall = 0.0001},
         {.name = "prefetch", .op = "prefetch", .wall = 0, .async = true, .buffer_size = 1}},
        0.0005);
  const Plan plan = Tune(analysis_, pipeline_);
  const size_t decode = Index("decode");
  EXPECT_EQ(plan.knobs.stages[decode].parallelism, 4);
  EXPECT_GE(plan.knobs.stages[decode].buffer_size, 0);
  EXPECT_EQ(plan.knobs.stages[Index("src")].parallelism, 1);
  EXPECT_EQ(plan.knobs.stages[Index("src")].buffer_size, 0);
  EXPECT_NEAR(plan.milp_outputs_per_s, 4 / 0.0102, 0.5);
  EXPECT_NEAR(plan.predicted_outputs_per_s, 4 / 0.0102, 0.5);
  EXPECT_EQ(plan.threads, 5);  // 4 decode workers and prefetch's one
  EXPECT_GT(plan.speedup, 3.5);
  ExpectPredictedByAnalyzer(plan);
  bool explained = false;
  for (const Change& c : plan.changes) {
    if (c.stage == "decode" && c.knob == "parallelism") {
      EXPECT_EQ(c.from, 1);
      EXPECT_EQ(c.to, 4);
      EXPECT_THAT(c.why, HasSubstr("10.1 ms of wall time per batch"));
      explained = true;
    }
  }
  EXPECT_TRUE(explained);
  // The last stage of an input-bound job keeps a prefetch of at least 2.
  EXPECT_GE(plan.knobs.stages[Index("prefetch")].buffer_size, 2);
}

// A heavy sequential op (10 ms, not parallelizable) is never given workers, however many cores:
// at best it runs alone on one thread, 100 batches/s.
TEST_F(TunerTest, SequentialOpIsNeverGivenWorkers) {
  Build({{.name = "src", .op = "generate", .wall = 0.0001},
         {.name = "window", .op = "shuffle_window", .wall = 0.010},
         {.name = "aug", .op = "augment", .parallelizable = true, .wall = 0.004},
         {.name = "prefetch", .op = "prefetch", .wall = 0, .async = true, .buffer_size = 1}},
        0, analyzer::Verdict::kHighly, 16);
  const Plan plan = Tune(analysis_, pipeline_);
  EXPECT_EQ(plan.knobs.stages[Index("window")].parallelism, 1);
  for (const Change& c : plan.changes) {
    EXPECT_FALSE(c.stage == "window" && c.knob == "parallelism") << c.why;
  }
  // It gets a thread of its own (a queue) so 'aug' can run on workers beside it: 100/s.
  EXPECT_NEAR(plan.predicted_outputs_per_s, 100, 1);
  EXPECT_GE(plan.knobs.stages[Index("aug")].parallelism, 1);
  ExpectPredictedByAnalyzer(plan);
}

// The consumer needs 20 ms per batch (50/s); decode on its one worker already does 100/s. The
// second solve keeps the traced threads: no change adds a worker.
TEST_F(TunerTest, ConsumerBoundJobGetsNoExtraThreads) {
  Build({{.name = "src", .op = "generate", .wall = 0.0001},
         {.name = "decode",
          .op = "decode_jpeg",
          .parallelizable = true,
          .wall = 0.010,
          .async = true,
          .buffer_size = 2},
         {.name = "batch", .op = "batch", .wall = 0.0001},
         {.name = "prefetch", .op = "prefetch", .wall = 0, .async = true, .buffer_size = 2}},
        0.020, analyzer::Verdict::kNot, 8);
  const Plan plan = Tune(analysis_, pipeline_);
  EXPECT_NEAR(plan.predicted_outputs_per_s, 50, 0.1);
  EXPECT_EQ(plan.threads, 2);
  for (const Change& c : plan.changes) {
    EXPECT_FALSE(c.knob == "parallelism" && c.to > c.from) << c.why;
  }
  EXPECT_FALSE(plan.cores_needed_for_consumer.has_value());
  ExpectPredictedByAnalyzer(plan);
}

// The random crop is the costly stage; everything up to it would be worth caching, but its
// output changes every epoch, so only a cache above it could be chosen (and would be tiny).
TEST_F(TunerTest, CacheBelowARandomOpIsNeverChosen) {
  for (const bool inspected : {false, true}) {
    Build({{.name = "src", .op = "read_file", .wall = 0.0002},
           {.name = "crop",
            .op = "random_crop",
            .parallelizable = true,
            .wall = 0.010,
            .deterministic = inspected,
            .inspected = inspected ? "non-deterministic" : ""},
           {.name = "norm", .op = "normalize", .parallelizable = true, .wall = 0.001},
           {.name = "prefetch", .op = "prefetch", .wall = 0, .async = true, .buffer_size = 1}},
          0, analyzer::Verdict::kHighly, 2);
    TuneOptions options;
    options.epochs = 10;
    const Plan plan = Tune(analysis_, pipeline_, options);
    if (plan.knobs.cache_after) {
      EXPECT_LT(*plan.knobs.cache_after, Index("crop"));
    }
    ExpectPredictedByAnalyzer(plan);
  }
}

// src, a deterministic decode (10 ms of CPU per batch), a random crop, batch and prefetch; with
// `cached`, a cache stage after decode, as a config tuned offline has.
std::vector<Stage> DecodeStages(bool cached) {
  std::vector<Stage> stages = {{.name = "src", .op = "read_file", .wall = 0.0002, .bytes = 50'000},
                               {.name = "decode",
                                .op = "decode_jpeg",
                                .parallelizable = true,
                                .wall = 0.010,
                                .bytes = 150'000},
                               {.name = "crop",
                                .op = "random_crop",
                                .parallelizable = true,
                                .wall = 0.001,
                                .bytes = 150'000,
                                .deterministic = false},
                               {.name = "batch",
                                .op = "batch",
                                .wall = 0.0002,
                                .bytes = 4'800'000,
                                .elements = 31,
                                .visit = 1},
                               {.name = "prefetch",
                                .op = "prefetch",
                                .wall = 0,
                                .bytes = 4'800'000,
                                .async = true,
                                .buffer_size = 1,
                                .elements = 31}};
  if (cached) {
    stages.insert(stages.begin() + 2,
                  Stage{.name = "cache", .op = "cache", .wall = 0.00001, .bytes = 150'000});
  }
  return stages;
}

// Decode (deterministic, 10 ms of CPU per batch) on 2 cores: without a cache the CPU allows
// 2 / 11.4 ms = 175 batches/s; a cache after decode leaves 1.2 ms of CPU per batch (1667/s).
// One epoch of decode's output is 1000 elements x 150 kB = 150 MB.
TEST_F(TunerTest, CacheAfterADeterministicDecodeIsChosenWhenItFits) {
  auto build = [&] { Build(DecodeStages(false), 0, analyzer::Verdict::kHighly, 2); };
  build();
  TuneOptions options;
  options.epochs = 5;
  options.memory_bytes = 1'000'000'000;
  Plan plan = Tune(analysis_, pipeline_, options);
  ASSERT_TRUE(plan.knobs.cache_after.has_value());
  EXPECT_EQ(*plan.knobs.cache_after, Index("decode"));
  EXPECT_GT(plan.predicted_outputs_per_s, 1000);
  EXPECT_LE(MemoryOf(plan), 1e9);
  ExpectPredictedByAnalyzer(plan);
  bool explained = false;
  for (const Change& c : plan.changes) {
    if (c.knob == kKnobCache) {
      EXPECT_EQ(c.stage, "decode");
      EXPECT_THAT(c.why, HasSubstr("150 MB"));
      explained = true;
    }
  }
  EXPECT_TRUE(explained);

  // 100 MB: the 150 MB cache after decode does not fit; one after the source (1000 x 50 kB =
  // 50 MB) does, and saves its 0.2 ms: 2 / 11.2 ms = 179 batches/s.
  options.memory_bytes = 100'000'000;
  plan = Tune(analysis_, pipeline_, options);
  ASSERT_TRUE(plan.knobs.cache_after.has_value());
  EXPECT_EQ(*plan.knobs.cache_after, Index("src"));
  EXPECT_NEAR(plan.predicted_outputs_per_s, 2 / 0.0112, 0.5);
  EXPECT_LE(MemoryOf(plan), 1e8);
  ExpectPredictedByAnalyzer(plan);

  // One epoch: a cache never pays.
  options.memory_bytes = 1'000'000'000;
  options.epochs = 1;
  plan = Tune(analysis_, pipeline_, options);
  EXPECT_FALSE(plan.knobs.cache_after.has_value());
}

// Within the first epoch, the epoch's size comes from the pipeline's ops (its known count of
// outputs per epoch), each stage's scaled from its count so far: 31 batches of the 62 an epoch
// makes put decode's epoch at 2000 elements x 150 kB = 300 MB.
TEST_F(TunerTest, WithinTheFirstEpochACacheIsSizedFromTheKnownEpochLength) {
  Build(DecodeStages(false), 0, analyzer::Verdict::kHighly, 2);
  pipeline_.epochs_completed = 0;
  TuneOptions options;
  options.epochs = 5;
  options.memory_bytes = 1'000'000'000;
  Plan plan = Tune(analysis_, pipeline_, options);
  EXPECT_FALSE(plan.knobs.cache_after.has_value()) << "an epoch's size is unknown";
  EXPECT_TRUE(std::any_of(plan.notes.begin(), plan.notes.end(), [](const std::string& n) {
    return n.find("no epoch completed") != std::string::npos;
  }));
  options.epoch_outputs = 62;
  plan = Tune(analysis_, pipeline_, options);
  ASSERT_TRUE(plan.knobs.cache_after.has_value());
  EXPECT_EQ(*plan.knobs.cache_after, Index("decode"));
  bool sized = false;
  for (const Change& c : plan.changes) {
    if (c.knob == kKnobCache) sized = c.why.find("300 MB") != std::string::npos;
  }
  EXPECT_TRUE(sized);
  options.memory_bytes = 250'000'000;  // 300 MB no longer fits; the source's 100 MB does
  plan = Tune(analysis_, pipeline_, options);
  ASSERT_TRUE(plan.knobs.cache_after.has_value());
  EXPECT_EQ(*plan.knobs.cache_after, Index("src"));
}

// The same pipeline with a cache after decode already in it (as a config tuned offline has):
// no second cache is offered at or above it, which would save nothing (the stages above a
// cache no longer run once it replays). Before, the plan put one after 'cache' itself.
TEST_F(TunerTest, NoCacheIsOfferedAtOrAboveAnExistingOne) {
  Build(DecodeStages(true), 0, analyzer::Verdict::kHighly, 2);
  TuneOptions options;
  options.epochs = 5;
  options.memory_bytes = 1'000'000'000;
  const Plan plan = Tune(analysis_, pipeline_, options);
  EXPECT_FALSE(plan.knobs.cache_after.has_value()) << *plan.knobs.cache_after;
  for (const Change& c : plan.changes) EXPECT_NE(c.knob, kKnobCache) << c.stage;
}

// Bursty output (per-sample increments alternate 5 and 15: CV 0.5) asks for long queues; the
// memory budget caps them, and the queued and in-flight elements never exceed it.
TEST_F(TunerTest, MemoryBudgetIsNeverExceeded) {
  for (const int64_t budget : {60'000'000LL, 80'000'000LL, 200'000'000LL, 2'000'000'000LL}) {
    Build({{.name = "src", .op = "generate", .wall = 0.0001, .bytes = 1'000'000},
           {.name = "decode",
            .op = "decode_jpeg",
            .parallelizable = true,
            .wall = 0.004,
            .bytes = 2'000'000,
            .visit = 8},
           {.name = "batch", .op = "batch", .wall = 0.0001, .bytes = 8'000'000},
           {.name = "prefetch",
            .op = "prefetch",
            .wall = 0,
            .bytes = 8'000'000,
            .async = true,
            .buffer_size = 1}},
          0.0005, analyzer::Verdict::kHighly, 8);
    pipeline_.stage_series.resize(4);
    for (auto& series : pipeline_.stage_series) {
      int64_t count = 0;
      for (int i = 0; i < 101; ++i) {
        series.elements_out.push_back(count);
        count += i % 2 == 0 ? 5 : 15;
      }
    }
    TuneOptions options;
    options.memory_bytes = budget;
    const Plan plan = Tune(analysis_, pipeline_, options);
    EXPECT_LE(MemoryOf(plan), static_cast<double>(budget)) << budget;
    EXPECT_LE(plan.memory_bytes, static_cast<double>(budget)) << budget;
    EXPECT_DOUBLE_EQ(plan.memory_bytes, MemoryOf(plan));
    EXPECT_GE(plan.knobs.stages[Index("prefetch")].buffer_size, 2);
    ExpectPredictedByAnalyzer(plan);
    if (budget == 2'000'000'000LL) {
      // Room for every target: decode's queue covers two standard deviations of a sample.
      EXPECT_GT(plan.knobs.stages[Index("decode")].buffer_size, 2);
    }
  }
}

TEST_F(TunerTest, InfeasibleBudgetsGiveAClearError) {
  Build({{.name = "src", .op = "generate", .wall = 0.0001},
         {.name = "decode", .op = "decode_jpeg", .parallelizable = true, .wall = 0.004},
         {.name = "prefetch",
          .op = "prefetch",
          .wall = 0,
          .bytes = 12'000'000,
          .async = true,
          .buffer_size = 1}},
        0.001);
  TuneOptions options;
  options.memory_bytes = 10'000'000;
  // The input-bound job's prefetch keeps 2 queued batches and 1 in its worker: 36 MB, and the
  // runtime's tensor pool up to 16.8 MB.
  try {
    Tune(analysis_, pipeline_, options);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("memory budget 10 MB is below what the pipeline's buffers "
                                    "need: 52.8 MB"));
    EXPECT_THAT(e.what(), HasSubstr("16.8 MB of freed tensor buffers"));
    EXPECT_THAT(e.what(), HasSubstr("'prefetch'"));
  }
  options.memory_bytes.reset();
  options.cores = 0;
  EXPECT_THROW(Tune(analysis_, pipeline_, options), Error);
  options.cores.reset();
  // A demand GLPK cannot take is refused before the solver sees it.
  analysis_.stages[1].wall_demand = std::nan("");
  try {
    Tune(analysis_, pipeline_, options);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("stage 'decode': the wall demand is nan"));
  }
  pipeline_.stages.pop_back();
  EXPECT_THROW(Tune(analysis_, pipeline_, options), Error);
}

// With the CPU the binding limit below the consumer's pace, the plan says how many cores would
// keep up and what they buy: consumer 5 ms (200/s), 1 core, decode 10 ms of CPU: 100/s now;
// 200/s needs 200 x 10.1 ms = 2.02 cores.
TEST_F(TunerTest, PlanSaysWhatCoresTheConsumerNeeds) {
  Build({{.name = "src", .op = "generate", .wall = 0.0001},
         {.name = "decode", .op = "decode_jpeg", .parallelizable = true, .wall = 0.010},
         {.name = "prefetch", .op = "prefetch", .wall = 0, .async = true, .buffer_size = 1}},
        0.005, analyzer::Verdict::kHighly, 1);
  const Plan plan = Tune(analysis_, pipeline_);
  ASSERT_TRUE(plan.cores_needed_for_consumer.has_value());
  EXPECT_NEAR(*plan.cores_needed_for_consumer, 2.02, 0.01);
  ASSERT_TRUE(plan.outputs_per_s_with_cores_needed.has_value());
  EXPECT_NEAR(*plan.outputs_per_s_with_cores_needed, 200, 1);
  ExpectPredictedByAnalyzer(plan);
}

// The rewrite sets only the tuned knobs (and inserts the cache stage); unknown keys stay.
// 4 cores; work runs ordered on 2 workers, needing 8 ms per batch and waiting 4 ms more for its
// turn (kappa = 4 / (8 (1 - 1/2)) = 1). Ordered, p workers take 8 + 8 (1 - 1/p) ms; the model
// alone would add workers past the cores (8 workers: 15 ms, 533/s, past the CPU's 4 / 8.2 ms =
// 487.8/s), but ordered CPU-bound workers get no more than their share of the cores,
// ceil(4 x 8 / 8.2) = 4: 14 ms each (and src's 0.1 ms under their input lock), about 283/s.
// Where the config allows reordering, the workers never wait: 4 workers do 500/s, and the CPU
// binds.
TEST_F(TunerTest, ReorderIsUsedOnlyWhereTheConfigAllowsIt) {
  Build({{.name = "src", .op = "generate", .wall = 0.0001},
         {.name = "work",
          .op = "burn",
          .parallelizable = true,
          .wall = 0.008,
          .async = true,
          .parallelism = 2,
          .buffer_size = 4,
          .turn = 0.004},
         {.name = "prefetch", .op = "prefetch", .wall = 0.0001, .async = true, .buffer_size = 2}});
  const size_t work = Index("work");
  const Plan ordered = Tune(analysis_, pipeline_);
  EXPECT_TRUE(ordered.knobs.stages[work].ordered);
  for (const Change& c : ordered.changes) EXPECT_NE(c.knob, kKnobDeterministic) << c.why;
  EXPECT_EQ(ordered.knobs.stages[work].parallelism, 4);
  EXPECT_NEAR(ordered.predicted_outputs_per_s, 4 / 0.0141, 3);
  ExpectPredictedByAnalyzer(ordered);

  TuneOptions options;
  options.reorder_allowed.insert("work");
  const Plan plan = Tune(analysis_, pipeline_, options);
  EXPECT_FALSE(plan.knobs.stages[work].ordered);
  EXPECT_EQ(plan.knobs.stages[work].parallelism, 4);
  EXPECT_NEAR(plan.predicted_outputs_per_s, 4 / 0.0082, 0.5);
  ExpectPredictedByAnalyzer(plan);
  bool explained = false;
  for (const Change& c : plan.changes) {
    if (c.knob != kKnobDeterministic) continue;
    explained = true;
    EXPECT_EQ(c.stage, "work");
    EXPECT_EQ(c.from, 1);
    EXPECT_EQ(c.to, 0);
    EXPECT_THAT(c.why, HasSubstr("allow_reorder"));
    EXPECT_THAT(c.why, HasSubstr("4 ms per batch as traced"));
  }
  EXPECT_TRUE(explained);
  const config::Document doc = config::Document::Parse(R"({"name": "train", "stages": [
  {"name": "src", "op": "generate", "args": {"count": 10}},
  {"name": "work", "op": "burn", "args": {"cpu_us": 1}, "parallelism": 2, "buffer_size": 4,
   "allow_reorder": true},
  {"name": "prefetch", "op": "prefetch", "buffer_size": 2}
]}
)",
                                                       "train.json");
  const TuneOptions implied = OptionsFromConfig(doc);
  EXPECT_EQ(implied.reorder_allowed.size(), 1u);
  EXPECT_EQ(implied.reorder_allowed.count("work"), 1u);
  const config::Document tuned = ApplyPlan(plan, doc);
  EXPECT_EQ(tuned.json()["stages"][1]["deterministic"], false);
  const nlohmann::json out = nlohmann::json::parse(ToJson(plan, tuned));
  bool in_json = false;
  for (const auto& c : out["changes"]) {
    if (c["knob"] == "deterministic") {
      in_json = true;
      EXPECT_EQ(c["from"], true);
      EXPECT_EQ(c["to"], false);
    }
  }
  EXPECT_TRUE(in_json);
}

// tokenize does all the work but takes 1 µs per element (32 µs per batch of 32): less than a
// hand-off to another thread costs, so it stays inline, with a note saying why, even though the
// linear model alone would give it workers.
TEST_F(TunerTest, MicrosecondOpsStayInline) {
  Build({{.name = "src", .op = "read_lines", .wall = 0.000002, .visit = 32},
         {.name = "tokenize",
          .op = "tokenize",
          .parallelizable = true,
          .wall = 0.000032,
          .visit = 32},
         {.name = "batch", .op = "batch", .wall = 0.000001},
         {.name = "prefetch", .op = "prefetch", .wall = 0, .async = true, .buffer_size = 1}});
  const Plan plan = Tune(analysis_, pipeline_);
  const size_t tokenize = Index("tokenize");
  EXPECT_EQ(plan.knobs.stages[tokenize].parallelism, 1);
  EXPECT_EQ(plan.knobs.stages[tokenize].buffer_size, 0);
  bool noted = false;
  for (const std::string& note : plan.notes) {
    if (note.find("'tokenize' takes 1 µs per element") != std::string::npos) noted = true;
  }
  EXPECT_TRUE(noted) << fmt::format("{}", fmt::join(plan.notes, "\n"));
  ExpectPredictedByAnalyzer(plan);
}

TEST_F(TunerTest, ApplyPlanRewritesOnlyTunedKnobsAndInsertsTheCache) {
  Build({{.name = "src", .op = "read_file", .wall = 0.0002, .bytes = 50'000},
         {.name = "decode",
          .op = "decode_jpeg",
          .parallelizable = true,
          .wall = 0.010,
          .bytes = 150'000},
         {.name = "crop",
          .op = "random_crop",
          .parallelizable = true,
          .wall = 0.001,
          .bytes = 150'000,
          .deterministic = false},
         {.name = "prefetch",
          .op = "prefetch",
          .wall = 0,
          .bytes = 150'000,
          .async = true,
          .buffer_size = 1}},
        0, analyzer::Verdict::kHighly, 2);
  const std::string text = R"({
  "name": "train",
  "epochs": 5,
  "owner": "team-vision",
  "stages": [
    {"name": "src", "op": "read_file"},
    {"name": "decode", "op": "decode_jpeg", "parallelism": 1, "note": "keep me"},
    {"name": "crop", "op": "random_crop"},
    {"name": "prefetch", "op": "prefetch", "buffer_size": 1}
  ]
}
)";
  const config::Document doc = config::Document::Parse(text, "train.json");
  TuneOptions options;
  options.epochs = doc.epochs();
  options.memory_bytes = 1'000'000'000;
  const Plan plan = Tune(analysis_, pipeline_, options);
  const config::Document tuned = ApplyPlan(plan, doc);
  EXPECT_EQ(tuned.json()["owner"], "team-vision");
  const config::Json& stages = tuned.json()["stages"];
  ASSERT_TRUE(plan.knobs.cache_after.has_value());
  ASSERT_EQ(stages.size(), 5u);
  EXPECT_EQ(stages[1]["note"], "keep me");
  EXPECT_EQ(stages[2]["op"], "cache");
  for (const Change& c : plan.changes) {
    if (c.knob == "parallelism" || c.knob == "buffer_size") {
      EXPECT_EQ(tuned.Stage(c.stage).index < 5, true);
      const config::StageSpec& s = tuned.Stage(c.stage);
      EXPECT_EQ(c.knob == "parallelism" ? s.parallelism.value_or(1) : s.buffer_size.value_or(0),
                c.to)
          << c.stage << "." << c.knob;
    }
  }
  // --json: the fixed fields of DESIGN.md.
  const nlohmann::json j = nlohmann::json::parse(ToJson(plan, tuned));
  EXPECT_DOUBLE_EQ(j["predicted_outputs_per_s"].get<double>(), plan.predicted_outputs_per_s);
  EXPECT_DOUBLE_EQ(j["speedup"].get<double>(), plan.speedup);
  ASSERT_EQ(j["changes"].size(), plan.changes.size());
  for (const auto& c : j["changes"]) {
    for (const char* field : {"stage", "knob", "from", "to", "why"}) {
      EXPECT_TRUE(c.contains(field)) << field;
    }
  }
  EXPECT_EQ(j["config"]["owner"], "team-vision");
  EXPECT_EQ(j["cache_after"], "decode");
}

// Random pipelines (fixed seed): whatever the instance, sequential ops get one worker, no cache
// sits below a non-deterministic stage, the memory budget holds, the plan's throughput is the
// analyzer's, and the plan is never predicted slower than the traced knobs.
TEST_F(TunerTest, InvariantsHoldOnRandomPipelines) {
  std::mt19937 rng(12345);
  std::uniform_real_distribution<double> unit(0, 1);
  for (int instance = 0; instance < 200; ++instance) {
    std::vector<Stage> stages;
    const int n = 2 + static_cast<int>(unit(rng) * 8);
    for (int i = 0; i < n; ++i) {
      Stage s;
      s.name = fmt::format("s{}", i);
      s.op = "op";
      s.parallelizable = unit(rng) < 0.6;
      s.wall = unit(rng) < 0.2 ? 0 : std::pow(10, -5 + 3 * unit(rng));
      s.cpu = s.wall * unit(rng);
      s.bytes = std::pow(10, 3 + 4 * unit(rng));
      s.deterministic = unit(rng) < 0.8;
      s.async = unit(rng) < 0.3 || i + 1 == n;
      s.buffer_size = s.async ? 1 + static_cast<int>(unit(rng) * 4) : 0;
      s.parallelism = s.async && s.parallelizable && unit(rng) < 0.5 ? 2 : 1;
      s.elements = 100 + static_cast<int64_t>(unit(rng) * 10000);
      stages.push_back(s);
    }
    const double step = unit(rng) < 0.5 ? 0 : 0.001 + 0.02 * unit(rng);
    Build(stages, step, unit(rng) < 0.7 ? analyzer::Verdict::kHighly : analyzer::Verdict::kNot,
          1 + static_cast<int>(unit(rng) * 16));
    TuneOptions options;
    options.epochs = unit(rng) < 0.5 ? 1 : 5;
    options.memory_bytes = static_cast<int64_t>(std::pow(10, 7 + 3 * unit(rng)));
    Plan plan;
    try {
      plan = Tune(analysis_, pipeline_, options);
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("memory budget")) << instance;
      continue;
    }
    SCOPED_TRACE(instance);
    for (size_t i = 0; i < stages.size(); ++i) {
      if (!stages[i].parallelizable) {
        EXPECT_EQ(plan.knobs.stages[i].parallelism, 1);
      }
    }
    if (plan.knobs.cache_after) {
      for (size_t i = 0; i <= *plan.knobs.cache_after; ++i) EXPECT_TRUE(stages[i].deterministic);
      EXPECT_GT(options.epochs, 1);
    }
    EXPECT_LE(MemoryOf(plan), static_cast<double>(*options.memory_bytes) * (1 + 1e-9));
    ExpectPredictedByAnalyzer(plan);
    EXPECT_GE(plan.predicted_outputs_per_s, plan.current_predicted_outputs_per_s * (1 - 2e-3))
        << (plan.prediction.limits.empty() ? "" : plan.prediction.limits.front().why) << " mem "
        << plan.memory_bytes;
  }
}

TEST(ParseMemorySizeTest, AcceptsUnitsAndBytes) {
  EXPECT_EQ(ParseMemorySize("512M"), 512LL * 1024 * 1024);
  EXPECT_EQ(ParseMemorySize("4G"), 4LL * 1024 * 1024 * 1024);
  EXPECT_EQ(ParseMemorySize("4GiB"), 4LL * 1024 * 1024 * 1024);
  EXPECT_EQ(ParseMemorySize("1000000"), 1'000'000);
  EXPECT_EQ(ParseMemorySize("64k"), 65536);
  EXPECT_THROW(ParseMemorySize("lots"), Error);
  EXPECT_THROW(ParseMemorySize("12X"), Error);
  EXPECT_THROW(ParseMemorySize("-1G"), Error);
}

}  // namespace
}  // namespace sluice::tuner
