// Tests for the sluice-trace/1 reader and writer and the Chrome trace-event export: round trips
// of every field, each kind of rejected input with its message, and the export's structure.
#include "sluice/trace/io.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice/common/error.h"

namespace sluice::trace {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using Json = nlohmann::json;

constexpr char kOrigin[] = "t.json";

// A stage description for MakeTrace.
struct StageSpec {
  std::string name;
  bool async = false;
  int workers = 1;
  std::vector<int> tids;  // one per worker when async; 0 = unknown
};

// A pipeline with `samples` samples from `first_index` on, its counters growing at rates that
// differ by stage, and values with many significant digits so that a lossy writer shows up.
PipelineTrace MakePipeline(const std::string& name, const std::vector<StageSpec>& specs,
                           size_t first_index, size_t samples, const std::vector<double>& t) {
  PipelineTrace p;
  p.name = name;
  p.config_path = "configs/" + name + ".json";
  p.config_text = "{\n  \"name\": \"" + name + "\",\n  \"stages\": []\n}\n";
  p.epochs_completed = 3;
  p.finished = true;
  p.first_sample = t[first_index];
  p.first_index = first_index;
  for (size_t s = 0; s < specs.size(); ++s) {
    const StageSpec& spec = specs[s];
    StageTrace st;
    st.name = spec.name;
    st.op = "op_" + spec.name;
    st.parallelizable = spec.async;
    st.deterministic = s % 2 == 0;
    st.stateless = s % 3 != 0;
    st.inspected = s == 0 ? "deterministic" : "";
    st.parallelism = spec.async ? spec.workers : 1;
    st.buffer_size = spec.async ? 4 : 0;
    st.ordered = s % 2 == 1;
    st.async = spec.async;
    st.elements_in = 1000 + static_cast<int64_t>(s);
    st.elements_out = 990 + static_cast<int64_t>(s);
    st.bytes_out = int64_t{1} << (30 + s % 3);
    st.cpu_seconds = 1.2345678901234567 * static_cast<double>(s + 1);
    st.busy_seconds = 2.0 / 3.0 * static_cast<double>(s + 1);
    st.blocked_input_seconds = 0.1 * static_cast<double>(s);
    st.blocked_output_seconds = 1e-9 * static_cast<double>(s);
    st.queue_mean = spec.async ? 2.718281828459045 : 0;
    st.queue_max = spec.async ? 4 : 0;
    st.voluntary_switches = 12345 + static_cast<int64_t>(s);
    st.involuntary_switches = 67 + static_cast<int64_t>(s);
    st.minor_faults = 890;
    st.major_faults = static_cast<int64_t>(s);
    p.stages.push_back(st);

    StageSeries ss;
    const double rate = 0.013 * static_cast<double>(s + 1);
    for (size_t j = 0; j < samples; ++j) {
      const double x = static_cast<double>(j);
      ss.elements_out.push_back(static_cast<int64_t>(j * (s + 3)));
      ss.cpu_seconds.push_back(rate * x + 1e-7 * std::sin(x));
      ss.busy_seconds.push_back(rate * 1.1 * x);
      ss.blocked_input_seconds.push_back(0.001 * x * x);
      ss.blocked_output_seconds.push_back(x / 7.0);
      ss.queue_size.push_back(spec.async ? static_cast<int64_t>(j % 5) : 0);
    }
    if (spec.async) {
      ss.worker_tids = spec.tids;
      for (int w = 0; w < spec.workers; ++w) {
        std::vector<double> busy;
        // Worker w is busy (w + 1) / (workers + 1) of each 0.1 s interval.
        const double fraction = static_cast<double>(w + 1) / (spec.workers + 1);
        for (size_t j = 0; j < samples; ++j) busy.push_back(0.1 * fraction * j);
        ss.worker_busy_seconds.push_back(busy);
      }
    }
    p.stage_series.push_back(ss);
  }
  p.consumer = {.next_calls = 987, .wait_seconds = 1.5, .between_seconds = 3.25};
  for (size_t j = 0; j < samples; ++j) {
    p.consumer_next.push_back(static_cast<int64_t>(j * 2));
    p.consumer_wait.push_back(0.03 * static_cast<double>(j) + 1e-12);
  }
  return p;
}

// A trace built by hand: two pipelines (the second first seen at sample 10), async stages with
// known and unknown worker thread ids, inline stages, a GPU and every scalar set.
Trace MakeTrace(size_t samples = 50) {
  Trace trace;
  trace.sluice_version = "0.1.0";
  trace.host.hostname = "worker-7";
  trace.host.os = "Linux 6.1.0 (Debian GNU/Linux 12)";
  trace.host.cpu_model = "AMD EPYC 7B13";
  trace.host.cores = 16;
  trace.host.memory_bytes = int64_t{64} << 30;
  trace.host.disks.push_back({.device = "8:1 /dev/vda1",
                              .path = "/data",
                              .read_mb_per_s = 812.25,
                              .probe_bytes = int64_t{256} << 20,
                              .probe_seconds = 0.3151,
                              .method = "sequential read after posix_fadvise(DONTNEED)",
                              .cached = true});
  trace.job.command = {"python3", "train.py", "--epochs", "3", "--name=a b"};
  trace.job.pid = 4242;
  trace.job.start_unix = 1700000000.123456;
  trace.job.duration = 0.1 * static_cast<double>(samples - 1);
  trace.job.cut_short = true;
  trace.job.end_reason = "signal SIGTERM";
  trace.job.exit_signal = "SIGTERM";
  for (size_t i = 0; i < samples; ++i) {
    const double x = static_cast<double>(i);
    trace.series.t.push_back(0.1 * x + 1e-6 * std::cos(x) + 1e-6);
    trace.series.process_cpu.push_back(0.37 * x);
    trace.series.host_busy.push_back(0.5 + 0.25 * std::sin(x));
    trace.series.rss_bytes.push_back((int64_t{100} << 20) + static_cast<int64_t>(i) * 4096);
    trace.series.disk_read_bytes.push_back(static_cast<int64_t>(i) * 1'000'000);
    trace.series.gpu_busy.push_back(i == 0 ? -1 : 0.75);
  }
  trace.pipelines.push_back(MakePipeline("train",
                                         {{"files"},
                                          {"read", true, 2, {101, 102}},
                                          {"decode", true, 3, {103, 0, 105}},
                                          {"flip"},
                                          {"batch"}},
                                         0, samples, trace.series.t));
  trace.pipelines.push_back(MakePipeline("eval", {{"gen"}, {"map", true, 2, {201, 202}}}, 10,
                                         samples - 10, trace.series.t));
  trace.gpu = {.status = "ok",
               .reason = "",
               .device_name = "NVIDIA H100 80GB HBM3",
               .kernels = 12345,
               .kernel_busy_seconds = 3.5,
               .busy_fraction = 0.71,
               .h2d_bytes = int64_t{3} << 30,
               .h2d_seconds = 0.25,
               .d2h_bytes = 4096,
               .d2h_seconds = 1e-5};
  trace.tracer = {.interval = 0.1,
                  .samples = static_cast<int64_t>(samples),
                  .cpu_seconds = 0.0123,
                  .overhead_fraction = 0.0031,
                  .warmup_seconds = 1.5,
                  .warmup_method = "throughput within 10% of the final mean"};
  return trace;
}

// Every field of two traces, one assertion each so a failure names the field.
void ExpectSameTrace(const Trace& a, const Trace& b) {
  EXPECT_EQ(a.format, b.format);
  EXPECT_EQ(a.sluice_version, b.sluice_version);
  EXPECT_EQ(a.host.hostname, b.host.hostname);
  EXPECT_EQ(a.host.os, b.host.os);
  EXPECT_EQ(a.host.cpu_model, b.host.cpu_model);
  EXPECT_EQ(a.host.cores, b.host.cores);
  EXPECT_EQ(a.host.memory_bytes, b.host.memory_bytes);
  ASSERT_EQ(a.host.disks.size(), b.host.disks.size());
  for (size_t i = 0; i < a.host.disks.size(); ++i) {
    const DiskBandwidth& x = a.host.disks[i];
    const DiskBandwidth& y = b.host.disks[i];
    EXPECT_EQ(x.device, y.device);
    EXPECT_EQ(x.path, y.path);
    EXPECT_EQ(x.read_mb_per_s, y.read_mb_per_s);
    EXPECT_EQ(x.probe_bytes, y.probe_bytes);
    EXPECT_EQ(x.probe_seconds, y.probe_seconds);
    EXPECT_EQ(x.method, y.method);
    EXPECT_EQ(x.cached, y.cached);
  }
  EXPECT_EQ(a.job.command, b.job.command);
  EXPECT_EQ(a.job.pid, b.job.pid);
  EXPECT_EQ(a.job.start_unix, b.job.start_unix);
  EXPECT_EQ(a.job.duration, b.job.duration);
  EXPECT_EQ(a.job.cut_short, b.job.cut_short);
  EXPECT_EQ(a.job.end_reason, b.job.end_reason);
  EXPECT_EQ(a.job.exit_code, b.job.exit_code);
  EXPECT_EQ(a.job.exit_signal, b.job.exit_signal);
  ASSERT_EQ(a.pipelines.size(), b.pipelines.size());
  for (size_t i = 0; i < a.pipelines.size(); ++i) {
    SCOPED_TRACE("pipeline " + std::to_string(i));
    const PipelineTrace& p = a.pipelines[i];
    const PipelineTrace& q = b.pipelines[i];
    EXPECT_EQ(p.name, q.name);
    EXPECT_EQ(p.config_path, q.config_path);
    EXPECT_EQ(p.config_text, q.config_text);
    EXPECT_EQ(p.epochs_completed, q.epochs_completed);
    EXPECT_EQ(p.finished, q.finished);
    EXPECT_EQ(p.first_sample, q.first_sample);
    ASSERT_EQ(p.stages.size(), q.stages.size());
    for (size_t s = 0; s < p.stages.size(); ++s) {
      SCOPED_TRACE("stage " + std::to_string(s));
      const StageTrace& x = p.stages[s];
      const StageTrace& y = q.stages[s];
      EXPECT_EQ(x.name, y.name);
      EXPECT_EQ(x.op, y.op);
      EXPECT_EQ(x.parallelizable, y.parallelizable);
      EXPECT_EQ(x.deterministic, y.deterministic);
      EXPECT_EQ(x.stateless, y.stateless);
      EXPECT_EQ(x.inspected, y.inspected);
      EXPECT_EQ(x.parallelism, y.parallelism);
      EXPECT_EQ(x.buffer_size, y.buffer_size);
      EXPECT_EQ(x.ordered, y.ordered);
      EXPECT_EQ(x.async, y.async);
      EXPECT_EQ(x.elements_in, y.elements_in);
      EXPECT_EQ(x.elements_out, y.elements_out);
      EXPECT_EQ(x.bytes_out, y.bytes_out);
      EXPECT_EQ(x.cpu_seconds, y.cpu_seconds);
      EXPECT_EQ(x.busy_seconds, y.busy_seconds);
      EXPECT_EQ(x.blocked_input_seconds, y.blocked_input_seconds);
      EXPECT_EQ(x.blocked_output_seconds, y.blocked_output_seconds);
      EXPECT_EQ(x.queue_mean, y.queue_mean);
      EXPECT_EQ(x.queue_max, y.queue_max);
      EXPECT_EQ(x.voluntary_switches, y.voluntary_switches);
      EXPECT_EQ(x.involuntary_switches, y.involuntary_switches);
      EXPECT_EQ(x.minor_faults, y.minor_faults);
      EXPECT_EQ(x.major_faults, y.major_faults);
    }
    EXPECT_EQ(p.consumer.next_calls, q.consumer.next_calls);
    EXPECT_EQ(p.consumer.wait_seconds, q.consumer.wait_seconds);
    EXPECT_EQ(p.consumer.between_seconds, q.consumer.between_seconds);
    EXPECT_EQ(p.first_index, q.first_index);
    ASSERT_EQ(p.stage_series.size(), q.stage_series.size());
    for (size_t s = 0; s < p.stage_series.size(); ++s) {
      SCOPED_TRACE("stage series " + std::to_string(s));
      const StageSeries& x = p.stage_series[s];
      const StageSeries& y = q.stage_series[s];
      EXPECT_EQ(x.elements_out, y.elements_out);
      EXPECT_EQ(x.cpu_seconds, y.cpu_seconds);
      EXPECT_EQ(x.busy_seconds, y.busy_seconds);
      EXPECT_EQ(x.blocked_input_seconds, y.blocked_input_seconds);
      EXPECT_EQ(x.blocked_output_seconds, y.blocked_output_seconds);
      EXPECT_EQ(x.queue_size, y.queue_size);
      EXPECT_EQ(x.worker_tids, y.worker_tids);
      EXPECT_EQ(x.worker_busy_seconds, y.worker_busy_seconds);
    }
    EXPECT_EQ(p.consumer_next, q.consumer_next);
    EXPECT_EQ(p.consumer_wait, q.consumer_wait);
  }
  EXPECT_EQ(a.series.t, b.series.t);
  EXPECT_EQ(a.series.process_cpu, b.series.process_cpu);
  EXPECT_EQ(a.series.host_busy, b.series.host_busy);
  EXPECT_EQ(a.series.rss_bytes, b.series.rss_bytes);
  EXPECT_EQ(a.series.disk_read_bytes, b.series.disk_read_bytes);
  EXPECT_EQ(a.series.gpu_busy, b.series.gpu_busy);
  EXPECT_EQ(a.gpu.status, b.gpu.status);
  EXPECT_EQ(a.gpu.reason, b.gpu.reason);
  EXPECT_EQ(a.gpu.device_name, b.gpu.device_name);
  EXPECT_EQ(a.gpu.kernels, b.gpu.kernels);
  EXPECT_EQ(a.gpu.kernel_busy_seconds, b.gpu.kernel_busy_seconds);
  EXPECT_EQ(a.gpu.busy_fraction, b.gpu.busy_fraction);
  EXPECT_EQ(a.gpu.h2d_bytes, b.gpu.h2d_bytes);
  EXPECT_EQ(a.gpu.h2d_seconds, b.gpu.h2d_seconds);
  EXPECT_EQ(a.gpu.d2h_bytes, b.gpu.d2h_bytes);
  EXPECT_EQ(a.gpu.d2h_seconds, b.gpu.d2h_seconds);
  EXPECT_EQ(a.tracer.interval, b.tracer.interval);
  EXPECT_EQ(a.tracer.samples, b.tracer.samples);
  EXPECT_EQ(a.tracer.cpu_seconds, b.tracer.cpu_seconds);
  EXPECT_EQ(a.tracer.overhead_fraction, b.tracer.overhead_fraction);
  EXPECT_EQ(a.tracer.warmup_seconds, b.tracer.warmup_seconds);
  EXPECT_EQ(a.tracer.warmup_method, b.tracer.warmup_method);
}

// The message ParseTrace(text, kOrigin) throws; fails the test when it does not throw.
std::string ParseError(std::string_view text) {
  try {
    ParseTrace(text, kOrigin);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a sluice::Error: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no error for: " << text.substr(0, 200);
  return "";
}

// The hand-made trace as a JSON document to damage.
Json TraceDocument() { return Json::parse(ToJson(MakeTrace())); }

// The message ParseTrace throws for a damaged document.
std::string DocError(const Json& doc) { return ParseError(doc.dump()); }

// A fresh, empty directory for one test, removed at the end.
class TraceFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice_trace_test_" + std::to_string(::getpid()) + "_" + info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<std::string> Files() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }

  std::filesystem::path dir_;
};

// --- round trips ---

TEST(TraceJsonTest, RoundTripKeepsEveryField) {
  const Trace trace = MakeTrace();
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
  EXPECT_EQ(Files(), std::vector<std::string>{"run.trace.json"});
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
  EXPECT_EQ(Files(), std::vector<std::string>{"t.json"});
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
  EXPECT_EQ(Files(), std::vector<std::string>{"t.json"});
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
  EXPECT_TRUE(Files().empty());
}

TEST_F(TraceFileTest, FailedRenameLeavesNoTemporaryFile) {
  // A directory where the trace should go: the rename fails after the temporary was written.
  const std::filesystem::path path = dir_ / "t.json";
  std::filesystem::create_directories(path / "child");
  EXPECT_THROW(WriteTrace(MakeTrace(), path), Error);
  EXPECT_EQ(Files(), std::vector<std::string>{"t.json"});
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
  EXPECT_TRUE(Files().empty());
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

// --- rejected documents ---

TEST(TraceParseTest, RejectsOtherFormats) {
  Json doc = TraceDocument();
  doc["format"] = "sluice-trace/2";
  EXPECT_EQ(DocError(doc),
            "t.json: not a sluice trace (format is 'sluice-trace/2', expected 'sluice-trace/1')");
  doc.erase("format");
  EXPECT_EQ(DocError(doc),
            "t.json: not a sluice trace (no \"format\" field, expected 'sluice-trace/1')");
  EXPECT_EQ(ParseError(R"({"traceEvents": []})"),
            "t.json: not a sluice trace (no \"format\" field, expected 'sluice-trace/1')");
  EXPECT_EQ(ParseError("[1, 2]"),
            "t.json: not a sluice trace (expected a JSON object, got an array of 2 values)");
  EXPECT_EQ(ParseError(R"({"format": 1})"),
            "t.json: not a sluice trace (format is '1', expected 'sluice-trace/1')");
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
