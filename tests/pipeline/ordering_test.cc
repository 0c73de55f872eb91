// The runtime's ordered delivery (reorder buffer) and map fusion: order, bounds and outputs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "sluice/config/document.h"
#include "sluice/pipeline/op.h"
#include "sluice/pipeline/pipeline.h"

namespace sluice::pipeline {
namespace {

using ::testing::ElementsAreArray;

// Elements entered into the test ops and delivered to the consumer, for in-flight bounds.
std::atomic<int64_t> g_entered{0};
std::atomic<int64_t> g_max_in_flight{0};
std::atomic<int64_t> g_delivered{0};

// Sleeps a pseudo-random 0..`max_us` per element (a hash of its id), and records how many
// elements have entered the op but not reached the consumer.
class RandomDelayOp final : public MapOp {
 public:
  explicit RandomDelayOp(OpArgs& args) : max_us_(args.Int("max_us", 400)) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    const int64_t in_flight = g_entered.fetch_add(1) + 1 - g_delivered.load();
    int64_t seen = g_max_in_flight.load();
    while (in_flight > seen && !g_max_in_flight.compare_exchange_weak(seen, in_flight)) {
    }
    const uint64_t h = MixSeed(in.id, 12345);
    std::this_thread::sleep_for(std::chrono::microseconds(h % static_cast<uint64_t>(max_us_ + 1)));
    out.push_back(std::move(in));
  }

 private:
  int64_t max_us_;
};
SLUICE_REGISTER_OP("random_delay", RandomDelayOp);

// Sleeps `slow_ms` on element 0 only; counts every element it starts.
class SlowHeadOp final : public MapOp {
 public:
  explicit SlowHeadOp(OpArgs& args) : slow_ms_(args.Int("slow_ms")) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    g_entered.fetch_add(1);
    if (in.id == 0) std::this_thread::sleep_for(std::chrono::milliseconds(slow_ms_));
    out.push_back(std::move(in));
  }

 private:
  int64_t slow_ms_;
};
SLUICE_REGISTER_OP("slow_head", SlowHeadOp);

// A deterministic transform: appends a tensor holding f(id, salt); drops every `drop`-th element
// and doubles every `dup`-th, so fused stages see zero and several outputs per input.
class MixOp final : public MapOp {
 public:
  explicit MixOp(OpArgs& args)
      : salt_(static_cast<uint64_t>(args.Int("salt"))),
        drop_(args.Int("drop", 0)),
        dup_(args.Int("dup", 0)),
        sleep_us_(args.Int("sleep_us", 0)) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    const int64_t now = calls_.fetch_add(1) + 1;
    int64_t seen = max_concurrent_.load();
    while (now > seen && !max_concurrent_.compare_exchange_weak(seen, now)) {
    }
    if (sleep_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_));
    calls_.fetch_sub(1);
    if (drop_ > 0 && in.id % static_cast<uint64_t>(drop_) == 0) return;
    Tensor t = Tensor::Allocate(DType::kInt64, {1});
    *t.data<int64_t>() = static_cast<int64_t>(MixSeed(in.id, salt_));
    in.tensors.push_back(t);
    if (dup_ > 0 && in.id % static_cast<uint64_t>(dup_) == 0) out.push_back(in);
    out.push_back(std::move(in));
  }
  static int64_t MaxConcurrent() { return max_concurrent_.load(); }
  static void Reset() { max_concurrent_ = 0; }

 private:
  uint64_t salt_;
  int64_t drop_, dup_, sleep_us_;
  static inline std::atomic<int64_t> calls_{0};
  static inline std::atomic<int64_t> max_concurrent_{0};
};
SLUICE_REGISTER_OP("mix", MixOp);

// A map that keeps state and so declares itself sequential; fails if two calls overlap.
class SequentialOp final : public MapOp {
 public:
  explicit SequentialOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, false, true, false}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    if (busy_.exchange(true)) throw std::runtime_error("two calls of a sequential op overlapped");
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    ++count_;
    busy_.store(false);
    out.push_back(std::move(in));
  }

 private:
  std::atomic<bool> busy_{false};
  int64_t count_ = 0;
};
SLUICE_REGISTER_OP("sequential_probe", SequentialOp);

std::unique_ptr<Pipeline> Make(const std::string& json) {
  return Pipeline::Create(config::Document::Parse(json, "cfg/ordering.json"));
}

const StageSnapshot& StageNamed(const PipelineSnapshot& snap, const std::string& name) {
  for (const StageSnapshot& s : snap.stages) {
    if (s.name == name) return s;
  }
  throw std::logic_error("no stage " + name);
}

// Every output's id and its tensors' values, in delivery order.
std::vector<std::vector<int64_t>> DrainValues(Pipeline& p) {
  std::vector<std::vector<int64_t>> out;
  Element e;
  while (p.Next(&e)) {
    std::vector<int64_t> row{static_cast<int64_t>(e.id)};
    for (const Tensor& t : e.tensors) {
      if (t.dtype() == DType::kInt64) row.push_back(*t.data<int64_t>());
    }
    out.push_back(std::move(row));
  }
  return out;
}

class OrderingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_entered = 0;
    g_delivered = 0;
    g_max_in_flight = 0;
    MixOp::Reset();
  }
};

