// Tests of the tracer: in-process traces, traces of jobs that exit, crash or are killed, the
// disk probe, the warm-up cut and `sluice profile`.
#include "sluice/tracer/tracer.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/common/error.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"
#include "sluice/trace/io.h"
#include "tests/common/harness.h"
#include "tracer/disk_probe.h"

namespace sluice::tracer {
namespace {

namespace fs = std::filesystem;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class TracerTest : public test_util::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    ::setenv("SLUICE_CACHE_DIR", (dir_ / "cache").c_str(), 1);
  }

  // Runs a shell command line; returns its wait status.
  int Shell(const std::string& command) { return test_util::RunShell(command, dir_).status; }

  // Starts trace_job with tracing on.
  test_util::ChildProcess StartJob(const std::vector<std::string>& args, const fs::path& trace) {
    std::vector<std::string> argv{SLUICE_TRACE_JOB};
    argv.insert(argv.end(), args.begin(), args.end());
    test_util::ProcessOptions opt;
    opt.env = {{"SLUICE_TRACE", trace.string()},
               {"SLUICE_TRACER_LIB", SLUICE_TRACER_LIB_PATH},
               {"SLUICE_TRACE_INTERVAL_MS", "20"}};
    return test_util::StartProcess(argv, dir_, opt);
  }

  // Waits until `trace` holds at least `samples` samples (written by a periodic flush).
  void WaitForFlush(const fs::path& trace, int64_t samples) {
    for (int i = 0; i < 600; ++i) {
      if (fs::exists(trace)) {
        try {
          if (trace::ReadTrace(trace).tracer.samples >= samples) return;
        } catch (const std::exception&) {
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "no trace with " << samples << " samples at " << trace;
  }
};

TEST_F(TracerTest, InProcessTraceCountsEveryElement) {
  const fs::path path = dir_ / "trace.json";
  auto doc = config::Document::Parse(R"({"name": "p", "stages": [
      {"name": "src", "op": "generate", "args": {"count": 400, "bytes": 64}},
      {"name": "work", "op": "burn", "args": {"cpu_us": 500}, "parallelism": 2, "buffer_size": 4},
      {"name": "batch", "op": "batch", "args": {"size": 8}}]})",
                                     dir_ / "p.json");
  TracerOptions opt;
  opt.trace_path = path;
  opt.interval = 0.01;
  Tracer tracer(opt);
  {
    auto p = pipeline::Pipeline::Create(doc);
    pipeline::Element e;
    int outputs = 0;
    while (p->Next(&e)) ++outputs;
    EXPECT_EQ(outputs, 50);
  }  // destroyed: its final counters reach the tracer
  tracer.Stop("completed");
  trace::Trace t = trace::ReadTrace(path);
  EXPECT_EQ(t.format, "sluice-trace/2");
  EXPECT_FALSE(t.job.cut_short);
  EXPECT_EQ(t.job.end_reason, "completed");
  ASSERT_EQ(t.pipelines.size(), 1u);
  const auto& p = t.pipelines[0];
  EXPECT_EQ(p.name, "p");
  EXPECT_THAT(p.config_text, HasSubstr("\"burn\""));
  ASSERT_EQ(p.stages.size(), 3u);
  EXPECT_EQ(p.stages[0].elements_out, 400);
  EXPECT_EQ(p.stages[1].elements_in, 400);
  EXPECT_EQ(p.stages[1].elements_out, 400);
  EXPECT_EQ(p.stages[2].elements_out, 50);
  EXPECT_EQ(p.consumer.next_calls, 50);
  EXPECT_TRUE(p.stages[1].parallelizable);
  EXPECT_EQ(p.stages[1].parallelism, 2);
  // The 0.2 s burned, and not much more: hand-offs and clock reads add up to 11 % under
  // ThreadSanitizer on two loaded cores.
  EXPECT_GE(p.stages[1].cpu_seconds, 0.18);
  EXPECT_LE(p.stages[1].cpu_seconds, 0.25);
  // Series: one value per sample, cumulative, ending at the totals.
  const size_t n = t.series.t.size() - p.first_index;
  ASSERT_GE(t.series.t.size(), 2u);
  EXPECT_EQ(p.consumer_next.size(), n);
  EXPECT_EQ(p.stage_series[1].elements_out.size(), n);
  EXPECT_EQ(p.stage_series[1].elements_out.back(), 400);
  EXPECT_EQ(p.consumer_next.back(), 50);
  EXPECT_EQ(p.stage_series[1].worker_busy_seconds.size(), 2u);
  EXPECT_EQ(t.series.process_cpu.size(), t.series.t.size());
  EXPECT_GT(t.series.process_cpu.back(), 0.0);
  EXPECT_GT(t.series.rss_bytes.back(), 0);
  EXPECT_GT(t.host.cores, 0);
  EXPECT_GT(t.tracer.cpu_seconds, 0.0);
}

