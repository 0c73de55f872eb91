// Tests for the runtime's built-in ops: filter, shuffle, list_files, read_file, read_throttled,
// the memory and disk caches, and the registry of live pipelines.
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
