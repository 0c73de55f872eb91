// The sluice-trace/1 JSON reader: checks a parsed document value by value into a Trace, every
// error naming the origin and the JSON path of the value at fault; and the trace file's reading.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>
#include <type_traits>

#include <fmt/format.h>

#include "sluice/common/error.h"
#include "sluice/trace/io.h"
#include "trace/internal/json.h"

namespace sluice::trace {
namespace {

using internal::Json;
using internal::kMaxArrayElements;
using internal::kMaxBufferSize;
using internal::kMaxClasses;
using internal::kMaxDisks;
using internal::kMaxPipelines;
using internal::kMaxRetunes;
using internal::kMaxSamples;
using internal::kMaxStages;
using internal::kMaxTextBytes;
using internal::kMaxWorkers;
using internal::OrderedJson;

// Where a value sits in the document ("pipelines[0].stages[1].cpu_seconds"), spelled out only
// when an error needs it. A Path refers to its parent: keep parents alive while children are.
class Path {
 public:
  Path() = default;
  Path Key(std::string_view key) const { return Path(this, key, 0, false); }
  Path Index(size_t index) const { return Path(this, {}, index, true); }

  std::string str() const {
    if (parent_ == nullptr) return "";
    std::string s = parent_->str();
    if (is_index_) {
      s += fmt::format("[{}]", index_);
    } else {
      if (!s.empty()) s += '.';
      s += key_;
    }
    return s;
  }

 private:
  Path(const Path* parent, std::string_view key, size_t index, bool is_index)
      : parent_(parent), key_(key), index_(index), is_index_(is_index) {}

  const Path* parent_ = nullptr;
  std::string_view key_;
  size_t index_ = 0;
  bool is_index_ = false;
};

// A short rendering of a value for "got ..." in messages (never a 10,000-character string).
template <typename J>
std::string Describe(const J& v) {
  if (v.is_array()) return fmt::format("an array of {} values", v.size());
  if (v.is_object()) return "an object";
  if (v.is_number_float() && !std::isfinite(v.template get<double>())) {
    return fmt::format("{}", v.template get<double>());
  }
  std::string text = v.dump(-1, ' ', false, J::error_handler_t::replace);
  constexpr size_t kMax = 60;
  if (text.size() > kMax) {
    size_t cut = kMax;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
    text = text.substr(0, cut) + "...";
  }
  return text;
}

// Converts a parsed document (Json when reading, OrderedJson when checking what ToJson built)
// into a Trace, failing with "<origin>: <path>: <what>" on the first value it cannot accept.
template <typename J>
class Reader {
 public:
  // `part`: a line of a sluice-trace/2 file, which needs neither a format nor pipelines.
  Reader(const std::string& origin, bool part) : origin_(origin), part_(part) {}

  Trace Read(const J& root) {
    if (!root.is_object()) {
      sluice::Fail("{}: not a sluice trace (expected a JSON object, got {})", origin_,
                   Describe(root));
    }
    if (!part_) CheckFormat(root);
    const Path root_path;
    Trace trace;
    Get(root, root_path, "sluice_version", trace.sluice_version);
    if (const J* v = Find(root, "host")) ReadHost(*v, root_path.Key("host"), trace.host);
    if (const J* v = Find(root, "job")) ReadJob(*v, root_path.Key("job"), trace.job);
    // The global series first: its `t` sets the length every other column must have.
    if (const J* v = Find(root, "series")) ReadSeries(*v, root_path.Key("series"), trace.series);
    if (!part_ || Find(root, "pipelines") != nullptr) ReadPipelines(root, root_path, trace);
    if (const J* v = Find(root, "gpu")) ReadGpu(*v, root_path.Key("gpu"), trace.gpu);
    if (const J* v = Find(root, "tracer")) ReadTracer(*v, root_path.Key("tracer"), trace.tracer);
    return trace;
  }