TEST_F(TracerTest, AStageInsertedWhileTracedGetsSeriesAlignedWithTheOthers) {
  const fs::path path = dir_ / "trace.json";
  auto doc = config::Document::Parse(R"({"name": "p", "epochs": 4, "stages": [
      {"name": "src", "op": "generate", "args": {"count": 300, "bytes": 64}},
      {"name": "work", "op": "burn", "args": {"cpu_us": 300}, "parallelism": 2},
      {"name": "batch", "op": "batch", "args": {"size": 10}}]})",
                                     dir_ / "p.json");
  TracerOptions opt;
  opt.trace_path = path;
  opt.interval = 0.01;
  Tracer tracer(opt);
  {
    auto p = pipeline::Pipeline::Create(doc);
    pipeline::Element e;
    ASSERT_TRUE(p->Next(&e));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a few samples without it
    ASSERT_EQ(p->Apply({{"work", "cache", 1}})[0].when, pipeline::AppliedChange::When::kNextEpoch);
    while (p->Next(&e)) {
    }
  }
  tracer.Stop("completed");
  const trace::Trace t = trace::ReadTrace(path);
  ASSERT_EQ(t.pipelines.size(), 1u);
  const auto& p = t.pipelines[0];
  ASSERT_EQ(p.stages.size(), 4u);
  EXPECT_EQ(p.stages[2].name, "cache");
  EXPECT_EQ(p.stages[1].elements_out, 600);  // epoch 0 and the epoch the cache recorded
  EXPECT_EQ(p.stages[2].elements_out, 900);
  EXPECT_EQ(p.stages[3].elements_out, 120);
  const size_t n = p.consumer_next.size();
  for (size_t i = 0; i < 4; ++i) {
    ASSERT_EQ(p.stage_series[i].elements_out.size(), n) << p.stages[i].name;
    EXPECT_EQ(p.stage_series[i].elements_out.back(), p.stages[i].elements_out) << i;
  }
  EXPECT_EQ(p.stage_series[2].elements_out.front(), 0);  // it did not exist yet
  EXPECT_EQ(p.stage_series[1].elements_out.back(), 600);
}

TEST_F(TracerTest, WithoutAGpuTheTraceSaysWhy) {
  const fs::path path = dir_ / "trace.json";
  TracerOptions opt;
  opt.trace_path = path;
  opt.interval = 0.01;
  {
    Tracer tracer(opt);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  trace::Trace t = trace::ReadTrace(path);
  // This machine (and CI) has no NVIDIA GPU: the trace must say which part is missing.
  EXPECT_THAT(t.gpu.status, AnyOf("no_driver", "no_device", "no_libcupti", "not_built",
                                  "insufficient_privileges"));
  EXPECT_FALSE(t.gpu.reason.empty());
  for (double g : t.series.gpu_busy) EXPECT_EQ(g, -1.0);
}

TEST_F(TracerTest, UnwritableTraceDirectoryIsAClearError) {
  TracerOptions opt;
  opt.trace_path = "/proc/sluice/trace.json";
  try {
    Tracer tracer(opt);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("/proc/sluice/trace.json"));
  }
}

TEST_F(TracerTest, JobThatExitsLeavesACompleteTrace) {
  const fs::path trace = dir_ / "t.json";
  const test_util::ProcessResult r = StartJob({"--count", "200", "--step-ms", "0"}, trace).Wait();
  ASSERT_TRUE(r.exited_ok()) << r.status << r.err;
  trace::Trace t = trace::ReadTrace(trace);
  EXPECT_FALSE(t.job.cut_short);
  EXPECT_EQ(t.job.end_reason, "completed");
  ASSERT_EQ(t.pipelines.size(), 1u);
  EXPECT_EQ(t.pipelines[0].stages[0].elements_out, 200);
  EXPECT_EQ(t.pipelines[0].stages[1].elements_out, 200);
  EXPECT_EQ(t.pipelines[0].consumer.next_calls, 50);
  EXPECT_THAT(t.job.command.at(0), HasSubstr("trace_job"));
}

