// Tests for the Chrome trace-event export: a valid document, a process per pipeline and a
// thread per worker, sorted events, busy slices and counters, and inconsistent inputs.
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice/trace/io.h"
#include "tests/trace/trace_test_util.h"

namespace sluice::trace {
namespace {

using ::testing::HasSubstr;
using namespace test_util;  // NOLINT(google-build-using-namespace): the shared trace builders

// --- Chrome trace-event export ---

struct ChromeEvents {
  Json doc;
  std::vector<Json> events;
  std::map<int, std::string> process_names;                 // pid -> name
  std::map<std::pair<int, int>, std::string> thread_names;  // (pid, tid) -> name
  std::set<std::pair<int, std::string>> counters;           // (pid, name)
};

ChromeEvents ParseChrome(const Trace& trace) {
  ChromeEvents c;
  c.doc = Json::parse(ToChromeTrace(trace));
  for (const Json& e : c.doc["traceEvents"]) {
    c.events.push_back(e);
    const std::pair<int, int> track{e["pid"].get<int>(), e["tid"].get<int>()};
    if (e["ph"] == "M" && e["name"] == "process_name") {
      c.process_names[track.first] = e["args"]["name"].get<std::string>();
    }
    if (e["ph"] == "M" && e["name"] == "thread_name") {
      c.thread_names[track] = e["args"]["name"].get<std::string>();
    }
    if (e["ph"] == "C") c.counters.insert({e["pid"].get<int>(), e["name"].get<std::string>()});
  }
  return c;
}

TEST(ChromeExportTest, IsAValidTraceEventDocument) {
  const ChromeEvents c = ParseChrome(MakeTrace());
  EXPECT_EQ(c.doc["displayTimeUnit"], "ms");
  EXPECT_EQ(c.doc["otherData"]["hostname"], "worker-7");
  EXPECT_EQ(c.doc["otherData"]["end_reason"], "signal SIGTERM");
  ASSERT_FALSE(c.events.empty());
  for (const Json& e : c.events) {
    for (const char* key : {"name", "ph", "pid", "tid", "ts"}) {
      ASSERT_TRUE(e.contains(key)) << key << " missing in " << e.dump();
    }
    EXPECT_TRUE(e["ts"].is_number());
    const std::string ph = e["ph"];
    EXPECT_TRUE(ph == "M" || ph == "X" || ph == "C") << ph;
    if (ph == "X") {
      ASSERT_TRUE(e.contains("dur")) << e.dump();
      EXPECT_GT(e["dur"].get<double>(), 0);
    }
    if (ph == "C") {
      for (const auto& [key, value] : e["args"].items()) EXPECT_TRUE(value.is_number()) << key;
    }
  }
}

TEST(ChromeExportTest, NamesAProcessPerPipelineAndAThreadPerWorker) {
  const ChromeEvents c = ParseChrome(MakeTrace());
  EXPECT_EQ(c.process_names,
            (std::map<int, std::string>{{1, "train"}, {2, "eval"}, {3, "process"}}));
  std::map<std::pair<int, int>, std::string> expected = {
      {{1, 101}, "read #0"},   {{1, 102}, "read #1"}, {{1, 103}, "decode #0"},
      {{1, 105}, "decode #2"}, {{2, 201}, "map #0"},  {{2, 202}, "map #1"}};
  std::set<std::string> synthetic;
  for (const auto& [key, name] : c.thread_names) {
    if (auto it = expected.find(key); it != expected.end()) {
      EXPECT_EQ(name, it->second);
      expected.erase(it);
    } else {
      EXPECT_GE(key.second, 10'000'000) << name << " has no known thread id";
      synthetic.insert(std::to_string(key.first) + ":" + name);
    }
  }
  EXPECT_TRUE(expected.empty());
  EXPECT_EQ(synthetic, (std::set<std::string>{"1:files (inline)", "1:decode #1", "1:flip (inline)",
                                              "1:batch (inline)", "2:gen (inline)"}));
}

TEST(ChromeExportTest, EventsAreSortedAndSlicesNeverOverlap) {
  const ChromeEvents c = ParseChrome(MakeTrace());
  std::tuple<int, int, double> previous{INT32_MIN, INT32_MIN, -1e300};
  std::map<std::pair<int, int>, double> slice_end;
  size_t slices = 0;
  for (const Json& e : c.events) {
    std::tuple<int, int, double> key{e["pid"].get<int>(), e["tid"].get<int>(),
                                     e["ts"].get<double>()};
    EXPECT_LE(previous, key) << e.dump();
    previous = key;
    if (e["ph"] != "X") continue;
    ++slices;
    auto [it, inserted] = slice_end.try_emplace({e["pid"].get<int>(), e["tid"].get<int>()}, -1e300);
    EXPECT_GE(e["ts"].get<double>(), it->second) << "overlaps the previous slice: " << e.dump();
    it->second = e["ts"].get<double>() + e["dur"].get<double>();
  }
  EXPECT_GT(slices, 0u);
}

TEST(ChromeExportTest, SlicesCarryTheBusyTimeOfEachInterval) {
  Trace trace;
  trace.series.t = {0, 0.1, 0.2, 0.3};
  PipelineTrace& p = trace.pipelines.emplace_back();
  p.name = "p";
  StageTrace& s = p.stages.emplace_back();
  s.name = "work";
  s.async = true;
  StageSeries& ss = p.stage_series.emplace_back();
  ss.worker_tids = {77};
  // 0.05 s busy, then none, then 0.25 s (more than the interval: clamped to it).
  ss.worker_busy_seconds = {{0, 0.05, 0.05, 0.30}};
  const ChromeEvents c = ParseChrome(trace);
  std::vector<std::tuple<double, double, double>> slices;  // ts, dur, busy_fraction
  for (const Json& e : c.events) {
    if (e["ph"] != "X") continue;
    EXPECT_EQ(e["name"], "work");
    EXPECT_EQ(e["pid"], 1);
    EXPECT_EQ(e["tid"], 77);
    slices.emplace_back(e["ts"].get<double>(), e["dur"].get<double>(),
                        e["args"]["busy_fraction"].get<double>());
  }
  EXPECT_EQ(slices, (std::vector<std::tuple<double, double, double>>{{0, 50'000, 0.5},
                                                                     {200'000, 100'000, 1.0}}));
}

TEST(ChromeExportTest, CountersForQueuesRatesAndTheProcess) {
  const ChromeEvents c = ParseChrome(MakeTrace());
  for (const char* name :
       {"queue read", "queue decode", "outputs/s files", "outputs/s read", "outputs/s decode",
        "outputs/s flip", "outputs/s batch", "consumer waiting %"}) {
    EXPECT_TRUE(c.counters.contains({1, name})) << name;
  }
  EXPECT_FALSE(c.counters.contains({1, "queue files"})) << "inline stages have no queue";
  EXPECT_TRUE(c.counters.contains({2, "queue map"}));
  for (const char* name :
       {"process CPU cores", "RSS MB", "host busy %", "GPU busy %", "disk read MB/s"}) {
    EXPECT_TRUE(c.counters.contains({3, name})) << name;
  }
  // outputs/s of "read" (stage 1): elements_out grows by 4 per sample, 0.1 s apart.
  for (const Json& e : c.events) {
    if (e["ph"] == "C" && e["name"] == "outputs/s read") {
      EXPECT_NEAR(e["args"]["value"].get<double>(), 40.0, 0.01);
    }
  }
}

TEST(ChromeExportTest, NoGpuCounterWhenGpuBusyIsUnknown) {
  Trace trace = MakeTrace();
  trace.series.gpu_busy.assign(trace.series.t.size(), -1);
  trace.series.rss_bytes.assign(trace.series.t.size(), -1);
  const ChromeEvents c = ParseChrome(trace);
  EXPECT_FALSE(c.counters.contains({3, "GPU busy %"}));
  EXPECT_FALSE(c.counters.contains({3, "RSS MB"}));
  EXPECT_TRUE(c.counters.contains({3, "process CPU cores"}));
}

TEST(ChromeExportTest, AThreadIdSeenTwiceGetsTwoTracks) {
  Trace trace = MakeTrace();
  // The kernel reused thread 101 for the map stage of the other pipeline and for decode.
  trace.pipelines[0].stage_series[2].worker_tids = {101, 101, 101};
  const ChromeEvents c = ParseChrome(trace);
  std::set<std::string> names;
  for (const auto& [key, name] : c.thread_names) {
    if (key.first == 1) {
      EXPECT_TRUE(names.insert(name).second) << name << " twice";
    }
  }
  EXPECT_TRUE(names.contains("decode #0") && names.contains("decode #1") &&
              names.contains("decode #2") && names.contains("read #0"));
  EXPECT_EQ(c.thread_names.at({1, 101}), "read #0");
}

TEST(ChromeExportTest, SurvivesInconsistentInMemoryTraces) {
  Trace trace = MakeTrace();
  trace.pipelines[0].stage_series[1].worker_busy_seconds[0].resize(3);
  trace.pipelines[0].stage_series.pop_back();
  trace.pipelines[1].first_index = 1000;
  trace.series.host_busy.clear();
  trace.series.process_cpu[4] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_NO_THROW(Json::parse(ToChromeTrace(trace)));
}

}  // namespace
}  // namespace sluice::trace
