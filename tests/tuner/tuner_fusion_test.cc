// Tuner tests of map fusion and op rewrites: one fused group of workers, the fused decode-and-crop
// op advised or applied.
#include <algorithm>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice/config/document.h"
#include "sluice/tuner/tuner.h"
#include "tests/tuner/tuner_fixture.h"

namespace sluice::tuner {
namespace {

using test::TunerTest;

// 2 cores: burn 12.8 ms of CPU per batch, sleep 5.8 ms of wall (0.8 ms CPU). The CPU allows
// 2 / 13.7 ms = 146 batches/s. Both maps are parallelizable, so they run as one fused group on
// the sleep's workers (no hand-off between them): 18.6 ms of wall per batch, with the sleep's
// share planned at most half busy (a waiting worker's wake-ups slow as the cores fill), gives
// 4 workers, as many threads as a separate burn (its share of the cores, 2) and sleep (2).
TEST_F(TunerTest, WaitingAndComputingMapsRunAsOneFusedGroupPlannedWithHeadroom) {
  Build({{.name = "src", .op = "generate", .wall = 0.0001},
         {.name = "heavy", .op = "burn", .parallelizable = true, .wall = 0.0128},
         {.name = "wait", .op = "sleep", .parallelizable = true, .wall = 0.0058, .cpu = 0.0008},
         {.name = "prefetch", .op = "prefetch", .wall = 0, .async = true, .buffer_size = 1}},
        0, analyzer::Verdict::kHighly, 2);
  const Plan plan = Tune(analysis_, pipeline_);
  EXPECT_EQ(plan.knobs.stages[Index("wait")].parallelism, 4);
  EXPECT_EQ(plan.knobs.stages[Index("heavy")].parallelism, 1);
  EXPECT_EQ(plan.knobs.stages[Index("heavy")].buffer_size, 0);
  EXPECT_EQ(plan.threads, 5);  // and the prefetch's
  EXPECT_NEAR(plan.predicted_outputs_per_s, 2 / 0.0137, 0.5);
  ExpectPredictedByAnalyzer(plan);
}

// The suite's skewed pipeline as shipped (every stage inline), measured on 2 cores: per batch,
// 28.9 ms of CPU in 'augment', 36 ms of wall but 1.4 ms of CPU in 'lookup' (a sleep), a little in
// 'parse' and 'pack'. 'pack' is CPU-bound alone, but with the maps before it fused onto its
// workers the group computes 32 ms of each 67: its share of the cores takes about twice as many
// workers as cores. The CPU allows 2 / 32.5 ms = 61 batches/s.
TEST_F(TunerTest, AFusedGroupThatAlsoWaitsGetsWorkersBeyondItsCoreShare) {
  Build({{.name = "source", .op = "generate", .wall = 0.00005, .visit = 32},
         {.name = "parse", .op = "burn", .parallelizable = true, .wall = 0.0013, .visit = 32},
         {.name = "augment", .op = "burn", .parallelizable = true, .wall = 0.0289, .visit = 32},
         {.name = "lookup",
          .op = "sleep",
          .parallelizable = true,
          .wall = 0.036,
          .cpu = 0.0014,
          .visit = 32},
         {.name = "pack", .op = "burn", .parallelizable = true, .wall = 0.0007, .visit = 32},
         {.name = "batch", .op = "batch", .wall = 0.0001}},
        0.005, analyzer::Verdict::kHighly, 2);
  const Plan plan = Tune(analysis_, pipeline_);
  EXPECT_GT(plan.predicted_outputs_per_s, 55);
  // 61 batches/s of 67 ms keep 4.1 workers busy; at the cores' share, 2 gave 29.9.
  EXPECT_GE(plan.knobs.stages[Index("pack")].parallelism, 4);
  ExpectPredictedByAnalyzer(plan);
}

// decode_jpeg directly followed by random_resized_crop: the fused op is advised, with its
// predicted throughput; where the config says "allow_rewrite": true, the plan makes the change
// and the rewritten config runs decode_random_resized_crop with the crop's args and name.
TEST_F(TunerTest, FusedDecodeCropIsAdvisedOrAppliedWhereTheConfigAllowsIt) {
  Build({{.name = "files", .op = "list_files", .wall = 0.0001},
         {.name = "decode", .op = "decode_jpeg", .parallelizable = true, .wall = 0.02},
         {.name = "crop", .op = "random_resized_crop", .parallelizable = true, .wall = 0.02},
         {.name = "batch", .op = "batch", .wall = 0.001},
         {.name = "prefetch", .op = "prefetch", .wall = 0, .async = true, .buffer_size = 1}},
        0, analyzer::Verdict::kHighly, 2);
  const Plan advised = Tune(analysis_, pipeline_);
  ASSERT_EQ(advised.rewrites.size(), 1u);
  const Rewrite& r = advised.rewrites[0];
  EXPECT_FALSE(r.applied);
  EXPECT_EQ(r.first, "decode");
  EXPECT_EQ(r.second, "crop");
  EXPECT_EQ(r.op, "decode_random_resized_crop");
  EXPECT_GT(r.predicted_outputs_per_s, advised.predicted_outputs_per_s * 1.1);
  EXPECT_TRUE(std::any_of(advised.notes.begin(), advised.notes.end(), [](const std::string& n) {
    return n.find("advice:") == 0 && n.find("allow_rewrite") != std::string::npos;
  }));

  const config::Document doc = config::Document::Parse(R"({"name": "train", "allow_rewrite": true,
  "stages": [
  {"name": "files", "op": "list_files", "args": {"pattern": "*.jpg"}},
  {"name": "decode", "op": "decode_jpeg"},
  {"name": "crop", "op": "random_resized_crop", "args": {"size": 224, "seed": 3}},
  {"name": "batch", "op": "batch", "args": {"size": 8}},
  {"name": "prefetch", "op": "prefetch", "buffer_size": 1}
]}
)",
                                                       "train.json");
  const TuneOptions options = OptionsFromConfig(doc);
  EXPECT_TRUE(options.allow_rewrite);
  const Plan applied = Tune(analysis_, pipeline_, options);
  ASSERT_EQ(applied.rewrites.size(), 1u);
  EXPECT_TRUE(applied.rewrites[0].applied);
  EXPECT_NEAR(applied.predicted_outputs_per_s, applied.rewrites[0].predicted_outputs_per_s, 1e-9);
  const config::Document tuned = ApplyPlan(applied, doc);
  ASSERT_EQ(tuned.stages().size(), 4u);
  EXPECT_EQ(tuned.stages()[1].name, "crop");
  EXPECT_EQ(tuned.stages()[1].op, "decode_random_resized_crop");
  EXPECT_EQ(tuned.json()["stages"][1]["args"]["seed"], 3);
  EXPECT_EQ(tuned.json()["allow_rewrite"], true);
  const nlohmann::json out = nlohmann::json::parse(ToJson(applied, tuned));
  ASSERT_EQ(out["rewrites"].size(), 1u);
  EXPECT_EQ(out["rewrites"][0]["op"], "decode_random_resized_crop");
  EXPECT_EQ(out["rewrites"][0]["applied"], true);
}

}  // namespace
}  // namespace sluice::tuner
