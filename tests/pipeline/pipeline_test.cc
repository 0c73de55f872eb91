// Tests for the runtime: building pipelines from configs, element counts, ordering,
// back-pressure, error propagation, stopping, counters, and the built-in source, stream,
// synthetic and cache ops.
#include "sluice/pipeline/pipeline.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <numeric>
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
#include "tests/common/files.h"

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

// ---------------------------------------------------------------------------------------------
// Test ops, registered the way user-defined ops are.

// Passes elements through and throws std::runtime_error at the element whose id is `at`.
class ThrowAtOp final : public MapOp {
 public:
  explicit ThrowAtOp(OpArgs& args) : at_(static_cast<uint64_t>(args.Int("at"))) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    if (in.id == at_) throw std::runtime_error(fmt::format("throw_at exploded at element {}", at_));
    out.push_back(std::move(in));
  }

 private:
  uint64_t at_;
};
SLUICE_REGISTER_OP("throw_at", ThrowAtOp);

// Sleeps long on every third element and not at all on the others, so that parallel workers
// finish out of order.
class JitterOp final : public MapOp {
 public:
  explicit JitterOp(OpArgs& args) : us_(args.Int("us", 300)) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    if (in.id % 3 == 0) std::this_thread::sleep_for(std::chrono::microseconds(us_));
    out.push_back(std::move(in));
  }

 private:
  int64_t us_;
};
SLUICE_REGISTER_OP("jitter", JitterOp);

// A stream op that ends its epoch after `n` elements, leaving the rest of its input unread.
class TakeOp final : public StreamOp {
 public:
  explicit TakeOp(OpArgs& args) : n_(args.Int("n")) {}
  OpProperties properties() const override { return {OpKind::kStream, false, true, false}; }
  void BeginEpoch(int64_t) override { taken_ = 0; }
  bool Next(Input& in, Element* out, const OpContext&) override {
    if (taken_ == n_ || !in.Next(out)) return false;
    ++taken_;
    return true;
  }

 private:
  int64_t n_;
  int64_t taken_ = 0;
};
SLUICE_REGISTER_OP("take", TakeOp);

// A source that (wrongly) claims to be parallelizable: sources always run on one thread.
class ParallelClaimingSourceOp final : public SourceOp {
 public:
  explicit ParallelClaimingSourceOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kSource, true, true, false}; }
  bool Next(Element*, const OpContext&) override { return false; }
};
SLUICE_REGISTER_OP("parallel_claiming_source", ParallelClaimingSourceOp);

// ---------------------------------------------------------------------------------------------
// Helpers

constexpr char kOrigin[] = "cfg/p.json";

std::unique_ptr<Pipeline> Make(const std::string& json, const PipelineOptions& options = {}) {
  return Pipeline::Create(config::Document::Parse(json, kOrigin), options);
}

// The message Pipeline::Create throws for `json`; fails the test when it does not throw.
std::string CreateError(const std::string& json) {
  try {
    Make(json);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for: " << json;
  return "";
}

// Pulls every output; returns their ids.
std::vector<uint64_t> DrainIds(Pipeline& p) {
  std::vector<uint64_t> ids;
  Element e;
  while (p.Next(&e)) ids.push_back(e.id);
  return ids;
}

std::vector<Element> Drain(Pipeline& p) {
  std::vector<Element> out;
  Element e;
  while (p.Next(&e)) out.push_back(std::move(e));
  return out;
}

std::vector<uint64_t> Iota(uint64_t n) {
  std::vector<uint64_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

// Splits a stream of ids into epochs, given that ids ascend within an epoch.
std::vector<std::vector<uint64_t>> SplitAscending(const std::vector<uint64_t>& ids) {
  std::vector<std::vector<uint64_t>> epochs;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i == 0 || ids[i] <= ids[i - 1]) epochs.emplace_back();
    epochs.back().push_back(ids[i]);
  }
  return epochs;
}

const StageSnapshot& StageNamed(const PipelineSnapshot& snap, const std::string& name) {
  for (const StageSnapshot& s : snap.stages) {
    if (s.name == name) return s;
  }
  throw std::logic_error("no stage " + name);
}

// Threads of this process, from /proc/self/task.
int TaskCount() {
  int n = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/self/task")) {
    ++n;
  }
  return n;
}

