// Pipeline::Apply while a consumer iterates: random live changes of workers, queue sizes, order
// and inline/asynchronous execution lose, repeat and reorder nothing; a change undone restores
// the knobs; threads and queued elements never exceed the larger of the old and new settings.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "sluice/common/error.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/op.h"
#include "sluice/pipeline/pipeline.h"

namespace sluice::pipeline {
namespace {

using ::testing::HasSubstr;
using When = AppliedChange::When;

// Sleeps a pseudo-random 0..`max_us` per element (a hash of its id, so runs are repeatable).
class JitterOp final : public MapOp {
 public:
  explicit JitterOp(OpArgs& args) : max_us_(args.Int("max_us", 50)) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    const uint64_t h = MixSeed(in.id, 777);
    std::this_thread::sleep_for(std::chrono::microseconds(h % static_cast<uint64_t>(max_us_ + 1)));
    out.push_back(std::move(in));
  }

 private:
  int64_t max_us_;
};
SLUICE_REGISTER_OP("live_jitter", JitterOp);

// Drops every id divisible by 11 and doubles every id divisible by 7 (several outputs per input
// exercise the inline map's pending outputs across a switch).
class SpreadOp final : public MapOp {
 public:
  explicit SpreadOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    if (in.id % 11 == 0) return;
    if (in.id % 7 == 0) out.push_back(in);
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("live_spread", SpreadOp);

// The ids the pipeline below delivers per epoch, in order.
std::vector<uint64_t> ExpectedIds(int64_t count) {
  std::vector<uint64_t> ids;
  for (uint64_t id = 0; id < static_cast<uint64_t>(count); ++id) {
    if (id % 11 == 0) continue;
    if (id % 7 == 0) ids.push_back(id);
    ids.push_back(id);
  }
  return ids;
}

std::string Config(int64_t count, int epochs, bool ordered) {
  return fmt::format(R"({{"name": "live", "epochs": {}, "stages": [
    {{"name": "src", "op": "generate", "args": {{"count": {}}}}},
    {{"name": "a", "op": "live_jitter", "args": {{"max_us": 40}}}},
    {{"name": "b", "op": "live_spread", "buffer_size": 1, "deterministic": {},
      "allow_reorder": true}},
    {{"name": "c", "op": "live_jitter", "args": {{"max_us": 20}}, "buffer_size": 2}},
    {{"name": "pf", "op": "prefetch", "buffer_size": 1}}]}})",
                     epochs, count, ordered ? "true" : "false");
}

std::unique_ptr<Pipeline> Make(const std::string& json) {
  return Pipeline::Create(config::Document::Parse(json, "cfg/live.json"));
}

const StageSnapshot& StageNamed(const PipelineSnapshot& snap, const std::string& name) {
  for (const StageSnapshot& s : snap.stages) {
    if (s.name == name) return s;
  }
  throw std::logic_error("no stage " + name);
}

