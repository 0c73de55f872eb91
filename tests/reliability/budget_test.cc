// Budgets under stress: the cacheable and image example pipelines are profiled, tuned for a
// memory budget, applied and run to the end of their data; the tuned run's peak RSS growth must
// stay within the budget and its threads within the plan's workers plus the consumer's thread.
// Skipped under sanitizers, whose shadow memory and quarantine make RSS meaningless.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/common/files.h"
#include "tests/common/harness.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using sluice::test_util::ProcessOptions;
using sluice::test_util::ProcessResult;
using sluice::test_util::ReadFile;
using sluice::test_util::RunProcess;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

constexpr int64_t kBudgetBytes = 128'000'000;

class BudgetTest : public sluice::test_util::TempDirTest {
 protected:
  void SetUp() override {
    if (kSanitized) GTEST_SKIP() << "RSS under a sanitizer is not the program's own";
    TempDirTest::SetUp();
  }

  ProcessResult Cli(std::vector<std::string> args, const ProcessOptions& opt = {}) {
    args.insert(args.begin(), SLUICE_CLI);
    return RunProcess(args, dir_, opt);
  }
  // Profiles, tunes for kBudgetBytes, applies and runs the example `name`; checks the run.
  void ProfileTuneApplyRun(const std::string& name);
};

void BudgetTest::ProfileTuneApplyRun(const std::string& name) {
  // A copy of the example whose data paths point at a fresh copy of the example dataset (a clean
  // checkout has none: scripts/demo.sh makes examples/data).
  const fs::path examples = fs::path(SLUICE_SOURCE_DIR) / "examples";
  const auto dataset = RunProcess({SLUICE_MAKE_DATASET, (dir_ / "data").string()}, dir_, {});
  ASSERT_TRUE(dataset.exited_ok()) << dataset.err;
  std::string text = ReadFile(examples / name);
  const std::string rel = "\"data/";
  const std::string abs = fmt::format("\"{}/", (dir_ / "data").string());
  for (size_t at = text.find(rel); at != std::string::npos; at = text.find(rel, at + 1)) {
    text.replace(at, rel.size(), abs);
  }
  const fs::path config = dir_ / name;
  std::ofstream(config) << text;

  const auto profile = Cli({"profile", config.string(), "--seconds", "4", "--trials", "0", "--out",
                            (dir_ / "prof").string()});
  ASSERT_TRUE(profile.exited_ok()) << profile.err;
  const fs::path tuned = dir_ / "tuned.json";
  const auto tune = Cli({"tune", (dir_ / "prof" / "trace.json").string(), "--memory",
                         std::to_string(kBudgetBytes), "--json", "-o", tuned.string()});
  ASSERT_TRUE(tune.exited_ok()) << tune.err;
  const auto plan = nlohmann::json::parse(tune.out);
  ASSERT_EQ(plan["memory_budget_bytes"].get<double>(), static_cast<double>(kBudgetBytes));
  const int planned_threads = plan["threads"].get<int>();
  const double planned_bytes = plan["memory_bytes"].get<double>();
  EXPECT_LE(planned_bytes, static_cast<double>(kBudgetBytes));
  const auto apply = Cli({"apply", tuned.string(), "--to", config.string()});
  ASSERT_TRUE(apply.exited_ok()) << apply.err;

  // The same binary running a one-element pipeline: what the process costs without data.
  const fs::path tiny = dir_ / "tiny.json";
  std::ofstream(tiny) << R"({"name": "tiny", "stages": [
      {"name": "src", "op": "generate", "args": {"count": 1}}]})";
  const auto base = Cli({"run", tiny.string()});
  ASSERT_TRUE(base.exited_ok()) << base.err;

  ProcessOptions sample;
  sample.sample_threads = true;
  const auto run = Cli({"run", config.string(), "--json"}, sample);
  ASSERT_TRUE(run.exited_ok()) << run.err;
  const auto result = nlohmann::json::parse(run.out);
  ASSERT_GT(result["outputs_per_s"].get<double>(), 0);

  const int64_t growth = run.peak_rss_bytes - base.peak_rss_bytes;
  // Worker threads, plus the consumer's (the process's main thread); `sluice run` has no other.
  const int thread_bound = planned_threads + 1;
  const std::string figures = fmt::format(
      "{}: budget {} MB, plan {:.1f} MB and {} workers (cache after {}); tuned run: peak RSS "
      "{:.1f} MB, baseline {:.1f} MB, growth {:.1f} MB; most threads {} (bound {}); "
      "{:.1f} outputs/s",
      name, kBudgetBytes / 1e6, planned_bytes / 1e6, planned_threads,
      plan["cache_after"].is_null() ? "none" : plan["cache_after"].get<std::string>(),
      run.peak_rss_bytes / 1e6, base.peak_rss_bytes / 1e6, growth / 1e6, run.max_threads,
      thread_bound, result["outputs_per_s"].get<double>());
  std::cout << "budget: " << figures << "\n";
  RecordProperty("figures", figures);
  EXPECT_LE(growth, kBudgetBytes) << figures;
  EXPECT_LE(run.max_threads, thread_bound) << figures;
}

TEST_F(BudgetTest, CacheablePipelineStaysWithinItsMemoryBudgetAndPlannedThreads) {
  ProfileTuneApplyRun("cacheable_pipeline.json");
}

// The image pipeline's workers hold large elements (a decoded image and the compressed bytes it
// came from; the batch op a whole batch of inputs while it stacks them): the tuner counts, per
// worker, its output and the inputs it consumes for it. (Counting one element per worker, a
// 12-worker plan for 128 MB grew 231 MB.)
TEST_F(BudgetTest, ImagePipelineStaysWithinItsMemoryBudgetAndPlannedThreads) {
  ProfileTuneApplyRun("image_pipeline.json");
}

}  // namespace
}  // namespace sluice
