// Tests for the runtime: building pipelines from configs (and the errors that names), element
// counts, epochs and ordering, back-pressure, and errors from ops.
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
// Configuration errors

using PipelineConfigTest = PipelineTest;

TEST_F(PipelineConfigTest, UnknownOpListsTheKnownOps) {
  const std::vector<std::string> names = OpRegistry::Global().Names();
  EXPECT_THAT(names, AllOf(testing::Contains("generate"), testing::Contains("batch"),
                           testing::Contains("throw_at")));
  EXPECT_EQ(CreateError(
                R"({"stages": [{"name": "src", "op": "generate"}, {"name": "x", "op": "nope"}]})"),
            fmt::format("cfg/p.json: stage 'x': key 'op': unknown op 'nope' (known ops: {})",
                        fmt::join(names, ", ")));
}

TEST_F(PipelineConfigTest, UnknownOpSuggestsTheClosestName) {
  EXPECT_THAT(CreateError(R"({"stages": [{"name": "src", "op": "generate"},
                                         {"name": "x", "op": "bacth"}]})"),
              HasSubstr("unknown op 'bacth' (did you mean 'batch'? known ops: "));
}

TEST_F(PipelineConfigTest, ParallelismOnASequentialOp) {
  EXPECT_EQ(CreateError(R"({"stages": [{"op": "generate"},
      {"name": "b", "op": "batch", "parallelism": 2, "args": {"size": 2}}]})"),
            "cfg/p.json: stage 'b': key 'parallelism': op 'batch' runs sequentially and does not "
            "support parallelism (only 1 is allowed)");
  // 1 is what a sequential op does anyway.
  EXPECT_NO_THROW(Make(R"({"stages": [{"op": "generate"},
      {"op": "batch", "parallelism": 1, "args": {"size": 2}}]})"));
}

TEST_F(PipelineConfigTest, ParallelismOnASourceThatClaimsToBeParallelizable) {
  EXPECT_EQ(CreateError(R"({"stages": [
      {"name": "src", "op": "parallel_claiming_source", "parallelism": 2}]})"),
            "cfg/p.json: stage 'src': key 'parallelism': op 'parallel_claiming_source' runs "
            "sequentially and does not support parallelism (only 1 is allowed)");
}

TEST_F(PipelineConfigTest, DeterministicOnASequentialOp) {
  EXPECT_EQ(CreateError(R"({"stages": [{"op": "generate"},
      {"name": "b", "op": "batch", "deterministic": true, "args": {"size": 2}}]})"),
            "cfg/p.json: stage 'b': key 'deterministic': op 'batch' runs sequentially; "
            "'deterministic' applies only to parallel ops");
}

TEST_F(PipelineConfigTest, UnorderedNeedsAllowReorder) {
  EXPECT_EQ(CreateError(R"({"stages": [{"op": "generate"},
      {"name": "map", "op": "burn", "parallelism": 2, "deterministic": false,
       "args": {"cpu_us": 1}}]})"),
            "cfg/p.json: stage 'map': key 'deterministic': false reorders outputs; set "
            "\"allow_reorder\": true on the stage to permit it");
  EXPECT_NO_THROW(Make(R"({"stages": [{"op": "generate"},
      {"op": "burn", "parallelism": 2, "deterministic": false, "allow_reorder": true,
       "args": {"cpu_us": 1}}]})"));
}

TEST_F(PipelineConfigTest, SourceNotFirst) {
  EXPECT_EQ(CreateError(R"({"stages": [{"op": "generate"}, {"op": "generate"}]})"),
            "cfg/p.json: stage 'generate_2': key 'op': 'generate' is a source and can only be "
            "the first stage");
}

TEST_F(PipelineConfigTest, FirstStageNotASource) {
  EXPECT_EQ(CreateError(R"({"stages": [{"op": "burn", "args": {"cpu_us": 1}}]})"),
            "cfg/p.json: stage 'burn': key 'op': the first stage must be a source (such as "
            "list_files or generate), but 'burn' consumes an input");
}