// Waits (bounded) until `done` holds; returns whether it did. A joined thread's /proc entry
// may outlive pthread_join by a moment, so thread counts are compared this way.
bool Eventually(const std::function<bool()>& done) {
  const int64_t deadline = MonotonicNanos() + 10'000'000'000;
  while (!done()) {
    if (MonotonicNanos() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Fixture: a fresh temporary directory per test and the process's thread count before it.
class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice_pipeline_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    // TSan starts a helper thread of its own at the first thread creation: get that done
    // before counting, so that only the pipeline's threads make a difference.
    std::thread([] {}).join();
    tasks_before_ = TaskCount();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Every thread a pipeline started has gone.
  void ExpectNoThreadsLeft() {
    EXPECT_TRUE(Eventually([&] { return TaskCount() == tasks_before_; }))
        << "threads before: " << tasks_before_ << ", now: " << TaskCount();
  }

  void WriteFile(const std::string& name, const std::string& contents) {
    std::ofstream(dir_ / name, std::ios::binary) << contents;
  }

  std::vector<std::string> DirEntries() const { return sluice::test_util::SortedEntries(dir_); }

  std::filesystem::path dir_;
  int tasks_before_ = 0;
};

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

// Pulls until Next throws; returns the ids delivered before and the error's message.
std::pair<std::vector<uint64_t>, std::string> PullUntilError(Pipeline& p) {
  std::vector<uint64_t> ids;
  Element e;
  try {
    while (p.Next(&e)) ids.push_back(e.id);
  } catch (const Error& error) {
    return {ids, error.what()};
  }
  ADD_FAILURE() << "the pipeline ended without an error";
  return {ids, ""};
}

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
  EXPECT_NEAR(burn.cpu_seconds, kN * 1e-3, kN * 1e-4);
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
  EXPECT_NEAR(burn.cpu_seconds, kN * 1e-3, kN * 1e-4);
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
  EXPECT_NEAR(burn.cpu_seconds, kN * 1e-3, kN * 1e-4);
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

TEST_F(PipelineTest, ConsumerCountsOutputsAndWaits) {
  auto p = Make(R"({"stages": [
      {"op": "generate", "args": {"count": 12}},
      {"op": "sleep", "parallelism": 2, "args": {"us": 500}},
      {"op": "batch", "args": {"size": 5}}]})");
  Element e;
  int outputs = 0;
  while (p->Next(&e)) {
    ++outputs;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
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

// ---------------------------------------------------------------------------------------------
// Built-in ops

TEST_F(PipelineTest, SnapshotNamesTheWorkersThreads) {
  auto p = Make(R"({"stages": [{"op": "generate", "args": {"count": -1}},
      {"name": "work", "op": "burn", "args": {"cpu_us": 0}, "parallelism": 2, "buffer_size": 4},
      {"name": "inline", "op": "burn", "args": {"cpu_us": 0}}]})");
  Element e;
  ASSERT_TRUE(p->Next(&e));
  // Both workers are running once the consumer got an element from each, or soon after.
  PipelineSnapshot snap;
  for (int i = 0; i < 1000; ++i) {
    snap = p->Snapshot();
    if (snap.stages[1].workers[0].tid != 0 && snap.stages[1].workers[1].tid != 0) break;
    ASSERT_TRUE(p->Next(&e));
  }
  ASSERT_EQ(snap.stages[1].workers.size(), 2u);
  for (const WorkerSnapshot& w : snap.stages[1].workers) {
    EXPECT_TRUE(std::filesystem::exists(fmt::format("/proc/self/task/{}", w.tid))) << w.tid;
  }
  ASSERT_EQ(snap.stages[2].workers.size(), 1u);
  EXPECT_EQ(snap.stages[2].workers[0].tid, 0);
  p->Stop();
  const PipelineSnapshot stopped = p->Snapshot();
  for (const WorkerSnapshot& w : stopped.stages[1].workers) EXPECT_EQ(w.tid, 0);
}

