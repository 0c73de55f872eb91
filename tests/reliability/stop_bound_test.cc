// An op that hangs: the consumer's Stop() still returns within PipelineOptions::
// stop_timeout_seconds, names the stuck stage, and the stuck worker can finish later without
// touching freed memory (run under ASan and TSan).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/config/document.h"
#include "sluice/pipeline/op.h"
#include "sluice/pipeline/pipeline.h"

namespace sluice::pipeline {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A gate the hanging op waits on until the test opens it.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;             // guarded by mu
  std::atomic<int> inside{0};    // calls waiting at the gate now
  std::atomic<int> released{0};  // calls that passed it
};
Gate* gate = nullptr;  // set by each test before the pipeline runs

// Hangs at the element whose id is args.at until the gate opens.
class HangAtOp final : public MapOp {
 public:
  explicit HangAtOp(OpArgs& args) : at_(static_cast<uint64_t>(args.Int("at"))) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    if (in.id == at_) {
      Gate* g = gate;
      g->inside.fetch_add(1);
      std::unique_lock lock(g->mu);
      g->cv.wait(lock, [&] { return g->open; });
      g->inside.fetch_sub(1);
      g->released.fetch_add(1);
    }
    out.push_back(std::move(in));
  }

 private:
  uint64_t at_;
};
SLUICE_REGISTER_OP("fault_hang_at", HangAtOp);

constexpr double kTimeout = 0.3;

class StopBoundTest : public ::testing::Test {
 protected:
  void SetUp() override { gate = &gate_; }
  void TearDown() override {
    Open();
    // Let a released worker leave the op before the gate goes away.
    while (gate_.inside.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void Open() {
    {
      std::lock_guard lock(gate_.mu);
      gate_.open = true;
    }
    gate_.cv.notify_all();
  }
  void WaitUntilStuck() {
    for (int i = 0; i < 10000 && gate_.inside.load() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(gate_.inside.load(), 1) << "the op never reached its hanging element";
  }
  // A pipeline whose stage 'hang' hangs at element `at`.
  std::unique_ptr<Pipeline> Make(const std::string& hang_knobs, int64_t at = 5) {
    const std::string text = fmt::format(
        R"({{"name": "hangs", "stages": [
            {{"name": "src", "op": "generate", "args": {{"count": -1, "bytes": 8}}}},
            {{"name": "hang", "op": "fault_hang_at", "args": {{"at": {}}}, {}}},
            {{"name": "batch", "op": "batch", "args": {{"size": 2}}}}]}})",
        at, hang_knobs);
    return Pipeline::Create(config::Document::Parse(text, "hangs.json"),
                            {.stop_timeout_seconds = kTimeout});
  }
  Gate gate_;
};

// Seconds that `fn` took.
template <typename Fn>
double Timed(Fn&& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST_F(StopBoundTest, StuckWorkerThreadDoesNotHoldUpStop) {
  auto pipe = Make(R"("parallelism": 2, "buffer_size": 4)");
  std::atomic<bool> consumer_done{false};
  std::thread consumer([&] {
    Element e;
    while (pipe->Next(&e)) {
    }
    consumer_done = true;
  });
  WaitUntilStuck();
  // The bound is the behaviour under test: without it Stop() never returns. The margin covers a
  // loaded machine; the point is that it returns at all.
  const double took = Timed([&] { pipe->Stop(); });
  EXPECT_LT(took, kTimeout + 10);
  consumer.join();
  EXPECT_TRUE(consumer_done);
  EXPECT_THAT(pipe->StuckStages(), ElementsAre("hang"));
  EXPECT_EQ(pipe->RunningThreads(), 1);  // the stuck worker, left running
  Element e;
  EXPECT_FALSE(pipe->Next(&e));
  pipe.reset();  // keeps the state the worker still uses
  Open();        // the op returns; the worker finds the pipeline stopped and leaves
  for (int i = 0; i < 10000 && gate_.released.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(gate_.released.load(), 1);
}

TEST_F(StopBoundTest, ConsumerStuckInAnInlineOpDoesNotHoldUpStopFromAnotherThread) {
  auto pipe = Make(R"("parallelism": 1)");  // inline: runs on the consumer's thread
  std::thread consumer([&] {
    Element e;
    while (pipe->Next(&e)) {
    }
  });
  WaitUntilStuck();
  const double took = Timed([&] { pipe->Stop(); });
  EXPECT_LT(took, kTimeout + 10);
  EXPECT_THAT(pipe->StuckStages(), ElementsAre("consumer"));
  Open();  // the consumer's op returns; its next Next() sees the stop
  consumer.join();
  Element e;
  EXPECT_FALSE(pipe->Next(&e));
}

TEST_F(StopBoundTest, WithoutAHangStopJoinsEveryThread) {
  auto pipe = Make(R"("parallelism": 3, "buffer_size": 2)", /*at=*/int64_t{1} << 60);
  Element e;
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(pipe->Next(&e));
  pipe->Stop();
  EXPECT_EQ(pipe->RunningThreads(), 0);
  EXPECT_THAT(pipe->StuckStages(), IsEmpty());
}

}  // namespace
}  // namespace sluice::pipeline