TEST_F(PipelineConfigTest, UnknownArgument) {
  EXPECT_EQ(CreateError(R"({"stages": [{"name": "gen", "op": "generate",
      "args": {"count": 3, "colour": "red"}}]})"),
            "cfg/p.json: stage 'gen': args.colour: unknown argument for op 'generate' (known: "
            "bytes, count)");
}

TEST_F(PipelineConfigTest, MissingRequiredArgument) {
  EXPECT_EQ(CreateError(R"({"stages": [{"op": "generate"}, {"name": "b", "op": "batch"}]})"),
            "cfg/p.json: stage 'b': args.size: required by op 'batch' but missing");
}

TEST_F(PipelineConfigTest, BadArgumentValue) {
  EXPECT_EQ(
      CreateError(R"({"stages": [{"name": "gen", "op": "generate", "args": {"count": -2}}]})"),
      "cfg/p.json: stage 'gen': args.count: expected -1 (endless) or a count >= 0");
  EXPECT_EQ(CreateError(R"({"stages": [{"op": "generate"},
      {"name": "b", "op": "batch", "args": {"size": "big"}}]})"),
            "cfg/p.json: stage 'b': args.size: expected an integer, got \"big\"");
}

// ---------------------------------------------------------------------------------------------
// Element counts, epochs, ordering

TEST_F(PipelineTest, CountsThroughGenerateBurnBatch) {
  auto p = Make(R"({"epochs": 3, "stages": [
      {"name": "gen", "op": "generate", "args": {"count": 10, "bytes": 2}},
      {"name": "burn", "op": "burn", "args": {"cpu_us": 0}},
      {"name": "batch", "op": "batch", "args": {"size": 4}}]})");
  std::vector<Element> out = Drain(*p);
  ASSERT_EQ(out.size(), 9u);  // 4 + 4 + 2 per epoch
  std::vector<int64_t> sizes;
  for (const Element& e : out) {
    ASSERT_EQ(e.tensors.size(), 1u);
    EXPECT_EQ(e.tensors[0].rank(), 2u);
    EXPECT_EQ(e.tensors[0].dim(1), 2);
    sizes.push_back(e.tensors[0].dim(0));
  }
  EXPECT_THAT(sizes, ElementsAre(4, 4, 2, 4, 4, 2, 4, 4, 2));
  Element e;
  EXPECT_FALSE(p->Next(&e));  // finished: further calls return false at once

  PipelineSnapshot snap = p->Snapshot();
  EXPECT_TRUE(snap.finished);
  EXPECT_EQ(snap.epoch, 2);
  EXPECT_EQ(StageNamed(snap, "gen").elements_in, 0);
  EXPECT_EQ(StageNamed(snap, "gen").elements_out, 30);
  EXPECT_EQ(StageNamed(snap, "burn").elements_in, 30);
  EXPECT_EQ(StageNamed(snap, "burn").elements_out, 30);
  EXPECT_EQ(StageNamed(snap, "batch").elements_in, 30);
  EXPECT_EQ(StageNamed(snap, "batch").elements_out, 9);
  EXPECT_EQ(StageNamed(snap, "batch").bytes_out, 3 * (8 + 8 + 4));
  EXPECT_EQ(snap.consumer.next_calls, 9);
  EXPECT_EQ(p->RunningThreads(), 0);
}

TEST_F(PipelineTest, DropRemainderAndEpochOverride) {
  PipelineOptions options;
  options.epochs = 2;
  auto p = Make(R"({"epochs": 5, "stages": [
      {"op": "generate", "args": {"count": 10}},
      {"name": "batch", "op": "batch", "args": {"size": 4, "drop_remainder": true}}]})",
                options);
  std::vector<Element> out = Drain(*p);
  ASSERT_EQ(out.size(), 4u);  // 2 full batches per epoch, the 2 leftover elements dropped
  for (const Element& e : out) EXPECT_EQ(e.tensors[0].dim(0), 4);
  EXPECT_EQ(StageNamed(p->Snapshot(), "batch").elements_in, 20);
  EXPECT_EQ(p->Snapshot().consumer.next_calls, 4);
}

