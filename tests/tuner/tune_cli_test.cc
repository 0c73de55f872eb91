// End to end through the CLI: profile a pipeline, tune its trace, apply the plan to a copy of the
// config (dry run first), and run the tuned copy. Asserts what the user sees, not speed.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice/config/document.h"
#include "tests/common/files.h"
#include "tests/common/harness.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// One burn stage does 80 % of the work and runs inline; the rest is light. Unknown keys
// ("owner", "note") and the file's layout must survive the rewrite.
constexpr const char* kConfig = R"({
  "name": "cli_chain",
  "owner": "team-input",
  "epochs": 1,
  "stages": [
    {"name": "source", "op": "generate", "args": {"count": -1, "bytes": 1024}},
    {"name": "heavy", "op": "burn", "args": {"cpu_us": 400}, "parallelism": 1, "note": "keep"},
    {"name": "light", "op": "burn", "args": {"cpu_us": 40}},
    {"name": "batch", "op": "batch", "args": {"size": 8}},
    {"name": "prefetch", "op": "prefetch", "buffer_size": 1}
  ]
}
)";

class TuneCliTest : public sluice::test_util::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    ::setenv("SLUICE_CACHE_DIR", (dir_ / "cache").c_str(), 1);
    std::ofstream(dir_ / "pipeline.json") << kConfig;
  }
  // Runs `sluice ARGS` (a shell line), returning its exit code; its stdout goes to `out_`,
  // stderr to `err_`.
  int Sluice(const std::string& args) {
    const test_util::ProcessResult r =
        test_util::RunShell(fmt::format("{} {}", SLUICE_CLI, args), dir_);
    out_ = r.out;
    err_ = r.err;
    return r.exit_code();
  }

  std::string out_, err_;
};

TEST_F(TuneCliTest, ProfileTuneApplyRun) {
  const fs::path config = dir_ / "pipeline.json";
  const fs::path prof = dir_ / "profile";
  ASSERT_EQ(Sluice(fmt::format("profile {} --seconds 2 --out {}", config.string(), prof.string())),
            0)
      << out_ << err_;
  EXPECT_THAT(out_, HasSubstr("bottleneck:"));
  ASSERT_TRUE(fs::exists(prof / "trace.json"));
  ASSERT_TRUE(fs::exists(prof / "tuned.json"));

  // Plan for 4 cores so the heavy stage's workers do not depend on this machine's cores.
  const fs::path tuned = dir_ / "tuned.json";
  ASSERT_EQ(Sluice(fmt::format("tune {} --config {} --cores 4 --json -o {}",
                               (prof / "trace.json").string(), config.string(), tuned.string())),
            0)
      << out_ << err_;
  const nlohmann::json plan = nlohmann::json::parse(out_);
  EXPECT_GT(plan["predicted_outputs_per_s"].get<double>(), 0);
  EXPECT_GT(plan["speedup"].get<double>(), 1.2);
  // The heavy burn runs on parallel workers: its own, or those of 'light' below it, which it is
  // then fused into (the group's async point moves down to the last map before the batch).
  bool heavy_workers = false;
  for (const auto& c : plan["changes"]) {
    EXPECT_FALSE(c["why"].get<std::string>().empty());
    if ((c["stage"] == "heavy" || c["stage"] == "light") && c["knob"] == "parallelism") {
      heavy_workers = true;
      EXPECT_GE(c["to"].get<int>(), 2);
    }
    EXPECT_NE(c["stage"], "batch") << "batch is sequential";
  }
  EXPECT_TRUE(heavy_workers) << out_ << err_;

  // A dry run shows the diff and writes nothing.
  const fs::path copy = dir_ / "copy.json";
  fs::copy_file(config, copy);
  ASSERT_EQ(Sluice(fmt::format("apply {} --to {} --dry-run", tuned.string(), copy.string())), 0)
      << out_ << err_;
  EXPECT_THAT(out_, HasSubstr("\"parallelism\""));
  EXPECT_EQ(test_util::ReadFile(copy), kConfig);
  EXPECT_FALSE(fs::exists(copy.string() + ".bak"));

  ASSERT_EQ(Sluice(fmt::format("apply {} --to {}", tuned.string(), copy.string())), 0)
      << out_ << err_;
  EXPECT_EQ(test_util::ReadFile(copy.string() + ".bak"), kConfig);
  const config::Document doc = config::Document::Load(copy);
  EXPECT_EQ(doc.json()["owner"], "team-input");
  EXPECT_EQ(doc.json()["stages"][1]["note"], "keep");
  EXPECT_GE(std::max(doc.Stage("heavy").parallelism.value_or(1),
                     doc.Stage("light").parallelism.value_or(1)),
            2);
  // Only the tuned values changed: every line without a tuned knob is as it was.
  std::istringstream before(kConfig), after(test_util::ReadFile(copy));
  std::string b, a;
  while (std::getline(before, b) && std::getline(after, a)) {
    if (b.find("\"parallelism\"") == std::string::npos &&
        b.find("\"buffer_size\"") == std::string::npos &&
        b.find("\"op\": \"burn\"") == std::string::npos) {
      EXPECT_EQ(a, b);
    }
  }

  // The tuned config runs.
  ASSERT_EQ(Sluice(fmt::format("run {} --seconds 1 --json", copy.string())), 0) << out_ << err_;
  EXPECT_GT(nlohmann::json::parse(out_)["outputs_per_s"].get<double>(), 0);
  EXPECT_FALSE(nlohmann::json::parse(out_).contains("steady_outputs_per_s"));

  // With a warm-up, the steady window after it is reported too.
  ASSERT_EQ(Sluice(fmt::format("run {} --seconds 1.5 --warmup 0.5 --json", copy.string())), 0)
      << out_ << err_;
  const nlohmann::json run = nlohmann::json::parse(out_);
  EXPECT_EQ(run["warmup_seconds"].get<double>(), 0.5);
  EXPECT_NEAR(run["steady_seconds"].get<double>(), 1.0, 0.2);
  EXPECT_GT(run["steady_outputs_per_s"].get<double>(), 0);
}

