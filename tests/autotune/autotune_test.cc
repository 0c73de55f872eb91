// The online tuner: its decisions one by one, then whole runs of a misconfigured pipeline (it
// re-tunes, records why, writes the last config), a phase change (re-planned), and a job killed
// while it tunes (its trace still reads, re-tunes included).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "autotune/internal/decide.h"
#include "sluice/autotune/autotune.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"
#include "sluice/trace/io.h"
#include "tests/common/harness.h"

namespace sluice::autotune {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using When = pipeline::AppliedChange::When;

TEST(DecideTest, AChangeIsKeptUnlessItLostMoreThanTheNoise) {
  EXPECT_TRUE(internal::KeepTrial(100, 150, 0.04));
  EXPECT_TRUE(internal::KeepTrial(100, 97, 0.04));
  EXPECT_FALSE(internal::KeepTrial(100, 95, 0.04));
}

TEST(DecideTest, AProbeIsKeptOnlyIfItGainedMoreThanTheNoise) {
  EXPECT_TRUE(internal::KeepProbe(100, 105, 0.04));
  EXPECT_FALSE(internal::KeepProbe(100, 103, 0.04));
  EXPECT_FALSE(internal::KeepProbe(100, 90, 0.04));
}

TEST(DecideTest, AProbesGainWithinTheNoiseIsMeasuredAgainAndALossIsNot) {
  EXPECT_TRUE(internal::MeasureProbeAgain(18.9, 20.0, 0.11));   // +6 % within an 11 % noise
  EXPECT_FALSE(internal::MeasureProbeAgain(18.9, 23.0, 0.11));  // beyond it: kept at once
  EXPECT_FALSE(internal::MeasureProbeAgain(18.9, 18.9, 0.11));  // no gain: undone at once
  EXPECT_FALSE(internal::MeasureProbeAgain(18.9, 17.0, 0.11));
}

// A window in which the model's bound is `bound` and the rate `measured`; the stages' bounds are
// listed tightest first, after a CPU bound.
analyzer::Analysis GapWindow(double bound, double measured) {
  analyzer::Analysis a;
  a.measured_outputs_per_s = measured;
  a.predicted_outputs_per_s = bound;
  a.output_noun = "batch";
  a.limits.push_back({analyzer::LimitKind::kCpu, "", {}, bound, "cpu"});
  for (const auto& [name, rate] : std::vector<std::pair<std::string, double>>{
           {"pack", 27.0}, {"normalize", 27.4}, {"decode", 27.7}}) {
    a.limits.push_back({analyzer::LimitKind::kStage, name, {name}, rate, name});
    analyzer::StageAnalysis s;
    s.name = name;
    s.parallelizable = name != "pack";
    s.parallelism = name == "decode" ? 2 : 1;
    a.stages.push_back(s);
  }
  return a;
}

TEST(DecideTest, AProbeGivesAWorkerToTheTightestStageOnlyWhenTheModelIsFarAboveTheRate) {
  // 21.3 predicted, 17.2 measured: 24 % apart. 'pack' may have no workers, 'decode' has two.
  std::optional<internal::Probe> p = internal::ProbeChange(GapWindow(21.3, 17.2), {}, 0.15);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->change.stage, "normalize");
  EXPECT_EQ(p->change.knob, "parallelism");
  EXPECT_EQ(p->change.to, 2);
  EXPECT_THAT(p->reason, HasSubstr("21.3 batches/s"));
  EXPECT_THAT(p->reason, HasSubstr("outside the model"));
  // Tried once per phase; within the model's error, none.
  EXPECT_FALSE(internal::ProbeChange(GapWindow(21.3, 17.2), {"normalize"}, 0.15).has_value());
  EXPECT_FALSE(internal::ProbeChange(GapWindow(19.0, 17.2), {}, 0.15).has_value());
  // The run's trials measured 0.8 of their predictions: 21.3 is 17.0 calibrated, no gap.
  EXPECT_FALSE(internal::ProbeChange(GapWindow(21.3, 17.2), {}, 0.15, 0.8).has_value());
  p = internal::ProbeChange(GapWindow(26.0, 17.2), {}, 0.15, 0.8);
  ASSERT_TRUE(p.has_value());
  EXPECT_THAT(p->reason, HasSubstr("0.8 calibrated: 20.8 batches/s"));
}