TEST_F(TracerTest, JobKilledBySigkillLeavesAReadableTrace) {
  const fs::path trace = dir_ / "t.json";
  test_util::ChildProcess job = StartJob({}, trace);
  WaitForFlush(trace, 3);
  job.Kill(SIGKILL);
  EXPECT_EQ(job.Wait().signal(), SIGKILL);
  trace::Trace t = trace::ReadTrace(trace);  // parses: the last flush is whole
  EXPECT_TRUE(t.job.cut_short);
  EXPECT_EQ(t.job.end_reason, "in progress");
  ASSERT_EQ(t.pipelines.size(), 1u);
  EXPECT_GT(t.pipelines[0].stages[0].elements_out, 0);
  for (const fs::path& f : fs::directory_iterator(dir_)) {
    EXPECT_THAT(f.filename().string(), Not(HasSubstr(".tmp"))) << "temporary file left behind";
  }
}

// Killed at random moments (seed printed on failure), with flushes every 20 ms and buckets
// forming: whatever was flushed reads back, the last line possibly cut short.
TEST_F(TracerTest, JobKilledAtRandomMomentsLeavesATraceReadableUpToItsLastFlush) {
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  int read = 0;
  for (int round = 0; round < 6; ++round) {
    const fs::path trace = dir_ / fmt::format("t{}.json", round);
    test_util::ProcessOptions opt;
    opt.env = {{"SLUICE_TRACE", trace.string()},
               {"SLUICE_TRACER_LIB", SLUICE_TRACER_LIB_PATH},
               {"SLUICE_TRACE_INTERVAL_MS", "5"},
               {"SLUICE_TRACE_FLUSH_SECONDS", "0.02"},
               {"SLUICE_TRACE_FULL_RESOLUTION_SECONDS", "0.1"},
               {"SLUICE_TRACE_BUCKET_SECONDS", "0.02"}};
    opt.kill_after_seconds = std::uniform_real_distribution<double>(0.1, 0.6)(rng);
    const test_util::ProcessResult r = test_util::RunProcess({SLUICE_TRACE_JOB}, dir_, opt);
    ASSERT_EQ(r.signal(), SIGKILL) << r.err;
    if (!fs::exists(trace)) continue;  // killed before its first flush
    SCOPED_TRACE(fmt::format("killed after {:.3f} s", opt.kill_after_seconds));
    const trace::Trace t = trace::ReadTrace(trace);
    EXPECT_TRUE(t.job.cut_short);
    EXPECT_NO_THROW(trace::ToJson(t));  // consistent throughout
    if (!t.series.t.empty()) ++read;
  }
  EXPECT_GE(read, 3);
}

// A trace longer than its full-resolution window: older samples are merged in memory, and the
// file reads back as the tracer holds it.
TEST_F(TracerTest, OlderSamplesAreMergedAndTheFileReadsBackAsHeld) {
  const fs::path path = dir_ / "trace.json";
  TracerOptions opt;
  opt.trace_path = path;
  opt.interval = 0.005;
  opt.flush_every = 0.05;
  opt.full_resolution_seconds = 0.2;
  opt.bucket_seconds = 0.02;
  opt.max_buckets = 8;
  Tracer tracer(opt);
  auto doc = config::Document::Parse(R"({"name": "p", "stages": [
      {"name": "src", "op": "generate", "args": {"count": -1, "bytes": 64}},
      {"name": "work", "op": "burn", "args": {"cpu_us": 100}, "parallelism": 2}]})",
                                     dir_ / "p.json");
  {
    auto p = pipeline::Pipeline::Create(doc);
    pipeline::Element e;
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(800);
    while (std::chrono::steady_clock::now() < end && p->Next(&e)) {
    }
  }
  tracer.Stop("completed");
  const trace::Trace held = tracer.Current();
  ASSERT_FALSE(held.series.merged.empty());
  EXPECT_LE(held.series.merged.size(), 8u);
  EXPECT_LE(held.series.t.back() - held.series.t[held.series.merged.size()], 0.2 + 0.12 + 0.01);
  const trace::Trace t = trace::ReadTrace(path);
  EXPECT_EQ(t.series, held.series);
  ASSERT_EQ(t.pipelines.size(), 1u);
  EXPECT_EQ(t.pipelines[0].stage_series, held.pipelines[0].stage_series);
  EXPECT_EQ(t.pipelines[0].stages, held.pipelines[0].stages);
  EXPECT_EQ(t.pipelines[0].stage_series[1].elements_out.back(),
            t.pipelines[0].stages[1].elements_out);
  EXPECT_EQ(t.job.end_reason, "completed");
}