 private:
  void CheckFormat(const J& root) const {
    const J* format = Find(root, "format");
    if (format == nullptr) {
      sluice::Fail("{}: not a sluice trace (no \"format\" field, expected '{}')", origin_, kFormat);
    }
    if (!format->is_string() || format->template get_ref<const std::string&>() != kFormat) {
      std::string got =
          format->is_string() ? format->template get<std::string>() : Describe(*format);
      sluice::Fail("{}: not a sluice trace (format is '{}', expected '{}' or '{}')", origin_, got,
                   kFormat, kFormatV2);
    }
  }

  [[noreturn]] void FailAt(const Path& path, std::string_view what) const {
    sluice::Fail("{}: {}: {}", origin_, path.str(), what);
  }

  static const J* Find(const J& object, const char* key) {
    auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
  }

  void ExpectObject(const J& v, const Path& path) const {
    if (!v.is_object()) FailAt(path, fmt::format("expected an object, got {}", Describe(v)));
  }

  // An array of at most `max` elements; `what` names them in the message.
  void ExpectArray(const J& v, const Path& path, size_t max, std::string_view what) const {
    if (!v.is_array()) {
      FailAt(path, fmt::format("expected an array of {}, got {}", what, Describe(v)));
    }
    if (v.size() > max) {
      FailAt(path, fmt::format("{} {}, more than the {} a trace may have", v.size(), what, max));
    }
  }

  std::string String(const J& v, const Path& path) const {
    if (!v.is_string()) FailAt(path, fmt::format("expected a string, got {}", Describe(v)));
    return v.template get<std::string>();
  }

  bool Bool(const J& v, const Path& path) const {
    if (!v.is_boolean()) FailAt(path, fmt::format("expected true or false, got {}", Describe(v)));
    return v.template get<bool>();
  }

  int64_t Integer(const J& v, const Path& path, int64_t min, int64_t max) const {
    bool ok = v.is_number_integer();
    int64_t value = 0;
    if (ok && v.is_number_unsigned()) {
      // An unsigned value above INT64_MAX would wrap to a negative one.
      uint64_t u = v.template get<uint64_t>();
      ok = u <= static_cast<uint64_t>(max);
      value = ok ? static_cast<int64_t>(u) : 0;
    } else if (ok) {
      value = v.template get<int64_t>();
    }
    if (!ok || value < min || value > max) {
      if (max == std::numeric_limits<int64_t>::max()) {
        FailAt(path, fmt::format("expected an integer >= {}, got {}", min, Describe(v)));
      }
      FailAt(path, fmt::format("expected an integer from {} to {}, got {}", min, max, Describe(v)));
    }
    return value;
  }

  double Number(const J& v, const Path& path) const {
    if (!v.is_number()) FailAt(path, fmt::format("expected a number, got {}", Describe(v)));
    double d = v.template get<double>();
    if (!std::isfinite(d)) FailAt(path, fmt::format("expected a finite number, got {}", d));
    return d;
  }

  // Optional members: a missing key leaves `out` at its default.
  void Get(const J& object, const Path& path, const char* key, std::string& out) const {
    if (const J* v = Find(object, key)) out = String(*v, path.Key(key));
  }
  void Get(const J& object, const Path& path, const char* key, bool& out) const {
    if (const J* v = Find(object, key)) out = Bool(*v, path.Key(key));
  }
  void Get(const J& object, const Path& path, const char* key, double& out) const {
    if (const J* v = Find(object, key)) out = Number(*v, path.Key(key));
  }
  // Counts: non-negative unless `min` says otherwise.
  void Get(const J& object, const Path& path, const char* key, int64_t& out,
           int64_t min = 0) const {
    if (const J* v = Find(object, key)) {
      out = Integer(*v, path.Key(key), min, std::numeric_limits<int64_t>::max());
    }
  }
  void Get(const J& object, const Path& path, const char* key, int& out, int min, int max) const {
    if (const J* v = Find(object, key))
      out = static_cast<int>(Integer(*v, path.Key(key), min, max));
  }