TEST(DecideTest, TheQueuesAPlanAtLeastDoublesAreTriedTogetherOutsideTheModel) {
  // The plan after a cache replays: 'flip' sized for the new rate, 'crop' a little larger, a
  // worker more for 'resize'; no gain it can predict.
  tuner::Plan plan;
  plan.output_noun = "batch";
  plan.predicted_outputs_per_s = 366;
  plan.changes = {{"flip", "buffer_size", 16, 64},
                  {"crop", "buffer_size", 13, 18},
                  {"resize", "parallelism", 1, 2},
                  {"batch", "buffer_size", 0, 2}};
  std::optional<internal::QueueTrial> q = internal::QueueGrowth(plan, 15, 355, 0.05);
  ASSERT_TRUE(q.has_value());
  ASSERT_EQ(q->changes.size(), 2u);
  EXPECT_EQ(q->changes[0].stage, "flip");
  EXPECT_EQ(q->changes[0].knob, "buffer_size");
  EXPECT_EQ(q->changes[0].to, 64);
  EXPECT_EQ(q->changes[1].stage, "batch");
  EXPECT_EQ(q->changes[1].to, 2);
  EXPECT_THAT(q->reason, HasSubstr("'flip' 16 to 64, 'batch' 0 to 2"));
  EXPECT_THAT(q->reason, HasSubstr("rose from 15 to 355 batches/s"));
  EXPECT_THAT(q->reason, HasSubstr("planned 366 batches/s"));
  EXPECT_THAT(q->reason, HasSubstr("less than the 5% gain"));
  // Growth short of double, or a queue of one from none: no trial.
  plan.changes = {{"crop", "buffer_size", 13, 18}, {"batch", "buffer_size", 0, 1}};
  EXPECT_FALSE(internal::QueueGrowth(plan, 15, 355, 0.05).has_value());
}

TEST(DecideTest, WithNoStageLeftForAWorkerTheQueuesThePlanGrowsAreProbed) {
  // Every stage already has workers (or cannot have them): no worker probe is left.
  analyzer::Analysis a = GapWindow(17647, 11775);
  for (analyzer::StageAnalysis& s : a.stages) s.parallelism = s.parallelizable ? 2 : 1;
  EXPECT_FALSE(internal::ProbeChange(a, {}, 0.15).has_value());
  tuner::Plan plan;
  plan.output_noun = "batch";
  plan.changes = {{"tokenize", "buffer_size", 0, 64},
                  {"prefetch", "buffer_size", 1, 64},
                  {"shuffle", "buffer_size", 40, 64}};
  std::optional<internal::QueueTrial> q = internal::QueueProbe(a, plan, 0.15);
  ASSERT_TRUE(q.has_value());
  ASSERT_EQ(q->changes.size(), 2u);
  EXPECT_EQ(q->changes[0].stage, "tokenize");
  EXPECT_EQ(q->changes[1].stage, "prefetch");
  EXPECT_EQ(q->changes[1].to, 64);
  EXPECT_THAT(q->reason, HasSubstr("17647 batches/s, is 49.9% above the 11775 measured"));
  EXPECT_THAT(q->reason, HasSubstr("'tokenize' 0 to 64, 'prefetch' 1 to 64"));
  // The model's bound within the gap of the rate: the model accounts for it, no trial.
  EXPECT_FALSE(internal::QueueProbe(GapWindow(12500, 11775), plan, 0.15).has_value());
  // A plan that grows no queue to twice its size: nothing to try.
  plan.changes = {{"shuffle", "buffer_size", 40, 64}};
  EXPECT_FALSE(internal::QueueProbe(a, plan, 0.15).has_value());
}

