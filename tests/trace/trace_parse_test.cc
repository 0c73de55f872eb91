// Tests for the sluice-trace/1 reader's rejections: each kind of malformed, mistyped or absurd
// document, with the message that names what is wrong and where.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice/common/error.h"
#include "sluice/trace/io.h"
#include "tests/trace/trace_test_util.h"

namespace sluice::trace {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace test_util;  // NOLINT(google-build-using-namespace): the shared trace builders

// --- rejected documents ---

TEST(TraceParseTest, RejectsOtherFormats) {
  Json doc = TraceDocument();
  doc["format"] = "sluice-trace/3";
  EXPECT_EQ(DocError(doc),
            "t.json: not a sluice trace (format is 'sluice-trace/3', expected 'sluice-trace/1' or "
            "'sluice-trace/2')");
  doc.erase("format");
  EXPECT_EQ(DocError(doc),
            "t.json: not a sluice trace (no \"format\" field, expected 'sluice-trace/1')");
  EXPECT_EQ(ParseError(R"({"traceEvents": []})"),
            "t.json: not a sluice trace (no \"format\" field, expected 'sluice-trace/1')");
  EXPECT_EQ(ParseError("[1, 2]"),
            "t.json: not a sluice trace (expected a JSON object, got an array of 2 values)");
  EXPECT_EQ(ParseError(R"({"format": 1})"),
            "t.json: not a sluice trace (format is '1', expected 'sluice-trace/1' or "
            "'sluice-trace/2')");
}

TEST(TraceParseTest, SyntaxErrorsGiveLineAndColumn) {
  const std::string text = "{\n  \"format\": \"sluice-trace/1\",\n  \"pipelines\": [tru]\n}";
  EXPECT_THAT(ParseError(text), StartsWith("t.json:3:20: invalid JSON: syntax error"));
  EXPECT_THAT(ParseError(""), StartsWith("t.json:1:1: invalid JSON: "));
  EXPECT_THAT(ParseError("{\"format\": \"sluice-trace/1\"} trailing"),
              StartsWith("t.json:1:32: invalid JSON: "));
}

TEST(TraceParseTest, WrongTypesNameThePath) {
  Json doc = TraceDocument();
  doc["pipelines"][0]["stages"][1]["cpu_seconds"] = "x";
  EXPECT_EQ(DocError(doc),
            "t.json: pipelines[0].stages[1].cpu_seconds: expected a number, got \"x\"");

  doc = TraceDocument();
  doc["pipelines"][1]["stages"][0]["async"] = 1;
  EXPECT_EQ(DocError(doc), "t.json: pipelines[1].stages[0].async: expected true or false, got 1");

  doc = TraceDocument();
  doc["host"]["disks"][0]["device"] = {{"a", 1}};
  EXPECT_EQ(DocError(doc), "t.json: host.disks[0].device: expected a string, got an object");

  doc = TraceDocument();
  doc["pipelines"][0]["series"]["stages"][2]["worker_busy_seconds"][1][7] = "busy";
  EXPECT_EQ(DocError(doc),
            "t.json: pipelines[0].series.stages[2].worker_busy_seconds[1][7]: expected a number, "
            "got \"busy\"");

  doc = TraceDocument();
  doc["job"]["pid"] = 1.5;
  EXPECT_EQ(DocError(doc), "t.json: job.pid: expected an integer from 0 to 2147483647, got 1.5");

  doc = TraceDocument();
  doc["gpu"]["kernels"] = 18446744073709551615u;  // would wrap to -1
  EXPECT_EQ(DocError(doc),
            "t.json: gpu.kernels: expected an integer >= 0, got 18446744073709551615");

  doc = TraceDocument();
  doc["pipelines"][0]["stages"][0]["cpu_seconds"] = std::string(500, 'o');
  const std::string message = DocError(doc);
  EXPECT_THAT(message, StartsWith("t.json: pipelines[0].stages[0].cpu_seconds: expected a number, "
                                  "got \"ooo"));
  EXPECT_LT(message.size(), 200u) << "long values are shortened in messages";
}

TEST(TraceParseTest, RequiresPipelinesAndStageNames) {
  Json doc = TraceDocument();
  doc.erase("pipelines");
  EXPECT_EQ(DocError(doc),
            "t.json: pipelines: missing: a trace lists its pipelines (an empty array when none "
            "ran)");

  doc = TraceDocument();
  doc["pipelines"][1].erase("stages");
  EXPECT_EQ(DocError(doc), "t.json: pipelines[1].stages: missing: a pipeline lists its stages");

  doc = TraceDocument();
  doc["pipelines"][0]["stages"][2].erase("name");
  EXPECT_EQ(DocError(doc), "t.json: pipelines[0].stages[2].name: missing: every stage has a name");

  doc = TraceDocument();
  doc["pipelines"][0]["stages"][2]["name"] = "";
  EXPECT_EQ(DocError(doc),
            "t.json: pipelines[0].stages[2].name: expected a non-empty string, got \"\"");
}

TEST(TraceParseTest, RejectsColumnsOfTheWrongLengthNamingThem) {
  Json doc = TraceDocument();
  doc["pipelines"][0]["series"]["stages"][1]["busy_seconds"].erase(0);
  EXPECT_EQ(DocError(doc),
            "t.json: pipelines[0].series.stages[1].busy_seconds: has 49 values, expected 50 (one "
            "per sample of series.t from first_index 0 on)");

  doc = TraceDocument();
  doc["series"]["rss_bytes"].push_back(1);
  EXPECT_EQ(DocError(doc),
            "t.json: series.rss_bytes: has 51 values, expected 50 (one per sample of series.t)");

  doc = TraceDocument();  // pipeline 1 starts at sample 10: its columns hold 40
  doc["pipelines"][1]["series"]["consumer_wait"].push_back(1.0);
  EXPECT_EQ(DocError(doc),
            "t.json: pipelines[1].series.consumer_wait: has 41 values, expected 40 (one per "
            "sample of series.t from first_index 10 on)");

  doc = TraceDocument();
  doc["pipelines"][1]["series"]["first_index"] = 51;
  EXPECT_EQ(DocError(doc),
            "t.json: pipelines[1].series.first_index: 51 is beyond the 50 samples of series.t");

  doc = TraceDocument();
  doc["series"].erase("gpu_busy");
  EXPECT_EQ(DocError(doc), "t.json: series.gpu_busy: missing: expected 50 values, one per sample");

  doc = TraceDocument();
  doc["pipelines"][0]["series"]["stages"].erase(4);
  EXPECT_EQ(DocError(doc),
            "t.json: pipelines[0].series.stages: has 4 stage series, expected 5 (one per stage)");

  doc = TraceDocument();
  doc["pipelines"][0]["series"]["stages"][2]["worker_tids"].erase(0);
  EXPECT_EQ(DocError(doc),
            "t.json: pipelines[0].series.stages[2].worker_busy_seconds: has 3 workers but "
            "worker_tids has 2");
}

TEST(TraceParseTest, RejectsDecreasingSampleTimes) {
  Json doc = TraceDocument();
  doc["series"]["t"][5] = 0.0;
  EXPECT_THAT(DocError(doc),
              StartsWith("t.json: series.t[5]: sample times must not decrease (0 after 0.4"));
}

TEST(TraceParseTest, RejectsAbsurdCounts) {
  Json doc = TraceDocument();
  Json& stage = doc["pipelines"][0]["series"]["stages"][1];
  stage["worker_tids"] = Json::array();
  for (int w = 0; w < 5000; ++w) stage["worker_tids"].push_back(1000 + w);
  EXPECT_EQ(DocError(doc),
            "t.json: pipelines[0].series.stages[1].worker_tids: 5000 workers, more than the 4096 "
            "a trace may have");

  doc = TraceDocument();
  doc["pipelines"][0]["series"]["stages"][1]["elements_out"][3] = -1;
  EXPECT_EQ(DocError(doc),
            "t.json: pipelines[0].series.stages[1].elements_out[3]: expected an integer >= 0, "
            "got -1");

  doc = TraceDocument();
  doc["pipelines"][0]["stages"][0]["elements_out"] = -5;
  EXPECT_EQ(DocError(doc),
            "t.json: pipelines[0].stages[0].elements_out: expected an integer >= 0, got -5");

  doc = TraceDocument();
  doc["series"]["rss_bytes"][2] = -2;  // -1 means unknown; nothing below it means anything
  EXPECT_EQ(DocError(doc), "t.json: series.rss_bytes[2]: expected an integer >= -1, got -2");

  doc = TraceDocument();
  doc["pipelines"][0]["stages"][1]["parallelism"] = 100000;
  EXPECT_EQ(DocError(doc),
            "t.json: pipelines[0].stages[1].parallelism: expected an integer from 1 to 4096, got "
            "100000");

  doc = TraceDocument();
  doc["pipelines"][0]["stages"][1]["buffer_size"] = 2147483647;  // more than a config may ask
  EXPECT_EQ(DocError(doc),
            "t.json: pipelines[0].stages[1].buffer_size: expected an integer from 0 to 16777216, "
            "got 2147483647");

  doc = TraceDocument();
  doc["pipelines"] = Json::array();
  for (int i = 0; i < 10'001; ++i) doc["pipelines"].push_back(Json::object());
  EXPECT_EQ(DocError(doc),
            "t.json: pipelines: 10001 pipelines, more than the 10000 a trace may have");
}

// Found by fuzz/trace_fuzz: worker_tids without worker_busy_seconds was read, then written with
// `"worker_busy_seconds": []`, which the reader rejected; both now mean the same and are rejected.
TEST(TraceParseTest, WorkerTidsNeedABusyColumnEach) {
  Json doc = TraceDocument();
  Json& stage = doc["pipelines"][0]["series"]["stages"][1];
  const size_t workers = stage["worker_tids"].size();
  ASSERT_GT(workers, 0u);
  const std::string message =
      "t.json: pipelines[0].series.stages[1].worker_busy_seconds: has 0 workers but worker_tids "
      "has " +
      std::to_string(workers);
  stage.erase("worker_busy_seconds");
  EXPECT_EQ(DocError(doc), message);
  stage["worker_busy_seconds"] = Json::array();
  EXPECT_EQ(DocError(doc), message);
}

TEST(TraceParseTest, RejectsNumbersOutOfRange) {
  std::string text = ToJson(MakeTrace());
  const std::string key = "\"kernel_busy_seconds\":3.5";
  ASSERT_NE(text.find(key), std::string::npos);
  text.replace(text.find(key), key.size(), "\"kernel_busy_seconds\":1e999");
  EXPECT_THAT(ParseError(text), HasSubstr("invalid JSON: number overflow parsing '1e999'"));
  EXPECT_THAT(ParseError(text), StartsWith("t.json:1:"));
  EXPECT_THAT(
      ParseError(R"({"format": "sluice-trace/1", "pipelines": [], "job": {"duration": NaN}})"),
      StartsWith("t.json:1:"));
}

TEST(TraceParseTest, RejectsAbsurdNestingWhileParsing) {
  std::string text = R"({"format": "sluice-trace/1", "pipelines": [], "extra": )";
  text += std::string(100'000, '[') + std::string(100'000, ']') + "}";
  EXPECT_THAT(ParseError(text), HasSubstr(": nested deeper than 128 levels"));
  EXPECT_THAT(ParseError(text), StartsWith("t.json: extra[0][0]"));
}

TEST(TraceParseTest, RejectsTextOver2GiBBeforeReadingIt) {
  // Only the size is looked at: the view's bytes beyond the small buffer are never read.
  const std::string small = "{}";
  const std::string_view huge(small.data(), (size_t{2} << 30) + 1);
  EXPECT_EQ(ParseError(huge), "t.json: 2147483649 bytes, larger than the 2 GiB a trace may have");
}

}  // namespace
}  // namespace sluice::trace