  // A series column of exactly `expected` values (one per sample). Lengths are checked before
  // anything is allocated; `min` bounds integer columns (-1 marks "unknown" where allowed).
  template <typename T>
  void GetColumn(const J& object, const Path& path, const char* key, size_t expected,
                 std::vector<T>& out, int64_t min = 0) const {
    const Path at = path.Key(key);
    const J* v = Find(object, key);
    if (v == nullptr) {
      if (expected == 0) return;
      FailAt(at, fmt::format("missing: expected {} values, one per sample", expected));
    }
    ReadColumn(*v, at, expected, out, min);
  }

  template <typename T>
  void ReadColumn(const J& v, const Path& at, size_t expected, std::vector<T>& out,
                  int64_t min) const {
    if (!v.is_array()) FailAt(at, fmt::format("expected an array of numbers, got {}", Describe(v)));
    if (v.size() != expected) {
      FailAt(at, fmt::format("has {} values, expected {} (one per sample{})", v.size(), expected,
                             expected_why_));
    }
    out.clear();
    out.reserve(expected);
    for (size_t i = 0; i < expected; ++i) {
      if constexpr (std::is_same_v<T, double>) {
        out.push_back(Number(v[i], at.Index(i)));
      } else {
        out.push_back(Integer(v[i], at.Index(i), min, std::numeric_limits<int64_t>::max()));
      }
    }
  }

  void ReadHost(const J& v, const Path& path, HostInfo& host) const {
    ExpectObject(v, path);
    Get(v, path, "hostname", host.hostname);
    Get(v, path, "os", host.os);
    Get(v, path, "cpu_model", host.cpu_model);
    Get(v, path, "cores", host.cores, 0, std::numeric_limits<int>::max());
    Get(v, path, "memory_bytes", host.memory_bytes);
    if (const J* disks = Find(v, "disks")) {
      const Path at = path.Key("disks");
      ExpectArray(*disks, at, kMaxDisks, "disks");
      host.disks.reserve(disks->size());
      for (size_t i = 0; i < disks->size(); ++i) {
        const J& d = (*disks)[i];
        const Path dp = at.Index(i);
        ExpectObject(d, dp);
        DiskBandwidth& disk = host.disks.emplace_back();
        Get(d, dp, "device", disk.device);
        Get(d, dp, "path", disk.path);
        Get(d, dp, "read_mb_per_s", disk.read_mb_per_s);
        Get(d, dp, "probe_bytes", disk.probe_bytes);
        Get(d, dp, "probe_seconds", disk.probe_seconds);
        Get(d, dp, "method", disk.method);
        Get(d, dp, "cached", disk.cached);
      }
    }
  }

  void ReadJob(const J& v, const Path& path, JobInfo& job) const {
    ExpectObject(v, path);
    if (const J* command = Find(v, "command")) {
      const Path at = path.Key("command");
      ExpectArray(*command, at, kMaxArrayElements, "strings");
      job.command.reserve(command->size());
      for (size_t i = 0; i < command->size(); ++i) {
        job.command.push_back(String((*command)[i], at.Index(i)));
      }
    }
    Get(v, path, "pid", job.pid, 0, std::numeric_limits<int>::max());
    Get(v, path, "start_unix", job.start_unix);
    Get(v, path, "duration", job.duration);
    Get(v, path, "cut_short", job.cut_short);
    Get(v, path, "end_reason", job.end_reason);
    if (const J* code = Find(v, "exit_code"); code != nullptr && !code->is_null()) {
      job.exit_code = static_cast<int>(Integer(*code, path.Key("exit_code"), 0, 255));
    }
    Get(v, path, "exit_signal", job.exit_signal);
  }

