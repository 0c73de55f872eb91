// Tests for the runtime: stopping a pipeline (early, from another thread, by destruction) and
// the counters its snapshots report.
#include "sluice/pipeline/pipeline.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/op.h"
#include "tests/common/fake_clock.h"
#include "tests/pipeline/pipeline_test_util.h"

namespace sluice::pipeline {
namespace {

using ::testing::AllOf;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Lt;
using ::testing::UnorderedElementsAreArray;
using namespace test_util;  // NOLINT(google-build-using-namespace): the runtime tests' helpers

// ---------------------------------------------------------------------------------------------
// Stopping

TEST_F(PipelineTest, EarlyStopOfAnEndlessPipelineJoinsEveryThread) {
  auto p = Make(R"({"stages": [
      {"op": "generate", "args": {"count": -1, "bytes": 16}},
      {"op": "burn", "parallelism": 2, "args": {"cpu_us": 20}},
      {"op": "sleep", "parallelism": 2, "buffer_size": 4, "args": {"us": 10}},
      {"op": "prefetch", "buffer_size": 2}]})");
  EXPECT_EQ(p->RunningThreads(), 0);  // threads start on the first Next
  std::vector<uint64_t> ids;
  Element e;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(p->Next(&e));
    ids.push_back(e.id);
  }
  EXPECT_THAT(ids, ElementsAre(0, 1, 2, 3, 4));
  EXPECT_TRUE(Eventually([&] { return p->RunningThreads() == 5; }));  // 2 + 2 + 1 workers
  p->Stop();
  EXPECT_EQ(p->RunningThreads(), 0);
  EXPECT_FALSE(p->Next(&e));
  p->Stop();  // twice is fine
  EXPECT_FALSE(p->Next(&e));
  EXPECT_EQ(p->Snapshot().consumer.next_calls, 5);
  p.reset();
  ExpectNoThreadsLeft();
}

TEST_F(PipelineTest, DestroyingARunningPipelineJoinsEveryThread) {
  auto p = Make(R"({"stages": [
      {"op": "generate", "args": {"count": -1}},
      {"op": "jitter", "parallelism": 3, "buffer_size": 2, "args": {"us": 50}},
      {"op": "prefetch", "buffer_size": 1}]})");
  Element e;
  ASSERT_TRUE(p->Next(&e));
  ASSERT_TRUE(p->Next(&e));
  p.reset();
  ExpectNoThreadsLeft();
}

TEST_F(PipelineTest, StopFromAnotherThreadWakesABlockedConsumer) {
  // Each element takes 20 ms, so the consumer is blocked in Next when Stop arrives.
  auto p = Make(R"({"stages": [
      {"op": "generate", "args": {"count": -1}},
      {"op": "sleep", "parallelism": 2, "args": {"us": 20000}},
      {"op": "prefetch", "buffer_size": 1}]})");
  std::atomic<int> outputs{0};
  std::atomic<bool> started{false};
  std::thread consumer([&] {
    Element e;
    started.store(true);
    while (p->Next(&e)) outputs.fetch_add(1);
  });
  ASSERT_TRUE(Eventually([&] { return started.load() && p->RunningThreads() == 3; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  p->Stop();
  consumer.join();  // Next returned false
  EXPECT_EQ(p->RunningThreads(), 0);
  Element e;
  EXPECT_FALSE(p->Next(&e));
  EXPECT_EQ(p->Snapshot().consumer.next_calls, outputs.load());
  p.reset();
  ExpectNoThreadsLeft();
}

TEST_F(PipelineTest, StopFromAnotherThreadWhileTheConsumerRunsAnInlineStage) {
  // The consumer's own thread is inside the sleep op when Stop arrives.
  auto p = Make(R"({"stages": [
      {"op": "generate", "args": {"count": -1}},
      {"op": "sleep", "args": {"us": 20000}}]})");
  std::atomic<bool> started{false};
  std::thread consumer([&] {
    Element e;
    started.store(true);
    while (p->Next(&e)) {
    }
  });
  ASSERT_TRUE(Eventually([&] { return started.load(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  p->Stop();
  consumer.join();
  Element e;
  EXPECT_FALSE(p->Next(&e));
}

TEST_F(PipelineTest, DestroyingAnUnstartedPipeline) {
  auto p = Make(R"({"stages": [{"op": "generate"}, {"op": "burn", "parallelism": 2,
      "args": {"cpu_us": 1}}]})");
  EXPECT_EQ(p->RunningThreads(), 0);
  p.reset();
  ExpectNoThreadsLeft();
}

// ---------------------------------------------------------------------------------------------
// Counters

TEST_F(PipelineTest, BurnCpuSecondsInline) {
  constexpr int kN = 100;
  auto p = Make(fmt::format(R"({{"stages": [
      {{"op": "generate", "args": {{"count": {}}}}},
      {{"name": "burn", "op": "burn", "args": {{"cpu_us": 1000}}}}]}})",
                            kN));
  EXPECT_EQ(DrainIds(*p).size(), static_cast<size_t>(kN));
  StageSnapshot burn = StageNamed(p->Snapshot(), "burn");
  EXPECT_FALSE(burn.async);
  EXPECT_EQ(burn.elements_in, kN);
  EXPECT_EQ(burn.elements_out, kN);
  ExpectChargedCpu(burn.cpu_seconds, kN * 1e-3);
  EXPECT_GE(burn.busy_seconds, burn.cpu_seconds * 0.9);
}