TEST(DecideTest, APhaseChangeOpensQueuesWhenTheRateDoubledAndProbesWhenItMovedFar) {
  // A cache's replay (15 -> 355 batches/s): both.
  internal::PhaseMove m = internal::AfterPhaseChange(15, 355);
  EXPECT_TRUE(m.queues);
  EXPECT_TRUE(m.reprobe);
  // A bursty text rate's swing past the noise (14880 -> 14080 lines/s): neither.
  m = internal::AfterPhaseChange(14880, 14080);
  EXPECT_FALSE(m.queues);
  EXPECT_FALSE(m.reprobe);
  // A fall of 40 % (6283 -> 3801): probes again, no queue growth; so does a rise short of double.
  m = internal::AfterPhaseChange(6283, 3801);
  EXPECT_FALSE(m.queues);
  EXPECT_TRUE(m.reprobe);
  m = internal::AfterPhaseChange(100, 190);
  EXPECT_FALSE(m.queues);
  EXPECT_TRUE(m.reprobe);
}

// A trace of one pipeline sampled every 0.1 s for 4 s, emitting `per_sample(k)` outputs in
// sample k.
trace::Trace CountedTrace(const std::function<int64_t(size_t)>& per_sample) {
  trace::Trace t;
  t.pipelines.emplace_back();
  int64_t n = 0;
  for (size_t k = 0; k <= 40; ++k) {
    t.series.t.push_back(0.1 * static_cast<double>(k));
    n += k == 0 ? 0 : per_sample(k);
    t.pipelines[0].consumer_next.push_back(n);
  }
  return t;
}

TEST(DecideTest, AWindowsNoiseIsTheStandardErrorOfItsRate) {
  const trace::Trace steady = CountedTrace([](size_t) { return 10; });
  EXPECT_DOUBLE_EQ(internal::WindowNoise(steady, steady.pipelines[0], 2.0), 0);
  // Four spans of 0.5 s from 2 s: 100, 140, 100 and 140 outputs/s (mean 120, sd 23.1).
  const trace::Trace swinging = CountedTrace([](size_t k) { return ((k - 21) / 5) % 2 ? 14 : 10; });
  EXPECT_NEAR(internal::WindowNoise(swinging, swinging.pipelines[0], 2.0), 23.094 / 120 / 2, 1e-3);
  // Too few samples to split.
  EXPECT_DOUBLE_EQ(internal::WindowNoise(steady, steady.pipelines[0], 3.5), 0);
  // Two windows of 5 % standard error each differ beyond 14 %; never less than the floor.
  EXPECT_NEAR(internal::NoiseBetween(0.05, 0.05, 0.04), 0.1414, 1e-4);
  EXPECT_DOUBLE_EQ(internal::NoiseBetween(0.005, 0, 0.04), 0.04);
}

TEST(DecideTest, CalibrationMovesHalfwayToTheMeasuredRatio) {
  EXPECT_DOUBLE_EQ(internal::Calibrate(1.0, 200, 100), 0.75);
  EXPECT_DOUBLE_EQ(internal::Calibrate(0.75, 0, 100), 0.75);  // nothing to learn from
}

TEST(DecideTest, TheKnobPlanLeavesTheCacheOutAndUndoRevertsWhatWasApplied) {
  tuner::Plan plan;
  plan.predicted_outputs_per_s = 200;
  plan.changes = {{"decode", "parallelism", 1, 4, "decode limits", "", 0},
                  {"decode", tuner::kKnobCache, 0, 1, "cache it", "", 0}};
  const auto live = internal::LiveChanges(plan);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].knob, "parallelism");
  const std::vector<pipeline::AppliedChange> applied = {
      {"decode", "parallelism", 1, 4, When::kNow, ""},
      {"batch", "buffer_size", 2, 8, When::kNotApplied, "did not settle"},
      {"decode", tuner::kKnobCache, 0, 1, When::kNextEpoch, "at the boundary"}};
  const auto undo = internal::Undo(applied);
  ASSERT_EQ(undo.size(), 1u) << "neither what was not applied nor a cache is undone";
  EXPECT_EQ(undo[0].stage, "decode");
  EXPECT_EQ(undo[0].to, 1);
  const trace::Retune r =
      internal::RecordApply(3.0, "decode limits", plan, {applied[0], applied[1]}, 100, 0.5);
  EXPECT_EQ(r.action, "apply");
  EXPECT_DOUBLE_EQ(r.calibrated_outputs_per_s, 100);
  ASSERT_EQ(r.changes.size(), 2u);
  EXPECT_EQ(r.changes[0].why, "decode limits");
  EXPECT_EQ(r.changes[1].when, "not_applied");
}

