// The Chrome trace-event export (Perfetto, chrome://tracing): a process per pipeline with a
// thread track per stage worker and counter tracks, and a process-wide counter process.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "sluice/trace/io.h"

namespace sluice::trace {
namespace {

using OrderedJson = nlohmann::ordered_json;

// Linux thread ids stay below 2^22 (PID_MAX_LIMIT), so tracks without a known thread id take
// ids from here on and never collide with a real one.
constexpr int kSyntheticTidBase = 10'000'000;

// Seconds to whole microseconds, the trace-event time unit. Whole numbers keep the arithmetic
// on event bounds exact, so clamped events provably never overlap.
int64_t Micros(double seconds) {
  if (!std::isfinite(seconds) || std::abs(seconds) > 1e12) return 0;
  return std::llround(seconds * 1e6);
}

// Appends events to the output as they are made: a one-hour trace has millions, too many to
// hold as one document. nlohmann builds and escapes every event; only the separators between
// them are written here.
class EventWriter {
 public:
  explicit EventWriter(std::string& out) : out_(out) {}

  void Emit(const OrderedJson& event) {
    out_ += first_ ? "\n" : ",\n";
    first_ = false;
    out_ += event.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
  }

  // A metadata event ("process_name", "thread_sort_index", ...) with one argument.
  template <typename T>
  void Metadata(const char* name, int pid, int tid, int64_t ts, const char* arg, const T& value) {
    Emit(OrderedJson{{"name", name},
                     {"ph", "M"},
                     {"pid", pid},
                     {"tid", tid},
                     {"ts", ts},
                     {"args", {{arg, value}}}});
  }

 private:
  std::string& out_;
  bool first_ = true;
};

// One counter track: the event is built once and only its time and value change.
class Counter {
 public:
  Counter(std::string name, int pid)
      : event_{{"name", std::move(name)}, {"ph", "C"}, {"pid", pid}, {"tid", 0}, {"ts", 0},
               {"args", {{"value", 0.0}}}} {}

  void Emit(EventWriter& out, int64_t ts, double value) {
    if (!std::isfinite(value)) return;
    event_["ts"] = ts;
    event_["args"]["value"] = value;
    out.Emit(event_);
  }