TEST_F(PipelineTest, FilterKeepsTheSameElementsEveryEpoch) {
  auto p = Make(R"({"epochs": 3, "stages": [
      {"op": "generate", "args": {"count": 200}},
      {"name": "filter", "op": "filter", "args": {"keep_fraction": 0.5, "seed": 9}}]})");
  std::vector<std::vector<uint64_t>> epochs = SplitAscending(DrainIds(*p));
  ASSERT_EQ(epochs.size(), 3u);
  EXPECT_EQ(epochs[1], epochs[0]);
  EXPECT_EQ(epochs[2], epochs[0]);
  EXPECT_GT(epochs[0].size(), 60u);
  EXPECT_LT(epochs[0].size(), 140u);
  StageSnapshot filter = StageNamed(p->Snapshot(), "filter");
  EXPECT_EQ(filter.elements_in, 600);
  EXPECT_EQ(filter.elements_out, static_cast<int64_t>(3 * epochs[0].size()));
}

TEST_F(PipelineTest, FilterBySize) {
  auto p = Make(R"({"stages": [
      {"op": "generate", "args": {"count": 5, "bytes": 4}},
      {"op": "filter", "args": {"min_bytes": 5}}]})");
  EXPECT_THAT(DrainIds(*p), IsEmpty());
  auto q = Make(R"({"stages": [
      {"op": "generate", "args": {"count": 5, "bytes": 4}},
      {"op": "filter", "args": {"max_bytes": 4}}]})");
  EXPECT_EQ(DrainIds(*q).size(), 5u);
}

TEST_F(PipelineTest, ShuffleWithASeedIsAReproduciblePermutation) {
  const std::string config = R"({"epochs": 2, "stages": [
      {"op": "generate", "args": {"count": 64}},
      {"op": "shuffle", "args": {"buffer": 16, "seed": 5}}]})";
  auto p = Make(config);
  std::vector<uint64_t> ids = DrainIds(*p);
  ASSERT_EQ(ids.size(), 128u);
  std::vector<uint64_t> first(ids.begin(), ids.begin() + 64);
  std::vector<uint64_t> second(ids.begin() + 64, ids.end());
  EXPECT_THAT(first, UnorderedElementsAreArray(Iota(64)));
  EXPECT_THAT(second, UnorderedElementsAreArray(Iota(64)));
  EXPECT_NE(first, Iota(64));
  EXPECT_NE(second, first);  // each epoch draws anew
  // The same seed and epoch give the same order.
  auto again = Make(config);
  EXPECT_EQ(DrainIds(*again), ids);
}

TEST_F(PipelineTest, ListFilesIsSortedAndShufflesWithASeed) {
  std::vector<std::string> expected;
  for (char c : std::string("hgfedcba")) {
    WriteFile(std::string(1, c) + ".txt", std::string("contents of ") + c);
    expected.push_back((dir_ / (std::string(1, c) + ".txt")).string());
  }
  WriteFile("z.dat", "not matched");
  std::sort(expected.begin(), expected.end());
  const std::string pattern = (dir_ / "*.txt").string();

  auto p = Make(fmt::format(R"({{"stages": [
      {{"name": "files", "op": "list_files", "args": {{"pattern": "{}"}}}}]}})",
                            pattern));
  std::vector<std::string> paths;
  for (const Element& e : Drain(*p)) paths.push_back(e.path);
  EXPECT_EQ(paths, expected);

  const std::string shuffled = fmt::format(R"({{"epochs": 2, "stages": [
      {{"name": "files", "op": "list_files",
        "args": {{"pattern": "{}", "shuffle": true, "seed": 3}}}}]}})",
                                           pattern);
  auto q = Make(shuffled);
  std::vector<std::string> order;
  for (const Element& e : Drain(*q)) order.push_back(e.path);
  ASSERT_EQ(order.size(), 16u);
  std::vector<std::string> epoch0(order.begin(), order.begin() + 8);
  std::vector<std::string> epoch1(order.begin() + 8, order.end());
  EXPECT_THAT(epoch0, UnorderedElementsAreArray(expected));
  EXPECT_THAT(epoch1, UnorderedElementsAreArray(expected));
  EXPECT_NE(epoch0, expected);
  EXPECT_NE(epoch1, epoch0);
  EXPECT_FALSE(q->Snapshot().stages[0].properties.deterministic);
  auto again = Make(shuffled);
  std::vector<std::string> order_again;
  for (const Element& e : Drain(*again)) order_again.push_back(e.path);
  EXPECT_EQ(order_again, order);
}