TEST(DecideTest, ACacheIsInsertedOnlyWithEpochsToReplayAndAGainAboveTheMinimum) {
  EXPECT_EQ(internal::EpochsToReplay(-1, 3), -1);
  EXPECT_EQ(internal::EpochsToReplay(10, 0), 8);  // epoch 1 records, 2..9 replay
  EXPECT_EQ(internal::EpochsToReplay(3, 1), 0);
  tuner::Plan without, with;
  without.predicted_outputs_per_s = 100;
  with.predicted_outputs_per_s = 104;
  with.changes = {{"decode", tuner::kKnobCache, 0, 1, "decode's work once", "", 0}};
  EXPECT_FALSE(internal::CacheToInsert(with, without, 0.05)) << "4 % is within the noise";
  with.predicted_outputs_per_s = 300;
  const auto cache = internal::CacheToInsert(with, without, 0.05);
  ASSERT_TRUE(cache);
  EXPECT_EQ(cache->stage, "decode");
  const trace::Retune r = internal::RecordCache(
      2.0, *cache, with, {"decode", tuner::kKnobCache, 0, 1, When::kNextEpoch, "boundary"}, 100,
      0.5);
  EXPECT_DOUBLE_EQ(r.calibrated_outputs_per_s, 150);
  ASSERT_EQ(r.changes.size(), 1u);
  EXPECT_EQ(r.changes[0].when, "next_epoch");
  EXPECT_EQ(r.changes[0].why, "decode's work once");
  EXPECT_THAT(r.reason, HasSubstr("stage 'decode'"));
  EXPECT_LT(r.measured_outputs_per_s, 0) << "measured once it replays";
}

// A cache after 'resize', which runs fused on the two workers of 'flip' below it: 'resize' gets
// two workers of its own (and a buffer) for the epoch the cache records. Not when the stage is
// async already, cannot have workers, or runs on the consumer's thread.
TEST(DecideTest, AStageThatRanOnWorkersBelowACacheKeepsWorkersWhileItRecords) {
  analyzer::Analysis a;
  const auto stage = [](const std::string& name, bool parallelizable, int parallelism, int buffer,
                        const std::string& run_by) {
    analyzer::StageAnalysis s;
    s.name = name;
    s.parallelizable = parallelizable;
    s.parallelism = parallelism;
    s.async = parallelism > 1;
    s.buffer_size = buffer;
    s.run_by = run_by;
    return s;
  };
  a.stages = {stage("files", false, 1, 0, "flip"), stage("decode", true, 1, 0, "flip"),
              stage("resize", true, 1, 0, "flip"), stage("crop", true, 1, 0, "flip"),
              stage("flip", true, 2, 10, ""),      stage("batch", false, 1, 0, "")};
  const internal::RecordingWorkers keep = internal::WorkersForRecording(a, "resize");
  ASSERT_EQ(keep.changes.size(), 2u);
  EXPECT_EQ(keep.changes[0].stage, "resize");
  EXPECT_EQ(keep.changes[0].knob, "parallelism");
  EXPECT_EQ(keep.changes[0].to, 2);
  EXPECT_EQ(keep.changes[1].knob, "buffer_size");
  EXPECT_EQ(keep.changes[1].to, 10);
  EXPECT_THAT(keep.why, HasSubstr("workers of 'flip'"));
  EXPECT_TRUE(internal::WorkersForRecording(a, "flip").changes.empty()) << "async already";
  EXPECT_TRUE(internal::WorkersForRecording(a, "files").changes.empty()) << "no workers";
  EXPECT_TRUE(internal::WorkersForRecording(a, "batch").changes.empty()) << "the consumer's";
  a.stages[4].parallelism = 1;  // one worker: nothing is lost
  EXPECT_TRUE(internal::WorkersForRecording(a, "resize").changes.empty());
}