TEST_F(PipelineTest, ParallelDeterministicMapKeepsOrder) {
  auto p = Make(R"({"stages": [
      {"op": "generate", "args": {"count": 60}},
      {"name": "jitter", "op": "jitter", "parallelism": 4, "args": {"us": 300}},
      {"name": "sleep", "op": "sleep", "parallelism": 4, "args": {"us": 5}}]})");
  EXPECT_THAT(DrainIds(*p), ElementsAreArray(Iota(60)));
  PipelineSnapshot snap = p->Snapshot();
  EXPECT_TRUE(StageNamed(snap, "jitter").async);
  EXPECT_TRUE(StageNamed(snap, "jitter").deterministic);
  EXPECT_EQ(StageNamed(snap, "jitter").parallelism, 4);
  EXPECT_EQ(StageNamed(snap, "sleep").elements_out, 60);
  EXPECT_EQ(snap.consumer.next_calls, 60);
}

TEST_F(PipelineTest, ParallelUnorderedMapDeliversEveryElementOnce) {
  auto p = Make(R"({"epochs": 2, "stages": [
      {"op": "generate", "args": {"count": 60}},
      {"name": "jitter", "op": "jitter", "parallelism": 4, "deterministic": false,
       "allow_reorder": true, "args": {"us": 300}}]})");
  std::vector<uint64_t> ids = DrainIds(*p);
  ASSERT_EQ(ids.size(), 120u);
  EXPECT_THAT(std::vector<uint64_t>(ids.begin(), ids.begin() + 60),
              UnorderedElementsAreArray(Iota(60)));
  EXPECT_THAT(std::vector<uint64_t>(ids.begin() + 60, ids.end()),
              UnorderedElementsAreArray(Iota(60)));
  EXPECT_FALSE(StageNamed(p->Snapshot(), "jitter").deterministic);
}

TEST_F(PipelineTest, StreamOpEndingItsEpochEarlyBehindAnOrderedParallelStage) {
  // take leaves the parallel stage's workers mid-epoch (some waiting for their turn to emit);
  // the epoch must still end and the next one start.
  auto p = Make(R"({"epochs": 3, "stages": [
      {"op": "generate", "args": {"count": 200}},
      {"op": "jitter", "parallelism": 4, "buffer_size": 1, "args": {"us": 200}},
      {"op": "take", "args": {"n": 5}}]})");
  std::vector<uint64_t> ids = DrainIds(*p);
  EXPECT_THAT(ids, ElementsAre(0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4));
  EXPECT_EQ(p->RunningThreads(), 0);
  p.reset();
  ExpectNoThreadsLeft();
}

TEST_F(PipelineTest, EndlessEpochsOfNothingEnd) {
  // Repeating an empty epoch forever would spin inside Next; like tf.data's repeat(), an
  // endless pipeline whose epoch produced nothing ends instead.
  auto p = Make(
      R"({"epochs": -1, "stages": [{"name": "gen", "op": "generate", "args": {"count": 0}}]})");
  Element e;
  EXPECT_FALSE(p->Next(&e));
  EXPECT_TRUE(p->Snapshot().finished);
  auto q = Make(R"({"epochs": -1, "stages": [
      {"op": "generate", "args": {"count": 10}},
      {"op": "filter", "parallelism": 2, "args": {"keep_fraction": 0.0}}]})");
  EXPECT_FALSE(q->Next(&e));
  EXPECT_EQ(q->RunningThreads(), 0);
  // Finite epochs that are empty simply end.
  auto r = Make(R"({"epochs": 3, "stages": [{"op": "generate", "args": {"count": 0}}]})");
  EXPECT_FALSE(r->Next(&e));
  EXPECT_EQ(r->Snapshot().epoch, 2);
}