TEST_F(OrderingTest, RandomDelaysDeliverTheSequentialOrderWithinTheWindow) {
  constexpr int kWorkers = 4, kBuffer = 3, kCount = 400;
  auto p = Make(fmt::format(R"({{"stages": [
      {{"op": "generate", "args": {{"count": {}}}}},
      {{"name": "work", "op": "random_delay", "parallelism": {}, "buffer_size": {},
        "args": {{"max_us": 600}}}}]}})",
                            kCount, kWorkers, kBuffer));
  std::vector<uint64_t> ids;
  Element e;
  while (p->Next(&e)) {
    ids.push_back(e.id);
    g_delivered.fetch_add(1);
  }
  std::vector<uint64_t> expected(kCount);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_THAT(ids, ElementsAreArray(expected));
  // Parked results never exceed the window; the element just handed to the consumer may not
  // yet be counted as delivered, hence the + 1 for the ops' own count.
  EXPECT_LE(StageNamed(p->Snapshot(), "work").queue_max, kWorkers + kBuffer);
  EXPECT_LE(g_max_in_flight.load(), kWorkers + kBuffer + 1);
  EXPECT_GT(g_max_in_flight.load(), kWorkers) << "the window was never used past the workers";
}

// One slow element must not stall the other workers: while it runs they fill the window.
TEST_F(OrderingTest, ASlowElementDoesNotBlockTheOtherWorkers) {
  constexpr int kWorkers = 3, kBuffer = 6;
  auto p = Make(fmt::format(R"({{"stages": [
      {{"op": "generate", "args": {{"count": 100}}}},
      {{"name": "work", "op": "slow_head", "parallelism": {}, "buffer_size": {},
        "args": {{"slow_ms": 300}}}}]}})",
                            kWorkers, kBuffer));
  Element e;
  ASSERT_TRUE(p->Next(&e));
  EXPECT_EQ(e.id, 0u);
  // Before element 0 was delivered, the other workers took every other input of the window.
  EXPECT_GE(g_entered.load(), kWorkers + kBuffer);
  int n = 1;
  while (p->Next(&e)) ASSERT_EQ(e.id, static_cast<uint64_t>(n++));
  EXPECT_EQ(n, 100);
}

// Decode → crop → flip → normalize as one group: the same outputs, in the same order, whether
// the maps run inline one by one or fused onto the workers of the last one.
TEST_F(OrderingTest, FusedGroupGivesTheUnfusedChainsOutputs) {
  const std::string maps = R"(
      {"name": "a", "op": "mix", "args": {"salt": 1, "drop": 7}},
      {"name": "b", "op": "mix", "args": {"salt": 2, "dup": 5}},
      {"name": "c", "op": "mix", "args": {"salt": 3}%s})";
  auto config = [&](const std::string& last_knobs) {
    std::string m = maps;
    m.replace(m.find("%s"), 2, last_knobs);
    return R"({"epochs": 2, "stages": [{"op": "generate", "args": {"count": 300}},)" + m + "]}";
  };
  auto unfused = Make(config(""));
  auto fused = Make(config(R"(, "parallelism": 3, "buffer_size": 2)"));
  const auto expected = DrainValues(*unfused);
  int64_t kept = 0, doubled = 0;
  for (int id = 0; id < 300; ++id) {
    if (id % 7 == 0) continue;
    ++kept;
    if (id % 5 == 0) ++doubled;
  }
  EXPECT_EQ(expected.size(), static_cast<size_t>(2 * (kept + doubled)));
  EXPECT_EQ(DrainValues(*fused), expected);

  // Counters stay per stage and exact; the fused stages count on the group's workers.
  const PipelineSnapshot snap = fused->Snapshot();
  EXPECT_EQ(StageNamed(snap, "a").elements_in, 600);
  EXPECT_EQ(StageNamed(snap, "a").elements_out, 2 * kept);
  EXPECT_EQ(StageNamed(snap, "b").elements_in, 2 * kept);
  EXPECT_EQ(StageNamed(snap, "c").elements_out, static_cast<int64_t>(expected.size()));
  EXPECT_EQ(StageNamed(snap, "a").workers.size(), 3u);
  EXPECT_FALSE(StageNamed(snap, "a").async);
}

// Fused maps run outside the input lock, so several run at once; a sequential map above them
// stays under the lock and never overlaps itself.
TEST_F(OrderingTest, FusedMapsRunConcurrentlyAndSequentialOnesStayUnderTheLock) {
  auto p = Make(R"({"stages": [
      {"op": "generate", "args": {"count": 200}},
      {"name": "seq", "op": "sequential_probe"},
      {"name": "fused", "op": "mix", "args": {"salt": 1, "sleep_us": 300}},
      {"name": "work", "op": "burn", "parallelism": 3, "args": {"cpu_us": 10}}]})");
  std::vector<uint64_t> ids;
  Element e;
  while (p->Next(&e)) ids.push_back(e.id);
  EXPECT_EQ(ids.size(), 200u);
  EXPECT_GE(MixOp::MaxConcurrent(), 2);
  const PipelineSnapshot snap = p->Snapshot();
  EXPECT_EQ(StageNamed(snap, "seq").workers.size(), 1u);
  EXPECT_EQ(StageNamed(snap, "fused").workers.size(), 3u);
}

}  // namespace
}  // namespace sluice::pipeline