TEST(DecideTest, ACachePlannedBesideNewWorkersKeepsTheWorkersThoseWillGive) {
  // The window measured every stage inline on the consumer's thread; the plan applied beside the
  // cache gives 'flip' three workers, onto which the runtime fuses the maps above it.
  analyzer::Analysis a;
  for (const auto& [name, parallelizable] :
       std::vector<std::pair<std::string, bool>>{{"files", false},
                                                 {"decode", true},
                                                 {"resize", true},
                                                 {"crop", true},
                                                 {"flip", true},
                                                 {"batch", false}}) {
    analyzer::StageAnalysis s;
    s.name = name;
    s.parallelizable = parallelizable;
    a.stages.push_back(s);
  }
  EXPECT_TRUE(internal::WorkersForRecording(a, "resize").changes.empty()) << "nothing runs it";
  const std::vector<pipeline::KnobChange> planned = {{"flip", "parallelism", 3},
                                                     {"flip", "buffer_size", 12}};
  const internal::RecordingWorkers keep = internal::WorkersForRecording(a, "resize", planned);
  ASSERT_EQ(keep.changes.size(), 2u);
  EXPECT_EQ(keep.changes[0].to, 3);
  EXPECT_EQ(keep.changes[1].to, 12);
  EXPECT_THAT(keep.why, HasSubstr("workers of 'flip'"));
  // A stage between them that is not a parallelizable map ends the fusion; so does a stage
  // below with one worker of its own.
  a.stages[3].parallelizable = false;
  EXPECT_TRUE(internal::WorkersForRecording(a, "resize", planned).changes.empty());
  a.stages[3].parallelizable = true;
  EXPECT_TRUE(internal::WorkersForRecording(a, "resize", {{"crop", "buffer_size", 4}, planned[0]})
                  .changes.empty());
}

TEST(DecideTest, TheLastConfigHasTheStagesThePipelineGained) {
  const test_util::TempDir tmp("sluice_autotune_last_config");
  const fs::path dir = tmp.path();
  trace::Trace t;
  trace::PipelineTrace p;
  p.name = "p";
  p.config_path = (dir / "p.json").string();
  p.config_text = R"({"name": "p", "stages": [
    {"name": "src", "op": "generate", "args": {"count": 5}},
    {"name": "heavy", "op": "burn", "args": {"cpu_us": 10}},
    {"name": "batch", "op": "batch", "args": {"size": 2}}]})";
  for (const auto& [name, op] : std::vector<std::pair<std::string, std::string>>{
           {"src", "generate"}, {"heavy", "burn"}, {"cache", "cache"}, {"batch", "batch"}}) {
    trace::StageTrace s;
    s.name = name;
    s.op = op;
    s.parallelism = name == "heavy" ? 2 : 1;
    p.stages.push_back(s);
  }
  t.pipelines.push_back(p);
  ASSERT_TRUE(WriteLastConfig(t, "p", dir / "tuned.json"));
  const config::Document tuned = config::Document::Load(dir / "tuned.json");
  ASSERT_EQ(tuned.stages().size(), 4u);
  EXPECT_EQ(tuned.stages()[2].name, "cache");
  EXPECT_EQ(tuned.stages()[2].op, "cache");
  EXPECT_EQ(tuned.Stage("heavy").parallelism.value_or(1), 2);
}

TEST(DecideTest, ConvergenceIsWhenTheRateLastReachedItsFinalLevel) {
  trace::Trace t;
  trace::PipelineTrace p;
  p.name = "p";
  int64_t n = 0;
  for (int k = 0; k <= 200; ++k) {  // 20 s at 10 samples/s: 50/s for 8 s, then 100/s
    t.series.t.push_back(k * 0.1);
    p.consumer_next.push_back(n);
    n += k < 80 ? 5 : 10;
  }
  p.consumer.next_calls = n;
  t.pipelines.push_back(p);
  Summary s;
  Converge(t, "", s);
  EXPECT_NEAR(s.final_outputs_per_s, 100, 1);
  // The first 5 s window within 5 % of 100 starts 0.5 s before the step (0.5 s at 50/s in it).
  EXPECT_NEAR(s.converged_after_s, 7.5, 0.3);
  // Not before the config last changed.
  trace::Retune r;
  r.t = 8.2;
  r.changes.push_back({.stage = "heavy", .knob = "parallelism", .from = 1, .to = 2});
  t.pipelines[0].retunes.push_back(r);
  Converge(t, "", s);
  EXPECT_NEAR(s.converged_after_s, 8.2, 0.01);
}