// ---------------------------------------------------------------------------------------------
// Back-pressure

TEST_F(PipelineTest, BufferNeverHoldsMoreThanItsSize) {
  auto p = Make(R"({"stages": [
      {"op": "generate", "args": {"count": 40}},
      {"name": "ahead", "op": "burn", "buffer_size": 3, "args": {"cpu_us": 0}}]})");
  Element e;
  ASSERT_TRUE(p->Next(&e));
  EXPECT_EQ(e.id, 0u);
  // The consumer pauses: the producer runs ahead until the queue is full, and no further.
  ASSERT_TRUE(Eventually([&] { return StageNamed(p->Snapshot(), "ahead").queue_size == 3; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  StageSnapshot ahead = StageNamed(p->Snapshot(), "ahead");
  EXPECT_TRUE(ahead.async);
  EXPECT_EQ(ahead.buffer_size, 3);
  EXPECT_EQ(ahead.queue_size, 3);
  EXPECT_EQ(ahead.queue_max, 3);
  EXPECT_EQ(p->RunningThreads(), 1);

  std::vector<uint64_t> expected = Iota(40);
  expected.erase(expected.begin());
  EXPECT_THAT(DrainIds(*p), ElementsAreArray(expected));
  ahead = StageNamed(p->Snapshot(), "ahead");
  EXPECT_EQ(ahead.queue_max, 3);
  EXPECT_EQ(ahead.queue_size, 0);
  EXPECT_EQ(ahead.elements_out, 40);
  EXPECT_GT(ahead.blocked_output_seconds, 0.0);  // it waited for room while the consumer slept
}

// An ordered parallel stage parks results in a reorder window of workers + buffer_size slots:
// its occupancy is what the window holds, never more.
TEST_F(PipelineTest, OrderedParallelStageHoldsAtMostWorkersPlusBuffer) {
  auto p = Make(R"({"stages": [
      {"op": "generate", "args": {"count": 30}},
      {"name": "ahead", "op": "sleep", "parallelism": 3, "buffer_size": 3, "args": {"us": 10}}]})");
  Element e;
  ASSERT_TRUE(p->Next(&e));
  ASSERT_TRUE(Eventually([&] { return StageNamed(p->Snapshot(), "ahead").queue_size == 6; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(StageNamed(p->Snapshot(), "ahead").queue_max, 6);
  EXPECT_EQ(DrainIds(*p).size(), 29u);
  EXPECT_EQ(StageNamed(p->Snapshot(), "ahead").queue_max, 6);
}

// Unordered workers push into a queue of buffer_size.
TEST_F(PipelineTest, UnorderedParallelStageBufferNeverHoldsMoreThanItsSize) {
  auto p = Make(R"({"stages": [
      {"op": "generate", "args": {"count": 30}},
      {"name": "ahead", "op": "sleep", "parallelism": 3, "buffer_size": 3, "args": {"us": 10},
       "deterministic": false, "allow_reorder": true}]})");
  Element e;
  ASSERT_TRUE(p->Next(&e));
  ASSERT_TRUE(Eventually([&] { return StageNamed(p->Snapshot(), "ahead").queue_size == 3; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(StageNamed(p->Snapshot(), "ahead").queue_max, 3);
  EXPECT_EQ(DrainIds(*p).size(), 29u);
  EXPECT_EQ(StageNamed(p->Snapshot(), "ahead").queue_max, 3);
}

// ---------------------------------------------------------------------------------------------
// Errors from ops

TEST_F(PipelineTest, InlineOpErrorReachesTheConsumerWithTheStageName) {
  auto p = Make(R"({"stages": [
      {"op": "generate", "args": {"count": 10}},
      {"name": "boom", "op": "throw_at", "args": {"at": 3}}]})");
  auto [ids, message] = PullUntilError(*p);
  EXPECT_THAT(ids, ElementsAre(0, 1, 2));
  EXPECT_EQ(message, "stage 'boom' (throw_at): throw_at exploded at element 3");
  // Later calls report the same failure.
  Element e;
  try {
    p->Next(&e);
    ADD_FAILURE() << "no error on the second call";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), message);
  }
  p->Stop();
  EXPECT_EQ(p->RunningThreads(), 0);
  p.reset();
  ExpectNoThreadsLeft();
}