TEST_F(PipelineTest, ListFilesWithNoMatchNamesThePattern) {
  const std::string pattern = (dir_ / "*.nope").string();
  EXPECT_EQ(CreateError(fmt::format(R"({{"stages": [
      {{"name": "files", "op": "list_files", "args": {{"pattern": "{}"}}}}]}})",
                                    pattern)),
            fmt::format("cfg/p.json: stage 'files': args.pattern: no files match '{}'", pattern));
}

TEST_F(PipelineTest, ReadFileReadsContents) {
  WriteFile("a.txt", "alpha");
  WriteFile("b.txt", "");
  WriteFile("c.txt", std::string(100000, 'c'));
  auto p = Make(fmt::format(R"({{"stages": [
      {{"op": "list_files", "args": {{"pattern": "{}"}}}},
      {{"name": "read", "op": "read_file", "parallelism": 2}}]}})",
                            (dir_ / "*.txt").string()));
  std::vector<Element> out = Drain(*p);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].text(), "alpha");
  EXPECT_EQ(out[1].text(), "");
  EXPECT_EQ(out[2].text(), std::string(100000, 'c'));
  EXPECT_EQ(StageNamed(p->Snapshot(), "read").bytes_out, 100005);
}

TEST_F(PipelineTest, ReadFileOfAVanishedFileNamesIt) {
  WriteFile("a.txt", "alpha");
  auto p = Make(fmt::format(R"({{"stages": [
      {{"op": "list_files", "args": {{"pattern": "{}"}}}},
      {{"name": "read", "op": "read_file"}}]}})",
                            (dir_ / "*.txt").string()));
  std::filesystem::remove(dir_ / "a.txt");
  auto [ids, message] = PullUntilError(*p);
  EXPECT_EQ(message, fmt::format("stage 'read' (read_file): cannot open '{}': No such file or "
                                 "directory",
                                 (dir_ / "a.txt").string()));
}

TEST_F(PipelineTest, ReadThrottledRespectsItsRate) {
  // 20 elements of 1 MB at 200 MB/s need at least 0.1 s; only a lower bound is checked.
  auto p = Make(R"({"stages": [
      {"name": "disk", "op": "read_throttled",
       "args": {"count": 20, "bytes": 1000000, "mb_per_s": 200}}]})");
  const int64_t t0 = MonotonicNanos();
  std::vector<Element> out = Drain(*p);
  const double seconds = (MonotonicNanos() - t0) * 1e-9;
  ASSERT_EQ(out.size(), 20u);
  EXPECT_EQ(out[0].ByteSize(), 1000000u);
  EXPECT_GE(seconds, 0.08);
  EXPECT_EQ(StageNamed(p->Snapshot(), "disk").bytes_out, 20'000'000);
}

// ---------------------------------------------------------------------------------------------
// Cache

TEST_F(PipelineTest, MemoryCacheServesLaterEpochsWithoutUpstream) {
  constexpr int kN = 20;
  auto p = Make(fmt::format(R"({{"epochs": 3, "stages": [
      {{"name": "gen", "op": "generate", "args": {{"count": {}, "bytes": 3}}}},
      {{"name": "up", "op": "burn", "args": {{"cpu_us": 0}}}},
      {{"name": "cache", "op": "cache"}}]}})",
                            kN));
  std::vector<uint64_t> ids = DrainIds(*p);
  ASSERT_EQ(ids.size(), 3u * kN);
  for (int epoch = 0; epoch < 3; ++epoch) {
    EXPECT_THAT(std::vector<uint64_t>(ids.begin() + epoch * kN, ids.begin() + (epoch + 1) * kN),
                ElementsAreArray(Iota(kN)));
  }
  PipelineSnapshot snap = p->Snapshot();
  EXPECT_EQ(StageNamed(snap, "gen").elements_out, kN);
  EXPECT_EQ(StageNamed(snap, "up").elements_out, kN);
  EXPECT_EQ(StageNamed(snap, "cache").elements_in, kN);
  EXPECT_EQ(StageNamed(snap, "cache").elements_out, 3 * kN);
  EXPECT_EQ(snap.consumer.next_calls, 3 * kN);
}