// A rate that swings within each 5 s (2 s at 90/s, 3 s at 106.7/s: 100/s over any 5 s) has
// converged when it last changed level (3 s; 2.6 s by the 5 % tolerance), not at its last
// swing below 95 (18 s), which a window shorter than the final one would report.
TEST(DecideTest, ConvergenceIsNotPutOffBySwingsShorterThanTheFinalWindow) {
  trace::Trace t;
  trace::PipelineTrace p;
  p.name = "p";
  double n = 0;
  for (int k = 0; k <= 230; ++k) {  // 23 s at 10 samples/s
    const double at = k * 0.1;
    t.series.t.push_back(at);
    p.consumer_next.push_back(static_cast<int64_t>(n));
    const double phase = std::fmod(at - 3, 5);
    n += 0.1 * (at < 3 ? 50 : phase < 2 ? 90 : 320.0 / 3);
  }
  p.consumer.next_calls = p.consumer_next.back();
  t.pipelines.push_back(p);
  Summary s;
  Converge(t, "", s);
  EXPECT_NEAR(s.final_outputs_per_s, 100, 2);
  EXPECT_NEAR(s.converged_after_s, 2.6, 0.3);
}

// A pipeline as shipped: its heavy stage inline on the consumer's thread.
constexpr const char* kMisconfigured = R"({"name": "slow", "epochs": -1, "stages": [
  {"name": "src", "op": "generate", "args": {"count": 500, "bytes": 100}},
  {"name": "heavy", "op": "sleep", "args": {"us": 2000, "schedule": SCHEDULE}},
  {"name": "batch", "op": "batch", "args": {"size": 4}}]})";

std::string Config(const std::string& schedule) {
  std::string text = kMisconfigured;
  text.replace(text.find("SCHEDULE"), 8, schedule);
  return text;
}

