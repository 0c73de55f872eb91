// `sluice report` end to end: the CLI reads a trace written to disk, writes the report where a
// user expects it, compares with a baseline, and reports usage errors with exit code 2.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/report/report.h"
#include "sluice/trace/io.h"
#include "tests/common/files.h"
#include "tests/common/harness.h"
#include "tests/report/html_dom.h"
#include "tests/report/synthetic_trace.h"

namespace sluice::report {
namespace {

namespace fs = std::filesystem;
using test_util::ReadFile;
using ::testing::HasSubstr;

class ReportCommandTest : public test_util::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    fs::create_directories(dir_ / "after");
    trace::WriteTrace(testing::BuildTrace(testing::ImageLikeSpec()), dir_ / "after" / "trace.json");
    testing::SyntheticSpec before = testing::ImageLikeSpec();
    before.outputs_per_s = 10;
    trace::WriteTrace(testing::BuildTrace(before), dir_ / "before.json");
  }
  // Runs bin/sluice with `args` (a shell line); returns its exit status, with stdout and
  // stderr in `output_`.
  int Run(const std::string& args) {
    const test_util::ProcessResult r =
        test_util::RunShell(fmt::format("{}/bin/sluice {} 2>&1", SLUICE_BINARY_DIR, args), dir_);
    output_ = r.out;
    return r.exit_code();
  }

  std::string output_;
};

TEST_F(ReportCommandTest, WritesReportBesideTheTraceByDefault) {
  ASSERT_EQ(Run(fmt::format("report '{}'", (dir_ / "after" / "trace.json").string())), 0)
      << output_;
  const fs::path path = dir_ / "after" / "report.html";
  ASSERT_TRUE(fs::exists(path)) << output_;
  EXPECT_THAT(output_, HasSubstr("highly input-bound"));
  EXPECT_THAT(output_, HasSubstr(path.string()));
  const testing::HtmlDom dom(ReadFile(path));
  ASSERT_TRUE(dom.ok());
  for (const char* id : kSectionIds) {
    EXPECT_EQ(dom.Count(fmt::format("//section[@id='{}']", id)), 1u) << id;
  }
  EXPECT_THAT(dom.Text("//p[@id='bottleneck']"), HasSubstr("'decode'"));
  EXPECT_EQ(dom.Count("//table[@id='plan-table']"), 1u) << "the CLI runs the tuner";
  EXPECT_THAT(dom.Text("//footer"), HasSubstr("sluice "));
}

TEST_F(ReportCommandTest, ComparesWithABaselineAndWritesWhereAsked) {
  const fs::path out = dir_ / "cmp.html";
  ASSERT_EQ(Run(fmt::format("report '{}' --baseline '{}' -o '{}' --cores 8",
                            (dir_ / "after" / "trace.json").string(),
                            (dir_ / "before.json").string(), out.string())),
            0)
      << output_;
  const testing::HtmlDom dom(ReadFile(out));
  ASSERT_TRUE(dom.ok());
  EXPECT_EQ(dom.Count("//section[@id='comparison']"), 1u);
  EXPECT_THAT(dom.Text("//section[@id='comparison']"), HasSubstr("before.json"));
  EXPECT_THAT(dom.Text("//section[@id='environment']"), HasSubstr("analysed for 8 with --cores"));
  EXPECT_FALSE(fs::exists(dir_ / "after" / "report.html"));
}

TEST_F(ReportCommandTest, PlanProblemsStillGiveAReport) {
  const fs::path out = dir_ / "r.html";
  ASSERT_EQ(Run(fmt::format("report '{}' --memory 1k -o '{}'",
                            (dir_ / "after" / "trace.json").string(), out.string())),
            0)
      << output_;
  EXPECT_THAT(output_, HasSubstr("warning: no tuning plan"));
  const testing::HtmlDom dom(ReadFile(out));
  ASSERT_TRUE(dom.ok());
  EXPECT_THAT(dom.Text("//section[@id='plan']"), HasSubstr("No tuning plan"));
}

// `sluice profile CONFIG` writes DIR/report.html beside the trace and says where.
TEST_F(ReportCommandTest, ProfileWritesTheReport) {
  const fs::path config = dir_ / "p.json";
  std::ofstream(config) << R"({"name": "cli", "stages": [
      {"name": "src", "op": "generate", "args": {"count": -1, "bytes": 16}},
      {"name": "work", "op": "burn", "args": {"cpu_us": 200}, "parallelism": 1, "buffer_size": 2},
      {"name": "batch", "op": "batch", "args": {"size": 4}}]})";
  ASSERT_EQ(Run(fmt::format("profile '{}' --seconds 1.5 --out '{}'", config.string(),
                            (dir_ / "prof").string())),
            0)
      << output_;
  const fs::path path = dir_ / "prof" / "report.html";
  EXPECT_THAT(output_, HasSubstr("report: " + path.string()));
  const testing::HtmlDom dom(ReadFile(path));
  ASSERT_TRUE(dom.ok());
  EXPECT_THAT(dom.Text("//h1"), HasSubstr("Pipeline 'cli'"));
  EXPECT_EQ(dom.Count("//table[@id='stage-table']//tr"), 4u);
}

TEST_F(ReportCommandTest, ErrorsAndUsage) {
  EXPECT_EQ(Run(fmt::format("report '{}'", (dir_ / "missing.json").string())), 1);
  EXPECT_THAT(output_, HasSubstr("missing.json"));
  EXPECT_EQ(Run(fmt::format("report '{}' --memory lots", (dir_ / "after" / "trace.json").string())),
            2);
  EXPECT_EQ(Run("report"), 2);
  EXPECT_EQ(Run("report --help"), 0);
  EXPECT_THAT(output_, HasSubstr("--baseline"));
}

}  // namespace
}  // namespace sluice::report