// A job that re-tunes without end keeps a bounded trace: the first and the last
// kKeptRetunes / 2 re-tunes, in the tracer and in the file.
TEST_F(TracerTest, RetunesAreBounded) {
  const fs::path path = dir_ / "trace.json";
  TracerOptions opt;
  opt.trace_path = path;
  opt.interval = 0.01;
  Tracer tracer(opt);
  auto doc = config::Document::Parse(
      R"({"name": "p", "stages": [{"name": "src", "op": "generate", "args": {"count": 10}}]})",
      dir_ / "p.json");
  auto p = pipeline::Pipeline::Create(doc);
  pipeline::Element e;
  while (p->Next(&e)) {
  }
  // The tracer knows the pipeline once it has sampled it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (tracer.Current().pipelines.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::vector<trace::Retune> retunes(3000);
  for (size_t i = 0; i < retunes.size(); ++i) retunes[i].t = static_cast<double>(i);
  tracer.SetRetunes(p->id(), retunes);
  tracer.Stop("completed");
  for (const trace::Trace& t : {tracer.Current(), trace::ReadTrace(path)}) {
    ASSERT_EQ(t.pipelines.size(), 1u);
    const std::vector<trace::Retune>& kept = t.pipelines[0].retunes;
    ASSERT_EQ(kept.size(), Tracer::kKeptRetunes);
    EXPECT_EQ(kept.front().t, 0);
    EXPECT_EQ(kept[Tracer::kKeptRetunes / 2 - 1].t, Tracer::kKeptRetunes / 2 - 1);
    EXPECT_EQ(kept[Tracer::kKeptRetunes / 2].t, 3000 - Tracer::kKeptRetunes / 2);
    EXPECT_EQ(kept.back().t, 2999);
  }
}

TEST_F(TracerTest, JobStoppedBySigtermWritesItsTraceThenDies) {
  const fs::path trace = dir_ / "t.json";
  test_util::ChildProcess job = StartJob({}, trace);
  WaitForFlush(trace, 2);
  job.Kill(SIGTERM);
  const test_util::ProcessResult r = job.Wait();
  EXPECT_EQ(r.signal(), SIGTERM) << r.status;
  trace::Trace t = trace::ReadTrace(trace);
  EXPECT_TRUE(t.job.cut_short);
  EXPECT_EQ(t.job.end_reason, "signal SIGTERM");
}

TEST_F(TracerTest, ProfileCommandWritesATrace) {
  const fs::path out = dir_ / "out";
  int status = Shell(fmt::format(
      "SLUICE_TRACER_LIB={} {} profile --seconds 1 --interval-ms 20 "
      "--out {} --chrome -- {} > {} 2>&1",
      SLUICE_TRACER_LIB_PATH, SLUICE_CLI, out.string(), SLUICE_TRACE_JOB, (dir_ / "log").string()));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  trace::Trace t = trace::ReadTrace(out / "trace.json");
  EXPECT_EQ(t.job.end_reason, "window elapsed");
  EXPECT_FALSE(t.job.cut_short);
  EXPECT_GE(t.job.duration, 0.9);
  ASSERT_EQ(t.pipelines.size(), 1u);
  EXPECT_GT(t.pipelines[0].consumer.next_calls, 0);
  EXPECT_TRUE(fs::exists(out / "trace.chrome.json"));
}

TEST_F(TracerTest, ProfileWithSecondsZeroTracesTheWholeJobUntilItExits) {
  const fs::path out = dir_ / "out";
  int status = Shell(fmt::format(
      "SLUICE_TRACER_LIB={} {} profile --seconds 0 --interval-ms 20 --out {} -- {} --count 800 "
      "--step-ms 1 > {} 2>&1",
      SLUICE_TRACER_LIB_PATH, SLUICE_CLI, out.string(), SLUICE_TRACE_JOB, (dir_ / "log").string()));
  EXPECT_EQ(WEXITSTATUS(status), 0) << test_util::ReadFile(dir_ / "log");
  trace::Trace t = trace::ReadTrace(out / "trace.json");
  EXPECT_EQ(t.job.end_reason, "completed");
  EXPECT_FALSE(t.job.cut_short);
  EXPECT_EQ(t.job.exit_code, 0);
  ASSERT_EQ(t.pipelines.size(), 1u);
  EXPECT_EQ(t.pipelines[0].consumer.next_calls, 200);  // every output, to the job's end
  // A pipeline config run in-process repeats forever: it needs a window.
  const fs::path config = dir_ / "c.json";
  std::ofstream(config) << R"({"name": "c", "stages": [{"name": "g", "op": "generate"}]})";
  status = Shell(fmt::format("{} profile {} --seconds 0 > {} 2>&1", SLUICE_CLI, config.string(),
                             (dir_ / "log").string()));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_THAT(test_util::ReadFile(dir_ / "log"), HasSubstr("--seconds 0"));
}