// Runs `config` for `seconds` with the tuner on, under a consumer whose training step takes
// 5 ms per batch; returns the tuner's summary and the trace it wrote.
Summary RunTuned(const std::string& config, double seconds, const fs::path& dir,
                 trace::Trace* written, Policy policy = Policy::kModel, double cores = 2) {
  AutotuneOptions opt;
  opt.policy = policy;
  opt.tracer.trace_path = dir / "trace.json";
  opt.tracer.measure_disks = false;
  opt.interval = 1.0;
  opt.cores = cores;
  Autotuner tuner(opt);
  auto p = pipeline::Pipeline::Create(config::Document::Parse(config, dir / "pipeline.json"));
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  pipeline::Element e;
  while (std::chrono::steady_clock::now() < end && p->Next(&e)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Summary s = tuner.Stop();
  p.reset();
  *written = trace::ReadTrace(dir / "trace.json");
  return s;
}

TEST(AutotuneTest, AMisconfiguredPipelineIsRetunedWithReasonsAndItsLastConfigWritten) {
  const test_util::TempDir tmp("sluice_autotune_misconfigured");
  const fs::path dir = tmp.path();
  trace::Trace t;
  const Summary s = RunTuned(Config("[]"), 6, dir, &t);
  ASSERT_FALSE(s.retunes.empty());
  const trace::Retune& first = s.retunes.front();
  EXPECT_EQ(first.action, "apply");
  EXPECT_THAT(first.reason, HasSubstr("heavy"));
  ASSERT_FALSE(first.changes.empty());
  EXPECT_FALSE(first.changes[0].why.empty());
  EXPECT_GT(first.predicted_outputs_per_s, first.before_outputs_per_s);
  EXPECT_GE(first.measured_outputs_per_s, 0) << "the change was measured";
  // The trace carries the same re-tunes.
  ASSERT_EQ(t.pipelines.size(), 1u);
  EXPECT_EQ(t.pipelines[0].retunes.size(), s.retunes.size());
  // The last config: the knobs it ran with at the end.
  ASSERT_EQ(s.tuned_path, (dir / "tuned.json").string());
  const config::Document tuned = config::Document::Load(s.tuned_path);
  const trace::StageTrace* heavy = nullptr;
  for (const trace::StageTrace& st : t.pipelines[0].stages) {
    if (st.name == "heavy") heavy = &st;
  }
  ASSERT_NE(heavy, nullptr);
  EXPECT_EQ(tuned.Stage("heavy").parallelism.value_or(1), heavy->parallelism);
  EXPECT_GT(heavy->parallelism, 1) << "the inline sleep stage got workers";
  EXPECT_GT(s.final_outputs_per_s, 0);
}

// The baseline of a config run as it is: the same trace and figures, and no change at all.
TEST(AutotuneTest, AnObservedPipelineIsMeasuredAndNeverChanged) {
  const test_util::TempDir tmp("sluice_autotune_observe");
  const fs::path dir = tmp.path();
  trace::Trace t;
  const Summary s = RunTuned(Config("[]"), 4, dir, &t, Policy::kObserve);
  EXPECT_TRUE(s.retunes.empty());
  EXPECT_GT(s.final_outputs_per_s, 0);
  ASSERT_EQ(t.pipelines.size(), 1u);
  EXPECT_TRUE(t.pipelines[0].retunes.empty());
  for (const trace::StageTrace& st : t.pipelines[0].stages) {
    EXPECT_EQ(st.parallelism, 1) << st.name;
    EXPECT_EQ(st.buffer_size, 0) << st.name;
  }
}

TEST(AutotuneTest, APhaseChangeIsReplanned) {
  const test_util::TempDir tmp("sluice_autotune_phase");
  const fs::path dir = tmp.path();
  trace::Trace t;
  // The stage's latency grows fivefold at 5 s: more workers are needed to keep pace with the
  // consumer, where fewer sufficed before.
  const Summary s = RunTuned(Config("[[5, 10000]]"), 11, dir, &t);
  bool replanned = false;
  for (const trace::Retune& r : s.retunes) {
    if (r.action == "apply" && r.t > 5) replanned = true;
  }
  EXPECT_TRUE(replanned) << "no re-tune after the phase change at 5 s";
}

TEST(AutotuneTest, APhaseChangeThatNeedsNoChangeIsRecordedAsARePlan) {
  const test_util::TempDir tmp("sluice_autotune_replan");
  const fs::path dir = tmp.path();
  trace::Trace t;
  // Endless data (no epoch, so no cache) through one stage of CPU work, within a budget of one
  // core: once it runs beside the consumer, nothing more helps. At 5 s its cost triples, so the
  // rate drops to a third, and the plan for the new phase changes nothing.
  const Summary s = RunTuned(R"({"name": "cpu", "epochs": -1, "stages": [
    {"name": "src", "op": "generate", "args": {"count": -1, "bytes": 100}},
    {"name": "heavy", "op": "burn", "args": {"cpu_us": 5000, "schedule": [[5, 15000]]}},
    {"name": "batch", "op": "batch", "args": {"size": 4}}]})",
                             9, dir, &t, Policy::kModel, /*cores=*/1);
  const trace::Retune* replan = nullptr;
  for (const trace::Retune& r : s.retunes) {
    if (r.action == "replan" && r.t > 5 && replan == nullptr) replan = &r;
  }
  ASSERT_NE(replan, nullptr) << "the phase change at 5 s was not recorded";
  EXPECT_TRUE(replan->changes.empty());
  EXPECT_THAT(replan->reason, HasSubstr("(a phase change)"));
  EXPECT_THAT(replan->reason, HasSubstr("nothing is changed"));
  EXPECT_GT(replan->predicted_outputs_per_s, 0);
  ASSERT_EQ(t.pipelines.size(), 1u);
  EXPECT_EQ(t.pipelines[0].retunes, s.retunes) << "the re-plan is in the trace";
}

// The re-tune that inserted a cache, or null.
const trace::Retune* CacheRetune(const Summary& s) {
  for (const trace::Retune& r : s.retunes) {
    for (const trace::RetuneChange& c : r.changes) {
      if (c.knob == "cache") return &r;
    }
  }
  return nullptr;
}