TEST_F(PipelineTest, ParallelOpErrorReachesTheConsumerWithTheStageName) {
  auto p = Make(R"({"stages": [
      {"op": "generate", "args": {"count": 50}},
      {"name": "boom", "op": "throw_at", "parallelism": 3, "args": {"at": 3}},
      {"op": "sleep", "parallelism": 2, "buffer_size": 2, "args": {"us": 5}}]})");
  auto [ids, message] = PullUntilError(*p);
  EXPECT_THAT(ids, Each(Lt(3u)));  // ordered: nothing after the failing element
  EXPECT_THAT(message, HasSubstr("stage 'boom'"));
  EXPECT_THAT(message, HasSubstr("throw_at exploded at element 3"));
  Element e;
  EXPECT_THROW(p->Next(&e), Error);
  p->Stop();
  EXPECT_EQ(p->RunningThreads(), 0);
  p.reset();
  ExpectNoThreadsLeft();
}

TEST_F(PipelineTest, OpErrorBehindAPrefetchReachesTheConsumer) {
  auto p = Make(R"({"stages": [
      {"op": "generate", "args": {"count": 50}},
      {"name": "boom", "op": "throw_at", "args": {"at": 7}},
      {"name": "prefetch", "op": "prefetch", "buffer_size": 2}]})");
  auto [ids, message] = PullUntilError(*p);
  EXPECT_THAT(ids, Each(Lt(7u)));
  EXPECT_EQ(message, "stage 'boom' (throw_at): throw_at exploded at element 7");
  p.reset();  // destruction alone joins everything
  ExpectNoThreadsLeft();
}

TEST_F(PipelineTest, ErrorIsChargedToTheFailingStageNotTheOnePullingIt) {
  // boom runs inline on the parallel burn stage's worker threads.
  auto p = Make(R"({"stages": [
      {"op": "generate", "args": {"count": 50}},
      {"name": "boom", "op": "throw_at", "args": {"at": 5}},
      {"name": "burn", "op": "burn", "parallelism": 2, "args": {"cpu_us": 1}}]})");
  auto [ids, message] = PullUntilError(*p);
  EXPECT_EQ(message, "stage 'boom' (throw_at): throw_at exploded at element 5");
  p->Stop();
  EXPECT_EQ(p->RunningThreads(), 0);
}

TEST_F(PipelineTest, ErrorStartingAnEpochReachesTheConsumerWithTheStageName) {
  // The cache cannot create its recording in a missing directory.
  const std::string cache = (dir_ / "missing" / "c.cache").string();
  auto p = Make(fmt::format(R"({{"stages": [
      {{"op": "generate", "args": {{"count": 5}}}},
      {{"name": "c", "op": "cache", "args": {{"path": "{}"}}}}]}})",
                            cache));
  auto [ids, message] = PullUntilError(*p);
  EXPECT_THAT(ids, IsEmpty());
  EXPECT_THAT(message, HasSubstr("stage 'c' (cache): cache file '" + cache + ".partial."));
  EXPECT_THAT(message, HasSubstr("No such file or directory"));
  // Later calls report the same failure rather than running a half-built pipeline.
  Element e;
  EXPECT_THROW(p->Next(&e), Error);
  EXPECT_THROW(p->Next(&e), Error);
  p.reset();
  ExpectNoThreadsLeft();
}

}  // namespace
}  // namespace sluice::pipeline