 private:
  OrderedJson event_;
};

// A thread track: one stage worker, or one inline stage, with its cumulative busy seconds.
struct Track {
  int tid = 0;
  std::string name;  // "decode #0", "flip (inline)"
  int sort_index = 0;
  const StageTrace* stage = nullptr;
  const std::vector<double>* busy = nullptr;
};

// Samples a pipeline's columns cover: from first_index to the end of series.t.
size_t LocalSamples(const Trace& trace, const PipelineTrace& p) {
  return trace.series.t.size() > p.first_index ? trace.series.t.size() - p.first_index : 0;
}

std::vector<Track> Tracks(const PipelineTrace& p) {
  std::vector<Track> tracks;
  std::set<int> used;
  int next_synthetic = kSyntheticTidBase;
  auto synthetic = [&] {
    while (!used.insert(next_synthetic).second) ++next_synthetic;
    return next_synthetic;
  };
  for (size_t i = 0; i < p.stages.size() && i < p.stage_series.size(); ++i) {
    const StageTrace& stage = p.stages[i];
    const StageSeries& series = p.stage_series[i];
    if (stage.async && !series.worker_busy_seconds.empty()) {
      for (size_t w = 0; w < series.worker_busy_seconds.size(); ++w) {
        // A thread id seen twice (reused by the kernel after an epoch's workers exited) gets a
        // synthetic one the second time: two tracks on one thread could overlap.
        int known = w < series.worker_tids.size() ? series.worker_tids[w] : 0;
        int tid = known > 0 && used.insert(known).second ? known : synthetic();
        tracks.push_back({tid, fmt::format("{} #{}", stage.name, w),
                          static_cast<int>(tracks.size()), &stage, &series.worker_busy_seconds[w]});
      }
    } else {
      std::string name = fmt::format("{} ({})", stage.name, stage.async ? "all workers" : "inline");
      tracks.push_back({synthetic(), std::move(name), static_cast<int>(tracks.size()), &stage,
                        &series.busy_seconds});
    }
  }
  std::sort(tracks.begin(), tracks.end(),
            [](const Track& a, const Track& b) { return a.tid < b.tid; });
  return tracks;
}

// Complete events on one thread track: per sample interval, the busy time the worker
// accumulated in it, clamped to the interval and placed at its start. Events are therefore
// disjoint and in time order.
void EmitTrack(EventWriter& out, const Trace& trace, const PipelineTrace& p, int pid,
               int64_t meta_ts, const Track& track) {
  out.Metadata("thread_name", pid, track.tid, meta_ts, "name", track.name);
  out.Metadata("thread_sort_index", pid, track.tid, meta_ts, "sort_index", track.sort_index);
  const std::vector<double>& t = trace.series.t;
  const std::vector<double>& busy = *track.busy;
  const size_t n = std::min(LocalSamples(trace, p), busy.size());
  OrderedJson event{{"name", track.stage->name},
                    {"cat", "stage"},
                    {"ph", "X"},
                    {"pid", pid},
                    {"tid", track.tid},
                    {"ts", 0},
                    {"dur", 0},
                    {"args", {{"busy_fraction", 0.0}}}};
  int64_t last_end = INT64_MIN;
  for (size_t j = 1; j < n; ++j) {
    const size_t g = p.first_index + j;  // the interval runs from sample g-1 to sample g
    const int64_t start = Micros(t[g - 1]);
    const int64_t length = Micros(t[g]) - start;
    const int64_t dur = std::min(Micros(busy[j] - busy[j - 1]), length);
    if (length <= 0 || dur <= 0 || start < last_end) continue;
    event["ts"] = start;
    event["dur"] = dur;
    event["args"]["busy_fraction"] = static_cast<double>(dur) / static_cast<double>(length);
    out.Emit(event);
    last_end = start + dur;
  }
}

void EmitPipeline(EventWriter& out, const Trace& trace, size_t index, int64_t meta_ts) {
  const PipelineTrace& p = trace.pipelines[index];
  const int pid = static_cast<int>(index) + 1;
  const std::vector<double>& t = trace.series.t;
  out.Metadata("process_name", pid, 0, meta_ts, "name",
               p.name.empty() ? fmt::format("pipeline #{}", index) : p.name);
  out.Metadata("process_sort_index", pid, 0, meta_ts, "sort_index", pid);

  // Counters, time-major so that each track's events stay in time order.
  struct StageCounters {
    const StageSeries* series;
    std::optional<Counter> queue;  // async stages only
    Counter rate;
  };
  std::vector<StageCounters> stages;
  for (size_t i = 0; i < p.stages.size() && i < p.stage_series.size(); ++i) {
    StageCounters c{&p.stage_series[i], std::nullopt,
                    Counter(fmt::format("outputs/s {}", p.stages[i].name), pid)};
    if (p.stages[i].async) c.queue.emplace(fmt::format("queue {}", p.stages[i].name), pid);
    stages.push_back(std::move(c));
  }
  Counter consumer_wait("consumer waiting %", pid);
  const size_t n = LocalSamples(trace, p);
  int64_t last_ts = INT64_MIN;
  for (size_t j = 0; j < n; ++j) {
    const size_t g = p.first_index + j;
    const int64_t ts = Micros(t[g]);
    if (ts < last_ts) continue;
    last_ts = ts;
    for (StageCounters& c : stages) {
      if (c.queue && j < c.series->queue_size.size()) {
        c.queue->Emit(out, ts, static_cast<double>(c.series->queue_size[j]));
      }
    }
    // Rates over the interval that starts here (a counter holds its value until the next).
    const double dt = j + 1 < n ? t[g + 1] - t[g] : 0;
    if (!(dt > 0)) continue;
    for (StageCounters& c : stages) {
      const std::vector<int64_t>& out_count = c.series->elements_out;
      if (j + 1 < out_count.size()) {
        c.rate.Emit(out, ts, static_cast<double>(out_count[j + 1] - out_count[j]) / dt);
      }
    }
    if (j + 1 < p.consumer_wait.size()) {
      consumer_wait.Emit(out, ts, 100 * (p.consumer_wait[j + 1] - p.consumer_wait[j]) / dt);
    }
  }

  for (const Track& track : Tracks(p)) EmitTrack(out, trace, p, pid, meta_ts, track);
}

// Process- and host-wide counters. Not on pid 0: Perfetto treats pid 0 as the kernel's swapper
// (google/perfetto#394, #560), so this process comes after the pipelines.
void EmitProcess(EventWriter& out, const Trace& trace, int pid, int64_t meta_ts) {
  const Series& s = trace.series;
  out.Metadata("process_name", pid, 0, meta_ts, "name", "process");
  out.Metadata("process_sort_index", pid, 0, meta_ts, "sort_index", 0);
  Counter cpu("process CPU cores", pid), rss("RSS MB", pid), host("host busy %", pid),
      gpu("GPU busy %", pid), disk("disk read MB/s", pid);
  const size_t n = s.t.size();
  int64_t last_ts = INT64_MIN;
  for (size_t i = 0; i < n; ++i) {
    const int64_t ts = Micros(s.t[i]);
    if (ts < last_ts) continue;
    last_ts = ts;
    if (i < s.rss_bytes.size() && s.rss_bytes[i] >= 0) {
      rss.Emit(out, ts, static_cast<double>(s.rss_bytes[i]) / 1e6);
    }
    // Interval figures belong to the interval that starts here; the sample at its end holds
    // the fractions measured over it.
    const double dt = i + 1 < n ? s.t[i + 1] - s.t[i] : 0;
    if (!(dt > 0)) continue;
    if (i + 1 < s.process_cpu.size()) {
      cpu.Emit(out, ts, (s.process_cpu[i + 1] - s.process_cpu[i]) / dt);
    }
    if (i + 1 < s.host_busy.size() && s.host_busy[i + 1] >= 0) {
      host.Emit(out, ts, 100 * s.host_busy[i + 1]);
    }
    if (i + 1 < s.gpu_busy.size() && s.gpu_busy[i + 1] >= 0) {
      gpu.Emit(out, ts, 100 * s.gpu_busy[i + 1]);
    }
    if (i + 1 < s.disk_read_bytes.size() && s.disk_read_bytes[i] >= 0 &&
        s.disk_read_bytes[i + 1] >= 0) {
      disk.Emit(out, ts,
                static_cast<double>(s.disk_read_bytes[i + 1] - s.disk_read_bytes[i]) / dt / 1e6);
    }
  }
}

}  // namespace

std::string ToChromeTrace(const Trace& trace) {
  // Metadata events sit at the earliest time so that every track is sorted by time.
  int64_t meta_ts = 0;
  for (double t : trace.series.t) meta_ts = std::min(meta_ts, Micros(t));

  std::string out = "{\"traceEvents\":[";
  EventWriter events(out);
  for (size_t i = 0; i < trace.pipelines.size(); ++i) EmitPipeline(events, trace, i, meta_ts);
  EmitProcess(events, trace, static_cast<int>(trace.pipelines.size()) + 1, meta_ts);

  OrderedJson other{{"source_format", kFormat},
                    {"sluice_version", trace.sluice_version},
                    {"hostname", trace.host.hostname},
                    {"command", fmt::format("{}", fmt::join(trace.job.command, " "))},
                    {"start_unix", trace.job.start_unix},
                    {"duration_seconds", trace.job.duration},
                    {"end_reason", trace.job.end_reason},
                    {"cut_short", trace.job.cut_short},
                    {"gpu_status", trace.gpu.status},
                    {"gpu_reason", trace.gpu.reason}};
  out += "\n],\n\"displayTimeUnit\":\"ms\",\n\"otherData\":";
  out += other.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
  out += "}\n";
  return out;
}

}  // namespace sluice::trace