// Applies random changes until `stop`, counting the calls.
void ChangeRandomly(Pipeline& p, const std::atomic<bool>& stop, bool with_order, int* calls) {
  std::mt19937 rng(42);
  const std::vector<std::string> maps = {"a", "b", "c"};
  while (!stop.load()) {
    std::vector<KnobChange> changes;
    const int n = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < n; ++i) {
      const int pick = static_cast<int>(rng() % 7);
      if (pick < 3) {
        changes.push_back(
            {maps[static_cast<size_t>(pick)], "parallelism", 1 + static_cast<int64_t>(rng() % 4)});
      } else if (pick < 6) {
        const std::string stage = pick == 5 ? "pf" : maps[static_cast<size_t>(pick - 3)];
        changes.push_back({stage, "buffer_size", static_cast<int64_t>(rng() % 4)});
      } else if (with_order) {
        changes.push_back({"b", "deterministic", static_cast<int64_t>(rng() % 2)});
      }
    }
    p.Apply(changes, 0.02);
    ++*calls;
    if (rng() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

TEST(LiveApplyTest, RandomLiveChangesDeliverEveryElementOnceInOrder) {
  const int64_t count = 6000;
  auto p = Make(Config(count, 2, /*ordered=*/true));
  std::atomic<bool> stop{false};
  int calls = 0;
  std::thread changer(ChangeRandomly, std::ref(*p), std::cref(stop), false, &calls);
  std::vector<uint64_t> got;
  Element e;
  while (p->Next(&e)) got.push_back(e.id);
  stop = true;
  changer.join();
  std::vector<uint64_t> want = ExpectedIds(count);
  const std::vector<uint64_t> once = want;
  want.insert(want.end(), once.begin(), once.end());  // two epochs
  const auto diverge = std::mismatch(got.begin(), got.end(), want.begin(), want.end());
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(diverge.first == got.end())
      << "first difference at output " << (diverge.first - got.begin()) << ": got "
      << (diverge.first == got.end() ? -1 : static_cast<int64_t>(*diverge.first)) << ", want "
      << (diverge.second == want.end() ? -1 : static_cast<int64_t>(*diverge.second));
  RecordProperty("apply_calls", calls);
  EXPECT_GE(calls, 200) << "the changer should have changed the running pipeline many times";
}

TEST(LiveApplyTest, RandomChangesIncludingOrderDeliverEveryElementExactlyOnce) {
  const int64_t count = 6000;
  auto p = Make(Config(count, 1, /*ordered=*/true));
  std::atomic<bool> stop{false};
  int calls = 0;
  std::thread changer(ChangeRandomly, std::ref(*p), std::cref(stop), true, &calls);
  std::vector<uint64_t> got;
  Element e;
  while (p->Next(&e)) got.push_back(e.id);
  stop = true;
  changer.join();
  std::sort(got.begin(), got.end());
  std::vector<uint64_t> want = ExpectedIds(count);
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  // Counters stay exact across the changes: every stage counted what passed through it.
  const PipelineSnapshot snap = p->Snapshot();
  EXPECT_EQ(StageNamed(snap, "a").elements_out, count);
  EXPECT_EQ(StageNamed(snap, "b").elements_in, count);
  EXPECT_EQ(StageNamed(snap, "pf").elements_out, static_cast<int64_t>(want.size()));
}

TEST(LiveApplyTest, InlineStageTurnsAsynchronousAndBackWithoutLosingOrder) {
  auto p = Make(Config(4000, 1, true));
  std::vector<uint64_t> got;
  Element e;
  for (int i = 0; i < 500 && p->Next(&e); ++i) got.push_back(e.id);
  EXPECT_FALSE(StageNamed(p->Snapshot(), "a").async);
  const auto to_async = p->Apply({{"a", "parallelism", 3}});
  ASSERT_EQ(to_async.size(), 1u);
  EXPECT_EQ(to_async[0].when, When::kNow);
  EXPECT_EQ(to_async[0].from, 1);
  for (int i = 0; i < 500 && p->Next(&e); ++i) got.push_back(e.id);
  const StageSnapshot a = StageNamed(p->Snapshot(), "a");
  EXPECT_TRUE(a.async);
  EXPECT_EQ(a.parallelism, 3);
  EXPECT_GE(a.workers.size(), 3u);
  p->Apply({{"a", "parallelism", 1}});
  while (p->Next(&e)) got.push_back(e.id);
  EXPECT_FALSE(StageNamed(p->Snapshot(), "a").async);
  EXPECT_EQ(got, ExpectedIds(4000));
}

TEST(LiveApplyTest, UndoingAChangeRestoresTheKnobsAndThreads) {
  auto p = Make(Config(-1, 1, true));
  Element e;
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(p->Next(&e));
  const PipelineSnapshot before = p->Snapshot();
  const int threads_before = p->RunningThreads();
  const std::vector<KnobChange> plan = {
      {"a", "parallelism", 4}, {"b", "parallelism", 3}, {"c", "buffer_size", 6}};
  const auto done = p->Apply(plan);
  std::vector<KnobChange> undo;
  for (const AppliedChange& c : done) {
    EXPECT_EQ(c.when, When::kNow) << c.stage << "." << c.knob << ": " << c.note;
    undo.push_back({c.stage, c.knob, c.from});
  }
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(p->Next(&e));
  p->Apply(undo);
  // Retired workers leave at their next element boundary: keep consuming until they have.
  for (int i = 0; i < 2000 && p->RunningThreads() != threads_before; ++i) ASSERT_TRUE(p->Next(&e));
  const PipelineSnapshot after = p->Snapshot();
  for (size_t i = 0; i < before.stages.size(); ++i) {
    EXPECT_EQ(after.stages[i].parallelism, before.stages[i].parallelism) << before.stages[i].name;
    EXPECT_EQ(after.stages[i].buffer_size, before.stages[i].buffer_size) << before.stages[i].name;
    EXPECT_EQ(after.stages[i].async, before.stages[i].async) << before.stages[i].name;
  }
  EXPECT_EQ(p->RunningThreads(), threads_before);
}

TEST(LiveApplyTest, MovingWorkersAndBuffersBetweenStagesNeverExceedsEitherSetting) {
  auto p = Make(R"({"name": "move", "epochs": -1, "stages": [
    {"name": "src", "op": "generate"},
    {"name": "a", "op": "live_jitter", "args": {"max_us": 300}, "parallelism": 4,
     "buffer_size": 8},
    {"name": "b", "op": "live_jitter", "args": {"max_us": 300}, "parallelism": 2,
     "buffer_size": 1}]})");
  Element e;
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(p->Next(&e));
  std::atomic<bool> stop{false};
  std::atomic<int> most_threads{0};
  std::atomic<int64_t> most_queued{0};
  std::thread watch([&] {
    while (!stop.load()) {
      most_threads = std::max(most_threads.load(), p->RunningThreads());
      const PipelineSnapshot snap = p->Snapshot();
      int64_t queued = 0;
      for (const StageSnapshot& s : snap.stages) queued += s.queue_size;
      most_queued = std::max(most_queued.load(), queued);
    }
  });
  std::thread consumer([&] {
    Element x;
    while (!stop.load() && p->Next(&x)) std::this_thread::sleep_for(std::chrono::microseconds(50));
  });
  for (int round = 0; round < 6; ++round) {
    const bool to_b = round % 2 == 0;
    const auto done = p->Apply({{"a", "parallelism", to_b ? 2 : 4},
                                {"b", "parallelism", to_b ? 4 : 2},
                                {"a", "buffer_size", to_b ? 1 : 8},
                                {"b", "buffer_size", to_b ? 8 : 1}});
    for (const AppliedChange& c : done) EXPECT_EQ(c.when, When::kNow) << c.note;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop = true;
  consumer.join();
  watch.join();
  EXPECT_LE(most_threads.load(), 6);  // 4 + 2 either way round
  // Queues: 8 + 1 either way, plus what the ordered workers hold parked (4 + 2).
  EXPECT_LE(most_queued.load(), 9 + 6);
}

// Pulls from `p` until `done(snapshot)` holds (checked every 10 elements), appending the ids;
// false if the epoch ends or 2,000 elements pass first.
template <typename Done>
bool PullUntil(Pipeline& p, std::vector<uint64_t>& ids, Done done) {
  Element e;
  for (int n = 0; n < 2000; ++n) {
    if (n % 10 == 0 && done(p.Snapshot())) return true;
    if (!p.Next(&e)) return false;
    ids.push_back(e.id);
  }
  return false;
}

TEST(LiveApplyTest, MapsFuseIntoAStageThatTurnsParallelAndLeaveItWhileTheConsumerIterates) {
  const int64_t count = 20000;
  auto p = Make(fmt::format(R"({{"name": "fusing", "epochs": 1, "stages": [
    {{"name": "src", "op": "generate", "args": {{"count": {}}}}},
    {{"name": "a", "op": "live_jitter", "args": {{"max_us": 0}}}},
    {{"name": "b", "op": "live_jitter", "args": {{"max_us": 0}}}},
    {{"name": "c", "op": "live_jitter", "args": {{"max_us": 0}}}}]}})",
                            count));
  std::vector<uint64_t> ids;
  const auto fused = [](const char* a, const char* b) {
    return [=](const PipelineSnapshot& s) {
      return StageNamed(s, "a").fused_into == a && StageNamed(s, "b").fused_into == b;
    };
  };
  ASSERT_TRUE(PullUntil(
      *p, ids, [](const PipelineSnapshot& s) { return StageNamed(s, "c").elements_out >= 100; }));
  // No epoch boundary in sight: a and b move onto c's workers at once.
  const auto done = p->Apply({{"c", "parallelism", 2}});
  EXPECT_EQ(done[0].when, When::kNow) << done[0].note;
  ASSERT_TRUE(PullUntil(*p, ids, fused("c", "c")));
  // b gets a thread of its own: neither runs on c's workers (a is above b).
  p->Apply({{"b", "buffer_size", 1}});
  ASSERT_TRUE(PullUntil(*p, ids, fused("", "")));
  p->Apply({{"b", "buffer_size", 0}});
  ASSERT_TRUE(PullUntil(*p, ids, fused("c", "c")));
  // c back to one thread: inline, so nothing is fused.
  p->Apply({{"c", "parallelism", 1}});
  ASSERT_TRUE(PullUntil(*p, ids, fused("", "")));
  Element e;
  while (p->Next(&e)) ids.push_back(e.id);
  std::vector<uint64_t> expected(static_cast<size_t>(count));
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(ids, expected);
  const PipelineSnapshot snap = p->Snapshot();
  for (const char* name : {"a", "b", "c"}) {
    const StageSnapshot& st = StageNamed(snap, name);
    EXPECT_EQ(st.elements_in, count) << name;
    EXPECT_EQ(st.elements_out, count) << name;
  }
  // The fused maps ran on both of c's worker slots.
  EXPECT_EQ(StageNamed(snap, "a").workers.size(), 2u);
}