TEST_F(PipelineTest, BurnCpuSecondsOnTwoWorkers) {
  constexpr int kN = 100;
  auto p = Make(fmt::format(R"({{"stages": [
      {{"name": "gen", "op": "generate", "args": {{"count": {}}}}},
      {{"name": "burn", "op": "burn", "parallelism": 2, "args": {{"cpu_us": 1000}}}}]}})",
                            kN));
  EXPECT_THAT(DrainIds(*p), ElementsAreArray(Iota(kN)));
  PipelineSnapshot snap = p->Snapshot();
  StageSnapshot burn = StageNamed(snap, "burn");
  EXPECT_TRUE(burn.async);
  EXPECT_EQ(burn.parallelism, 2);
  EXPECT_EQ(burn.elements_in, kN);
  EXPECT_EQ(burn.elements_out, kN);
  ExpectChargedCpu(burn.cpu_seconds, kN * 1e-3);
  EXPECT_EQ(StageNamed(snap, "gen").elements_out, kN);
  EXPECT_LT(StageNamed(snap, "gen").cpu_seconds, 0.1 * burn.cpu_seconds);
  EXPECT_EQ(snap.consumer.next_calls, kN);
}

TEST_F(PipelineTest, InlineStagePulledByParallelWorkersIsChargedItsCpu) {
  // burn runs inline on the two sleep workers' threads, under their input lock.
  constexpr int kN = 100;
  auto p = Make(fmt::format(R"({{"stages": [
      {{"op": "generate", "args": {{"count": {}}}}},
      {{"name": "burn", "op": "burn", "args": {{"cpu_us": 1000}}}},
      {{"name": "par", "op": "sleep", "parallelism": 2, "args": {{"us": 1}}}}]}})",
                            kN));
  EXPECT_THAT(DrainIds(*p), ElementsAreArray(Iota(kN)));
  PipelineSnapshot snap = p->Snapshot();
  StageSnapshot burn = StageNamed(snap, "burn");
  EXPECT_FALSE(burn.async);
  EXPECT_EQ(burn.elements_in, kN);
  EXPECT_EQ(burn.elements_out, kN);
  ExpectChargedCpu(burn.cpu_seconds, kN * 1e-3);
  EXPECT_LT(StageNamed(snap, "par").cpu_seconds, 0.5 * burn.cpu_seconds);
  EXPECT_EQ(StageNamed(snap, "par").elements_in, kN);
}

TEST_F(PipelineTest, SleepUsesLittleCpu) {
  auto p = Make(R"({"stages": [
      {"op": "generate", "args": {"count": 10}},
      {"name": "sleep", "op": "sleep", "args": {"us": 3000}}]})");
  EXPECT_EQ(DrainIds(*p).size(), 10u);
  StageSnapshot sleep = StageNamed(p->Snapshot(), "sleep");
  EXPECT_GE(sleep.busy_seconds, 10 * 3e-3);
  EXPECT_LT(sleep.cpu_seconds, 0.25 * sleep.busy_seconds);
}

// The consumer's time between Next() calls (its training step) comes from sluice's clock, which
// the test moves forward 1 ms per step instead of sleeping.
TEST_F(PipelineTest, ConsumerCountsOutputsAndWaits) {
  sluice::test_util::ScopedFakeClock clock;
  auto p = Make(R"({"stages": [
      {"op": "generate", "args": {"count": 12}},
      {"op": "sleep", "parallelism": 2, "args": {"us": 500}},
      {"op": "batch", "args": {"size": 5}}]})");
  Element e;
  int outputs = 0;
  while (p->Next(&e)) {
    ++outputs;
    clock.Advance(1'000'000);  // a 1 ms training step
  }
  PipelineSnapshot snap = p->Snapshot();
  EXPECT_EQ(outputs, 3);
  EXPECT_EQ(snap.consumer.next_calls, 3);
  EXPECT_GT(snap.consumer.wait_seconds, 0.0);
  EXPECT_GE(snap.consumer.between_seconds, 3 * 1e-3);
  EXPECT_GT(snap.seconds, 0.0);
}

TEST_F(PipelineTest, SnapshotsFromAnotherThreadWhileRunning) {
  auto p = Make(R"({"name": "watched", "epochs": 2, "stages": [
      {"op": "generate", "args": {"count": 200}},
      {"name": "burn", "op": "burn", "parallelism": 2, "buffer_size": 4, "args": {"cpu_us": 5}},
      {"op": "batch", "args": {"size": 8}},
      {"op": "prefetch", "buffer_size": 2}]})");
  std::atomic<bool> done{false};
  std::atomic<int> seen{0};
  std::thread watcher([&] {
    while (!done.load()) {
      ForEachLivePipeline([&](const Pipeline& live) {
        if (live.name() != "watched") return;
        PipelineSnapshot snap = live.Snapshot();
        EXPECT_LE(StageNamed(snap, "burn").elements_out, 400);
        EXPECT_LE(StageNamed(snap, "burn").queue_max, 2 + 4);  // workers + buffer_size
        seen.fetch_add(1);
      });
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  EXPECT_EQ(DrainIds(*p).size(), 50u);
  done.store(true);
  watcher.join();
  EXPECT_EQ(StageNamed(p->Snapshot(), "burn").elements_out, 400);
}

}  // namespace
}  // namespace sluice::pipeline