  void ReadSeries(const J& v, const Path& path, Series& series) {
    ExpectObject(v, path);
    if (const J* t = Find(v, "t")) {
      const Path at = path.Key("t");
      ExpectArray(*t, at, kMaxSamples, "samples");
      expected_why_ = "";
      ReadColumn(*t, at, t->size(), series.t, 0);
      for (size_t i = 1; i < series.t.size(); ++i) {
        if (series.t[i] < series.t[i - 1]) {
          FailAt(at.Index(i), fmt::format("sample times must not decrease ({} after {})",
                                          series.t[i], series.t[i - 1]));
        }
      }
    }
    samples_ = series.t.size();
    expected_why_ = " of series.t";
    GetColumn(v, path, "process_cpu", samples_, series.process_cpu);
    GetColumn(v, path, "host_busy", samples_, series.host_busy);
    GetColumn(v, path, "rss_bytes", samples_, series.rss_bytes, -1);
    GetColumn(v, path, "disk_read_bytes", samples_, series.disk_read_bytes, -1);
    GetColumn(v, path, "gpu_busy", samples_, series.gpu_busy);
    if (const J* merged = Find(v, "merged")) {
      const Path at = path.Key("merged");
      ExpectArray(*merged, at, samples_, "merged samples (at most one per sample)");
      expected_why_ = " per merged sample";
      ReadColumn(*merged, at, merged->size(), series.merged, 1);
    }
    merged_ = series.merged.size();
    expected_why_ = ", one per merged sample";
    GetColumn(v, path, "rss_max", merged_, series.rss_max, -1);
  }

  void ReadPipelines(const J& root, const Path& root_path, Trace& trace) {
    const Path at = root_path.Key("pipelines");
    const J* pipelines = Find(root, "pipelines");
    if (pipelines == nullptr) {
      FailAt(at, "missing: a trace lists its pipelines (an empty array when none ran)");
    }
    ExpectArray(*pipelines, at, kMaxPipelines, "pipelines");
    trace.pipelines.reserve(pipelines->size());
    for (size_t i = 0; i < pipelines->size(); ++i) {
      ReadPipeline((*pipelines)[i], at.Index(i), trace.pipelines.emplace_back());
    }
  }

  void ReadRetunes(const J& v, const Path& path, std::vector<Retune>& out) const {
    ExpectArray(v, path, kMaxRetunes, "re-tunes");
    for (size_t i = 0; i < v.size(); ++i) {
      const Path at = path.Index(i);
      const J& item = v[i];
      ExpectObject(item, at);
      Retune& r = out.emplace_back();
      Get(item, at, "t", r.t);
      Get(item, at, "action", r.action);
      Get(item, at, "reason", r.reason);
      Get(item, at, "before_outputs_per_s", r.before_outputs_per_s);
      Get(item, at, "predicted_outputs_per_s", r.predicted_outputs_per_s);
      Get(item, at, "calibrated_outputs_per_s", r.calibrated_outputs_per_s);
      Get(item, at, "measured_outputs_per_s", r.measured_outputs_per_s);
      Get(item, at, "kept", r.kept);
      const J* changes = Find(item, "changes");
      if (changes == nullptr) continue;
      const Path cp = at.Key("changes");
      ExpectArray(*changes, cp, kMaxStages * 3, "changes");
      for (size_t k = 0; k < changes->size(); ++k) {
        const Path kp = cp.Index(k);
        ExpectObject((*changes)[k], kp);
        RetuneChange& c = r.changes.emplace_back();
        Get((*changes)[k], kp, "stage", c.stage);
        Get((*changes)[k], kp, "knob", c.knob);
        Get((*changes)[k], kp, "from", c.from);
        Get((*changes)[k], kp, "to", c.to);
        Get((*changes)[k], kp, "why", c.why);
        Get((*changes)[k], kp, "when", c.when);
        Get((*changes)[k], kp, "note", c.note);
      }
    }
  }

