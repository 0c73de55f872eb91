// A day-long trace through the tracer's recording path, on simulated time: the 10-stage series of
// the report's one-hour trace (tests/report/synthetic_trace.h), with 4 workers on each of its 5
// async stages, repeated at 100 ms for 24 h, compacted after every sample and appended to
// DIR/day.json every second, as the tracer does (trace::Compact, trace::ChunkedWriter). Prints,
// at 1 min, 10 min, 1 h, 6 h and 24 h of traced time, the series' bytes in memory, the file's
// size and the mean size and time of the last 100 flushes; then the time to read the day back.
// Results: docs/benchmarks.md.
//
//   build/bin/daylong_bench [--out DIR] [--hours 24]
//   time build/bin/sluice analyze DIR/day.json; time build/bin/sluice report DIR/day.json -o r.html
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "../tests/report/synthetic_trace.h"
#include "sluice/trace/chunked.h"
#include "sluice/trace/compact.h"
#include "sluice/trace/io.h"

namespace {

using sluice::trace::Trace;

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Sample k of a run that repeats the hour `h`: cumulative columns go on growing by an hour's
// increase each hour, the others repeat.
struct Hour {
  const Trace& h;
  size_t per_hour;
  template <typename T>
  T Cumulative(const std::vector<T>& v, int64_t k) const {
    const auto n = static_cast<int64_t>(per_hour);
    return v[static_cast<size_t>(k % n)] + (k / n) * (v[per_hour] - v[0]);
  }
  template <typename T>
  T Same(const std::vector<T>& v, int64_t k) const {
    return v[static_cast<size_t>(k % static_cast<int64_t>(per_hour))];
  }
};

void PushSample(Trace& live, const Hour& hour, int64_t k, double interval) {
  const Trace& h = hour.h;
  auto& s = live.series;
  s.t.push_back(static_cast<double>(k) * interval);
  s.process_cpu.push_back(hour.Cumulative(h.series.process_cpu, k));
  s.host_busy.push_back(hour.Same(h.series.host_busy, k));
  s.rss_bytes.push_back(hour.Same(h.series.rss_bytes, k));
  s.disk_read_bytes.push_back(hour.Cumulative(h.series.disk_read_bytes, k));
  s.gpu_busy.push_back(hour.Same(h.series.gpu_busy, k));
  auto& p = live.pipelines[0];
  const auto& q = h.pipelines[0];
  p.consumer_next.push_back(hour.Cumulative(q.consumer_next, k));
  p.consumer_wait.push_back(hour.Cumulative(q.consumer_wait, k));
  for (size_t i = 0; i < p.stage_series.size(); ++i) {
    auto& ss = p.stage_series[i];
    const auto& qs = q.stage_series[i];
    ss.elements_out.push_back(hour.Cumulative(qs.elements_out, k));
    ss.cpu_seconds.push_back(hour.Cumulative(qs.cpu_seconds, k));
    ss.busy_seconds.push_back(hour.Cumulative(qs.busy_seconds, k));
    ss.blocked_input_seconds.push_back(hour.Cumulative(qs.blocked_input_seconds, k));
    ss.blocked_output_seconds.push_back(hour.Cumulative(qs.blocked_output_seconds, k));
    ss.queue_size.push_back(hour.Same(qs.queue_size, k));
    for (auto& w : ss.worker_busy_seconds) w.push_back(ss.busy_seconds.back() / 4);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A day-long trace's memory, file and flushes, on simulated time", "daylong_bench"};
  std::string out = "/tmp/sluice_daylong";
  double hours = 24;
  app.add_option("--out", out, "Where day.json is written (default /tmp/sluice_daylong)");
  app.add_option("--hours", hours, "Traced time to simulate (default 24)")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  const Trace hour = sluice::report::testing::BuildTrace(sluice::report::testing::OneHourSpec());
  const double interval = hour.tracer.interval;
  const Hour source{hour, hour.series.t.size() - 1};
  Trace live = hour;
  live.format = sluice::trace::kFormatV2;
  live.series = {};
  live.tracer.full_resolution_seconds = 600;
  live.tracer.bucket_seconds = 10;
  live.tracer.max_buckets = 1024;
  auto& p = live.pipelines[0];
  p.consumer_next.clear();
  p.consumer_wait.clear();
  for (size_t i = 0; i < p.stage_series.size(); ++i) {
    p.stage_series[i] = {};
    if (p.stages[i].async) {
      p.stage_series[i].worker_tids = {101, 102, 103, 104};
      p.stage_series[i].worker_busy_seconds.resize(4);
    }
  }
  std::filesystem::create_directories(out);
  const std::filesystem::path path = std::filesystem::path(out) / "day.json";
  sluice::trace::ChunkedWriter writer(path);
  const auto samples = static_cast<int64_t>(hours * 3600 / interval) + 1;
  const std::vector<int64_t> marks = {600, 6000, 36000, 216000, 864000};
  std::vector<std::pair<size_t, double>> recent;  // the last 100 flushes: bytes, seconds
  fmt::print("| traced | series in memory | file | bytes per flush | ms per flush |\n");
  fmt::print("|---|---|---|---|---|\n");
  for (int64_t k = 0; k < samples; ++k) {
    PushSample(live, source, k, interval);
    sluice::trace::Compact(live, [&](const Trace& t, size_t i) { writer.OnBucket(t, i); });
    live.tracer.samples = k + 1;
    if (k % 10 == 9 || k + 1 == samples) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::string text = writer.TakeNew(live);
      writer.Append(text);
      recent.emplace_back(text.size(), Since(t0));
      if (recent.size() > 100) recent.erase(recent.begin());
    }
    if (std::find(marks.begin(), marks.end(), k + 1) != marks.end() || k + 1 == samples) {
      double bytes = 0, secs = 0;
      for (const auto& [b, s] : recent) bytes += b, secs += s;
      fmt::print("| {:.0f} min | {:.2f} MB | {:.1f} MB | {:.0f} | {:.3f} |\n",
                 static_cast<double>(k) * interval / 60, sluice::trace::SeriesBytes(live) / 1e6,
                 static_cast<double>(writer.bytes_written()) / 1e6, bytes / recent.size(),
                 secs / recent.size() * 1e3);
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  const Trace read = sluice::trace::ReadTrace(path);
  fmt::print("\nread {} back in {:.2f} s: {} buckets and {} samples at full resolution\n",
             path.string(), Since(t0), read.series.merged.size(),
             read.series.t.size() - read.series.merged.size());
  return read.series == live.series ? 0 : 1;
}
