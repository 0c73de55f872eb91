// Tests for the chunked sluice-trace/2 file and the bounded series: round trips (whole and
// merged), a file cut at any byte, a day of samples driven by a fake clock (memory bound, flush
// size, what is read back), and the reader's errors.
#include "sluice/trace/chunked.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/trace/compact.h"
#include "sluice/trace/io.h"
#include "tests/common/fake_clock.h"
#include "tests/common/files.h"
#include "tests/common/harness.h"
#include "tests/trace/trace_test_util.h"
#include "trace/internal/json.h"

namespace sluice::trace {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace test_util;  // NOLINT(google-build-using-namespace): the shared trace builders

using ChunkedFileTest = sluice::test_util::TempDirTest;

// The message of the sluice::Error that `fn` throws.
template <typename F>
std::string ErrorOf(F fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

int64_t SamplesIn(const Trace& t) {
  const Series& s = t.series;
  return std::accumulate(s.merged.begin(), s.merged.end(), int64_t{0}) +
         static_cast<int64_t>(s.t.size() - s.merged.size());
}

void SetPolicy(Trace& t, double full, double bucket, int64_t max) {
  t.tracer.full_resolution_seconds = full;
  t.tracer.bucket_seconds = bucket;
  t.tracer.max_buckets = max;
}

void ExpectSameSeries(const Trace& a, const Trace& b) {
  EXPECT_EQ(a.series, b.series);
  ASSERT_EQ(a.pipelines.size(), b.pipelines.size());
  for (size_t i = 0; i < a.pipelines.size(); ++i) {
    const PipelineTrace& x = a.pipelines[i];
    const PipelineTrace& y = b.pipelines[i];
    EXPECT_EQ(x.first_index, y.first_index) << i;
    EXPECT_EQ(x.consumer_next, y.consumer_next) << i;
    EXPECT_EQ(x.consumer_wait, y.consumer_wait) << i;
    EXPECT_EQ(x.consumer_between, y.consumer_between) << i;
    EXPECT_EQ(x.stage_series, y.stage_series) << i;
  }
}

TEST_F(ChunkedFileTest, WholeTraceRoundTripsEveryField) {
  Trace trace = MakeTrace();
  trace.format = kFormatV2;
  const fs::path path = dir_ / "t.json";
  WriteTrace(trace, path);
  EXPECT_THAT(sluice::test_util::ReadFile(path), StartsWith(R"({"format":"sluice-trace/2",)"));
  ExpectSameTrace(trace, ReadTrace(path));
  EXPECT_EQ(trace, ReadTrace(path));
}

TEST_F(ChunkedFileTest, MergedTraceRoundTripsAndKeepsTheLastValueOfCounts) {
  Trace trace = MakeTrace(400);  // samples 0.1 s apart; the second pipeline from sample 10
  trace.format = kFormatV2;
  SetPolicy(trace, 5, 1, 8);
  const Trace raw = trace;
  Compact(trace);
  ASSERT_FALSE(trace.series.merged.empty());
  EXPECT_LE(trace.series.merged.size(), 8u);
  EXPECT_EQ(SamplesIn(trace), 400);
  // A bucket keeps its last sample's cumulative values and time.
  int64_t end = 0;
  for (size_t g = 0; g < trace.series.merged.size(); ++g) {
    end += trace.series.merged[g];
    EXPECT_EQ(trace.series.t[g], raw.series.t[end - 1]);
    EXPECT_EQ(trace.series.process_cpu[g], raw.series.process_cpu[end - 1]);
    EXPECT_EQ(trace.pipelines[0].stage_series[1].elements_out[g],
              raw.pipelines[0].stage_series[1].elements_out[end - 1]);
    EXPECT_GE(trace.series.rss_max[g], trace.series.rss_bytes[g]);
  }
  EXPECT_EQ(ToJson(trace).empty(), false);  // the /1 writer's checks accept it
  const fs::path path = dir_ / "t.json";
  WriteTrace(trace, path);
  EXPECT_EQ(trace, ReadTrace(path));
  // And the Chrome export takes a merged trace.
  const auto chrome = nlohmann::json::parse(ToChromeTrace(ReadTrace(path)));
  EXPECT_FALSE(chrome["traceEvents"].empty());
}

// Feeds `full` to a ChunkedWriter `step` samples at a time, as the tracer does; returns the file
// size after each flush and the samples written by then.
struct Flushes {
  std::vector<size_t> bytes;
  std::vector<int64_t> samples;
  Trace live;
};

Flushes FeedInSteps(const Trace& full, const fs::path& path, size_t step) {
  Flushes f;
  f.live.format = kFormatV2;
  f.live.tracer = full.tracer;
  ChunkedWriter writer(path);
  size_t total = 0;
  for (size_t k = 0; k < full.series.t.size(); k += step) {
    AppendSamples(f.live, SliceSamples(full, k, k + step), "feed");
    Compact(f.live, [&](const Trace& t, size_t i) { writer.OnBucket(t, i); });
    f.live.tracer.samples = SamplesIn(f.live);
    const std::string text = writer.TakeNew(f.live);
    writer.Append(text);
    total += text.size();
    f.bytes.push_back(total);
    f.samples.push_back(f.live.tracer.samples);
  }
  return f;
}

TEST_F(ChunkedFileTest, AFileCutAtAnyByteReadsUpToItsLastCompleteLine) {
  Trace full = MakeTrace(300);
  SetPolicy(full, 3, 0.5, 4);
  const fs::path path = dir_ / "t.json";
  const Flushes f = FeedInSteps(full, path, 10);
  const std::string text = sluice::test_util::ReadFile(path);
  ExpectSameSeries(f.live, ReadTrace(path));
  const size_t header_end = text.find('\n') + 1;
  // Around every line's end (a flush cut between or within its lines), and at 200 bytes spread
  // over the file.
  std::vector<size_t> cuts;
  for (size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', nl + 1)) {
    cuts.insert(cuts.end(), {nl - 1, nl, nl + 1});
  }
  for (size_t i = 0; i <= 200; ++i) cuts.push_back(text.size() * i / 200);
  for (size_t cut : cuts) {
    const std::string_view part(text.data(), cut);
    if (cut < header_end) {
      EXPECT_THROW(ParseTrace(part, "t.json"), Error) << cut;
      continue;
    }
    const Trace t = ParseTrace(part, "t.json");
    // Everything up to the last flush that is whole, and no more than was written by the cut.
    const size_t flush = std::upper_bound(f.bytes.begin(), f.bytes.end(), cut) - f.bytes.begin();
    const int64_t whole = flush == 0 ? 0 : f.samples[flush - 1];
    EXPECT_GE(SamplesIn(t), whole) << cut;
    EXPECT_LE(SamplesIn(t), flush < f.samples.size() ? f.samples[flush] : whole) << cut;
  }
}

TEST_F(ChunkedFileTest, BadLinesNameTheFileAndTheLine) {
  Trace trace = MakeTrace(20);
  trace.format = kFormatV2;
  const fs::path path = dir_ / "t.json";
  WriteTrace(trace, path);
  std::string text = sluice::test_util::ReadFile(path);
  // Line 4 is the first pipeline's samples... any line after the header will do: break line 2.
  const size_t second = text.find('\n') + 1;
  std::string broken = text;
  broken.insert(second, "{\"chunk\":\"pipeline\",\"index\":0,\"pipelines\":[{\"stages\":5}]}\n");
  EXPECT_THAT(ErrorOf([&] { ParseTrace(broken, "t.json"); }),
              HasSubstr("t.json:2: pipelines[0].stages: expected an array"));
  broken = text;
  broken.insert(second, "hello\n");
  EXPECT_EQ(ErrorOf([&] { ParseTrace(broken, "t.json"); }),
            "t.json:2: not a sluice-trace/2 line (each line after the first begins {\"chunk\":)");
  broken = text;
  broken.insert(second, "{\"chunk\":\"samples\",\"raw_end\":x}\n");
  EXPECT_EQ(ErrorOf([&] { ParseTrace(broken, "t.json"); }),
            "t.json:2: raw_end: expected an integer >= 0");
  // A kind of chunk this reader does not know is skipped, as unknown fields are.
  broken = text;
  broken.insert(second, "{\"chunk\":\"future\",\"x\":1}\n");
  EXPECT_EQ(ParseTrace(broken, "t.json"), ParseTrace(text, "t.json"));
}

// A day-long job, sampled every second by a clock that a test moves forward: the series stay
// within their bound, each flush appends the same amount whatever the trace's age, and the file
// reads back as the tracer holds it, coarse where merged.
TEST_F(ChunkedFileTest, ADayOfSamplesStaysBoundedAndItsFlushesDoNotGrow) {
  sluice::test_util::ScopedFakeClock clock;
  const int64_t start = MonotonicNanos();
  Trace live;
  live.format = kFormatV2;
  live.tracer.interval = 1;
  SetPolicy(live, 600, 10, 1024);
  PipelineTrace& p = live.pipelines.emplace_back();
  p.name = "day";
  for (const char* name : {"read", "decode", "batch"}) p.stages.emplace_back().name = name;
  p.stage_series.resize(3);
  p.stage_series[1].worker_tids = {11, 12};
  p.stage_series[1].worker_busy_seconds.resize(2);
  const fs::path path = dir_ / "day.json";
  ChunkedWriter writer(path);
  constexpr int64_t kSamples = 24 * 3600 + 1;
  size_t peak = 0;
  std::vector<size_t> flushes;
  for (int64_t k = 0; k < kSamples; ++k) {
    const auto x = static_cast<double>(k);
    Series& s = live.series;
    s.t.push_back(static_cast<double>(MonotonicNanos() - start) * 1e-9);
    s.process_cpu.push_back(0.5 * x);
    s.host_busy.push_back(static_cast<double>(k % 10) / 10);
    s.rss_bytes.push_back((int64_t{100} << 20) + (k % 7) * 4096);
    s.disk_read_bytes.push_back(k * 1000);
    s.gpu_busy.push_back(-1);
    p.consumer_next.push_back(k);
    p.consumer_wait.push_back(0.01 * x);
    p.consumer_between.push_back(0.02 * x);
    for (size_t i = 0; i < 3; ++i) {
      StageSeries& st = p.stage_series[i];
      st.elements_out.push_back(k * static_cast<int64_t>(i + 1));
      st.cpu_seconds.push_back(0.1 * x * static_cast<double>(i + 1));
      st.busy_seconds.push_back(0.2 * x);
      st.blocked_input_seconds.push_back(0.01 * x);
      st.blocked_output_seconds.push_back(0.0);
      st.queue_size.push_back(i == 1 ? k % 5 : 0);
      for (auto& w : st.worker_busy_seconds) w.push_back(0.4 * x);
    }
    Compact(live, [&](const Trace& t, size_t i) { writer.OnBucket(t, i); });
    peak = std::max(peak, SeriesBytes(live));
    if (k % 60 == 59) {
      live.tracer.samples = k + 1;
      const std::string text = writer.TakeNew(live);
      writer.Append(text);
      flushes.push_back(text.size());
    }
    clock.Advance(1'000'000'000);
  }
  live.tracer.samples = kSamples;
  writer.Append(writer.TakeNew(live));

  // The bound of docs/trace-format.md: (full resolution + 6 buckets) / interval + max_buckets
  // samples, each of 8 bytes per column, twice over for the vectors' spare capacity.
  const size_t columns = 8 + 3 + 3 * 7 + 2;
  const size_t bound = 2 * ((600 + 60) / 1 + 1 + 1024) * columns * 8;
  EXPECT_LE(peak, bound);
  // A flush of the last hour appends as much as one of the first (the same samples, buckets and
  // state); once an hour or so one also holds every bucket, which stops growing with their number.
  auto median = [&](size_t from, size_t to) {
    std::vector<size_t> v(flushes.begin() + from, flushes.begin() + to);
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return static_cast<double>(v[v.size() / 2]);
  };
  auto largest = [&](size_t from, size_t to) {
    return static_cast<double>(*std::max_element(flushes.begin() + from, flushes.begin() + to));
  };
  EXPECT_LT(median(flushes.size() - 60, flushes.size()), 1.05 * median(10, 70));
  // That one is bounded by max_buckets: about a sample's bytes per bucket, beside a flush.
  const double typical = median(10, 70);
  EXPECT_LT(largest(0, flushes.size()), 1.2 * (typical + 1024 * typical / 60));

  const Trace read = ReadTrace(path);
  ExpectSameSeries(live, read);
  // Large enough to be read from its end, which finds what reading it whole finds, also when
  // the job was killed mid-write.
  const std::string text = sluice::test_util::ReadFile(path);
  ASSERT_GE(text.size(), 4u << 20);
  EXPECT_EQ(read, ParseTrace(text, path.string()));
  for (const double at : {0.6, 0.93, 0.9999, 1.0}) {
    const auto cut = static_cast<size_t>(static_cast<double>(text.size()) * at);
    const fs::path part = dir_ / "cut.json";
    std::ofstream(part, std::ios::binary) << text.substr(0, cut);
    const int fd = ::open(part.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    const std::optional<Trace> from_end = internal::ReadChunkedFromTheEnd(fd, cut, part.string());
    ::close(fd);
    ASSERT_TRUE(from_end.has_value()) << at;
    EXPECT_EQ(*from_end, ParseTrace(text.substr(0, cut), part.string())) << at;
  }
  EXPECT_EQ(SamplesIn(read), kSamples);
  ASSERT_FALSE(read.series.merged.empty());
  EXPECT_LE(read.series.merged.size(), 1024u);
  const size_t merged = read.series.merged.size();
  EXPECT_LE(read.series.t.back() - read.series.t[merged], 660);  // the last 10 min at full res
  // The whole day at about one resolution: no bucket wider than twice a day's share of the
  // 1024 buckets (the newest ones are narrower until the next limit merges them), the first
  // one included (merging every pair at each limit had left it ten hours wide).
  EXPECT_LE(*std::max_element(read.series.merged.begin(), read.series.merged.end()),
            2 * 86400 / 1024);
  EXPECT_LE(read.series.t[0], 2.0 * 86400 / 1024);
  int64_t end = 0;
  for (size_t g = 0; g < merged; ++g) {
    end += read.series.merged[g];
    ASSERT_EQ(read.pipelines[0].consumer_next[g], end - 1) << g;  // counts: the last value
    EXPECT_EQ(read.pipelines[0].stage_series[1].queue_max[g], 4) << g;
    EXPECT_NEAR(static_cast<double>(read.pipelines[0].stage_series[1].queue_size[g]), 2, 1) << g;
  }
}

}  // namespace
}  // namespace sluice::trace