// `sluice profile CONFIG` runs the tuned candidates it proposes and keeps the one that measured
// fastest (the config as given when none did); every round leaves its trace and config.
TEST_F(TuneCliTest, ProfileTrialsKeepTheFastestMeasuredConfig) {
  const fs::path config = dir_ / "pipeline.json";
  const fs::path prof = dir_ / "trials";
  ASSERT_EQ(Sluice(fmt::format("profile {} --seconds 2 --trials 2 --trial-seconds 1 --out {}",
                               config.string(), prof.string())),
            0)
      << out_ << err_;
  EXPECT_THAT(out_, HasSubstr("round 0 (your config)"));
  const nlohmann::json trials = nlohmann::json::parse(test_util::ReadFile(prof / "trials.json"));
  const nlohmann::json& rounds = trials["rounds"];
  ASSERT_GE(rounds.size(), 1u);
  // The heavy stage runs inline: the first plan promises far more than the trial threshold.
  EXPECT_GT(rounds[0]["proposed_speedup"].get<double>(), 1.05);
  ASSERT_GE(rounds.size(), 2u) << trials.dump(2);
  const int kept = trials["kept_round"].get<int>();
  double best = rounds[0]["measured_outputs_per_s"].get<double>();
  int last_kept = 0;
  for (size_t r = 1; r < rounds.size(); ++r) {
    ASSERT_TRUE(rounds[r]["tried"].get<bool>()) << "this plan adds no cache";
    // A round is tried only after a proposal worth more than 5 %.
    EXPECT_GT(rounds[r - 1]["proposed_speedup"].get<double>(), 1.05);
    EXPECT_EQ(rounds[r]["changes"], rounds[r - 1]["proposes"]);
    EXPECT_TRUE(fs::exists(rounds[r]["trace"].get<std::string>()));
    const double measured = rounds[r]["measured_outputs_per_s"].get<double>();
    EXPECT_GT(measured, 0);
    if (rounds[r]["kept"].get<bool>()) {
      EXPECT_GT(measured, best) << "a kept round beat every round before it";
      best = measured;
      last_kept = static_cast<int>(r);
    } else {
      EXPECT_LE(measured, best * 1.025 + 1e-9) << "a round that was not kept did not beat the best";
    }
  }
  EXPECT_EQ(kept, last_kept) << trials.dump(2);
  // The kept config is the fastest measured, and tuned.json is exactly it.
  EXPECT_DOUBLE_EQ(trials["measured_outputs_per_s"].get<double>(), best);
  EXPECT_DOUBLE_EQ(trials["expected_outputs_per_s"].get<double>(), best);
  const std::string tuned = test_util::ReadFile(prof / "tuned.json");
  if (kept == 0) {
    EXPECT_EQ(tuned, kConfig);
  } else {
    EXPECT_EQ(tuned, test_util::ReadFile(rounds[kept]["config"].get<std::string>()));
    EXPECT_GE(best, rounds[0]["measured_outputs_per_s"].get<double>());
  }
  // The report beside the trace shows the same rounds.
  const std::string report = test_util::ReadFile(prof / "report.html");
  EXPECT_THAT(report, HasSubstr("id=\"trials-table\""));

  // --trials 0 trusts the model: no trial runs, and no earlier profile's trials remain.
  const fs::path once = dir_ / "once";
  fs::create_directories(once / "trial-1");
  std::ofstream(once / "trials.json") << "{\"rounds\": []}";
  ASSERT_EQ(Sluice(fmt::format("profile {} --seconds 1 --trials 0 --out {}", config.string(),
                               once.string())),
            0)
      << out_ << err_;
  EXPECT_THAT(test_util::ReadFile(once / "report.html"), Not(HasSubstr("trials-table")));
  EXPECT_TRUE(fs::exists(once / "tuned.json"));
  EXPECT_FALSE(fs::exists(once / "trials.json"));
  EXPECT_FALSE(fs::exists(once / "trial-1"));
}

}  // namespace
}  // namespace sluice