// Declares itself non-deterministic (its outputs may differ between epochs).
class NoisyOp final : public MapOp {
 public:
  explicit NoisyOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, false, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("live_noisy", NoisyOp);

TEST(LiveApplyTest, ACacheGoesInAtTheNextEpochBoundaryRecordsItAndReplaysItAfter) {
  auto p = Make(R"({"name": "cached", "epochs": 5, "stages": [
    {"name": "src", "op": "generate", "args": {"count": 200}},
    {"name": "a", "op": "live_jitter", "args": {"max_us": 5}, "parallelism": 2},
    {"name": "b", "op": "live_jitter", "args": {"max_us": 5}, "buffer_size": 2}]})");
  // Snapshots race with the insertion, as the tracer's do.
  std::atomic<bool> stop{false};
  std::thread sampler([&] {
    while (!stop.load()) (void)p->Snapshot().stages.size();
  });
  std::vector<uint64_t> ids;
  Element e;
  ASSERT_TRUE(p->Next(&e));
  ids.push_back(e.id);
  const auto done = p->Apply({{"a", "cache", 1}});
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].when, When::kNextEpoch);
  EXPECT_THAT(done[0].note, HasSubstr("next epoch boundary"));
  const auto again = p->Apply({{"a", "cache", 1}});
  EXPECT_EQ(again[0].when, When::kNotApplied);
  EXPECT_THAT(again[0].note, HasSubstr("already waits"));
  EXPECT_EQ(p->Snapshot().stages.size(), 3u);  // not before the boundary
  while (p->Next(&e)) ids.push_back(e.id);
  stop.store(true);
  sampler.join();
  // Every epoch delivers 0..199 in order, the replayed ones too.
  ASSERT_EQ(ids.size(), 1000u);
  for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], i % 200) << "at " << i;
  const PipelineSnapshot snap = p->Snapshot();
  ASSERT_EQ(snap.stages.size(), 4u);
  EXPECT_EQ(snap.stages[2].name, "cache");
  EXPECT_EQ(snap.stages[2].op, "cache");
  // The stages up to the cache ran in epoch 0 and in the epoch it recorded, then stopped.
  EXPECT_EQ(StageNamed(snap, "a").elements_out, 400);
  EXPECT_EQ(StageNamed(snap, "cache").elements_out, 800);
  EXPECT_EQ(StageNamed(snap, "b").elements_out, 1000);
  // No second cache after the stage.
  EXPECT_THROW(p->Apply({{"a", "cache", 1}}), Error);
}

