// The sluice-trace/1 JSON writer: the documented key order, series stored column by column, and
// a check that the reader accepts what is written before the file is replaced.
#include <fmt/format.h>

#include "sluice/common/error.h"
#include "sluice/common/files.h"
#include "sluice/trace/io.h"
#include "trace/internal/json.h"

namespace sluice::trace {
namespace internal {

OrderedJson StageJson(const StageTrace& s) {
  return OrderedJson{{"name", s.name},
                     {"op", s.op},
                     {"parallelizable", s.parallelizable},
                     {"holds_gil", s.holds_gil},
                     {"deterministic", s.deterministic},
                     {"stateless", s.stateless},
                     {"inspected", s.inspected},
                     {"parallelism", s.parallelism},
                     {"buffer_size", s.buffer_size},
                     {"ordered", s.ordered},
                     {"async", s.async},
                     {"elements_in", s.elements_in},
                     {"elements_out", s.elements_out},
                     {"bytes_out", s.bytes_out},
                     {"cpu_seconds", s.cpu_seconds},
                     {"busy_seconds", s.busy_seconds},
                     {"blocked_input_seconds", s.blocked_input_seconds},
                     {"blocked_output_seconds", s.blocked_output_seconds},
                     {"queue_mean", s.queue_mean},
                     {"queue_max", s.queue_max},
                     {"voluntary_switches", s.voluntary_switches},
                     {"involuntary_switches", s.involuntary_switches},
                     {"minor_faults", s.minor_faults},
                     {"major_faults", s.major_faults}};
}

OrderedJson StageSeriesJson(const StageSeries& s) {
  OrderedJson out{{"elements_out", s.elements_out},
                  {"cpu_seconds", s.cpu_seconds},
                  {"busy_seconds", s.busy_seconds},
                  {"blocked_input_seconds", s.blocked_input_seconds},
                  {"blocked_output_seconds", s.blocked_output_seconds},
                  {"queue_size", s.queue_size},
                  {"worker_tids", s.worker_tids},
                  {"worker_busy_seconds", s.worker_busy_seconds}};
  if (!s.queue_max.empty()) out["queue_max"] = s.queue_max;
  return out;
}

OrderedJson RetuneJson(const Retune& r) {
  OrderedJson changes = OrderedJson::array();
  for (const RetuneChange& c : r.changes) {
    changes.push_back(OrderedJson{{"stage", c.stage},
                                  {"knob", c.knob},
                                  {"from", c.from},
                                  {"to", c.to},
                                  {"why", c.why},
                                  {"when", c.when},
                                  {"note", c.note}});
  }
  return OrderedJson{{"t", r.t},
                     {"action", r.action},
                     {"reason", r.reason},
                     {"changes", changes},
                     {"before_outputs_per_s", r.before_outputs_per_s},
                     {"predicted_outputs_per_s", r.predicted_outputs_per_s},
                     {"calibrated_outputs_per_s", r.calibrated_outputs_per_s},
                     {"measured_outputs_per_s", r.measured_outputs_per_s},
                     {"kept", r.kept}};
}

OrderedJson PipelineSeriesJson(const PipelineTrace& p) {
  OrderedJson stage_series = OrderedJson::array();
  for (const StageSeries& s : p.stage_series) stage_series.push_back(StageSeriesJson(s));
  OrderedJson out{{"first_index", p.first_index},
                  {"consumer_next", p.consumer_next},
                  {"consumer_wait", p.consumer_wait},
                  {"stages", std::move(stage_series)}};
  // Recorded since the Python package; older traces lack it, so it is written only when kept.
  if (!p.consumer_between.empty()) out["consumer_between"] = p.consumer_between;
  return out;
}

OrderedJson PipelineJson(const PipelineTrace& p, bool whole) {
  OrderedJson stages = OrderedJson::array();
  for (const StageTrace& s : p.stages) stages.push_back(StageJson(s));
  OrderedJson out{{"name", p.name}};
  if (whole) {
    out["config_path"] = p.config_path;
    out["config_text"] = p.config_text;
    out["classes"] = p.classes;
  }
  out["epochs_completed"] = p.epochs_completed;
  out["finished"] = p.finished;
  out["closed"] = p.closed;
  out["first_sample"] = p.first_sample;
  out["stages"] = std::move(stages);
  out["consumer"] = {{"next_calls", p.consumer.next_calls},
                     {"wait_seconds", p.consumer.wait_seconds},
                     {"between_seconds", p.consumer.between_seconds}};
  if (whole) out["series"] = PipelineSeriesJson(p);
  if (!p.retunes.empty()) {
    OrderedJson retunes = OrderedJson::array();
    for (const Retune& r : p.retunes) retunes.push_back(RetuneJson(r));
    out["retunes"] = std::move(retunes);
  }
  return out;
}

OrderedJson HostJson(const HostInfo& host) {
  OrderedJson disks = OrderedJson::array();
  for (const DiskBandwidth& d : host.disks) {
    disks.push_back({{"device", d.device},
                     {"path", d.path},
                     {"read_mb_per_s", d.read_mb_per_s},
                     {"probe_bytes", d.probe_bytes},
                     {"probe_seconds", d.probe_seconds},
                     {"method", d.method},
                     {"cached", d.cached}});
  }
  return {{"hostname", host.hostname},         {"os", host.os},
          {"cpu_model", host.cpu_model},       {"cores", host.cores},
          {"memory_bytes", host.memory_bytes}, {"disks", std::move(disks)}};
}

OrderedJson JobJson(const JobInfo& job) {
  return {{"command", job.command},
          {"pid", job.pid},
          {"start_unix", job.start_unix},
          {"duration", job.duration},
          {"cut_short", job.cut_short},
          {"end_reason", job.end_reason},
          {"exit_code", job.exit_code ? OrderedJson(*job.exit_code) : OrderedJson(nullptr)},
          {"exit_signal", job.exit_signal}};
}

OrderedJson SeriesJson(const Series& s) {
  OrderedJson out{{"t", s.t},
                  {"process_cpu", s.process_cpu},
                  {"host_busy", s.host_busy},
                  {"rss_bytes", s.rss_bytes},
                  {"disk_read_bytes", s.disk_read_bytes},
                  {"gpu_busy", s.gpu_busy}};
  if (!s.merged.empty()) {
    out["merged"] = s.merged;
    out["rss_max"] = s.rss_max;
  }
  return out;
}

OrderedJson GpuJson(const GpuTrace& g) {
  return {{"status", g.status},
          {"reason", g.reason},
          {"device_name", g.device_name},
          {"kernels", g.kernels},
          {"kernel_busy_seconds", g.kernel_busy_seconds},
          {"busy_fraction", g.busy_fraction},
          {"h2d_bytes", g.h2d_bytes},
          {"h2d_seconds", g.h2d_seconds},
          {"d2h_bytes", g.d2h_bytes},
          {"d2h_seconds", g.d2h_seconds}};
}

OrderedJson TracerJson(const TracerCost& c) {
  OrderedJson out{{"interval", c.interval},
                  {"samples", c.samples},
                  {"cpu_seconds", c.cpu_seconds},
                  {"overhead_fraction", c.overhead_fraction},
                  {"warmup_seconds", c.warmup_seconds},
                  {"warmup_method", c.warmup_method}};
  if (c.bucket_seconds > 0) {
    out["full_resolution_seconds"] = c.full_resolution_seconds;
    out["bucket_seconds"] = c.bucket_seconds;
    out["max_buckets"] = c.max_buckets;
  }
  return out;
}

}  // namespace internal

namespace {

using internal::OrderedJson;

OrderedJson Document(const Trace& trace) {
  OrderedJson pipelines = OrderedJson::array();
  for (const PipelineTrace& p : trace.pipelines)
    pipelines.push_back(internal::PipelineJson(p, true));
  // This writer speaks sluice-trace/1, whatever `trace.format` says (chunked.cc writes /2).
  return OrderedJson{{"format", kFormat},
                     {"sluice_version", trace.sluice_version},
                     {"host", internal::HostJson(trace.host)},
                     {"job", internal::JobJson(trace.job)},
                     {"pipelines", std::move(pipelines)},
                     {"series", internal::SeriesJson(trace.series)},
                     {"gpu", internal::GpuJson(trace.gpu)},
                     {"tracer", internal::TracerJson(trace.tracer)}};
}

// The JSON text for `trace`, after checking that ParseTrace will accept it: the writer refuses
// what the reader would reject (a NaN, which JSON cannot hold, or a column of the wrong length)
// rather than leave an unreadable file. `origin` starts the error messages.
std::string Serialize(const Trace& trace, const std::string& origin) {
  OrderedJson doc = Document(trace);
  internal::ReadDocument(doc, origin);
  // Invalid UTF-8 (a command-line argument can hold any bytes) becomes U+FFFD instead of failing.
  return doc.dump(-1, ' ', false, OrderedJson::error_handler_t::replace) + "\n";
}

}  // namespace

std::string ToJson(const Trace& trace) { return Serialize(trace, "cannot write trace"); }

void WriteTrace(const Trace& trace, const std::filesystem::path& path) {
  const std::string origin = fmt::format("{}: cannot write trace", path.string());
  const std::string text =
      trace.format == kFormatV2 ? internal::ChunkedText(trace, origin) : Serialize(trace, origin);
  // Errors name the file the caller asked for, not the temporary one. No fsync: the tracer
  // rewrites the trace every flush, and a sync each time would show in the disk it measures.
  AtomicWriteOptions options;
  options.what = "trace";
  options.sync = false;
  WriteFileAtomically(path, text, options);
}

}  // namespace sluice::trace
