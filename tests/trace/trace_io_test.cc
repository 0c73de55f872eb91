// Tests for the sluice-trace/1 writer and reader: round trips of every field (in memory and
// through files), the documented layout, and the file-level errors.
#include "sluice/trace/io.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice/common/error.h"
#include "tests/common/harness.h"
#include "tests/trace/trace_test_util.h"

namespace sluice::trace {
namespace {

using ::testing::HasSubstr;
using namespace test_util;  // NOLINT(google-build-using-namespace): the shared trace builders

// A fresh, empty directory for one test, removed at the end.
using TraceFileTest = sluice::test_util::TempDirTest;

// --- round trips ---

TEST(TraceJsonTest, RoundTripKeepsEveryField) {
  const Trace trace = WithEveryOptionalField(MakeTrace());
  ExpectSameTrace(trace, ParseTrace(ToJson(trace), kOrigin));
}

TEST(TraceJsonTest, WritesTheDocumentedLayout) {
  const Json doc = TraceDocument();
  EXPECT_EQ(doc["format"], "sluice-trace/1");
  for (const char* key :
       {"sluice_version", "host", "job", "pipelines", "series", "gpu", "tracer"}) {
    EXPECT_TRUE(doc.contains(key)) << key;
  }
  // Columns, not per-sample objects.
  EXPECT_TRUE(doc["series"]["t"].is_array());
  EXPECT_EQ(doc["series"]["t"].size(), 50u);
  const Json& series = doc["pipelines"][1]["series"];
  EXPECT_EQ(series["first_index"], 10);
  EXPECT_EQ(series["consumer_next"].size(), 40u);
  ASSERT_EQ(series["stages"].size(), 2u);
  EXPECT_EQ(series["stages"][1]["worker_tids"], Json({201, 202}));
  EXPECT_EQ(series["stages"][1]["worker_busy_seconds"].size(), 2u);
  EXPECT_EQ(series["stages"][1]["worker_busy_seconds"][0].size(), 40u);
}

TEST(TraceJsonTest, EmptyTraceRoundTrips) {
  Trace trace;
  ExpectSameTrace(trace, ParseTrace(ToJson(trace), kOrigin));
}

TEST(TraceJsonTest, MissingOptionalFieldsTakeDefaults) {
  Trace trace = ParseTrace(
      R"({"format": "sluice-trace/1", "pipelines": [{"stages": [{"name": "a"}]}]})", kOrigin);
  Trace expected;
  expected.pipelines.emplace_back().stages.emplace_back().name = "a";
  ExpectSameTrace(expected, trace);
  EXPECT_EQ(trace.gpu.status, "not_built");
  EXPECT_EQ(trace.tracer.interval, 0.1);
}

TEST(TraceJsonTest, UnknownFieldsAreIgnored) {
  Json doc = TraceDocument();
  doc["future_top"] = {{"nested", {1, 2, {{"deep", true}}}}};
  doc["host"]["numa_nodes"] = 2;
  doc["pipelines"][0]["stages"][1]["gpu_kernels"] = Json::array({"a", "b"});
  doc["pipelines"][0]["series"]["stages"][0]["energy"] = Json::array({1, 2, 3});
  doc["series"]["temperature"] = "hot";
  ExpectSameTrace(MakeTrace(), ParseTrace(doc.dump(), kOrigin));
}

TEST(TraceJsonTest, MinusOneMarksUnknownRssAndDiskBytes) {
  Trace trace = MakeTrace();
  trace.series.rss_bytes[3] = -1;
  trace.series.disk_read_bytes.assign(trace.series.t.size(), -1);
  ExpectSameTrace(trace, ParseTrace(ToJson(trace), kOrigin));
}

TEST(TraceJsonTest, HostileStageNameRoundTripsAndIsEscapedInChromeExport) {
  const std::string hostile = "<script>alert(1)</script>\"\n\u00e9\\\t\x01";
  const std::string long_name(10'000, 'x');
  Trace trace = MakeTrace();
  trace.pipelines[0].stages[1].name = hostile;    // async, with worker tracks
  trace.pipelines[0].stages[3].name = long_name;  // inline
  trace.pipelines[1].name = hostile;
  trace.job.command.push_back(hostile);
  const std::string text = ToJson(trace);
  const Trace back = ParseTrace(text, kOrigin);
  EXPECT_EQ(back.pipelines[0].stages[1].name, hostile);
  EXPECT_EQ(back.pipelines[0].stages[3].name, long_name);
  EXPECT_EQ(back.pipelines[1].name, hostile);
  ExpectSameTrace(trace, back);

  const std::string chrome = ToChromeTrace(trace);
  EXPECT_EQ(chrome.find("<script>alert(1)</script>\""), std::string::npos) << "unescaped quote";
  const Json doc = Json::parse(chrome);
  std::set<std::string> thread_names, x_names, process_names, counter_names;
  for (const Json& e : doc["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "thread_name") thread_names.insert(e["args"]["name"]);
    if (e["ph"] == "M" && e["name"] == "process_name") process_names.insert(e["args"]["name"]);
    if (e["ph"] == "X") x_names.insert(e["name"]);
    if (e["ph"] == "C") counter_names.insert(e["name"]);
  }
  EXPECT_TRUE(thread_names.contains(hostile + " #0"));
  EXPECT_TRUE(thread_names.contains(long_name + " (inline)"));
  EXPECT_TRUE(x_names.contains(hostile));
  EXPECT_TRUE(x_names.contains(long_name));
  EXPECT_TRUE(process_names.contains(hostile));
  EXPECT_TRUE(counter_names.contains("queue " + hostile));
  EXPECT_THAT(doc["otherData"]["command"].get<std::string>(), HasSubstr(hostile));
}

TEST(TraceJsonTest, InvalidUtf8IsReplacedNotFatal) {
  Trace trace = MakeTrace();
  trace.job.command.push_back("bad\xff\xfe");
  Trace back = ParseTrace(ToJson(trace), kOrigin);
  EXPECT_EQ(back.job.command.back(), "bad\xEF\xBF\xBD\xEF\xBF\xBD");  // two U+FFFD
  EXPECT_NO_THROW(Json::parse(ToChromeTrace(trace)));
}

TEST(TraceJsonTest, TheDocumentedExampleIsAValidTrace) {
  std::ifstream in(std::filesystem::path(SLUICE_SOURCE_DIR) / "docs" / "trace-format.md");
  ASSERT_TRUE(in) << "docs/trace-format.md";
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const size_t begin = doc.find("```json\n");
  ASSERT_NE(begin, std::string::npos);
  const size_t end = doc.find("```", begin + 8);
  const Trace trace = ParseTrace(doc.substr(begin + 8, end - begin - 8), "docs/trace-format.md");
  ASSERT_EQ(trace.pipelines.size(), 1u);
  EXPECT_EQ(trace.pipelines[0].stage_series[1].worker_busy_seconds.size(), 2u);
  EXPECT_EQ(trace.series.t.size(), 2u);
  EXPECT_EQ(ParseTrace(ToJson(trace), kOrigin).pipelines[0].stages[1].name, "burn");
}

// --- files ---

TEST_F(TraceFileTest, WriteThenReadRoundTripsAndLeavesNoTemporaryFile) {
  const Trace trace = MakeTrace();
  const std::filesystem::path path = dir_ / "run.trace.json";
  WriteTrace(trace, path);
  ExpectSameTrace(trace, ReadTrace(path));
  EXPECT_EQ(DirEntries(), std::vector<std::string>{"run.trace.json"});
}

TEST_F(TraceFileTest, WriteReplacesAnEarlierTrace) {
  const std::filesystem::path path = dir_ / "t.json";
  Trace first = MakeTrace();
  first.job.end_reason = "in progress";
  WriteTrace(first, path);
  Trace second = MakeTrace();
  second.job.end_reason = "completed";
  second.job.cut_short = false;
  WriteTrace(second, path);
  EXPECT_EQ(ReadTrace(path).job.end_reason, "completed");
  EXPECT_EQ(DirEntries(), std::vector<std::string>{"t.json"});
}

TEST_F(TraceFileTest, ConcurrentWritesOfOnePathNeverCollide) {
  // Each write has its own temporary file, so threads writing the same trace never truncate or
  // rename one another's.
  const std::filesystem::path path = dir_ / "t.json";
  const Trace trace = MakeTrace();
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 8; ++w) {
    writers.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        try {
          WriteTrace(trace, path);
        } catch (const Error&) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0);
  ExpectSameTrace(trace, ReadTrace(path));
  EXPECT_EQ(DirEntries(), std::vector<std::string>{"t.json"});
}

TEST_F(TraceFileTest, WriteIntoMissingDirectoryFailsNamingThePath) {
  const std::filesystem::path path = dir_ / "missing" / "t.json";
  try {
    WriteTrace(MakeTrace(), path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              path.string() + ": cannot write trace: No such file or directory");
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ / "missing"));
  EXPECT_TRUE(DirEntries().empty());
}

TEST_F(TraceFileTest, FailedRenameLeavesNoTemporaryFile) {
  // A directory where the trace should go: the rename fails after the temporary was written.
  const std::filesystem::path path = dir_ / "t.json";
  std::filesystem::create_directories(path / "child");
  EXPECT_THROW(WriteTrace(MakeTrace(), path), Error);
  EXPECT_EQ(DirEntries(), std::vector<std::string>{"t.json"});
  EXPECT_TRUE(std::filesystem::is_directory(path));
}

TEST_F(TraceFileTest, WriterRefusesANumberJsonCannotHold) {
  Trace trace = MakeTrace();
  trace.tracer.overhead_fraction = std::numeric_limits<double>::quiet_NaN();
  const std::filesystem::path path = dir_ / "t.json";
  try {
    WriteTrace(trace, path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path.string() +
                                         ": cannot write trace: tracer.overhead_fraction: "
                                         "expected a finite number, got nan");
  }
  EXPECT_TRUE(DirEntries().empty());
}

TEST(TraceJsonTest, WriterRefusesColumnsOfTheWrongLength) {
  Trace trace = MakeTrace();
  trace.pipelines[0].stage_series[2].busy_seconds.pop_back();
  try {
    ToJson(trace);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot write trace: pipelines[0].series.stages[2].busy_seconds: has 49 values, "
              "expected 50 (one per sample of series.t from first_index 0 on)");
  }
}

TEST_F(TraceFileTest, ReadingAMissingFileNamesIt) {
  const std::filesystem::path path = dir_ / "none.json";
  try {
    ReadTrace(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              path.string() + ": cannot read trace: No such file or directory");
  }
}

TEST_F(TraceFileTest, ReadErrorsNameTheFile) {
  const std::filesystem::path path = dir_ / "bad.json";
  std::ofstream(path) << "{\"format\": \"sluice-trace/1\",\n \"pipelines\": 3}";
  try {
    ReadTrace(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              path.string() + ": pipelines: expected an array of pipelines, got 3");
  }
}

// --- size ---

TEST(TraceJsonTest, OneHourTraceRoundTrips) {
  using Clock = std::chrono::steady_clock;
  const size_t kSamples = 36'000;
  Trace trace;
  for (size_t i = 0; i < kSamples; ++i) {
    const double x = static_cast<double>(i);
    trace.series.t.push_back(0.1 * x + 1e-5 * std::sin(x));
    trace.series.process_cpu.push_back(0.7345 * x + 1e-6 * std::cos(x));
    trace.series.host_busy.push_back(0.5 + 0.4 * std::sin(x / 100));
    trace.series.rss_bytes.push_back((int64_t{2} << 30) + static_cast<int64_t>(i % 1000) * 4096);
    trace.series.disk_read_bytes.push_back(static_cast<int64_t>(i) * 1'234'567);
    trace.series.gpu_busy.push_back(0.9 - 0.1 * std::cos(x / 10));
  }
  std::vector<StageSpec> specs;
  for (int s = 0; s < 10; ++s) {
    const bool async = s % 2 == 1;
    const int workers = async ? 4 : 1;
    std::vector<int> tids;
    for (int w = 0; w < workers && async; ++w) tids.push_back(1000 + s * 10 + w);
    specs.push_back({"stage" + std::to_string(s), async, workers, tids});
  }
  trace.pipelines.push_back(MakePipeline("big", specs, 0, kSamples, trace.series.t));
  trace.tracer.samples = kSamples;

  const auto t0 = Clock::now();
  const std::string text = ToJson(trace);
  const auto t1 = Clock::now();
  const Trace back = ParseTrace(text, kOrigin);
  const auto t2 = Clock::now();
  auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  std::cout << "[ timing ] 36,000 samples x 10 stages (20 worker series): " << text.size() / 1e6
            << " MB; ToJson " << ms(t1 - t0) << " ms, ParseTrace " << ms(t2 - t1) << " ms\n";
  RecordProperty("json_bytes", std::to_string(text.size()));
  ExpectSameTrace(trace, back);
}

}  // namespace
}  // namespace sluice::trace