TEST_F(TracerTest, ProfileOfAMissingCommandFails) {
  int status = Shell(fmt::format("{} profile --out {} -- /no/such/cmd > {} 2>&1", SLUICE_CLI,
                                 (dir_ / "out").string(), (dir_ / "log").string()));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  std::ifstream log(dir_ / "log");
  std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_THAT(text, HasSubstr("cannot run '/no/such/cmd': No such file or directory"));
}

TEST_F(TracerTest, ProfileOfAJobWithoutAPipelineSaysSo) {
  int status =
      Shell(fmt::format("{} profile --out {} -- {} --no-pipeline > {} 2>&1", SLUICE_CLI,
                        (dir_ / "out").string(), SLUICE_TRACE_JOB, (dir_ / "log").string()));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  std::ifstream log(dir_ / "log");
  std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_THAT(text, HasSubstr("no sluice pipeline was traced"));
  EXPECT_THAT(text, HasSubstr("exited with status 3"));
}

TEST_F(TracerTest, ProfileOfACrashingJobKeepsTheTrace) {
  const fs::path out = dir_ / "out";
  int status = Shell(fmt::format(
      "SLUICE_TRACER_LIB={} {} profile --seconds 20 --interval-ms 20 "
      "--out {} -- {} --crash-after-s 1.5 > {} 2>&1",
      SLUICE_TRACER_LIB_PATH, SLUICE_CLI, out.string(), SLUICE_TRACE_JOB, (dir_ / "log").string()));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  trace::Trace t = trace::ReadTrace(out / "trace.json");
  EXPECT_TRUE(t.job.cut_short);
  // "job was killed by SIGSEGV"; under a sanitizer, whose handler catches the fault, SIGABRT
  // or an exit status of its own.
  EXPECT_THAT(t.job.end_reason, StartsWith("job "));
  EXPECT_THAT(t.job.end_reason, Not(HasSubstr("status 0")));
  EXPECT_GT(t.pipelines.at(0).consumer.next_calls, 0);
}

TEST_F(TracerTest, DiskProbeMeasuresAndRemembers) {
  fs::create_directories(dir_ / "data");
  std::string block(1 << 20, 'x');
  for (int i = 0; i < 4; ++i) std::ofstream(dir_ / "data" / fmt::format("f{}.bin", i)) << block;
  const std::string config =
      R"({"stages": [{"op": "list_files", "args": {"pattern": "data/*.bin"}}]})";
  auto dirs = internal::DataDirectories(config, dir_ / "p.json");
  ASSERT_EQ(dirs.size(), 1u);
  EXPECT_EQ(dirs[0], fs::absolute(dir_ / "data").lexically_normal());
  auto first = internal::MeasureDisks(dirs, dir_ / "cache");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_FALSE(first[0].cached);
  EXPECT_EQ(first[0].probe_bytes, 4 << 20);
  EXPECT_GT(first[0].read_mb_per_s, 0.0);
  EXPECT_FALSE(first[0].device.empty());
  auto second = internal::MeasureDisks(dirs, dir_ / "cache");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_TRUE(second[0].cached);
  EXPECT_DOUBLE_EQ(second[0].read_mb_per_s, first[0].read_mb_per_s);
}

TEST(FindWarmupTest, CutsASlowStart) {
  std::vector<double> t;
  std::vector<int64_t> n;
  int64_t count = 0;
  for (int i = 0; i < 60; ++i) {
    t.push_back(i * 0.1);
    n.push_back(count);
    count += i < 10 ? 1 : 10;  // 10/s for the first second, then 100/s
  }
  EXPECT_NEAR(FindWarmup(t, n), 1.0, 0.15);
}

TEST(FindWarmupTest, SteadyFromTheStartCutsNothing) {
  std::vector<double> t;
  std::vector<int64_t> n;
  for (int i = 0; i < 40; ++i) {
    t.push_back(i * 0.1);
    n.push_back(i * 7);
  }
  EXPECT_DOUBLE_EQ(FindWarmup(t, n), 0.0);
}

TEST(FindWarmupTest, TooShortCutsNothing) {
  EXPECT_DOUBLE_EQ(FindWarmup({0, 0.1, 0.2}, {0, 1, 2}), 0.0);
}

}  // namespace
}  // namespace sluice::tracer