TEST(LiveApplyTest, NoCacheGoesAfterANonDeterministicStage) {
  auto p = Make(R"({"name": "noisy", "epochs": 10, "stages": [
    {"name": "src", "op": "generate", "args": {"count": 50}},
    {"name": "n", "op": "live_noisy"},
    {"name": "a", "op": "live_jitter", "args": {"max_us": 0}}]})");
  Element e;
  ASSERT_TRUE(p->Next(&e));
  try {
    p->Apply({{"a", "cache", 1}});
    ADD_FAILURE() << "a cache after a non-deterministic stage was accepted";
  } catch (const Error& err) {
    EXPECT_THAT(err.what(), HasSubstr("stage 'n' (op 'live_noisy') is not deterministic"));
  }
  EXPECT_EQ(p->Apply({{"src", "cache", 1}})[0].when, When::kNextEpoch);
}

TEST(LiveApplyTest, ABadChangeThrowsNamingTheStageAndKnobAndChangesNothing) {
  auto p = Make(Config(-1, 1, true));
  Element e;
  ASSERT_TRUE(p->Next(&e));
  const auto expect_error = [&](const std::vector<KnobChange>& changes, const std::string& text) {
    try {
      p->Apply(changes);
      ADD_FAILURE() << "no error for " << text;
    } catch (const Error& err) {
      EXPECT_THAT(err.what(), HasSubstr(text));
    }
  };
  expect_error({{"a", "parallelism", 3}, {"nope", "parallelism", 2}},
               "stage 'nope': key 'parallelism': no such stage");
  expect_error({{"pf", "parallelism", 2}}, "op 'prefetch' runs sequentially");
  expect_error({{"a", "cache", 1}}, "the job has 0 epoch(s) after this one");
  expect_error({{"a", "cache", 2}}, "only 1 (insert a cache after the stage)");
  expect_error({{"a", "buffer_size", -1}}, "stage 'a': key 'buffer_size'");
  expect_error({{"a", "parallelism", 100000}}, "outside 1..");
  EXPECT_EQ(StageNamed(p->Snapshot(), "a").parallelism, 1);  // the valid first change was not made
}

}  // namespace
}  // namespace sluice::pipeline