  void ReadPipeline(const J& v, const Path& path, PipelineTrace& p) {
    ExpectObject(v, path);
    Get(v, path, "name", p.name);
    Get(v, path, "config_path", p.config_path);
    Get(v, path, "config_text", p.config_text);
    if (const J* classes = Find(v, "classes")) {
      const Path at = path.Key("classes");
      ExpectArray(*classes, at, kMaxClasses, "class names");
      for (size_t i = 0; i < classes->size(); ++i) {
        p.classes.push_back(String((*classes)[i], at.Index(i)));
      }
    }
    Get(v, path, "epochs_completed", p.epochs_completed);
    Get(v, path, "finished", p.finished);
    Get(v, path, "closed", p.closed);
    Get(v, path, "first_sample", p.first_sample);
    const Path stages_path = path.Key("stages");
    const J* stages = Find(v, "stages");
    if (stages == nullptr) FailAt(stages_path, "missing: a pipeline lists its stages");
    ExpectArray(*stages, stages_path, kMaxStages, "stages");
    p.stages.reserve(stages->size());
    for (size_t i = 0; i < stages->size(); ++i) {
      ReadStage((*stages)[i], stages_path.Index(i), p.stages.emplace_back());
    }
    if (const J* r = Find(v, "retunes")) ReadRetunes(*r, path.Key("retunes"), p.retunes);
    if (const J* c = Find(v, "consumer")) {
      const Path cp = path.Key("consumer");
      ExpectObject(*c, cp);
      Get(*c, cp, "next_calls", p.consumer.next_calls);
      Get(*c, cp, "wait_seconds", p.consumer.wait_seconds);
      Get(*c, cp, "between_seconds", p.consumer.between_seconds);
    }
    const J* series = Find(v, "series");
    if (series != nullptr) {
      ReadPipelineSeries(*series, path.Key("series"), p);
    } else if (samples_ > 0) {
      FailAt(path.Key("series"),
             fmt::format("missing: expected the pipeline's series ({} samples)", samples_));
    }
  }

  void ReadStage(const J& v, const Path& path, StageTrace& s) const {
    ExpectObject(v, path);
    const J* name = Find(v, "name");
    if (name == nullptr) FailAt(path.Key("name"), "missing: every stage has a name");
    s.name = String(*name, path.Key("name"));
    if (s.name.empty()) FailAt(path.Key("name"), "expected a non-empty string, got \"\"");
    Get(v, path, "op", s.op);
    Get(v, path, "parallelizable", s.parallelizable);
    Get(v, path, "holds_gil", s.holds_gil);
    Get(v, path, "deterministic", s.deterministic);
    Get(v, path, "stateless", s.stateless);
    Get(v, path, "inspected", s.inspected);
    Get(v, path, "parallelism", s.parallelism, 1, static_cast<int>(kMaxWorkers));
    Get(v, path, "buffer_size", s.buffer_size, 0, kMaxBufferSize);
    Get(v, path, "ordered", s.ordered);
    Get(v, path, "async", s.async);
    Get(v, path, "elements_in", s.elements_in);
    Get(v, path, "elements_out", s.elements_out);
    Get(v, path, "bytes_out", s.bytes_out);
    Get(v, path, "cpu_seconds", s.cpu_seconds);
    Get(v, path, "busy_seconds", s.busy_seconds);
    Get(v, path, "blocked_input_seconds", s.blocked_input_seconds);
    Get(v, path, "blocked_output_seconds", s.blocked_output_seconds);
    Get(v, path, "queue_mean", s.queue_mean);
    Get(v, path, "queue_max", s.queue_max);
    Get(v, path, "voluntary_switches", s.voluntary_switches);
    Get(v, path, "involuntary_switches", s.involuntary_switches);
    Get(v, path, "minor_faults", s.minor_faults);
    Get(v, path, "major_faults", s.major_faults);
  }