TEST_F(PipelineTest, DiskCacheServesANewPipelineWithoutUpstream) {
  WriteFile("a.txt", "alpha");
  WriteFile("b.txt", "bravo!");
  const std::string cache = (dir_ / "data.cache").string();
  const std::string config = fmt::format(R"({{"stages": [
      {{"name": "files", "op": "list_files", "args": {{"pattern": "{}"}}}},
      {{"name": "read", "op": "read_file"}},
      {{"name": "cache", "op": "cache", "args": {{"path": "{}"}}}}]}})",
                                         (dir_ / "*.txt").string(), cache);
  auto first = Make(config);
  std::vector<Element> recorded = Drain(*first);
  ASSERT_EQ(recorded.size(), 2u);
  EXPECT_TRUE(std::filesystem::exists(cache));  // complete after the first epoch
  first.reset();
  EXPECT_THAT(DirEntries(), ElementsAre("a.txt", "b.txt", "data.cache"));

  auto second = Make(config);
  std::vector<Element> replayed = Drain(*second);
  ASSERT_EQ(replayed.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(replayed[i].id, recorded[i].id);
    EXPECT_EQ(replayed[i].path, recorded[i].path);
    EXPECT_EQ(replayed[i].text(), recorded[i].text());
  }
  PipelineSnapshot snap = second->Snapshot();
  EXPECT_EQ(StageNamed(snap, "files").elements_out, 0);
  EXPECT_EQ(StageNamed(snap, "read").elements_out, 0);
  EXPECT_EQ(StageNamed(snap, "cache").elements_out, 2);
}

TEST_F(PipelineTest, DiskCacheKeepsTensorsAcrossEpochs) {
  const std::string cache = (dir_ / "t.cache").string();
  const std::string config = fmt::format(R"({{"epochs": 2, "stages": [
      {{"name": "gen", "op": "generate", "args": {{"count": 6, "bytes": 5}}}},
      {{"op": "batch", "args": {{"size": 4}}}},
      {{"name": "cache", "op": "cache", "args": {{"path": "{}"}}}}]}})",
                                         cache);
  auto p = Make(config);
  std::vector<Element> out = Drain(*p);
  ASSERT_EQ(out.size(), 4u);
  for (size_t i = 0; i < 2; ++i) {
    const Tensor& a = out[i].tensors.at(0);
    const Tensor& b = out[i + 2].tensors.at(0);
    EXPECT_EQ(a.shape(), b.shape());
    EXPECT_EQ(a.dtype(), b.dtype());
    EXPECT_EQ(std::vector<uint8_t>(a.data<uint8_t>(), a.data<uint8_t>() + a.byte_size()),
              std::vector<uint8_t>(b.data<uint8_t>(), b.data<uint8_t>() + b.byte_size()));
  }
  EXPECT_EQ(out[2].tensors[0].shape(), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(out[3].tensors[0].shape(), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(StageNamed(p->Snapshot(), "gen").elements_out, 6);
}

TEST_F(PipelineTest, StoppedFirstEpochLeavesNoCacheFile) {
  const std::string cache = (dir_ / "data.cache").string();
  auto p = Make(fmt::format(R"({{"stages": [
      {{"name": "gen", "op": "generate", "args": {{"count": 20}}}},
      {{"name": "cache", "op": "cache", "args": {{"path": "{}"}}}}]}})",
                            cache));
  Element e;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(p->Next(&e));
  p->Stop();
  p.reset();
  EXPECT_FALSE(std::filesystem::exists(cache));
  EXPECT_THAT(DirEntries(), IsEmpty());  // no *.partial.* recording either
}

// ---------------------------------------------------------------------------------------------
// Live pipelines

TEST_F(PipelineTest, ForEachLivePipelineSeesOnlyLiveOnes) {
  const std::string name = fmt::format("live_probe_{}", ::getpid());
  auto count = [&] {
    int n = 0;
    ForEachLivePipeline([&](const Pipeline& p) { n += p.name() == name ? 1 : 0; });
    return n;
  };
  EXPECT_EQ(count(), 0);
  auto p = Make(fmt::format(R"({{"name": "{}", "stages": [{{"op": "generate"}}]}})", name));
  EXPECT_EQ(count(), 1);
  auto q = Make(fmt::format(R"({{"name": "{}", "stages": [{{"op": "generate"}}]}})", name));
  EXPECT_EQ(count(), 2);
  p.reset();
  EXPECT_EQ(count(), 1);
  q.reset();
  EXPECT_EQ(count(), 0);
}

}  // namespace
}  // namespace sluice::pipeline