TEST(AutotuneTest, ACacheGoesInAtAnEpochBoundaryAndItsReplayIsMeasured) {
  const test_util::TempDir tmp("sluice_autotune_cache");
  const fs::path dir = tmp.path();
  trace::Trace t;
  // Epochs of 100 elements of 8 ms of deterministic CPU work each, more than 2 cores keep up
  // with: after one epoch the plan for the epochs left puts a cache after 'heavy' or 'batch'. The
  // run is long enough for the cache to record and replay on a loaded machine (CI runs tests
  // two at a time).
  const Summary s = RunTuned(R"({"name": "cacheable", "epochs": -1, "stages": [
    {"name": "src", "op": "generate", "args": {"count": 100, "bytes": 100}},
    {"name": "heavy", "op": "burn", "args": {"cpu_us": 8000}},
    {"name": "batch", "op": "batch", "args": {"size": 4}}]})",
                             12, dir, &t);
  const trace::Retune* cache = CacheRetune(s);
  ASSERT_NE(cache, nullptr) << "no cache was planned";
  const std::string after = cache->changes[0].stage;
  EXPECT_THAT(after, ::testing::AnyOf("heavy", "batch"));
  EXPECT_EQ(cache->changes[0].when, "next_epoch");
  EXPECT_GT(cache->measured_outputs_per_s, cache->before_outputs_per_s)
      << "the replay was measured, faster than the pipeline before it";
  ASSERT_EQ(t.pipelines.size(), 1u);
  const auto& stages = t.pipelines[0].stages;
  ASSERT_EQ(stages.size(), 4u);
  const size_t at = after == "heavy" ? 2 : 3;  // right after the stage it caches
  EXPECT_EQ(stages[at].op, "cache");
  EXPECT_EQ(config::Document::Load(s.tuned_path).stages()[at].op, "cache");
}

TEST(AutotuneTest, ACacheIsPlannedWithinTheFirstEpochWhenItsLengthIsKnown) {
  const test_util::TempDir tmp("sluice_autotune_first_epoch");
  const fs::path dir = tmp.path();
  trace::Trace t;
  // An epoch of 400 elements of 5 ms of deterministic CPU work each (2 s of CPU) ends after the
  // first window (1 s). The source knows its count, so an epoch's length is known in that window
  // and the cache is planned there, for the first epoch boundary.
  const Summary s = RunTuned(R"({"name": "first", "epochs": -1, "stages": [
    {"name": "src", "op": "generate", "args": {"count": 400, "bytes": 100}},
    {"name": "heavy", "op": "burn", "args": {"cpu_us": 5000}},
    {"name": "batch", "op": "batch", "args": {"size": 4}}]})",
                             2.5, dir, &t);
  const trace::Retune* cache = CacheRetune(s);
  ASSERT_NE(cache, nullptr) << "no cache was planned";
  EXPECT_EQ(cache->changes[0].when, "next_epoch");
  EXPECT_THAT(cache->reason, HasSubstr("within the first epoch, whose length (100 outputs)"));
}

TEST(AutotuneTest, AJobKilledWhileItTunesLeavesAReadableTraceWithItsRetunes) {
  const test_util::TempDir tmp("sluice_autotune_killed");
  const fs::path dir = tmp.path();
  const fs::path config = dir / "pipeline.json";
  std::ofstream(config) << Config("[]");
  const fs::path trace_path = dir / "out" / "trace.json";
  test_util::ChildProcess job =
      test_util::StartProcess({SLUICE_CLI, "run", config.string(), "--seconds", "60", "--autotune",
                               "--interval", "0.5", "--out", (dir / "out").string()},
                              dir);
  // Kill it as soon as a flushed trace shows a re-tune (the periodic write comes every second).
  bool seen = false;
  for (int i = 0; i < 300 && !seen; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::ifstream in(trace_path);
    std::stringstream text;
    text << in.rdbuf();
    seen = text.str().find("\"retunes\"") != std::string::npos;
  }
  job.Kill(SIGKILL);
  const test_util::ProcessResult r = job.Wait();
  EXPECT_TRUE(WIFSIGNALED(r.status)) << r.err;
  ASSERT_TRUE(seen) << "no re-tune was flushed to " << trace_path;
  const trace::Trace t = trace::ReadTrace(trace_path);
  ASSERT_EQ(t.pipelines.size(), 1u);
  EXPECT_FALSE(t.pipelines[0].retunes.empty());
  EXPECT_TRUE(t.job.cut_short);
}

}  // namespace
}  // namespace sluice::autotune