  void ReadPipelineSeries(const J& v, const Path& path, PipelineTrace& p) {
    ExpectObject(v, path);
    if (const J* first = Find(v, "first_index")) {
      const Path at = path.Key("first_index");
      int64_t index = Integer(*first, at, 0, std::numeric_limits<int64_t>::max());
      if (static_cast<uint64_t>(index) > samples_) {
        FailAt(at, fmt::format("{} is beyond the {} samples of series.t", index, samples_));
      }
      p.first_index = static_cast<size_t>(index);
    }
    const size_t expected = samples_ - p.first_index;
    expected_why_ = fmt::format(" of series.t from first_index {} on", p.first_index);
    GetColumn(v, path, "consumer_next", expected, p.consumer_next);
    GetColumn(v, path, "consumer_wait", expected, p.consumer_wait);
    if (Find(v, "consumer_between") != nullptr) {
      GetColumn(v, path, "consumer_between", expected, p.consumer_between);
    }
    const Path stages_path = path.Key("stages");
    const J* stages = Find(v, "stages");
    if (stages == nullptr && expected > 0) {
      FailAt(stages_path,
             fmt::format("missing: expected {} stage series, one per stage", p.stages.size()));
    }
    if (stages == nullptr) return;
    ExpectArray(*stages, stages_path, kMaxStages, "stage series");
    // With no samples to hold, an empty list is as good as one of empty series.
    if (stages->size() != p.stages.size() && !(stages->empty() && expected == 0)) {
      FailAt(stages_path, fmt::format("has {} stage series, expected {} (one per stage)",
                                      stages->size(), p.stages.size()));
    }
    p.stage_series.reserve(stages->size());
    const size_t coarse = merged_ > p.first_index ? merged_ - p.first_index : 0;
    for (size_t i = 0; i < stages->size(); ++i) {
      ReadStageSeries((*stages)[i], stages_path.Index(i), expected, p.stage_series.emplace_back());
      if (Find((*stages)[i], "queue_max") != nullptr || coarse > 0) {
        const std::string why = expected_why_;
        expected_why_ = ", one per merged sample of the pipeline";
        GetColumn((*stages)[i], stages_path.Index(i), "queue_max", coarse,
                  p.stage_series.back().queue_max);
        expected_why_ = why;
      }
    }
  }

  void ReadStageSeries(const J& v, const Path& path, size_t expected, StageSeries& s) const {
    ExpectObject(v, path);
    GetColumn(v, path, "elements_out", expected, s.elements_out);
    GetColumn(v, path, "cpu_seconds", expected, s.cpu_seconds);
    GetColumn(v, path, "busy_seconds", expected, s.busy_seconds);
    GetColumn(v, path, "blocked_input_seconds", expected, s.blocked_input_seconds);
    GetColumn(v, path, "blocked_output_seconds", expected, s.blocked_output_seconds);
    GetColumn(v, path, "queue_size", expected, s.queue_size);
    if (const J* tids = Find(v, "worker_tids")) {
      const Path at = path.Key("worker_tids");
      ExpectArray(*tids, at, kMaxWorkers, "workers");
      s.worker_tids.reserve(tids->size());
      for (size_t w = 0; w < tids->size(); ++w) {
        s.worker_tids.push_back(
            static_cast<int>(Integer((*tids)[w], at.Index(w), 0, std::numeric_limits<int>::max())));
      }
    }
    const J* busy = Find(v, "worker_busy_seconds");
    const Path at = path.Key("worker_busy_seconds");
    if (busy != nullptr) ExpectArray(*busy, at, kMaxWorkers, "workers");
    // One entry per worker in both, a missing key counting as none (the writer writes `[]`, which
    // must read back the same; found by fuzz/trace_fuzz).
    const size_t workers = busy != nullptr ? busy->size() : 0;
    if (!s.worker_tids.empty() && s.worker_tids.size() != workers) {
      FailAt(at,
             fmt::format("has {} workers but worker_tids has {}", workers, s.worker_tids.size()));
    }
    if (busy != nullptr) {
      s.worker_busy_seconds.resize(busy->size());
      for (size_t w = 0; w < busy->size(); ++w) {
        ReadColumn((*busy)[w], at.Index(w), expected, s.worker_busy_seconds[w], 0);
      }
    }
  }

  void ReadGpu(const J& v, const Path& path, GpuTrace& gpu) const {
    ExpectObject(v, path);
    Get(v, path, "status", gpu.status);
    Get(v, path, "reason", gpu.reason);
    Get(v, path, "device_name", gpu.device_name);
    Get(v, path, "kernels", gpu.kernels);
    Get(v, path, "kernel_busy_seconds", gpu.kernel_busy_seconds);
    Get(v, path, "busy_fraction", gpu.busy_fraction);
    Get(v, path, "h2d_bytes", gpu.h2d_bytes);
    Get(v, path, "h2d_seconds", gpu.h2d_seconds);
    Get(v, path, "d2h_bytes", gpu.d2h_bytes);
    Get(v, path, "d2h_seconds", gpu.d2h_seconds);
  }

