// Helpers of the runtime's tests: building a pipeline from JSON, draining it, finding a stage in
// a snapshot, counting the process's threads, and the PipelineTest fixture. The test ops they
// use (throw_at, jitter, take, parallel_claiming_source) are registered in pipeline_test_ops.cc.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"
#include "tests/common/harness.h"

namespace sluice::pipeline::test_util {

// ---------------------------------------------------------------------------------------------
// Helpers

inline constexpr char kOrigin[] = "cfg/p.json";

inline std::unique_ptr<Pipeline> Make(const std::string& json,
                                      const PipelineOptions& options = {}) {
  return Pipeline::Create(config::Document::Parse(json, kOrigin), options);
}

// The message Pipeline::Create throws for `json`; fails the test when it does not throw.
inline std::string CreateError(const std::string& json) {
  try {
    Make(json);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for: " << json;
  return "";
}

// Pulls every output; returns their ids.
inline std::vector<uint64_t> DrainIds(Pipeline& p) {
  std::vector<uint64_t> ids;
  Element e;
  while (p.Next(&e)) ids.push_back(e.id);
  return ids;
}

inline std::vector<Element> Drain(Pipeline& p) {
  std::vector<Element> out;
  Element e;
  while (p.Next(&e)) out.push_back(std::move(e));
  return out;
}

inline std::vector<uint64_t> Iota(uint64_t n) {
  std::vector<uint64_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

// Splits a stream of ids into epochs, given that ids ascend within an epoch.
inline std::vector<std::vector<uint64_t>> SplitAscending(const std::vector<uint64_t>& ids) {
  std::vector<std::vector<uint64_t>> epochs;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i == 0 || ids[i] <= ids[i - 1]) epochs.emplace_back();
    epochs.back().push_back(ids[i]);
  }
  return epochs;
}

// A burn stage is charged at least the CPU it burned (`burned` seconds; 10 % for the burn's own
// clock granularity) and not much more: the hand-offs and clock reads around each element add
// to it, by up to 11 % under ThreadSanitizer on two loaded cores.
inline void ExpectChargedCpu(double charged, double burned) {
  EXPECT_GE(charged, 0.9 * burned);
  EXPECT_LE(charged, 1.25 * burned);
}

inline const StageSnapshot& StageNamed(const PipelineSnapshot& snap, const std::string& name) {
  for (const StageSnapshot& s : snap.stages) {
    if (s.name == name) return s;
  }
  throw std::logic_error("no stage " + name);
}

// Pulls until Next throws; returns the ids delivered before and the error's message.
inline std::pair<std::vector<uint64_t>, std::string> PullUntilError(Pipeline& p) {
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

// Threads of this process, from /proc/self/task.
inline int TaskCount() {
  int n = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/self/task")) {
    ++n;
  }
  return n;
}

// Waits (bounded) until `done` holds; returns whether it did. A joined thread's /proc entry
// may outlive pthread_join by a moment, so thread counts are compared this way.
inline bool Eventually(const std::function<bool()>& done) {
  const int64_t deadline = MonotonicNanos() + 10'000'000'000;
  while (!done()) {
    if (MonotonicNanos() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Fixture: a fresh temporary directory per test (TempDirTest's dir_) and the process's thread
// count before it.
class PipelineTest : public sluice::test_util::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    // TSan starts a helper thread of its own at the first thread creation: get that done
    // before counting, so that only the pipeline's threads make a difference.
    std::thread([] {}).join();
    tasks_before_ = TaskCount();
  }

  // Every thread a pipeline started has gone.
  void ExpectNoThreadsLeft() {
    EXPECT_TRUE(Eventually([&] { return TaskCount() == tasks_before_; }))
        << "threads before: " << tasks_before_ << ", now: " << TaskCount();
  }

  void WriteFile(const std::string& name, const std::string& contents) {
    std::ofstream(dir_ / name, std::ios::binary) << contents;
  }

  int tasks_before_ = 0;
};

}  // namespace sluice::pipeline::test_util