  void ReadTracer(const J& v, const Path& path, TracerCost& tracer) const {
    ExpectObject(v, path);
    Get(v, path, "interval", tracer.interval);
    Get(v, path, "samples", tracer.samples);
    Get(v, path, "cpu_seconds", tracer.cpu_seconds);
    Get(v, path, "overhead_fraction", tracer.overhead_fraction);
    Get(v, path, "warmup_seconds", tracer.warmup_seconds);
    Get(v, path, "warmup_method", tracer.warmup_method);
    Get(v, path, "full_resolution_seconds", tracer.full_resolution_seconds);
    Get(v, path, "bucket_seconds", tracer.bucket_seconds);
    Get(v, path, "max_buckets", tracer.max_buckets);
    if (tracer.full_resolution_seconds < 0 || tracer.bucket_seconds < 0) {
      FailAt(path.Key("bucket_seconds"), "the merging policy's seconds must not be negative");
    }
  }

  const std::string& origin_;
  bool part_ = false;
  size_t samples_ = 0;        // length of series.t
  size_t merged_ = 0;         // length of series.merged
  std::string expected_why_;  // how the expected column length came about, for messages
};

}  // namespace

namespace internal {

Trace ReadDocument(const Json& root, const std::string& origin) {
  return Reader<Json>(origin, false).Read(root);
}

Trace ReadDocument(const OrderedJson& root, const std::string& origin) {
  return Reader<OrderedJson>(origin, false).Read(root);
}

Trace ReadPart(const Json& root, const std::string& origin) {
  return Reader<Json>(origin, true).Read(root);
}

Trace ReadPart(const OrderedJson& root, const std::string& origin) {
  return Reader<OrderedJson>(origin, true).Read(root);
}

}  // namespace internal

Trace ParseTrace(std::string_view text, const std::string& origin) {
  // Checked on the size alone, before a byte is read.
  if (text.size() > kMaxTextBytes) {
    Fail("{}: {} bytes, larger than the 2 GiB a trace may have", origin, text.size());
  }
  if (internal::IsChunked(text)) return internal::ParseChunked(text, origin);
  return internal::ReadDocument(internal::ParseLimited(text, origin), origin);
}

// Files from this size on are read from their end when they are sluice-trace/2.
constexpr uint64_t kReadFromTheEndBytes = 4 << 20;

Trace ReadTrace(const std::filesystem::path& path) {
  const std::string origin = path.string();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Fail("{}: cannot read trace: {}", origin, std::strerror(errno));
  std::string text;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    // A long sluice-trace/2 file is read from its end: the lines it needs, not every sample.
    // Should that fail, reading it whole says exactly where it is wrong.
    if (static_cast<uint64_t>(st.st_size) >= kReadFromTheEndBytes) {
      char head[64] = {};
      const ssize_t n = ::pread(fd, head, sizeof head, 0);
      if (n > 0 && internal::IsChunked(std::string_view(head, static_cast<size_t>(n)))) {
        try {
          std::optional<Trace> trace =
              internal::ReadChunkedFromTheEnd(fd, static_cast<uint64_t>(st.st_size), origin);
          if (trace) {
            ::close(fd);
            return std::move(*trace);
          }
        } catch (const std::exception&) {
          // A sluice::Error, or a value of the wrong JSON type among the offsets: read it whole.
        }
      }
    }
    if (static_cast<uint64_t>(st.st_size) > kMaxTextBytes) {
      ::close(fd);
      Fail("{}: {} bytes, larger than the 2 GiB a trace may have", origin, st.st_size);
    }
    text.reserve(static_cast<size_t>(st.st_size));
  }
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      Fail("{}: cannot read trace: {}", origin, std::strerror(err));
    }
    if (n == 0) break;
    // A pipe or a file that grows while read is held to the same limit.
    if (text.size() + static_cast<size_t>(n) > kMaxTextBytes) {
      ::close(fd);
      Fail("{}: larger than the 2 GiB a trace may have", origin);
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return ParseTrace(text, origin);
}

}  // namespace sluice::trace
